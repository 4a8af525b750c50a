"""The generation request and the PNG parameters chunk in stable-diffusion-webui's layout."""

import numpy as np
import pytest
from PIL import Image

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.generation import (
    GenerationRequest,
    format_parameters,
    parse_parameters,
    read_parameters,
    request_from_parameters,
    save_png,
)
from genlab.generation.request import WEBUI_SAMPLERS


def test_parameters_round_trip_in_webui_layout():
    request = GenerationRequest(
        "a red circle to the left of a blue square", negative_prompt="blurry, dark",
        sampler="dpmpp-2m-karras", steps=20, cfg_scale=5.0, seed=7, batch_size=2, width=32,
        height=32,
    )  # fmt: skip
    text = format_parameters(request, 8, model="shapes", model_hash="1a2b3c4d5e6f7")
    assert text == (
        "a red circle to the left of a blue square\n"
        "Negative prompt: blurry, dark\n"
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5, Seed: 8, Size: 32x32, "
        "Model hash: 1a2b3c4d5e, Model: shapes"
    )
    parsed = parse_parameters(text)
    assert parsed["Prompt"] == request.prompt and parsed["Negative prompt"] == "blurry, dark"
    assert parsed["Seed"] == "8" and parsed["Sampler"] == "DPM++ 2M"
    assert parsed["Schedule type"] == "Karras"
    assert parsed["CFG scale"] == "5" and parsed["Size"] == "32x32"


def test_parse_reads_what_stable_diffusion_webui_writes():
    text = (
        "masterpiece, (red circle:1.3)\nsecond line of the prompt\n"
        "Negative prompt: lowres\n"
        "Steps: 30, Sampler: Euler a, CFG scale: 7.5, Seed: 123, Size: 512x512, "
        'Lora hashes: "a: 1f, b: 2e", Denoising strength: 0.6'
    )
    parsed = parse_parameters(text)
    assert parsed["Prompt"] == "masterpiece, (red circle:1.3)\nsecond line of the prompt"
    assert parsed["Negative prompt"] == "lowres"
    assert parsed["Lora hashes"] == "a: 1f, b: 2e" and parsed["Denoising strength"] == "0.6"
    assert parsed["Sampler"] == "Euler a" and parsed["Steps"] == "30"


def test_values_with_commas_or_quotes_are_quoted():
    request = GenerationRequest("x")
    text = format_parameters(request, 0, extra={"Note": 'says "hi", twice'})
    assert parse_parameters(text)["Note"] == 'says "hi", twice'
    assert GenerationRequest("img", init_image=object(), strength=0.6).strength == 0.6
    text = format_parameters(GenerationRequest("img", init_image=object(), strength=0.6), 1)
    assert parse_parameters(text)["Denoising strength"] == "0.6"


def test_same_pixels_and_parameters_give_the_same_bytes(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    text = format_parameters(GenerationRequest("a star"), 1)
    a = save_png(Image.fromarray(pixels), tmp_path / "a.png", text)
    b = save_png(Image.fromarray(pixels), tmp_path / "b.png", text)
    assert a.read_bytes() == b.read_bytes()
    assert read_parameters(a) == text


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"steps": 0}, "steps must be a whole number from 1 to 1000"),
        ({"steps": 10_001}, "steps must be a whole number from 1 to 1000"),
        ({"width": 100_000}, "width must be a whole number of pixels from 1 to 2048"),
        ({"batch_size": 10_000}, "batch_size must be a whole number from 1 to 64"),
        ({"seed": 2**32}, "seed must be a whole number from 0 to 4294967295"),
        ({"cfg_scale": float("nan")}, "CFG scale must be a finite number"),
        ({"cfg_scale": -1.0}, "CFG scale must be a finite number"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"sampler": "plms"}, "Unknown sampler 'plms'; choose one of ddpm, ddim"),
        ({"seed": -1}, "seed must be"),
        ({"strength": 0.5}, "strength applies to img2img"),
    ],
)
def test_bad_requests_are_one_sentence(fields, message):
    with pytest.raises(GenlabError, match=message):
        GenerationRequest("a circle", **fields)


