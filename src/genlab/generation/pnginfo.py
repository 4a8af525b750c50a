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
import struct
import zlib
from pathlib import Path
from typing import Any

from ..errors import GenlabError
from .request import WEBUI_SAMPLERS, WEBUI_SCHEDULES, GenerationRequest, parse_sampler

NEGATIVE = "Negative prompt: "
#: the longest parameters text genlab parses or reads from a PNG, in characters (webui's own
#: texts stay under a few thousand; a longer one is refused, never half-read)
MAX_PARAMETERS_CHARS = 65_536
# the scanner's steps: each pattern is one character class matched once from a given place,
# so it cannot backtrack (the time is linear in what it passes over)
_LETTER = re.compile(r"[A-Za-z]")
_KEY_CHARS = re.compile(r"[\w \-/]*")
_SPACES = re.compile(r"\s*")
_PLAIN = re.compile(r'[^\\"]*')


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
    if request.hires is not None:  # webui's keys; "Size" stays the base size, as webui's
        pairs |= _hires_pairs(request)
    if request.deepcache > 1:  # lossy: a PNG says it was drawn with step caching
        pairs["DeepCache"] = request.deepcache
        if request.deepcache_branch:
            pairs["DeepCache branch"] = request.deepcache_branch
    pairs |= extra or {}
    lines = [request.prompt]
    if request.negative_prompt:
        lines.append(NEGATIVE + request.negative_prompt)
    lines.append(", ".join(f"{k}: {_value(v)}" for k, v in pairs.items()))
    return "\n".join(lines)


def hires_fields(request: GenerationRequest) -> dict[str, Any]:
    """webui's hires keys of a request with hires fix, values as they are (the API's
    extra_generation_params); the second pass's sampler, schedule and prompts only where
    they differ from the first pass's, as webui writes them ("Hires schedule type" is its
    scheduler's label, written where the second pass's differs)."""
    hires = request.hires
    fields: dict[str, Any] = {}
    second = hires.second_pass(request)
    if second["sampler"] != request.sampler:
        fields["Hires sampler"] = WEBUI_SAMPLERS[second["sampler"]]
    if second["prompt"] != request.prompt:
        fields["Hires prompt"] = second["prompt"]
    if second["negative_prompt"] != request.negative_prompt:
        fields["Hires negative prompt"] = second["negative_prompt"]
    if hires.resized:
        fields["Hires resize"] = f"{hires.resize_x}x{hires.resize_y}"
    else:
        fields["Hires upscale"] = hires.scale
    if hires.steps:
        fields["Hires steps"] = hires.steps
    fields["Hires upscaler"] = hires.upscaler
    if second["schedule"] != request.schedule:
        fields["Hires schedule type"] = WEBUI_SCHEDULES[second["schedule"]]
    return fields


def _hires_pairs(request: GenerationRequest) -> dict[str, Any]:
    """The PNG text's hires keys: the denoising strength, then ``hires_fields`` with the
    scale written as webui writes numbers."""
    fields = hires_fields(request)
    if "Hires upscale" in fields:
        fields["Hires upscale"] = _number(request.hires.scale)
    return {"Denoising strength": _number(request.hires.denoising_strength)} | fields


#: the keys format_parameters writes from the request itself (the rest come from ``extra``)
OWN_KEYS = frozenset({
    "Prompt", "Negative prompt", "Steps", "Sampler", "Schedule type", "CFG scale", "Seed",
    "Size", "Model hash", "Model", "Denoising strength", "Hires resize", "Hires upscale",
    "Hires steps", "Hires upscaler", "Hires sampler", "Hires schedule type", "Hires prompt",
    "Hires negative prompt", "DeepCache", "DeepCache branch",
})  # fmt: skip


def parameters_extra(text: str) -> dict[str, str]:
    """The pairs of a parameters text that ``format_parameters`` took from ``extra`` (the
    text encoder, LoRA hashes ...): what a second pass's text adds to the request's own."""
    return {k: v for k, v in parse_parameters(text).items() if k not in OWN_KEYS}


