import gzip
import logging
import struct

import numpy as np
import pytest

import genlab.data as gd
from genlab.data.images import digits_feature_index
from genlab.errors import DataError

TOYS = ["moons", "swissroll", "8gaussians", "checkerboard", "rings"]


@pytest.mark.parametrize("name", TOYS)
def test_toys_are_seeded_2d(name):
    a, b, c = gd.load(name, seed=1), gd.load(name, seed=1), gd.load(name, seed=2)
    assert a.x.shape == (2000, 2)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.allclose(a.x, c.x)
    assert a.source and a.licence and a.description


@pytest.mark.parametrize("name", ["8gaussians", "checkerboard", "rings"])
def test_exact_densities_integrate_to_one(name):
    ds = gd.load(name)
    g = np.linspace(-3.2, 3.2, 801)  # even count: the grid avoids the origin
    xx, yy = np.meshgrid(g, g)
    p = np.exp(ds.log_prob(np.stack([xx.ravel(), yy.ravel()], 1)))
    assert p.sum() * (g[1] - g[0]) ** 2 == pytest.approx(1.0, abs=0.01)


def test_rings_density_matches_a_histogram_of_samples():
    ds = gd.load("rings", n=200_000)
    r = np.linalg.norm(ds.x, axis=1)
    # Radial density from log_prob (times 2 pi r) against the sample histogram of radii.
    edges = np.linspace(0.3, 2.2, 39)
    hist, _ = np.histogram(r, edges, density=True)
    mid = (edges[1:] + edges[:-1]) / 2
    radial = np.exp(ds.log_prob(np.stack([mid, 0 * mid], 1))) * 2 * np.pi * mid
    assert np.abs(hist - radial).max() < 0.15 * radial.max()


def test_tables():
    h = gd.load("heights")
    assert h.x.shape == (934, 1) and 150 < h.x.mean() < 180
    assert set(np.unique(h.y)) == {0, 1}
    assert len(gd.load("heights", sex="female")) + len(gd.load("heights", sex="male")) == 934
    assert gd.load("heights", unit="in").x.mean() == pytest.approx(h.x.mean() / 2.54)
    f = gd.load("faithful")
    assert f.x.shape == (272, 2) and f.columns == ["eruptions", "waiting"]


def test_split_and_kfold_partition_the_data():
    ds = gd.load("faithful")
    train, test = ds.split(0.25, seed=3)
    assert len(train) + len(test) == 272 and len(test) == 68
    np.testing.assert_array_equal(ds.split(0.25, seed=3)[1].x, test.x)
    folds = ds.kfold(5, seed=0)
    tested = np.concatenate([t.x for _, t in folds])
    assert sorted(map(tuple, tested)) == sorted(map(tuple, ds.x))


def test_digits_resized_and_scaled():
    ds = gd.load("digits", size=16, scale="pm1")
    assert ds.x.shape == (1797, 1, 16, 16) and ds.x.dtype == np.float32
    assert ds.x.min() == pytest.approx(-1) and ds.x.max() == pytest.approx(1)
    assert ds.y.shape == (1797,) and set(ds.y) == set(range(10))
    assert gd.load("digits").x.min() == 0.0


def test_digits_parts_are_disjoint_and_stratified():
    every = gd.load("digits")
    models, features = gd.load("digits", part="models"), gd.load("digits", part="features")
    assert len(models) + len(features) == len(every) == 1797 and len(features) == 359
    index = digits_feature_index(every.y)  # the cut, by position: each image in one part
    np.testing.assert_array_equal(features.x, every.x[index])
    np.testing.assert_array_equal(models.x, np.delete(every.x, index, axis=0))
    # each class is cut 80 / 20
    share = np.bincount(features.y) / np.bincount(every.y)
    assert np.all(np.abs(share - 0.2) < 0.01)
    with pytest.raises(DataError, match="part"):
        gd.load("digits", part="test")


def _write_idx(path, array, gz=False):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 28, 28))
    labels = rng.integers(0, 10, 12)
    suffix = ".gz" if gz else ""
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, gz)
    ds = gd.load("mnist", path=tmp_path, split="test")
    assert ds.x.shape == (12, 1, 28, 28)
    np.testing.assert_allclose(ds.x[:, 0], images / 255 * 2 - 1, atol=1e-6)
    np.testing.assert_array_equal(ds.y, labels)
    assert gd.load_spec(f"fashion-mnist:{tmp_path}", split="test").x.shape == (12, 1, 28, 28)


def test_mnist_bad_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        gd.load("mnist", path=tmp_path)
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 28, 28)))
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5))
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-7])
    with pytest.raises(DataError, match="truncated"):
        gd.load("mnist", path=tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(DataError, match="magic"):
        gd.load("mnist", path=tmp_path)


def test_mnist_download_refused_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="offline"):
        gd.load("mnist", path=tmp_path, download=True)


