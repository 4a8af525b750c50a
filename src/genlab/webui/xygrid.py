"""The X/Y plot (as in stable-diffusion-webui): one request varied along two axes, drawn as a
labelled grid. Axis values are comma-separated (quotes allow commas inside a value); "prompt
S/R" replaces its first value, which must occur in the prompt, by each of its values."""

from __future__ import annotations

import csv
import dataclasses
from typing import Any

from ..errors import GenlabError
from ..generation.request import WEBUI_SAMPLERS, WEBUI_SCHEDULES, GenerationRequest

AXES = ("nothing", "seed", "sampler", "schedule", "steps", "CFG scale", "prompt S/R")
_FIELD = {"seed": "seed", "sampler": "sampler", "schedule": "schedule", "steps": "steps",
          "CFG scale": "cfg_scale"}  # fmt: skip
#: the most images one grid may draw
MAX_CELLS = 64
#: the page's sliders' limits (app.py builds its sliders from them); an axis value obeys the
#: same ones, so the X/Y plot asks no more of one image than txt2img may
MAX_STEPS = 150
CFG_RANGE = (0.0, 20.0)
MAX_BATCH = 16
SIZE_RANGE = (8, 1024)
MAX_SEED = 2**32 - 1
#: the most work one grid may ask (cells x steps x pixels): what the largest single request
#: the sliders allow costs (a batch of 16 at 150 steps and 1024 x 1024)
MAX_WORK = MAX_BATCH * MAX_STEPS * SIZE_RANGE[1] ** 2
_RANGE = {"steps": (1, MAX_STEPS), "CFG scale": CFG_RANGE, "seed": (0, MAX_SEED)}
_TYPE = {"seed": int, "sampler": str, "schedule": str, "steps": int, "CFG scale": float,
         "prompt S/R": str}  # fmt: skip


def axis_values(axis: str, text: str) -> list[Any]:
    """The typed values of one axis ("nothing": one cell)."""
    if axis not in AXES:
        raise GenlabError(f"Unknown axis '{axis}'; choose one of {', '.join(AXES)}.")
    if axis == "nothing":
        return [None]
    cells = [c.strip() for row in csv.reader([text or ""], skipinitialspace=True) for c in row]
    cells = [c for c in cells if c]
    if not cells:
        raise GenlabError(f"Give the {axis} axis at least one value.")
    values = []
    for cell in cells:
        try:
            value = _TYPE[axis](cell)
        except ValueError:
            raise GenlabError(f"'{cell}' is not a valid {axis} value.") from None
        if axis in _RANGE and not _RANGE[axis][0] <= value <= _RANGE[axis][1]:  # NaN too
            lo, hi = _RANGE[axis]
            raise GenlabError(f"{axis} values must lie in {lo:g}..{hi:g}, got {cell}.")
        if axis == "sampler" and value not in WEBUI_SAMPLERS:
            known = ", ".join(WEBUI_SAMPLERS)
            raise GenlabError(f"Unknown sampler '{value}'; choose among {known}.")
        if axis == "schedule" and value not in WEBUI_SCHEDULES:
            known = ", ".join(WEBUI_SCHEDULES)
            raise GenlabError(f"Unknown schedule '{value}'; choose among {known}.")
        values.append(value)
    return values


def vary(request: GenerationRequest, axis: str, value: Any, first: Any) -> GenerationRequest:
    """``request`` with one axis set to ``value`` (``first``: the axis's first value)."""
    if axis == "nothing":
        return request
    if axis == "prompt S/R":
        if first not in request.prompt:
            raise GenlabError(f"prompt S/R: '{first}' does not occur in the prompt.")
        return dataclasses.replace(request, prompt=request.prompt.replace(first, value))
    return dataclasses.replace(request, **{_FIELD[axis]: value})


def cell_requests(
    request: GenerationRequest, x_axis: str, x_text: str, y_axis: str, y_text: str,
    size: tuple[int, int] | None = None,
) -> tuple[list[Any], list[Any], list[list[GenerationRequest]]]:  # fmt: skip
    """(x values, y values, rows of requests: rows follow y, columns follow x). ``size``:
    the model's own (width, height), which a request without a size is drawn at (the page
    always gives it; the work bound is checked at it)."""
    xs, ys = axis_values(x_axis, x_text), axis_values(y_axis, y_text)
    if x_axis == y_axis and x_axis != "nothing":
        raise GenlabError("Choose two different axes.")
    if len(xs) * len(ys) > MAX_CELLS:
        raise GenlabError(f"{len(xs)} x {len(ys)} cells is too many; at most {MAX_CELLS}.")
    request = dataclasses.replace(request, batch_size=1)
    if size is not None and not request.sized:
        request = request.at_size(*size)
    cells = len(xs) * len(ys)
    steps = max(xs if x_axis == "steps" else ys if y_axis == "steps" else [request.steps])
    work = cells * steps * (request.width or 1) * (request.height or 1)
    if work > MAX_WORK:
        raise GenlabError(
            f"{cells} cells of {steps} steps at {request.width}x{request.height} is more work "
            "than one request may ask; draw fewer cells, fewer steps or smaller images."
        )
    rows = [[vary(vary(request, x_axis, x, xs[0]), y_axis, y, ys[0]) for x in xs] for y in ys]
    return xs, ys, rows


def _label(axis: str, value: Any) -> str:
    return "" if axis == "nothing" else f"{axis}: {value}"


def draw_grid(images: list[list[Any]], x_labels: list[str], y_labels: list[str], cell: int = 128):
    """Rows of PIL images -> one labelled PIL grid (small images scaled up without blur)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=12)
    left = max((int(font.getlength(s)) for s in y_labels), default=0) + 8 if any(y_labels) else 0
    top = 20 if any(x_labels) else 0
    n_rows, n_cols = len(images), len(images[0])
    grid = Image.new("RGB", (left + n_cols * cell, top + n_rows * cell), "white")
    draw = ImageDraw.Draw(grid)
    for j, label in enumerate(x_labels):
        draw.text((left + j * cell + 4, 4), label, fill="black", font=font)
    for i, row in enumerate(images):
        draw.text((4, top + i * cell + cell // 2 - 6), y_labels[i], fill="black", font=font)
        for j, image in enumerate(row):
            small = max(image.size) < cell
            scaled = image.resize(
                (cell, cell), Image.Resampling.NEAREST if small else Image.Resampling.LANCZOS
            )
            grid.paste(scaled, (left + j * cell, top + i * cell))
    return grid


def labels(axis: str, values: list[Any]) -> list[str]:
    return [_label(axis, v) for v in values]
