"""Hostile or mistaken inputs: each is refused with one sentence (a DataError or GenlabError,
exit 2 on the command line), before any large work or memory is spent on it."""

import io
import struct
import time
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

import genlab.data as gd
from genlab.cli import main
from genlab.errors import DataError


def _refused(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    return err


# ---- csv:PATH given something that is not a text table


def test_a_png_as_csv_is_one_sentence(tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "p.png")
    with pytest.raises(DataError, match="is a PNG image, not a CSV file"):
        gd.load_spec(f"csv:{tmp_path / 'p.png'}")
    _refused(capsys, ["fit", "normal", "--data", f"csv:{tmp_path / 'p.png'}",
                      "--out", str(tmp_path / "run")], "is a PNG image")  # fmt: skip
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "content,message",
    [
        (bytes(range(256)) * 8, "is not a text CSV file"),
        (b"a,b\n1,\x002\n", "holds a non-numeric or missing value"),
        (b"PK\x03\x04rest", "is a zip archive"),
    ],
    ids=["binary", "nul", "zip"],
)
def test_a_binary_file_as_csv_is_one_sentence(tmp_path, content, message):
    (tmp_path / "b.csv").write_bytes(content)
    with pytest.raises(DataError, match=message):
        gd.load("csv", path=tmp_path / "b.csv")
    with pytest.raises(DataError, match=r"is not a text file|is not a number"):  # txt:PATH
        gd.load("txt", path=tmp_path / "b.csv")


def test_a_csv_with_a_byte_order_mark_still_reads(tmp_path):
    (tmp_path / "t.csv").write_bytes("\ufeffh,w\n1,2\n3,4\n".encode())
    ds = gd.load("csv", path=tmp_path / "t.csv")
    assert ds.columns == ["h", "w"] and ds.x.tolist() == [[1, 2], [3, 4]]


# ---- npz:PATH: booleans, shapes, pickles, bombs


def test_a_boolean_npz_becomes_zeros_and_ones(tmp_path, capsys):
    flags = np.random.default_rng(0).random((60, 2)) > 0.5
    np.savez(tmp_path / "b.npz", x=flags, y=flags[:, 0])
    ds = gd.load("npz", path=tmp_path / "b.npz")
    assert ds.x.dtype.kind == "f" and set(np.unique(ds.x)) == {0.0, 1.0}
    assert ds.y.dtype == np.int64 and (ds.y == flags[:, 0]).all()
    np.savez(tmp_path / "one.npz", x=flags[:, 0])  # 1-D: a table of one column
    assert gd.load("npz", path=tmp_path / "one.npz").x.shape == (60, 1)
    assert main(["fit", "normal", "--data", f"npz:{tmp_path / 'one.npz'}",
                 "--out", str(tmp_path / "run")]) == 0  # fmt: skip
    capsys.readouterr()


def test_npz_of_the_wrong_kind_is_one_sentence(tmp_path):
    np.save(tmp_path / "a.npy", np.ones(3))
    with pytest.raises(DataError, match=r"is not an \.npz file"):
        gd.load("npz", path=tmp_path / "a.npy")
    np.savez(tmp_path / "c.npz", x=np.ones(4) * 1j)
    with pytest.raises(DataError, match="holds complex numbers"):
        gd.load("npz", path=tmp_path / "c.npz")
    np.savez(tmp_path / "o.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="holds Python objects, which genlab never unpickles"):
        gd.load("npz", path=tmp_path / "o.npz")
    np.savez(tmp_path / "l.npz", x=np.ones((4, 2)), y=np.ones((4, 3)))
    with pytest.raises(DataError, match=r"labels of shape \(4, 3\) for 4 samples"):
        gd.load("npz", path=tmp_path / "l.npz")


def _zip_one(path, name, data, size, crc):
    """A zip archive of one deflated member ``name`` (``data``: its raw deflate stream)."""
    name = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size,
                        len(name), 0) + name  # fmt: skip
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc,
                          len(data), size, len(name), 0, 0, 0, 0, 0, 0) + name  # fmt: skip
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central),
                      len(local) + len(data), 0)  # fmt: skip
    path.write_bytes(local + data + central + end)
    return path


