"""Captioned scenes for text-to-image: one or two coloured shapes on a plain grey background,
each image with several captions (sentences, paraphrases, and comma-separated tag prompts as
people type them into Stable Diffusion front ends).

Everything is drawn from a seed, so a data set of any size is reproducible. A fixed set of
compositions never appears in training: some colour-shape pairs, and some (shape, relation,
shape) triples. ``split="heldout"`` draws only scenes that contain one of them, which is how
text-to-image models are asked to compose what they have not seen. ``heldout="wide"`` holds
out more (``HELDOUT_SETS``): ten of the 40 colour-shape pairs, eight triples and three
placements of a shape at a position, every colour, shape, relation and position still seen.

The background is a grey tone, so a colour word stays measurable from the pixels, and each
scene keeps its ground truth (``info["scenes"]``) for the adherence detector.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace

import numpy as np

from ..errors import DataError
from .dataset import Dataset

SHAPES = ("circle", "square", "triangle", "star", "heart")
COLOURS = {  # RGB, far apart in hue and from any grey
    "red": (215, 35, 35),
    "orange": (245, 135, 20),
    "yellow": (240, 215, 30),
    "green": (35, 165, 60),
    "blue": (35, 75, 220),
    "purple": (135, 50, 185),
    "pink": (250, 135, 195),
    "white": (250, 250, 250),
}
#: colours the shapes data never draws: words a user can teach the built-in model by
#: fine-tuning (``genlab finetune lora``; benchmarks/lora_teal.py)
NEW_COLOURS = {"teal": (0, 150, 150)}
POSITIONS = {  # centre of a single object, in [0, 1] image coordinates (x right, y down)
    "left": (0.27, 0.5),
    "right": (0.73, 0.5),
    "top": (0.5, 0.27),
    "bottom": (0.5, 0.73),
    "centre": (0.5, 0.5),
}
RELATIONS = {  # first object's offset from the second one's, along one axis
    "above": (0.0, -1.0),
    "below": (0.0, 1.0),
    "to the left of": (-1.0, 0.0),
    "to the right of": (1.0, 0.0),
}
RADIUS = {"small": 0.12, "large": 0.2, "pair": 0.15}  # of the image side

# Never in training; ``split="heldout"`` draws scenes holding at least one of them.
HELDOUT_PAIRS = {("green", "star"), ("pink", "square"), ("yellow", "heart"), ("blue", "triangle")}
HELDOUT_TRIPLES = {
    ("circle", "above", "square"),
    ("triangle", "to the left of", "star"),
    ("heart", "below", "circle"),
}
# The wide set keeps the default one (so a model trained on it has not seen the default's
# compositions either) and adds more of each kind. Pairs: every shape held out in exactly two
# colours and every colour in one or two shapes, so each colour is still drawn as three or
# more shapes and each shape in six colours. Triples (with their inverses: "a above b" is
# "b below a") cover every relation and shape; placements are single objects at a position.
WIDE_PAIRS = HELDOUT_PAIRS | {
    ("red", "circle"),
    ("purple", "circle"),
    ("orange", "triangle"),
    ("white", "star"),
    ("red", "heart"),
    ("purple", "square"),
}
WIDE_TRIPLES = HELDOUT_TRIPLES | {
    ("star", "above", "heart"),
    ("square", "to the right of", "triangle"),
    ("heart", "to the left of", "square"),
    ("circle", "to the right of", "star"),
    ("triangle", "above", "circle"),
}
WIDE_PLACEMENTS = {("star", "bottom"), ("heart", "left"), ("square", "top")}

SHAPE_WORDS = {
    "circle": ("circle", "disc", "round dot", "ball"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle", "pyramid", "wedge"),
    "star": ("star", "five-pointed star", "starburst"),
    "heart": ("heart", "love heart"),
}
COLOUR_WORDS = {
    "red": ("red", "crimson", "scarlet"),
    "orange": ("orange", "tangerine"),
    "yellow": ("yellow", "lemon", "golden"),
    "green": ("green", "emerald"),
    "blue": ("blue", "azure", "cobalt"),
    "purple": ("purple", "violet"),
    "pink": ("pink", "rose"),
    "white": ("white", "snow-white"),
}
SIZE_WORDS = {"small": ("small", "tiny", "little"), "large": ("large", "big", "huge")}
POSITION_WORDS = {
    "left": ("on the left", "at the left", "to the left"),
    "right": ("on the right", "at the right", "to the right"),
    "top": ("at the top", "near the top", "up top"),
    "bottom": ("at the bottom", "near the bottom", "down below"),
    "centre": ("in the centre", "in the middle", "at the center"),
}
INVERSE = {
    "above": "below",
    "below": "above",
    "to the left of": "to the right of",
    "to the right of": "to the left of",
}


@dataclass(frozen=True)
class HeldOut:
    """Compositions kept out of training: colour-shape ``pairs``, (shape, relation, shape)
    ``triples`` (each also held out read from the other object, by ``INVERSE``) and
    (shape, position) ``placements`` of a single object."""

    pairs: frozenset[tuple[str, str]]
    triples: frozenset[tuple[str, str, str]]
    placements: frozenset[tuple[str, str]] = frozenset()


HELDOUT_SETS = {
    "default": HeldOut(frozenset(HELDOUT_PAIRS), frozenset(HELDOUT_TRIPLES)),
    "wide": HeldOut(frozenset(WIDE_PAIRS), frozenset(WIDE_TRIPLES), frozenset(WIDE_PLACEMENTS)),
}


@dataclass(frozen=True)
class Thing:
    """One object of a scene: what it is and where its centre lies (x right, y down)."""

    shape: str
    colour: str
    size: str  # "small", "large", or "pair" (the size of both objects of a relation)
    x: float
    y: float


@dataclass(frozen=True)
class Scene:
    things: tuple[Thing, ...]
    background: int  # grey level 0-255
    position: str | None = None  # single object: where it is
    relation: str | None = None  # two objects: things[0] RELATION things[1]

    def compositions(self) -> tuple[set, set]:
        """(colour-shape pairs, shape-relation-shape triples) the scene shows."""
        pairs = {(t.colour, t.shape) for t in self.things}
        triples = set()
        if self.relation is not None:
            a, b = self.things
            triples = {
                (a.shape, self.relation, b.shape),
                (b.shape, INVERSE[self.relation], a.shape),
            }
        return pairs, triples

    def placements(self) -> set:
        """(shape, position) of a single object; none for a pair."""
        return {(self.things[0].shape, self.position)} if self.position is not None else set()

    def is_heldout(self, heldout: str = "default") -> bool:
        """Whether the scene shows a composition of the held-out set ``heldout``."""
        held = HELDOUT_SETS[heldout]
        pairs, triples = self.compositions()
        return bool(
            pairs & held.pairs or triples & held.triples or self.placements() & held.placements
        )


# --- drawing -------------------------------------------------------------------------------
def _polygon(px: np.ndarray, py: np.ndarray, vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
    """Even-odd test: which points (px, py) lie inside the polygon (vx, vy)."""
    inside = np.zeros(px.shape, dtype=bool)
    for i in range(len(vx)):
        x1, y1, x2, y2 = vx[i - 1], vy[i - 1], vx[i], vy[i]
        crosses = (y1 > py) != (y2 > py)
        at = x1 + (py - y1) * (x2 - x1) / np.where(y2 == y1, 1e-12, y2 - y1)
        inside ^= crosses & (px < at)
    return inside


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The shape's mask in its own frame: u right, v down, the shape spanning about [-1, 1]."""
    if shape == "circle":
        return u**2 + v**2 <= 1.0
    if shape == "square":
        return np.maximum(abs(u), abs(v)) <= 0.85
    if shape == "triangle":  # pointing up
        return _polygon(u, v, np.array([0.0, 1.0, -1.0]), np.array([-1.0, 0.8, 0.8]))
    if shape == "star":
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 1.05, 0.45)
        return _polygon(u, v, radii * np.cos(angles), radii * np.sin(angles) + 0.08)
    if shape == "heart":  # (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, y up, scaled to fit
        x, y = u * 1.2, -v * 1.2 + 0.15
        return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0
    raise ValueError(f"unknown shape {shape!r}")