def _pairs(line: str) -> list[tuple[str, str]]:
    """The (key, value) pairs of a settings line, as webui's pattern finds them (a key: a
    letter, then letters, digits, "_", " ", "-" or "/"; a colon; a value up to the next comma,
    or a double-quoted JSON string followed by a comma or the end), in one forward pass: a
    failed key is skipped past, never rescanned, and a quoted value's scan ends at its first
    unescaped quote, before which no later value can start."""
    out, n, i = [], len(line), 0
    while letter := _LETTER.search(line, i):
        q = letter.start()
        r = _KEY_CHARS.match(line, q + 1).end()
        if r == n or line[r] != ":":
            i = r  # every start inside q..r meets the same run and the same missing colon
            continue
        v = _SPACES.match(line, r + 1).end()
        end = _quoted_end(line, v) if v < n and line[v] == '"' else -1
        if end == -1 or (end < n and line[end] != ","):
            end = line.find(",", v)
            end = n if end == -1 else end
        out.append((line[q:r], line[v:end]))
        i = end + 1
    return out


def _quoted_end(line: str, start: int) -> int:
    """The index after the quote closing the string that opens at ``start``, or -1."""
    j, n = start + 1, len(line)
    while (j := _PLAIN.match(line, j).end()) < n:
        if line[j] == '"':
            return j + 1
        j += 2  # a backslash and the character it escapes
    return -1


def _unquoted(value: str) -> str:
    """A value as written, or the string a double-quoted one stands for (JSON escapes)."""
    value = value.rstrip()
    if len(value) > 1 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        if '"' not in inner and "\\" not in inner:
            return inner  # no escapes: what json.loads gives, at a fraction of the cost
        try:
            return str(json.loads(value))
        except ValueError:  # not JSON after all: kept as written
            pass
    return value


def parse_parameters(text: str, *, max_chars: int = MAX_PARAMETERS_CHARS) -> dict[str, str]:
    """A parameters text back into {"Prompt", "Negative prompt", and every key of its last
    line}; values are strings as written (quoted ones unescaped). Linear in the text's
    length; a text over ``max_chars`` characters is refused with a GenlabError."""
    if not isinstance(text, str):
        raise GenlabError("The generation parameters must be text.")
    if max_chars is not None and len(text) > max_chars:
        raise GenlabError(
            f"The generation parameters are {len(text):,} characters long, over the "
            f"{max_chars:,} genlab reads."
        )
    *head, last = text.strip("\n").split("\n")
    pairs = {}
    for key, value in _pairs(last):
        pairs[key.strip()] = _unquoted(value)
    if not pairs:  # no settings line: everything is prompt
        head, pairs = [*head, last], {}
    prompt, negative = [], []
    for line in head:
        if line.startswith(NEGATIVE) or negative:
            negative.append(line.removeprefix(NEGATIVE) if not negative else line)
        else:
            prompt.append(line)
    return {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative), **pairs}


def _whole(key: str, text: str) -> int:
    if not text.isdecimal() or not text.isascii():
        raise GenlabError(f"{key} in the parameters must be a whole number, got {text!r}.")
    return int(text)


