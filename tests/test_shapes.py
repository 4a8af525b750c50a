"""Captioned scenes: reproducible, held-out compositions kept out of training, captions in
every style, colours measurable from the pixels."""

import hashlib
import json
import re

import numpy as np
import pytest

import genlab.data as gd
from genlab.data import shapes as S
from genlab.errors import DataError


def test_same_seed_same_scenes_and_captions():
    a = gd.load("shapes", n=40, seed=3)
    b = gd.load("shapes", n=40, seed=3)
    assert a.x.shape == (40, 3, 32, 32) and a.x.dtype == np.float32
    assert -1.0 <= a.x.min() and a.x.max() <= 1.0
    np.testing.assert_array_equal(a.x, b.x)
    assert a.records == b.records
    assert not np.array_equal(a.x, gd.load("shapes", n=40, seed=4).x)
    assert gd.load("shapes", n=2, size=64).x.shape == (2, 3, 64, 64)


def test_training_never_shows_a_heldout_composition_and_heldout_always_does():
    train = gd.load("shapes", n=600, seed=0)
    held = gd.load("shapes", n=200, seed=0, split="heldout")
    for record in train.records:
        scene = _scene(record)
        pairs, triples = scene.compositions()
        assert not pairs & S.HELDOUT_PAIRS and not triples & S.HELDOUT_TRIPLES
    assert all(_scene(r).is_heldout() for r in held.records)
    # every colour and every shape is still seen in training, just not in those pairs
    seen = {(t["colour"], t["shape"]) for r in train.records for t in r["scene"]["things"]}
    assert {c for c, _ in seen} == set(S.COLOURS) and {s for _, s in seen} == set(S.SHAPES)
    relations = {r["scene"]["relation"] for r in train.records} - {None}
    assert relations == set(S.RELATIONS)


def test_the_wide_split_holds_out_what_it_says_and_training_still_shows_every_word():
    """heldout="wide": the default set and more; "train" shows none of it, "heldout" one of
    it in every scene (each composition somewhere), and training still draws every colour,
    shape, relation and position, each colour as three shapes or more."""
    default, wide = S.HELDOUT_SETS["default"], S.HELDOUT_SETS["wide"]
    assert default.pairs == S.HELDOUT_PAIRS and default.triples == S.HELDOUT_TRIPLES
    assert default.placements == frozenset()  # the shipped model's split, unchanged
    assert default.pairs < wide.pairs and default.triples < wide.triples
    assert (len(wide.pairs), len(wide.triples), len(wide.placements)) == (10, 8, 3)
    words = set(S.COLOURS), set(S.SHAPES), set(S.RELATIONS), set(S.POSITIONS)
    assert all(c in words[0] and s in words[1] for c, s in wide.pairs)
    assert all(a in words[1] and r in words[2] and b in words[1] for a, r, b in wide.triples)
    assert all(s in words[1] and p in words[3] for s, p in wide.placements)

    train = gd.load("shapes", n=600, seed=0, heldout="wide")
    held = gd.load("shapes", n=300, seed=0, split="heldout", heldout="wide")
    assert train.info["heldout"] == "wide"
    for record in train.records:
        scene = _scene(record)
        pairs, triples = scene.compositions()
        assert not pairs & wide.pairs and not triples & wide.triples
        assert not scene.placements() & wide.placements
        assert not scene.is_heldout("wide") and not scene.is_heldout()
    assert all(_scene(r).is_heldout("wide") for r in held.records)
    shown = [_scene(r) for r in held.records]
    assert set().union(*(s.compositions()[0] for s in shown)) >= wide.pairs
    assert set().union(*(s.compositions()[1] for s in shown)) >= wide.triples
    assert set().union(*(s.placements() for s in shown)) >= wide.placements

    seen = {(t["colour"], t["shape"]) for r in train.records for t in r["scene"]["things"]}
    assert {c for c, _ in seen} == words[0] and {s for _, s in seen} == words[1]
    assert min(sum(c == colour for c, _ in seen) for colour in S.COLOURS) >= 3
    assert min(sum(s == shape for _, s in seen) for shape in S.SHAPES) >= 6
    scenes = [r["scene"] for r in train.records]
    assert {s["relation"] for s in scenes} - {None} == words[2]
    assert {s["position"] for s in scenes} - {None} == words[3]
    # the default split draws what it drew before the option existed: the scenes and
    # captions (the rng's draws, no pixel arithmetic) of commit 3c96d1d, which had no option
    for split, digest in (
        ("train", "3859d5776c9177e3effd57c804a6fa87af90db355e97d79c06b262b8555b56fe"),
        ("heldout", "fe0bd681450c973c21fab9a9f337a453a1a3128abe2f27306c6d139179b4f4ad"),
    ):
        records = gd.load("shapes", n=100, seed=0, split=split, heldout="default").records
        assert hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest() == digest