def draw(scene: Scene, size: int = 32, supersample: int = 4) -> np.ndarray:
    """The scene as a (3, size, size) uint8 image, anti-aliased by supersampling."""
    n = size * supersample
    grid = (np.arange(n) + 0.5) / n
    px, py = np.meshgrid(grid, grid)
    image = np.full((3, n, n), float(scene.background))
    for thing in scene.things:
        r = RADIUS[thing.size]
        mask = _inside(thing.shape, (px - thing.x) / r, (py - thing.y) / r)
        image[:, mask] = np.array(rgb_of(thing.colour), dtype=float)[:, None]
    pooled = image.reshape(3, size, supersample, size, supersample).mean((2, 4))
    return np.round(pooled).astype(np.uint8)


# --- drawing scenes at random --------------------------------------------------------------
def random_scene(
    rng: np.random.Generator, split: str = "train", colours: str = "palette",
    heldout: str = "default",
) -> Scene:  # fmt: skip
    """A scene of ``split``: "train" never shows a composition of the held-out set
    ``heldout`` ("default" or "wide", ``HELDOUT_SETS``), "heldout" always shows one, "any"
    either. ``colours="any"`` then paints each object a random RGB colour (named by its hex
    code), so no colour-shape pair is special."""
    while True:
        scene = _any_scene(rng)
        if colours == "any":
            painted = [
                replace(t, colour=_random_colour(rng, scene.background)) for t in scene.things
            ]
            scene = replace(scene, things=tuple(painted))
        held = scene.is_heldout(heldout)
        if split == "any" or held == (split == "heldout"):
            return scene


