"""The PNG ``parameters`` text chunk in stable-diffusion-webui's layout, so the readers people
already use find prompt, seed, steps, sampler and CFG scale in genlab's images:

    a red circle to the left of a blue square
    Negative prompt: blurry
    Steps: 20, Sampler: DPM++ 2M, CFG scale: 5, Seed: 1, Size: 32x32, Model: shapes

The prompt may span lines; the last line holds "key: value" pairs separated by ", ", a
value that contains a comma or a quote written in double quotes (JSON escapes)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import GenlabError
from .request import WEBUI_SAMPLERS, WEBUI_SCHEDULES, GenerationRequest

NEGATIVE = "Negative prompt: "
_PAIR = re.compile(r'\s*([A-Za-z][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def _value(text: Any) -> str:
    text = str(text)
    return json.dumps(text) if ("," in text or '"' in text or "\n" in text) else text


def _number(x: float) -> str:
    return f"{x:g}"


def format_parameters(
    request: GenerationRequest, seed: int, *, model: str = "", model_hash: str = "",
    extra: dict[str, Any] | None = None,
) -> str:  # fmt: skip
    """The parameters text of one image of ``request`` drawn with ``seed``."""
    pairs = {
        "Steps": request.steps,
        "Sampler": WEBUI_SAMPLERS[request.sampler],
        **(
            {"Schedule type": WEBUI_SCHEDULES[request.schedule]}
            if request.schedule != "default"
            else {}
        ),
        "CFG scale": _number(request.cfg_scale),
        "Seed": seed,
        "Size": f"{request.width}x{request.height}",
    }
    if model_hash:
        pairs["Model hash"] = model_hash[:10]
    if model:
        pairs["Model"] = model
    if request.strength is not None:
        pairs["Denoising strength"] = _number(request.strength)
    pairs |= extra or {}
    lines = [request.prompt]
    if request.negative_prompt:
        lines.append(NEGATIVE + request.negative_prompt)
    lines.append(", ".join(f"{k}: {_value(v)}" for k, v in pairs.items()))
    return "\n".join(lines)


def parse_parameters(text: str) -> dict[str, str]:
    """A parameters text back into {"Prompt", "Negative prompt", and every key of its last
    line}; values are strings as written (quoted ones unescaped)."""
    *head, last = text.strip("\n").split("\n")
    pairs = {}
    for key, value in _PAIR.findall(last):
        pairs[key.strip()] = json.loads(value) if value.startswith('"') else value.strip()
    if not pairs:  # no settings line: everything is prompt
        head, pairs = [*head, last], {}
    prompt, negative = [], []
    for line in head:
        if line.startswith(NEGATIVE) or negative:
            negative.append(line.removeprefix(NEGATIVE) if not negative else line)
        else:
            prompt.append(line)
    return {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative), **pairs}


def save_png(image: Any, path: str | Path, parameters: str) -> Path:
    """Write a PIL image as PNG with its ``parameters`` chunk (the same pixels and text give
    the same bytes)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", parameters)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", pnginfo=info)
    return path


def read_parameters(path: str | Path) -> str:
    """The ``parameters`` text of a PNG file, or a GenlabError saying why there is none."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            text = im.text.get("parameters") if hasattr(im, "text") else None
    except FileNotFoundError:
        raise GenlabError(f"{path} does not exist.") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise GenlabError(f"{path} is not a readable image ({e}).") from None
    except Image.DecompressionBombWarning as e:  # raised where warnings are errors (webui)
        raise GenlabError(f"{path} is too large an image ({e}).") from None
    if text is None:
        raise GenlabError(f"{path} carries no generation parameters.")
    return text
