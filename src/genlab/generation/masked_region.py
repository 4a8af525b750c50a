"""Inpainting "only masked" (stable-diffusion-webui's ``inpaint_full_res``): the region around
the mask is cut out, drawn at the request's full width x height, scaled back and pasted into
the original through the (blurred) mask. A small masked area then gets every pixel the model
draws, and the picture around it may be any size, larger than the model draws."""

from __future__ import annotations

from typing import Any


def crop_box(alpha: Any, padding: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the pixels ``alpha`` (a PIL "L" mask) touches, grown by
    ``padding`` on every side and then to the aspect ratio of ``size`` (the width x height
    it is drawn at), within the picture, as webui's ``get_crop_region`` and
    ``expand_crop_region`` find it. None of its pixels: the whole picture."""
    w, h = alpha.size
    box = alpha.point(lambda a: 255 if a > 0 else 0).getbbox()
    if box is None:
        return 0, 0, w, h
    x1, y1, x2, y2 = box
    x1, y1 = max(0, x1 - padding), max(0, y1 - padding)
    x2, y2 = min(w, x2 + padding), min(h, y2 + padding)
    ratio = size[0] / size[1]
    if (x2 - x1) / (y2 - y1) > ratio:  # too wide for the drawing: taller
        y1, y2 = _grown(y1, y2, int((x2 - x1) / ratio), h)
    else:
        x1, x2 = _grown(x1, x2, int((y2 - y1) * ratio), w)
    return x1, y1, x2, y2


def _grown(lo: int, hi: int, length: int, limit: int) -> tuple[int, int]:
    """The interval [lo, hi) grown about its middle to ``length``, shifted to lie within
    [0, limit) and cut to it where it cannot."""
    extra = max(0, length - (hi - lo))
    lo, hi = lo - extra // 2, hi + extra - extra // 2
    if hi > limit:
        lo, hi = lo - (hi - limit), limit
    if lo < 0:
        lo, hi = 0, min(limit, hi - lo)
    return lo, hi


def cut(image: Any, box: tuple[int, int, int, int], size: tuple[int, int], resample: Any) -> Any:
    """The ``box`` of ``image`` scaled to ``size`` (w, h)."""
    return image.crop(box).resize(size, resample)


def paste_back(drawn: Any, original: Any, box: tuple[int, int, int, int], alpha: Any) -> Any:
    """The crop ``drawn`` scaled back to ``box`` and laid into ``original`` through ``alpha``:
    outside the mask's pixels, ``original`` exactly."""
    from PIL import Image

    canvas = original.copy()
    region = drawn.convert("RGB").resize((box[2] - box[0], box[3] - box[1]),
                                         Image.Resampling.LANCZOS)  # fmt: skip
    canvas.paste(region, box[:2])
    return Image.composite(canvas, original, alpha)