def _random_colour(rng: np.random.Generator, background: int) -> str:
    """A uniform RGB colour at least 60 away from the background grey, as "#rrggbb"."""
    while True:
        rgb = rng.integers(0, 256, 3)
        if np.linalg.norm(rgb - background) >= 60:
            return "#" + "".join(f"{int(c):02x}" for c in rgb)


def rgb_of(colour: str) -> tuple[int, int, int]:
    """A colour's RGB: a palette name, a new colour's name, or "#rrggbb"."""
    if colour.startswith("#"):
        return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return COLOURS.get(colour) or NEW_COLOURS[colour]


def _any_scene(rng: np.random.Generator) -> Scene:
    background = int(rng.integers(96, 161))
    jitter = lambda: rng.uniform(-0.04, 0.04)  # noqa: E731
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    if rng.random() < 0.5:
        position = pick(tuple(POSITIONS))
        cx, cy = POSITIONS[position]
        thing = Thing(pick(SHAPES), pick(tuple(COLOURS)), pick(("small", "large")),
                      cx + jitter(), cy + jitter())  # fmt: skip
        return Scene((thing,), background, position=position)
    relation = pick(tuple(RELATIONS))
    dx, dy = RELATIONS[relation]
    # the pair straddles the centre along the relation's axis, at a random spot across it
    cross = 0.5 + rng.uniform(-0.2, 0.2)
    gap = 0.23 + rng.uniform(0.0, 0.03)
    centre = (0.5 + jitter(), cross) if dy == 0 else (cross, 0.5 + jitter())
    first = (centre[0] + dx * gap, centre[1] + dy * gap)
    second = (centre[0] - dx * gap, centre[1] - dy * gap)
    colours = rng.choice(len(COLOURS), 2, replace=False)
    names = tuple(COLOURS)
    a = Thing(pick(SHAPES), names[colours[0]], "pair", *first)
    b = Thing(pick(SHAPES), names[colours[1]], "pair", *second)
    return Scene((a, b), background, relation=relation)


