"""An analytic detector for the captioned scenes (genlab.data.shapes): which objects an image
shows, with their colour, shape, size and position, read from the pixels.

The scenes' geometry allows it without a network: the background is one grey tone and the
objects are flat colours far from any grey. So
1. the background is the median of the image's border;
2. pixels far from it (in RGB) are foreground, split into connected components (small
   specks dropped);
3. a component's colour is the palette colour nearest to the mean of its core pixels;
4. its mask is redrawn at half contrast between background and that colour, and its shape
   is the shape whose drawn mask, stretched to the same bounding box, overlaps it most (IoU);
5. the fitted drawing's centre gives the position, or with a second object the relation.

Each reading keeps a margin, and a reading outside it is *unreadable*, which a judge counts
as wrong: a colour far from every palette colour (or as near the second as the first), a
blob that no shape's drawing explains well, a single object not near any named position,
two objects whose offset is not clearly along one axis. ``judge`` scores only what a prompt
asks (a prompt with no size word is not scored on size).
``tests/test_scene_detector.py`` checks it against the generator's ground truth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import permutations

import numpy as np
from scipy import ndimage

from ..data.shapes import (
    COLOUR_WORDS,
    COLOURS,
    POSITION_WORDS,
    POSITIONS,
    RADIUS,
    RELATIONS,
    SHAPE_WORDS,
    SHAPES,
    SIZE_WORDS,
    _inside,
)

PALETTE = np.array(list(COLOURS.values()), dtype=float)
NAMES = list(COLOURS)
FOREGROUND = 45.0  # RGB distance from the background that marks a pixel as an object's
MIN_AREA = 0.006  # of the image: specks smaller than a tenth of a small object are noise
# The margins (a reading outside one is unreadable, so wrong):
COLOUR_MARGIN = 40.0  # RGB distance to the nearest palette colour (the closest two are 80 apart)
COLOUR_RATIO = 0.5  # ... and at most half the distance to the second nearest
FIT_MARGIN = 0.15  # squared misfit of the best drawing over the area (generated: <= 0.08)
POSITION_MARGIN = 0.1  # of the image side, from the named position (training jitter: 0.057)
RELATION_MIN = 0.15  # the pair's offset along the relation's axis, of the image side ...
RELATION_RATIO = 2.0  # ... and at least twice the offset across it


@dataclass(frozen=True)
class Detection:
    colour: str | None  # None: unreadable (no palette colour within the margin)
    shape: str | None  # None: unreadable (no shape's drawing fits within the margin)
    size: str  # "small" or "large", by the fitted drawing's radius
    x: float  # centroid in [0, 1], x right
    y: float  # y down
    area: float  # fraction of the image
    radius: float  # of the best-fitting drawing, over the image side
    cx: float = 0.0  # the best-fitting drawing's centre in [0, 1] (a triangle's centroid lies
    cy: float = 0.0  # below its centre: position is read from this)
    colour_distance: float = 0.0  # RGB distance of the object's mean to the nearest colour
    misfit: float = 0.0  # the best drawing's squared misfit over the object's area
    best_shape: str = ""  # the best-fitting shape, readable or not


def _moments() -> dict[str, tuple[float, float, float]]:
    """Each shape's area and centroid (u, v) in its own frame, where radius 1 spans [-1, 1]."""
    grid = (np.arange(600) + 0.5) / 600 * 2.6 - 1.3
    u, v = np.meshgrid(grid, grid)
    cell = (2.6 / 600) ** 2
    out = {}
    for shape in SHAPES:
        m = _inside(shape, u, v)
        out[shape] = (m.sum() * cell, u[m].mean(), v[m].mean())
    return out


MOMENTS = _moments()
# Radius (over the image side) between a small object's and a large one's.
_SIZE_SPLIT = (RADIUS["small"] + RADIUS["large"]) / 2
ATTRIBUTES = ("count", "colour", "shape", "size", "position")


def _coverage(shape: str, cx: float, cy: float, r: float, h: int, w: int, ss: int = 4):
    """The fraction of each pixel the shape covers, drawn as the generator draws it."""
    gy = (np.arange(h * ss) + 0.5) / ss
    gx = (np.arange(w * ss) + 0.5) / ss
    px, py = np.meshgrid(gx, gy)
    m = _inside(shape, (px - cx) / r, (py - cy) / r)
    return m.reshape(h, ss, w, ss).mean((1, 3))


