"""The example dataset shipped for the web page's Train tab: a few small captioned images,
exactly what scripts/make_example_dataset.py draws with genlab's shapes renderer, and
packaged with genlab."""

import fnmatch
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genlab.data.examples import TEAL, TEAL_IMAGES, write_teal
from genlab.data.images import image_files

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_example_is_what_its_script_draws(tmp_path):
    fresh = write_teal(tmp_path / "teal")
    shipped = sorted(p for p in TEAL.iterdir() if p.suffix == ".png")
    assert [p.name for p in shipped] == [p.name for p in fresh] and len(shipped) == TEAL_IMAGES
    for ours, again in zip(shipped, fresh, strict=True):
        with Image.open(ours) as a, Image.open(again) as b:
            assert a.size == (32, 32) and np.array_equal(np.asarray(a), np.asarray(b))
        caption = ours.with_suffix(".txt").read_text()
        assert caption == again.with_suffix(".txt").read_text() and "teal" in caption
    # small: a few KB in all
    assert sum(p.stat().st_size for p in TEAL.iterdir()) < 8_000
    # every image has its caption, as the Train tab reads a folder
    assert len([f for f in image_files(TEAL) if f.suffix == ".png"]) == TEAL_IMAGES


def test_the_example_is_package_data():
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["genlab"]
    package = ROOT / "src" / "genlab"
    for file in TEAL.iterdir():
        name = file.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(name, g) and name.count("/") == g.count("/") for g in globs)