# --- captions ------------------------------------------------------------------------------
def captions(scene: Scene, rng: np.random.Generator, k: int = 4) -> list[str]:
    """``k`` different captions of the scene: a plain sentence, paraphrases with synonyms,
    tag prompts."""
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731

    def noun(t: Thing, plain: bool) -> str:
        if plain:
            return f"{t.colour} {t.shape}"
        return f"{pick(COLOUR_WORDS.get(t.colour, (t.colour,)))} {pick(SHAPE_WORDS[t.shape])}"

    if scene.relation is None:
        (t,) = scene.things
        where = scene.position

        def sentence(plain: bool) -> str:
            size = t.size if plain else pick(SIZE_WORDS[t.size])
            place = POSITION_WORDS[where][0] if plain else pick(POSITION_WORDS[where])
            return f"{_a(size)} {noun(t, plain)} {place}"

        styles = [
            lambda: sentence(True),
            lambda: sentence(False),
            lambda: f"{t.colour} {t.shape}, {where}, {t.size}",
            lambda: f"{noun(t, False)}, {pick(POSITION_WORDS[where])}",
        ]
    else:
        a, b = scene.things
        rel, inv = scene.relation, INVERSE[scene.relation]
        styles = [
            lambda: f"{_a(noun(a, True))} {rel} {_a(noun(b, True))}",
            lambda: f"{_a(noun(a, False))} {rel} {_a(noun(b, False))}",
            lambda: f"{_a(noun(b, False))} {inv} {_a(noun(a, False))}",
            lambda: f"{noun(a, True)}, {rel}, {noun(b, True)}",
        ]
    out: list[str] = []
    for attempt in range(8 * k):  # distinct captions; styles first, then extra paraphrases
        text = styles[attempt % len(styles)]()
        if text not in out:
            out.append(text)
        if len(out) == k:
            break
    return out


def _a(phrase: str) -> str:
    """The phrase with its indefinite article."""
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def shapes(
    n: int = 4000,
    size: int = 32,
    seed: int = 0,
    split: str = "train",
    captions_per_image: int = 4,
    scale: str = "pm1",
    colours: str = "palette",
    heldout: str = "default",
) -> Dataset:
    """``n`` captioned scenes of ``split`` ("train", "heldout" or "any"), ``size`` x ``size``
    RGB (32 or 64; any multiple of 8), pixels in [-1, 1] (``scale="pm1"``) or [0, 1]
    ("unit"). Each sample's record holds its ``captions`` and its ``scene`` (ground
    truth: shape, colour, size and centre of each object, the position or relation).
    ``colours="any"`` paints every object a random RGB colour instead of the palette's
    (captions name it by hex code): data for an autoencoder meant to encode any scene,
    which then sees no colour-shape pair more than another, the held-out ones included.
    ``heldout`` names the compositions kept out of "train" and asked by "heldout":
    "default" (4 pairs, 3 triples) or "wide" (10 pairs, 8 triples, 3 placements)."""
    if split not in ("train", "heldout", "any"):
        raise DataError(f"split must be 'train', 'heldout' or 'any', got '{split}'.")
    if n < 1 or size < 8 or size % 8:
        raise DataError("shapes needs n >= 1 and a size that is a multiple of 8 (32, 64 ...).")
    if scale not in ("pm1", "unit"):
        raise DataError(f"scale must be 'pm1' or 'unit', got '{scale}'.")
    if colours not in ("palette", "any"):
        raise DataError(f"colours must be 'palette' or 'any', got '{colours}'.")
    if heldout not in HELDOUT_SETS:
        raise DataError(f"heldout must be {' or '.join(map(repr, HELDOUT_SETS))}, got '{heldout}'.")
    rng = np.random.default_rng(seed)
    scenes = [random_scene(rng, split, colours, heldout) for _ in range(n)]
    x = np.stack([draw(s, size) for s in scenes]).astype(np.float32) / 255.0
    texts = [captions(s, rng, captions_per_image) for s in scenes]
    return Dataset(
        "shapes",
        x * 2 - 1 if scale == "pm1" else x,
        description=f"captioned scenes of coloured shapes, {size}x{size} RGB ({split} split)",
        source="drawn by genlab from a seed",
        licence="MIT (generated)",
        info={"split": split, "colours": colours, "heldout": heldout},
        records=[{"captions": c, "scene": asdict(s)} for c, s in zip(texts, scenes, strict=True)],
    )


