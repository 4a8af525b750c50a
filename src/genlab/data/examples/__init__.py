"""Small captioned image folders shipped with genlab, to try training on without data of
one's own. ``teal/``: scenes of the shapes renderer in a colour its data never draws
(``shapes.NEW_COLOURS``), each ``NAME.png`` with its caption in ``NAME.txt``: what the web
page's Train tab offers as its example (a LoRA that teaches the built-in model "teal").
``python scripts/make_example_dataset.py`` rewrites the folder from ``write_teal``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

#: the shipped folder of teal scenes and their captions
TEAL = Path(__file__).resolve().parent / "teal"
#: how many images it holds and the seed that drew them (the script's defaults)
TEAL_IMAGES = 12
TEAL_SEED = 2026


def teal_scenes(n: int = TEAL_IMAGES, seed: int = TEAL_SEED) -> list[tuple]:
    """``n`` single-object scenes of the shapes data recoloured teal, with one caption each
    (a plain sentence or a paraphrase, as a user's captions would vary)."""
    from ..shapes import _any_scene, captions

    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        scene = _any_scene(rng)
        if scene.relation is not None:  # one object a scene: the colour is unambiguous
            continue
        things = tuple(dataclasses.replace(t, colour="teal") for t in scene.things)
        scene = dataclasses.replace(scene, things=things)
        texts = captions(scene, rng, 4)
        out.append((scene, texts[len(out) % len(texts)]))
    return out


def write_teal(folder: Path, n: int = TEAL_IMAGES, seed: int = TEAL_SEED) -> list[Path]:
    """Write the teal scenes as 32x32 PNGs with their captions into ``folder``; the images."""
    from PIL import Image

    from ..shapes import draw

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, (scene, caption) in enumerate(teal_scenes(n, seed)):
        image = folder / f"teal-{i:02d}.png"
        Image.fromarray(draw(scene).transpose(1, 2, 0)).save(image, optimize=True)
        (folder / f"teal-{i:02d}.txt").write_text(caption + "\n")
        written.append(image)
    return written