def _npy_header(shape, descr="<f8"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def test_an_npz_bomb_is_refused_before_it_inflates(tmp_path, capsys):
    """2 GiB of zeros in about 2 MB: a real, well-formed archive (its checksum right),
    refused from its headers in a moment, before any of it is inflated."""
    block, times = bytes(1 << 24), 128  # 16 MiB x 128 = 2 GiB
    header = _npy_header((times * len(block) // 8,))
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(header + block) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)  # a restarted compressor: alike
    data = first + again * (times - 1) + c.flush()
    crc = zlib.crc32(header)
    for _ in range(times):
        crc = zlib.crc32(block, crc)
    size = len(header) + times * len(block)
    path = _zip_one(tmp_path / "bomb.npz", "x.npy", data, size, crc)
    assert path.stat().st_size < 3_000_000
    with zipfile.ZipFile(path) as z, z.open("x.npy") as f:  # it is what it claims
        assert z.getinfo("x.npy").file_size == 2**31 + len(header)
        assert f.read(len(header) + 1000) == header + bytes(1000)
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"2,048 MiB once read from a 2,0.. KiB file.*bomb"):
        gd.load("npz", path=path)
    assert time.perf_counter() - start < 1.0
    _refused(capsys, ["fit", "normal", "--data", f"npz:{path}", "--out", str(tmp_path / "r")],
             "a decompression bomb or an array too large")  # fmt: skip


def test_an_npz_header_that_promises_too_much_is_refused(tmp_path):
    """A header claiming 2^40 values over a few bytes: refused before numpy allocates."""
    header = _npy_header((1 << 40,), "|u1")
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = c.compress(header + bytes(64)) + c.flush()
    path = _zip_one(tmp_path / "lie.npz", "x.npy", data, len(header) + 64,
                    zlib.crc32(header + bytes(64)))  # fmt: skip
    with pytest.raises(DataError, match="over genlab's bound"):
        gd.load("npz", path=path)


def test_a_large_but_ordinary_npz_still_loads(tmp_path):
    x = np.random.default_rng(0).standard_normal((2000, 64)).astype(np.float32)
    np.savez_compressed(tmp_path / "ok.npz", x=x)
    assert gd.load("npz", path=tmp_path / "ok.npz").x.shape == (2000, 64)
    np.savez_compressed(tmp_path / "zeros.npz", x=np.zeros((1000, 1000)))  # 8 MB in 8 kB
    assert gd.load("npz", path=tmp_path / "zeros.npz").x.shape == (1000, 1000)


# ---- counts, families and seeds out of range: one sentence before any work


def test_eval_with_no_samples_is_one_sentence(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["fit", "mvn", "--data", "moons", "--out", str(run)]) == 0
    capsys.readouterr()
    for n in ("0", "-3"):
        _refused(capsys, ["eval", str(run), "--metrics", "swd", "--n", n],
                 "--n (samples to draw) must be a whole number of at least 1")  # fmt: skip
    assert not (run / "eval.json").exists()


@pytest.mark.parametrize("families", ["", ",", "gmm,", " , vae"])
def test_compare_with_an_empty_family_is_one_sentence(tmp_path, capsys, families):
    for latent in ([], ["--latent"]):
        _refused(capsys, ["compare", "--families", families, "--out", str(tmp_path / "c"),
                          *latent], "--families takes comma-separated names")  # fmt: skip


@pytest.mark.parametrize("seed", ["-1", str(2**32), "99999999999999999999999"])
def test_eval_t2i_with_a_seed_out_of_range_is_one_sentence(tmp_path, capsys, seed):
    argv = ["eval-t2i", "builtin", "--seed", seed, "--n", "1", "--out", str(tmp_path / "e")]
    assert main(argv) == 2  # the one --seed type of every command refuses it
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "a seed is a whole number from 0 to 4294967295" in err and "Traceback" not in err
    assert not (tmp_path / "e").exists()


# ---- text that is not Unicode, captions with a byte-order mark, a run inside its data


def test_prompts_that_are_not_unicode_are_one_sentence(tmp_path, capsys):
    from genlab.errors import GenlabError
    from genlab.generation import GenerationRequest
    from genlab.generation.hires import HiresFix

    with pytest.raises(GenlabError, match="not valid text"):
        GenerationRequest("a red circle \udcff")  # bytes that were not UTF-8, as argv has them
    with pytest.raises(GenlabError, match="hires prompt is not valid text"):
        HiresFix(prompt="a \ud800")
    _refused(capsys, ["txt2img", "a red circle \udcff", "--out", str(tmp_path / "a.png")],
             "not valid text")  # fmt: skip
    assert not (tmp_path / "a.png").exists()


def test_a_caption_files_byte_order_mark_is_dropped(tmp_path):
    from genlab.data.images import _caption

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "a.txt").write_text("a red circle\n", encoding="utf-8-sig")  # as Notepad saves
    assert _caption(tmp_path / "a.png", "") == "a red circle"


def test_a_lora_run_inside_its_image_folder_is_refused(tmp_path, capsys):
    data = tmp_path / "photos"
    data.mkdir()
    Image.new("RGB", (8, 8)).save(data / "a.png")
    argv = ["finetune", "lora", "--model", "builtin", "--data", str(data), "--caption", "x",
            "--out", str(data / "run"), "--steps", "1"]  # fmt: skip
    _refused(capsys, argv, "lies inside the image folder")
    assert sorted(p.name for p in data.iterdir()) == ["a.png"]


def test_a_deepcache_branch_without_deepcache_and_a_refused_eval_leave_nothing(tmp_path, capsys):
    _refused(capsys, ["txt2img", "a red circle", "--deepcache-branch", "2", "--out",
                      str(tmp_path / "b.png")], "applies only with step caching on")  # fmt: skip
    for bad in (["--n", "0"], ["--heldout", "bogus"]):
        out = tmp_path / f"ev{bad[1]}"
        assert main(["eval-t2i", "builtin", *bad, "--out", str(out)]) == 2
        assert not out.exists()  # refused before any work: no empty report folder
    assert not (tmp_path / "b.png").exists()