# --- the vocabulary a model trained on these captions can honour ---------------------------
#: words of no content that the captions' sentences use (articles and prepositions)
GLUE = {"a", "an", "the", "and", "of", "on", "in", "at", "to", "near", "up", "down"}
#: counts a prompt may give: the scenes hold one object or two
COUNT_WORDS = {"one": 1, "single": 1, "two": 2, "pair": 2, "three": 3, "four": 4, "five": 5,
               "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "many": 3,
               "several": 3, "some": 3, "few": 3, "multiple": 3, "dozen": 12}  # fmt: skip


def _phrases() -> set[str]:
    out = set(SHAPES) | set(COLOURS) | set(SIZE_WORDS) | set(POSITIONS) | set(RELATIONS)
    for table in (SHAPE_WORDS, COLOUR_WORDS, SIZE_WORDS, POSITION_WORDS):
        out |= {p for options in table.values() for p in options}
    return out | {"center", "middle"}


VOCABULARY = {w for phrase in _phrases() for w in phrase.split()} | GLUE
#: every way a caption names a shape (multi-word names first, so "love heart" is one object)
_SHAPE_NAMES = sorted((p for v in SHAPE_WORDS.values() for p in v), key=len, reverse=True)


def _words(prompt: str) -> list[str]:
    """The prompt's words, lower case, without prompt-emphasis syntax ("(red:1.3)",
    "[star]") and punctuation: "Red, (circle:1.2)!" -> ["red", "circle"]."""
    text = re.sub(r":\s*-?[0-9.]+\s*\)", ")", prompt.lower())  # emphasis weights
    return re.findall(r"#[0-9a-f]{3,6}\b|[a-z0-9]+(?:-[a-z0-9]+)*", text)


def unknown_words(prompt: str) -> list[str]:
    """Words of ``prompt`` that no caption of the shapes data uses, in order, each once:
    ``unknown_words("a teal car on the left") == ["teal", "car"]``. Counts ("three",
    "2") and plurals ("circles") are unknown too: a caption names one or two objects in
    the singular."""
    out: list[str] = []
    for word in _words(prompt):
        if word not in VOCABULARY and word not in out:
            out.append(word)
    return out


def object_count(prompt: str) -> int:
    """How many objects ``prompt`` names: its shape words (and their plurals), or the
    largest count word or number it gives."""
    text = " ".join(_words(prompt))
    named = 0
    for name in _SHAPE_NAMES:  # longest first: "five-pointed star" is one star
        found = re.findall(rf"\b{re.escape(name)}s?\b", text)
        named += len(found)
        text = re.sub(rf"\b{re.escape(name)}s?\b", " ", text)
    counts = [COUNT_WORDS[w] for w in _words(prompt) if w in COUNT_WORDS]
    counts += [int(w) for w in _words(prompt) if w.isdigit()]
    return max([named, *counts])


def vocabulary_notice(prompt: str, model: str = "The built-in model") -> str | None:
    """One line naming what ``prompt`` asks for that a model trained on these captions
    cannot draw (words outside their vocabulary, more than two objects), or None when it
    asks for nothing of the kind. Such a model still draws: it reads the words it knows
    and ignores the rest, so the line says what will be missing, not an error."""
    unknown = unknown_words(prompt)
    objects = object_count(prompt)
    parts = []
    if unknown:
        quoted = [f'"{w}"' for w in unknown]
        quoted = ", ".join(quoted[:-1]) + " and " + quoted[-1] if len(quoted) > 1 else quoted[0]
        parts.append(f"the word{'s' if len(unknown) > 1 else ''} {quoted}")
    if objects > 2:
        parts.append(f"{objects} objects")
    if not parts:
        return None
    return (
        f"{model} cannot draw {' or '.join(parts)}: it knows one or two objects (named in the "
        f"singular: {', '.join(SHAPES)}) in {len(COLOURS)} colours ({', '.join(COLOURS)}), "
        "small or large, placed left, right, top, bottom or centre, or one above, below, to "
        "the left of or to the right of the other."
    )