def _real(key: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise GenlabError(f"{key} in the parameters must be a number, got {text!r}.") from None


def request_from_parameters(text: str) -> dict[str, Any]:
    """The GenerationRequest fields a parameters text records (the inverse of
    ``format_parameters``): prompt and negative prompt always, and steps, sampler, cfg_scale,
    seed, width/height, strength, hires (HiresFix's fields as a dict, from webui's "Hires ..."
    keys; "Denoising strength" is then its strength), deepcache and deepcache_branch, and loras
    ((name, scale) pairs, names as written) where the text has them.
    ``GenerationRequest(**fields)`` checks the values."""
    parsed = parse_parameters(text)
    fields: dict[str, Any] = {
        "prompt": parsed["Prompt"],
        "negative_prompt": parsed["Negative prompt"],
    }
    if "Steps" in parsed:
        fields["steps"] = _whole("Steps", parsed["Steps"])
    if "Sampler" in parsed:  # "DPM++ 2M" with "Schedule type: Karras", or "DPM++ 2M Karras"
        fields["sampler"], fields["schedule"] = parse_sampler(
            parsed["Sampler"], parsed.get("Schedule type")
        )
    if "CFG scale" in parsed:
        fields["cfg_scale"] = _real("CFG scale", parsed["CFG scale"])
    if "Seed" in parsed:
        fields["seed"] = _whole("Seed", parsed["Seed"])
    if "Size" in parsed:
        width, x, height = parsed["Size"].partition("x")
        fields["width"], fields["height"] = (
            _whole("Size", width),
            _whole("Size", height if x else ""),
        )
    hires = any(k in parsed for k in ("Hires upscale", "Hires resize", "Hires upscaler"))
    if hires:  # txt2img's hires fix: "Denoising strength" is its second pass's
        fields["hires"] = _hires_fields(parsed)
    elif "Denoising strength" in parsed:
        fields["strength"] = _real("Denoising strength", parsed["Denoising strength"])
    for key, name in (("DeepCache", "deepcache"), ("DeepCache branch", "deepcache_branch")):
        if key in parsed:
            fields[name] = _whole(key, parsed[key])
    if "Lora scales" in parsed:  # "name: 0.8, other: 1", as lora_parameters writes it
        loras = []
        for item in parsed["Lora scales"].split(", "):
            name, _, scale = item.rpartition(": ")
            loras.append((name, _real("Lora scales", scale)))
        fields["loras"] = tuple(loras)
    return fields


def _hires_fields(parsed: dict[str, str]) -> dict[str, Any]:
    """The HiresFix fields of webui's "Hires ..." keys (webui's defaults where one is left
    out: Latent, the request's steps, 0.7, the first pass's sampler, schedule and prompts;
    "Use same sampler" is the first pass's too). A "Hires checkpoint" is not read: genlab's
    second pass draws with the first pass's model."""
    out: dict[str, Any] = {
        "sampler": parsed.get("Hires sampler", ""),
        "schedule": parsed.get("Hires schedule type", ""),
        "prompt": parsed.get("Hires prompt", ""),
        "negative_prompt": parsed.get("Hires negative prompt", ""),
        "scale": _real("Hires upscale", parsed.get("Hires upscale", "2")),
        "upscaler": parsed.get("Hires upscaler", "Latent"),
        "steps": _whole("Hires steps", parsed.get("Hires steps", "0")),
        "denoising_strength": _real("Denoising strength", parsed.get("Denoising strength", "0.7")),
        "resize_x": 0, "resize_y": 0,
    }  # fmt: skip
    if "Hires resize" in parsed:
        x, sep, y = parsed["Hires resize"].partition("x")
        out["resize_x"] = _whole("Hires resize", x)
        out["resize_y"] = _whole("Hires resize", y if sep else "")
    return out


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


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_KEY = b"parameters\0"


def _png_parameters(f: Any, limit: int) -> str | None:
    """The last ``parameters`` text chunk (tEXt, zTXt or iTXt) of the PNG open in ``f``
    (past its signature), or None; the other chunks are skipped unread. A chunk is read only
    when its stored size is bounded, and decompressed at most to ``limit`` bytes."""
    text = None
    while len(head := f.read(8)) == 8:
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IEND":
            break
        if kind in (b"tEXt", b"zTXt", b"iTXt") and length >= len(_KEY):
            if f.read(len(_KEY)) == _KEY:
                if length > limit + 1024:  # more than any text within the limit takes
                    raise _TooLong
                text = _chunk_text(kind, f.read(length - len(_KEY)), limit)
                f.seek(4, 1)  # the CRC
                continue
            length -= len(_KEY)
        f.seek(length + 4, 1)
    return text


class _TooLong(Exception):
    """A parameters chunk that holds (or inflates to) more than genlab reads."""


def _inflate(data: bytes, limit: int) -> bytes | None:
    unzip = zlib.decompressobj()
    try:
        out = unzip.decompress(data, limit + 1)
    except zlib.error:
        return None
    if len(out) > limit or unzip.unconsumed_tail:
        raise _TooLong
    return out


def _chunk_text(kind: bytes, data: bytes, limit: int) -> str | None:
    """The text of a chunk's data past its keyword, decoded as PNG says (None if broken)."""
    if kind == b"tEXt":
        raw, encoding = data, "latin-1"
    elif kind == b"zTXt":
        raw, encoding = _inflate(data[1:], limit) if data[:1] == b"\0" else None, "latin-1"
    else:  # iTXt: compressed flag, method, language, translated keyword, UTF-8 text
        parts = data[2:].split(b"\0", 2)
        if len(parts) < 3:
            return None
        raw = parts[2] if data[0] == 0 else _inflate(parts[2], limit) if data[1] == 0 else None
        encoding = "utf-8"
    if raw is None:
        return None
    if len(raw) > limit:
        raise _TooLong
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        return None


def parameters_from_bytes(data: bytes, *, max_chars: int = MAX_PARAMETERS_CHARS) -> str | None:
    """The ``parameters`` text of a PNG held in memory (an upload, an API's base64 image),
    or None when it has none; as ``read_parameters`` reads files, with the same limits. A
    GenlabError names no file: the bytes are all there is."""
    import io

    if data[:8] != _PNG_SIGNATURE:
        raise GenlabError("The image is not a PNG; genlab reads parameters from PNGs.")
    f = io.BytesIO(data)
    f.seek(8)
    try:
        text = _png_parameters(f, 4 * max_chars)
    except (_TooLong, struct.error):
        raise GenlabError(
            f"The image's generation parameters are unreadable or longer than the "
            f"{max_chars:,} characters genlab reads."
        ) from None
    if text is not None and len(text) > max_chars:
        raise GenlabError(
            f"The image's generation parameters are longer than the {max_chars:,} characters "
            "genlab reads."
        )
    return text


def read_parameters(path: str | Path, *, max_chars: int = MAX_PARAMETERS_CHARS) -> str:
    """The ``parameters`` text of a PNG file, or a GenlabError saying why there is none. The
    PNG's chunks are walked without decoding the pixels, and a compressed text chunk is
    inflated at most to the limit, so a decompression bomb is refused, not unpacked."""
    from PIL import Image, UnidentifiedImageError

    limit, too_long = 4 * max_chars, False  # bytes: UTF-8 takes at most 4 per character
    try:
        with open(path, "rb") as f:
            if f.read(8) == _PNG_SIGNATURE:
                text = _png_parameters(f, limit)
            else:  # another format: readable, but genlab writes parameters into PNGs only
                with Image.open(f) as im:
                    text = im.text.get("parameters") if hasattr(im, "text") else None
    except FileNotFoundError:
        raise GenlabError(f"{path} does not exist.") from None
    except _TooLong:
        text = None
        too_long = True
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        struct.error,
        Image.DecompressionBombError,
    ) as e:
        raise GenlabError(f"{path} is not a readable image ({e}).") from None
    except Image.DecompressionBombWarning as e:  # raised where warnings are errors (webui)
        raise GenlabError(f"{path} is too large an image ({e}).") from None
    if too_long or (text is not None and len(text) > max_chars):
        raise GenlabError(
            f"{path} holds generation parameters longer than the {max_chars:,} characters "
            "genlab reads (a compressed text chunk is inflated no further than that)."
        )
    if text is None:
        raise GenlabError(f"{path} carries no generation parameters.")
    return text