def _shape_of(fraction: np.ndarray) -> tuple[str, float, float, float, float]:
    """The shape whose drawing best explains the observed coverage (least squares), each
    candidate placed by moment matching: its radius from the covered area, its centre from
    the centroid less the shape's own centroid offset. Returns (shape, radius, centre x,
    centre y, misfit), lengths over the image side, the misfit over the covered area."""
    h, w = fraction.shape
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    total = fraction.sum()
    mx, my = (fraction * xs).sum() / total, (fraction * ys).sum() / total
    best, best_err = (SHAPES[0], 0.0, 0.0, 0.0), np.inf
    for shape, (area, u0, v0) in MOMENTS.items():
        r = np.sqrt(total / area)
        cx, cy = mx - u0 * r, my - v0 * r
        drawn = _coverage(shape, cx, cy, r, h, w)
        err = ((drawn - fraction) ** 2).sum()
        if err < best_err:
            best, best_err = (shape, r / max(h, w), cx / w, cy / h), err
    return (*best, float(best_err / total))


def detect(image: np.ndarray, palette: dict[str, tuple] | None = None) -> list[Detection]:
    """The objects of one uint8 RGB image, (H, W, 3) or (3, H, W), largest first; colours
    are named from ``palette`` (default: the shapes data's colours)."""
    names, colours = (NAMES, PALETTE) if palette is None else (
        list(palette), np.array(list(palette.values()), dtype=float))  # fmt: skip
    img = np.asarray(image, dtype=float)
    if img.shape[0] == 3 and img.shape[-1] != 3:
        img = img.transpose(1, 2, 0)
    h, w, _ = img.shape
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    background = np.median(border, axis=0)
    distance = np.linalg.norm(img - background, axis=-1)
    labels, count = ndimage.label(distance > FOREGROUND)
    found = []
    for k in range(1, count + 1):
        component = labels == k
        if component.sum() < MIN_AREA * h * w:
            continue
        core = ndimage.binary_erosion(component) if component.sum() > 12 else component
        mean = img[core if core.any() else component].mean(0)
        distances = np.linalg.norm(colours - mean, axis=1)
        c = int(np.argmin(distances))
        near, second = np.sort(distances)[:2] if len(distances) > 1 else (distances[0], np.inf)
        readable = near <= COLOUR_MARGIN and near <= COLOUR_RATIO * second
        # how much of each pixel the object covers: the pixel's projection on the line from
        # the background to the object's colour (anti-aliased edges are partly covered)
        axis = colours[c] - background
        along = ((img - background) @ axis) / (axis @ axis)
        region = ndimage.binary_dilation(component, iterations=2)
        fraction = np.where(region, np.clip(along, 0.0, 1.0), 0.0)
        mask = fraction >= 0.5
        if not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        shape, radius, cx, cy, misfit = _shape_of(fraction)
        found.append(
            Detection(
                names[c] if readable else None, shape if misfit <= FIT_MARGIN else None,
                "large" if radius > _SIZE_SPLIT else "small",
                (xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h, mask.sum() / (h * w), radius,
                cx, cy, float(near), misfit, shape,
            )
        )  # fmt: skip
    return sorted(found, key=lambda d: -d.area)


def position_of(d: Detection) -> str | None:
    """The named position within ``POSITION_MARGIN`` of a single object's centre, or None
    (unreadable: an object between two positions, or in a corner, is at neither)."""
    name = min(
        POSITIONS, key=lambda p: (POSITIONS[p][0] - d.cx) ** 2 + (POSITIONS[p][1] - d.cy) ** 2
    )
    px, py = POSITIONS[name]
    return name if np.hypot(px - d.cx, py - d.cy) <= POSITION_MARGIN else None


def relation_of(a: Detection, b: Detection) -> str | None:
    """Where ``a`` lies relative to ``b``, along the axis where they differ most; None when
    the offset is not clearly along one axis (shorter than ``RELATION_MIN``, or less than
    ``RELATION_RATIO`` times the offset across it)."""
    dx, dy = a.cx - b.cx, a.cy - b.cy
    main, cross = max(abs(dx), abs(dy)), min(abs(dx), abs(dy))
    if main < RELATION_MIN or main < RELATION_RATIO * cross:
        return None
    if abs(dx) >= abs(dy):
        return "to the left of" if dx < 0 else "to the right of"
    return "above" if dy < 0 else "below"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _which(words: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """word -> the name it stands for ("crimson" -> "red", "dot" -> "circle")."""
    return {w: name for name, phrases in words.items() for p in phrases for w in _words(p)}


_COLOUR_OF, _SHAPE_OF, _SIZE_OF = _which(COLOUR_WORDS), _which(SHAPE_WORDS), _which(SIZE_WORDS)
_SHAPE_OF.pop("round", None)  # "round dot": the noun names the shape
_PLACE_WORDS = {w for p in POSITION_WORDS.values() for w in _words(" ".join(p))} | set(POSITIONS)
_PLACE_WORDS -= {"on", "at", "to", "the", "in", "near", "up", "down"}


def asks(scene: dict, prompt: str | None = None) -> dict:
    """What ``prompt`` asks of ``scene``'s objects: per object whether it names its colour
    and its shape and which size word it uses (None: none), and whether it names a position
    or relation. Without a prompt, everything the scene holds (sizes but "pair")."""
    things = scene["things"]
    if prompt is None:
        return {
            "things": [{"colour": True, "shape": True,
                        "size": t["size"] if t["size"] in SIZE_WORDS else None} for t in things],
            "position": True,
        }  # fmt: skip
    text = prompt.lower()
    sides = [text]
    if len(things) > 1:  # split at the relation: "A above B", "A, above, B"
        at = [(text.find(r), r) for r in RELATIONS if r in text]
        if at:
            i, r = min(at)
            sides = [text[:i], text[i + len(r) :]]
    words = [_words(side) for side in sides]
    out = []
    for k, t in enumerate(things):
        mine = [
            j for j, ws in enumerate(words) if any(_COLOUR_OF.get(w) == t["colour"] for w in ws)
        ]
        mine = mine or [
            j for j, ws in enumerate(words) if any(_SHAPE_OF.get(w) == t["shape"] for w in ws)
        ]
        ws = words[mine[0] if mine else min(k, len(words) - 1)]
        sizes = [_SIZE_OF[w] for w in ws if w in _SIZE_OF]
        out.append({
            "colour": any(w in _COLOUR_OF for w in ws),
            "shape": any(w in _SHAPE_OF for w in ws),
            "size": sizes[0] if sizes else None,
        })  # fmt: skip
    placed = any(r in text for r in RELATIONS) if len(things) > 1 else bool(
        set(_words(text)) & _PLACE_WORDS)  # fmt: skip
    return {"things": out, "position": placed}


def judge(scene: dict, found: list[Detection], prompt: str | None = None) -> dict[str, bool]:
    """Which attributes of ``scene`` (a shapes record's ground truth, or a scene written as
    one) an image with detections ``found`` gets right, scoring only what ``prompt`` asks
    (without a prompt: all the scene holds): the number of objects; the colour, shape and
    size of each object the prompt names them for (objects matched to the detections that
    agree best); the position of a single object or the pair's relation. An unreadable
    reading is wrong. "overall" when every scored attribute is right; an attribute no
    object was asked for is absent from the verdict."""
    things = scene["things"]
    wanted = asks(scene, prompt)
    per = wanted["things"]
    best: tuple[int, tuple] = (-1, ())
    for chosen in permutations(range(len(found)), min(len(things), len(found))):
        agree = sum(
            (found[j].colour == t["colour"]) + (found[j].shape == t["shape"])
            for t, j in zip(things, chosen, strict=False)
        )
        if agree > best[0]:
            best = (agree, chosen)
    matched = [found[j] for j in best[1]]
    complete = len(matched) == len(things)
    out = {"count": len(found) == len(things)}
    for key in ("colour", "shape"):
        if any(a[key] for a in per):
            out[key] = complete and all(
                getattr(d, key) == t[key]
                for d, t, a in zip(matched, things, per, strict=True) if a[key]
            )  # fmt: skip
    if any(a["size"] for a in per):
        out["size"] = complete and all(
            d.size == a["size"] for d, a in zip(matched, per, strict=True) if a["size"]
        )
    if wanted["position"]:
        if scene.get("relation"):
            out["position"] = complete and relation_of(*matched) == scene["relation"]
        else:
            out["position"] = complete and position_of(matched[0]) == scene["position"]
    out["overall"] = all(out.values())
    return out
