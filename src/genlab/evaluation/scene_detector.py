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
5. its centre (centroid) gives the position, or with a second object the relation.
``tests/test_scene_detector.py`` checks it against the generator's ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np
from scipy import ndimage

from ..data.shapes import COLOURS, POSITIONS, RADIUS, SHAPES, _inside

PALETTE = np.array(list(COLOURS.values()), dtype=float)
NAMES = list(COLOURS)
FOREGROUND = 45.0  # RGB distance from the background that marks a pixel as an object's
MIN_AREA = 0.006  # of the image: specks smaller than a tenth of a small object are noise


@dataclass(frozen=True)
class Detection:
    colour: str
    shape: str
    size: str  # "small" or "large", by area
    x: float  # centroid in [0, 1], x right
    y: float  # y down
    area: float  # fraction of the image
    radius: float  # of the best-fitting drawing, over the image side


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


def _shape_of(fraction: np.ndarray) -> tuple[str, float]:
    """The shape whose drawing best explains the observed coverage (least squares), each
    candidate placed by moment matching: its radius from the covered area, its centre from
    the centroid less the shape's own centroid offset."""
    h, w = fraction.shape
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    total = fraction.sum()
    mx, my = (fraction * xs).sum() / total, (fraction * ys).sum() / total
    best, best_err = (SHAPES[0], 0.0), np.inf
    for shape, (area, u0, v0) in MOMENTS.items():
        r = np.sqrt(total / area)
        drawn = _coverage(shape, mx - u0 * r, my - v0 * r, r, h, w)
        err = ((drawn - fraction) ** 2).sum()
        if err < best_err:
            best, best_err = (shape, r / max(h, w)), err
    return best


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
        c = int(np.argmin(np.linalg.norm(colours - mean, axis=1)))
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
        shape, radius = _shape_of(fraction)
        found.append(
            Detection(
                names[c], shape, "large" if radius > _SIZE_SPLIT else "small",
                (xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h, mask.sum() / (h * w), radius,
            )
        )  # fmt: skip
    return sorted(found, key=lambda d: -d.area)


def position_of(d: Detection) -> str:
    """The named position nearest to a single object's centre."""
    return min(POSITIONS, key=lambda p: (POSITIONS[p][0] - d.x) ** 2 + (POSITIONS[p][1] - d.y) ** 2)


def relation_of(a: Detection, b: Detection) -> str:
    """Where ``a`` lies relative to ``b``, along the axis where they differ most."""
    dx, dy = a.x - b.x, a.y - b.y
    if abs(dx) >= abs(dy):
        return "to the left of" if dx < 0 else "to the right of"
    return "above" if dy < 0 else "below"


def judge(scene: dict, found: list[Detection]) -> dict[str, bool]:
    """Which attributes of ``scene`` (a shapes record's ground truth, or a scene written as
    one) an image with detections ``found`` gets right: the number of objects, the colour
    and shape of each (matched to the detections that agree best), the size of a single
    object, and its position or the pair's relation; "overall" when all are right."""
    things = scene["things"]
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
    out = {
        "count": len(found) == len(things),
        "colour": complete
        and all(d.colour == t["colour"] for d, t in zip(matched, things, strict=True)),
        "shape": complete
        and all(d.shape == t["shape"] for d, t in zip(matched, things, strict=True)),
    }
    if scene.get("relation"):
        out["position"] = complete and relation_of(*matched) == scene["relation"]
    else:
        out["size"] = complete and matched[0].size == things[0]["size"]
        out["position"] = complete and position_of(matched[0]) == scene["position"]
    out["overall"] = all(out.values())
    return out