def test_png_info_command(tmp_path, capsys):
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "p.png",
                    format_parameters(GenerationRequest("a heart", seed=3), 3))  # fmt: skip
    assert main(["png-info", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("a heart\n") and "Seed: 3" in out
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    assert main(["png-info", str(tmp_path / "plain.png")]) == 2
    assert "carries no generation parameters" in capsys.readouterr().err
    (tmp_path / "fake.png").write_text("not an image")
    assert main(["png-info", str(tmp_path / "fake.png")]) == 2
    assert main(["png-info", str(tmp_path / "missing.png")]) == 2


def test_quoted_values_as_webui_writes_them():
    text = (
        "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, "
        'Lora hashes: "a: 123, b: 456", TI hashes: "emb: 9f", '
        'Note: "say \\"hi\\", then \\\\ go", Wildcard prompt: "x, \\u00e9", Version: v1.9.4'
    )
    parsed = parse_parameters(text)
    assert parsed["Lora hashes"] == "a: 123, b: 456" and parsed["TI hashes"] == "emb: 9f"
    assert parsed["Note"] == 'say "hi", then \\ go' and parsed["Wildcard prompt"] == "x, é"
    assert parsed["Version"] == "v1.9.4" and parsed["Seed"] == "5"
    # a quote that opens but never closes, or a value that is not JSON: kept as written
    parsed = parse_parameters('x\nSteps: 2, Note: "open, Seed: 3, Bad: "\\q"')
    assert parsed["Note"] == '"open' and parsed["Seed"] == "3" and parsed["Bad"] == '"\\q"'


def test_scanner_finds_what_webuis_pattern_finds():
    """The linear scanner against the pattern it replaced (quadratic, so short texts only)."""
    import random
    import re

    pattern = re.compile(r'\s*([A-Za-z][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
    from genlab.generation.pnginfo import _pairs

    rng = random.Random(0)
    pieces = [*'aZ :,"\\-/_1\t é\u2028x\x1f', "Steps: ", ", ", '"a, b"', '\\"']
    for _ in range(20_000):
        line = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        assert _pairs(line) == pattern.findall(line), repr(line)


N = 1 << 20  # 1 MiB of hostile text


@pytest.mark.parametrize(
    "text",
    [
        "a: " * (N // 3),
        "," * N,
        '"' * N,
        "Steps: 1, " * (N // 10),
        "a" * N,
        "a " * (N // 2),
        'a: "x, ' * (N // 7),
        'a: "' + "\\" * N,
        "x\n" * (N // 2),
        "masterpiece, (red circle:1.3), " * (N // 32) + "\nSteps: 20, Seed: 1",
    ],
    ids=["a-colon", "commas", "quotes", "steps", "key", "keys", "open-quotes", "escapes",
         "lines", "long-prompt"],
)  # fmt: skip
def test_hostile_text_is_parsed_in_linear_time(text):
    """CPU seconds (process_time), not wall seconds: a quadratic scan of these texts takes
    minutes, a linear one milliseconds, and a loaded machine cannot move CPU time by that."""
    import time

    start = time.process_time()
    parse_parameters(text, max_chars=None)  # the scanner itself, past the length bound
    assert time.process_time() - start < 1.0
    start = time.process_time()
    with pytest.raises(GenlabError, match="over the 65,536 genlab reads"):
        parse_parameters(text)
    assert time.process_time() - start < 0.1


def test_long_one_line_prompt_is_fast():
    import time

    prompt = ", ".join(f"(word{i}:1.1)" for i in range(800))  # ~10,000 characters, one line
    assert len(prompt) > 8000
    text = format_parameters(GenerationRequest(prompt, seed=1), 1)
    start = time.process_time()
    parsed = parse_parameters(text)
    assert time.process_time() - start < 0.1
    assert parsed["Prompt"] == prompt and parsed["Seed"] == "1"
    plain = prompt.replace(":", " ")  # no settings line: all of it is prompt
    assert parse_parameters(plain) == {"Prompt": plain, "Negative prompt": ""}


def _png_with_chunk(path, kind, data):
    """A valid 1x1 PNG with one extra chunk ``kind`` holding ``data``, before IDAT."""
    import io
    import struct
    import zlib

    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    png = buf.getvalue()
    chunk = struct.pack(">I", len(data)) + kind + data
    chunk += struct.pack(">I", zlib.crc32(kind + data))
    at = png.index(b"IDAT") - 4
    path.write_bytes(png[:at] + chunk + png[at:])
    return path


def _deflate_bomb(block, times):
    """zlib data of ``block`` repeated ``times`` (its checksum right), made in a moment:
    after a full flush the compressor restarts, so each later block compresses alike."""
    import struct
    import zlib

    c = zlib.compressobj(9)
    first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    check = 1
    for _ in range(times):
        check = zlib.adler32(block, check)
    return first + again * (times - 1) + c.flush()[:-4] + struct.pack(">I", check)


def test_the_bomb_maker_makes_what_it_says():
    import zlib

    assert zlib.decompress(_deflate_bomb(b"abc" * 1000, 50)) == b"abc" * 50_000


@pytest.mark.parametrize("kind", ["zTXt", "iTXt"])
def test_a_text_chunk_bomb_is_refused_unpacked(tmp_path, capsys, kind):
    import time

    squeezed = _deflate_bomb(b"a" * (1 << 20), 1024)  # 1 GiB of text in about a megabyte
    data = b"parameters\0" + (b"\0" if kind == "zTXt" else b"\1\0\0\0") + squeezed
    path = _png_with_chunk(tmp_path / "bomb.png", kind.encode(), data)
    start = time.process_time()
    with pytest.raises(
        GenlabError, match="longer than the 65,536 characters genlab reads \\(a compressed"
    ):
        read_parameters(path)
    assert time.process_time() - start < 1.0
    assert main(["png-info", str(path)]) == 2
    err = capsys.readouterr().err
    assert "inflated no further" in err and "Traceback" not in err


def test_compressed_and_unicode_chunks_are_read(tmp_path):
    import zlib

    text = format_parameters(GenerationRequest("一匹の猫, a cat", seed=2), 2)
    itxt = b"parameters\0\1\0\0\0" + zlib.compress(text.encode())
    assert read_parameters(_png_with_chunk(tmp_path / "i.png", b"iTXt", itxt)) == text
    ztxt = b"parameters\0\0" + zlib.compress(b"a dog\nSteps: 3")
    assert read_parameters(_png_with_chunk(tmp_path / "z.png", b"zTXt", ztxt)) == "a dog\nSteps: 3"
    path = save_png(Image.new("RGB", (4, 4)), tmp_path / "u.png", text)  # PIL writes iTXt
    assert read_parameters(path) == text
    big = _png_with_chunk(tmp_path / "t.png", b"tEXt", b"parameters\0" + b"x" * 70_000)
    with pytest.raises(GenlabError, match="longer than the 65,536 characters"):
        read_parameters(big)
    other = _png_with_chunk(
        tmp_path / "o.png", b"zTXt", b"comment\0\0" + zlib.compress(b"0" * (1 << 24))
    )
    with pytest.raises(GenlabError, match="carries no generation parameters"):
        read_parameters(other)  # another key's chunk is skipped, never inflated


@pytest.mark.parametrize("sampler", sorted(WEBUI_SAMPLERS))
def test_request_round_trips_through_its_parameters(sampler):
    from types import SimpleNamespace

    from genlab.lora.files import lora_parameters

    request = GenerationRequest(
        "a red circle, (left:1.2)\nof a blue square", negative_prompt="blurry, dark",
        sampler=sampler, steps=13, cfg_scale=7.5, seed=4_000_000_000, width=64, height=48,
        init_image=object(), strength=0.35, loras=(("cats", 0.8), ("my style", 1.0)),
    )  # fmt: skip
    files = [SimpleNamespace(name=name, sha256="ab" * 32) for name, _ in request.loras]
    extra = lora_parameters(list(zip(files, [s for _, s in request.loras], strict=True)))
    text = format_parameters(request, request.seed, model="shapes", extra=extra)
    fields = request_from_parameters(text)
    want = request.to_dict()
    del want["batch_size"]  # one image's parameters: its own seed, no batch
    assert fields == want
    again = GenerationRequest(**fields, init_image=object())
    assert again.to_dict() == request.to_dict()


def test_request_from_plain_and_bad_parameters():
    fields = request_from_parameters("just a prompt")
    assert fields == {"prompt": "just a prompt", "negative_prompt": ""}
    text = "x\nSteps: 30, Sampler: Euler a, CFG scale: 7, Seed: 9, Size: 512x768"
    fields = request_from_parameters(text)
    assert fields["sampler"] == "euler-a" and fields["width"] == 512 and fields["height"] == 768
    assert fields["cfg_scale"] == 7.0 and fields["steps"] == 30 and "loras" not in fields
    for bad, message in [
        ("x\nSteps: many", "Steps in the parameters must be a whole number"),
        ("x\nSampler: DPM++ SDE", "Unknown sampler 'DPM\\+\\+ SDE'; choose one of ddpm, ddim"),
        ("x\nSize: 512", "Size in the parameters must be a whole number"),
        ("x\nCFG scale: high", "CFG scale in the parameters must be a number"),
        ("x\nSeed: -1", "Seed in the parameters must be a whole number"),
    ]:
        with pytest.raises(GenlabError, match=message):
            request_from_parameters(bad)
