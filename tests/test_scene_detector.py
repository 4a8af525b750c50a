"""The analytic scene detector against the scene generator's ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from genlab.data import load
from genlab.data.shapes import Scene, Thing, draw
from genlab.evaluation.scene_detector import detect, judge, relation_of


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_detector_reads_real_scenes(split):
    data = load("shapes", n=150, seed=11, split=split, scale="unit")
    images = (data.x * 255).round().astype(np.uint8)
    scores = [judge(r["scene"], detect(x)) for x, r in zip(images, data.records, strict=True)]
    overall = np.mean([s["overall"] for s in scores])
    assert overall >= 0.98, overall


def test_detector_notices_wrong_images():
    scene = {"things": [{"shape": "star", "colour": "red", "size": "small"}], "position": "left"}
    drawn = draw(Scene((Thing("circle", "blue", "large", 0.73, 0.5),), 128, position="right"))
    verdict = judge(scene, detect(drawn))
    assert not verdict["colour"] and not verdict["shape"] and not verdict["position"]
    assert not verdict["size"] and not verdict["overall"] and verdict["count"]
    empty = np.full((3, 32, 32), 128, dtype=np.uint8)
    assert detect(empty) == [] and not judge(scene, [])["count"]


def test_relation_by_dominant_axis():
    above = Thing("heart", "pink", "pair", 0.5, 0.27)
    things = (above, Thing("square", "green", "pair", 0.52, 0.73))
    a, b = sorted(detect(draw(Scene(things, 120, relation="above"))), key=lambda d: d.y)
    assert relation_of(a, b) == "above" and relation_of(b, a) == "below"