def test_image_folder_skips_bad_files_and_converts_modes(tmp_path, caplog):
    from PIL import Image

    Image.new("RGB", (20, 10), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("L", (8, 8), 128).save(tmp_path / "gray.png")
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # fully transparent: shows as white
    rgba.save(tmp_path / "clear.png")
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    good = (tmp_path / "red.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(good[: len(good) // 2])
    with caplog.at_level(logging.WARNING, logger="genlab.data"):
        ds = gd.load("folder", path=tmp_path, size=16)
    assert ds.x.shape == (4, 3, 16, 16)
    skipped = {p.split("/")[-1] for p in ds.info["skipped"]}
    assert skipped == {"empty.png", "notes.txt", "truncated.png"}
    for name in skipped:
        assert name in caplog.text
    by_name = dict(zip(["clear", "cmyk", "gray", "red"], ds.x, strict=True))  # sorted order
    np.testing.assert_allclose(by_name["clear"], 1.0, atol=1e-6)
    np.testing.assert_allclose(by_name["red"][:, 4, 4], [1, -1, -1], atol=0.02)
    assert by_name["cmyk"][0, 4, 4] > 0.9 and by_name["cmyk"][1, 4, 4] < -0.9
    assert np.ptp(by_name["gray"][:, 4, 4]) < 1e-6
    assert gd.load("folder", path=tmp_path, size=8, channels=1).x.shape == (4, 1, 8, 8)


def test_image_folder_without_images(tmp_path):
    (tmp_path / "a.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="No usable image"):
        gd.load("folder", path=tmp_path)


def test_npz(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((10, 8, 8)), y=np.arange(10))
    ds = gd.load_spec(f"npz:{tmp_path / 'd.npz'}")
    assert ds.x.shape == (10, 1, 8, 8) and ds.y.tolist() == list(range(10))
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError):
        gd.load("npz", path=tmp_path / "obj.npz")


def test_bad_values_are_named():
    x = np.ones((5, 2))
    x[3, 1] = np.nan
    with pytest.raises(DataError, match="row 3"):
        gd.as_table(x, "mine")
    with pytest.raises(DataError, match="columns"):
        gd.as_table(np.ones((4, 3)), dim=2)
    with pytest.raises(DataError, match="Unknown dataset"):
        gd.load("nope")


def test_csv(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,4\n")
    assert gd.load("csv", path=tmp_path / "t.csv", columns="b").x.tolist() == [[2.0], [4.0]]
    (tmp_path / "bad.csv").write_text("a,b\n1,x\n")
    with pytest.raises(DataError, match="non-numeric"):
        gd.load("csv", path=tmp_path / "bad.csv")


def test_hostile_image_folder(tmp_path, monkeypatch):
    """Odd but usable files are used (EXIF-rotated, 16-bit, palette with transparency,
    animated GIF, a non-ASCII name); the rest are skipped with a reason; a symlink loop
    does not hang the walk."""
    from PIL import Image

    side = Image.new("RGB", (20, 10), (255, 0, 0))
    side.paste((0, 0, 255), (10, 0, 20, 10))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    side.save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    deep = np.full((8, 8), 40000, dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep16.png")
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 255, 0] * 256)
    palette.save(tmp_path / "palette.png", transparency=0)  # all transparent: white
    frames = [Image.new("RGB", (8, 8), c) for c in ((0, 255, 0), (255, 0, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    Image.new("RGB", (8, 8), (255, 255, 0)).save(tmp_path / "写真.png")
    Image.new("L", (100, 100), 0).save(tmp_path / "bomb.png")
    (tmp_path / "fake.jpg").write_text("<html>not a jpeg</html>")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 100 x 100 counts as a bomb here
    ds = gd.load("folder", path=tmp_path, size=8, scale="unit")
    reasons = {k.split("/")[-1]: v for k, v in ds.info["skip_reasons"].items()}
    assert set(reasons) == {"bomb.png", "fake.jpg"}
    assert "decompression bomb" in reasons["bomb.png"] and "not an image" in reasons["fake.jpg"]
    by_name = dict(zip(["anim", "deep16", "palette", "rotated", "写真"], ds.x, strict=True))
    np.testing.assert_allclose(by_name["deep16"][:, 4, 4], 40000 / 65535, atol=0.01)
    np.testing.assert_allclose(by_name["palette"], 1.0, atol=1e-6)
    assert by_name["anim"][1, 4, 4] > 0.9 and by_name["anim"][0, 4, 4] < 0.1  # first frame
    rotated = by_name["rotated"]  # upright now: red on top, blue below
    assert rotated[0, 1, 4] > 0.8 and rotated[2, 6, 4] > 0.8
    assert by_name["写真"][0, 4, 4] > 0.9 and by_name["写真"][1, 4, 4] > 0.9


def test_image_folder_crops_the_centre_square_of_a_photo(tmp_path):
    """A 60x20 picture (green | red | blue thirds) keeps its proportions: the centre square
    is the red third, not the three squashed side by side."""
    from PIL import Image

    a = np.zeros((20, 60, 3), np.uint8)
    a[:, :20, 1], a[:, 20:40, 0], a[:, 40:, 2] = 255, 255, 255
    (tmp_path / "imgs").mkdir()
    Image.fromarray(a).save(tmp_path / "imgs" / "wide.png")
    x = gd.load("folder", path=tmp_path / "imgs", size=8, scale="unit").x[0]
    assert x[0].min() > 0.9 and x[1].max() < 0.1 and x[2].max() < 0.1