def test_captions_come_in_every_style_and_name_what_is_drawn():
    data = gd.load("shapes", n=300, seed=1)
    texts = [c for r in data.records for c in r["captions"]]
    assert all(len(r["captions"]) == 4 for r in data.records)
    assert any(", " in t and not t.startswith(("a ", "an ")) for t in texts)  # tag prompts
    assert not any(re.search(r"\ba [aeiou]", t) for t in texts)  # "an orange"
    assert any(w in t for t in texts for w in ("crimson", "disc", "emerald", "azure"))
    for record in data.records[:50]:
        scene = record["scene"]
        plain = record["captions"][0]
        for thing in scene["things"]:
            assert f"{thing['colour']} {thing['shape']}" in plain
        if scene["relation"]:
            assert scene["relation"] in plain
        else:
            assert S.POSITION_WORDS[scene["position"]][0] in plain


def test_the_colour_is_measurable_from_the_pixels():
    """The pixel at an object's centre has its colour; the background is grey."""
    data = gd.load("shapes", n=100, seed=2, scale="unit")
    for image, record in zip(data.x, data.records, strict=True):
        scene = record["scene"]
        corner = image[:, 0, 0] * 255
        assert np.ptp(corner) < 1 and 96 <= corner[0] <= 160  # grey, untouched
        for t in scene["things"]:
            px = image[:, int(t["y"] * 32), int(t["x"] * 32)] * 255
            np.testing.assert_allclose(px, S.COLOURS[t["colour"]], atol=2)


def test_random_colours_paint_the_same_layouts_in_any_rgb():
    """colours="any" (the autoencoder's data): scenes like the palette's, each object in
    its own random colour, drawn at its centre and clear of the background."""
    data = gd.load("shapes", n=200, seed=2, scale="unit", colours="any")
    colours = {t["colour"] for r in data.records for t in r["scene"]["things"]}
    assert len(colours) > 250 and not colours & set(S.COLOURS)  # nearly all distinct
    for image, record in zip(data.x, data.records, strict=True):
        scene = record["scene"]
        assert not _scene(record).compositions()[1] & S.HELDOUT_TRIPLES
        for t in scene["things"]:
            rgb = np.array(S.rgb_of(t["colour"]))
            assert np.linalg.norm(rgb - scene["background"]) >= 60
            px = image[:, int(t["y"] * 32), int(t["x"] * 32)] * 255
            np.testing.assert_allclose(px, rgb, atol=2)
        assert t["colour"] in record["captions"][0]


def test_split_keeps_captions_with_their_images():
    data = gd.load("shapes", n=50, seed=5)
    train, test = data.split(0.2, seed=0)
    assert len(train.records) == len(train.x) == 40 and len(test.records) == 10
    first = np.flatnonzero((data.x == test.x[0]).all(axis=(1, 2, 3)))[0]
    assert test.records[0] == data.records[first]


@pytest.mark.parametrize(
    "options,message",
    [
        ({"split": "test"}, "split must be"),
        ({"size": 30}, "multiple of 8"),
        ({"n": 0}, "n >= 1"),
        ({"scale": "byte"}, "scale must be"),
        ({"colours": "rainbow"}, "colours must be"),
        ({"heldout": "narrow"}, "heldout must be 'default' or 'wide'"),
    ],
)
def test_bad_options_are_one_sentence(options, message):
    with pytest.raises(DataError, match=message):
        gd.load("shapes", **options)


def _scene(record):
    s = record["scene"]
    return S.Scene(tuple(S.Thing(**t) for t in s["things"]), s["background"], s["position"],
                   s["relation"])  # fmt: skip


# --- the vocabulary notice -------------------------------------------------------------------
@pytest.mark.parametrize(
    "prompt, words, objects",
    [
        ("a blue car", ["car"], 0),
        ("three red circles", ["three", "circles"], 3),
        ("teal", ["teal"], 0),
        ("a red circle above a blue square and a green star", [], 3),
        ("2 hearts", ["2", "hearts"], 2),
        ("a #00ff00 circle", ["#00ff00"], 1),
    ],
)
def test_what_the_model_cannot_draw_is_named_in_one_line(prompt, words, objects):
    assert S.unknown_words(prompt) == words
    assert S.object_count(prompt) == objects
    notice = S.vocabulary_notice(prompt)
    assert notice is not None and "\n" not in notice and notice.endswith(".")
    for word in words:
        assert f'"{word}"' in notice
    assert (f"{objects} objects" in notice) == (objects > 2)
    assert "circle, square, triangle, star, heart" in notice  # and what it can draw


@pytest.mark.parametrize(
    "prompt",
    [
        "a small red circle on the left",
        "(green star:1.2), top, small",  # prompt emphasis is not a word
        "a five-pointed star to the left of a love heart",  # synonyms and multi-word names
        "A Snow-White box at the center!",
        "an emerald disc below a crimson block",
        "",  # an unconditional sample
    ],
)
def test_every_caption_word_passes(prompt):
    assert S.unknown_words(prompt) == [] and S.vocabulary_notice(prompt) is None


def test_the_training_captions_themselves_raise_no_notice():
    ds = gd.load("shapes", n=200, seed=3)
    for record in ds.records:
        for caption in record["captions"]:
            assert S.vocabulary_notice(caption) is None, caption
