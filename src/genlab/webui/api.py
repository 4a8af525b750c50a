"""stable-diffusion-webui's HTTP API (``/sdapi/v1/*``) over genlab, on the page's own FastAPI
app (``genlab webui --api``) or alone (``--nowebui``). The same catalog, the same studio and
so the same one-at-a-time lock as the page: a job from the API waits behind one from the
page and the reverse, ``/progress`` reports whichever runs, and ``/interrupt`` sets the
running job's stop flag whoever started it.

Models, LoRAs and outputs go by catalog name only: no endpoint takes or returns a path on
the server. Every refusal is a 4xx whose ``detail`` is one sentence; a full queue is a 503.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import GenlabError
from ..generation.hires import LATENT_MODES, PIXEL_UPSCALERS, HiresFix
from ..generation.pnginfo import (
    format_parameters,
    hires_fields,
    parameters_from_bytes,
    parse_parameters,
)
from ..generation.prompt_loras import prompt_loras
from ..generation.request import (
    MAX_BATCH,
    WEBUI_SAMPLERS,
    WEBUI_SCHEDULES,
    GenerationRequest,
)
from . import api_schema as schema
from .studio import Interrupted, Studio, resolve_seed
from .worker import Drawn
from .xygrid import MAX_WORK

log = logging.getLogger("genlab.webui.api")

PREFIX = "/sdapi/v1"
#: the most a request body may hold (two base64 images of the page's upload limit)
MAX_BODY = 32 * 1024 * 1024
#: options a client may add besides genlab's own, and the longest JSON value each may have
MAX_OPTIONS, MAX_OPTION_CHARS = 256, 10_000


class Refused(Exception):
    """A request the API answers with ``status`` and one sentence."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def parse_auth(text: str | None) -> dict[str, str]:
    """``user:pass[,user2:pass2]`` (webui's --api-auth) -> {user: password}."""
    if not text:
        return {}
    out = {}
    for item in text.split(","):
        user, colon, password = item.strip().partition(":")
        if not colon or not user or not password:
            raise GenlabError("--api-auth and --gradio-auth take user:password[,user2:pass2].")
        out[user] = password
    return out


# --- images in and out ---------------------------------------------------------------------
def encode_png(image: Any, parameters: str | None = None) -> str:
    """A PIL image as base64 PNG text, carrying its ``parameters`` chunk."""
    from PIL.PngImagePlugin import PngInfo

    info = None
    if parameters is not None:
        info = PngInfo()
        info.add_text("parameters", parameters)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_bytes(text: Any, what: str) -> bytes:
    """The bytes of a base64 image, with or without a ``data:image/...;base64,`` head."""
    if not isinstance(text, str) or not text:
        raise Refused(400, f"The {what} must be a base64-encoded image.")
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        raise Refused(400, f"The {what} is not valid base64.") from None


def decode_image(text: Any, what: str, mode: str) -> Any:
    """A PIL image from base64, opened under Pillow's decompression-bomb guard."""
    from PIL import Image, UnidentifiedImageError

    data = decode_bytes(text, what)
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.convert(mode)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise Refused(400, f"The {what} is not a readable image.") from None
    except Image.DecompressionBombWarning:
        raise Refused(400, f"The {what} has more pixels than genlab opens.") from None


# --- the API's state -----------------------------------------------------------------------
class Api:
    """What the routes share: the studio, the options (the current model among them) and
    the count of API jobs waiting or running (``queue_size`` at most: then 503)."""

    def __init__(self, studio: Studio, queue_size: int = 16, flags: dict | None = None) -> None:
        self.studio = studio
        self.catalog = studio.catalog
        self.queue_size = queue_size
        self.flags = {"api": True, "nowebui": False} | dict(flags or {})
        self.active = 0
        self._lock = threading.Lock()
        self.infos: dict[str, Any] = {}  # catalog name -> ModelInfo, once loaded
        self.options: dict[str, Any] = {
            "sd_model_checkpoint": "builtin" if "builtin" in self.catalog.text_to_image
            else next(iter(self.catalog.text_to_image), ""),
            "sd_checkpoint_hash": "",
            "sd_vae": "Automatic",
            "samples_format": "png",
            "CLIP_stop_at_last_layers": 1,
            "eta_noise_seed_delta": 0,
            "live_previews_enable": True,
            "show_progress_every_n_steps": -1,
            "enable_pnginfo": True,
            "sd_checkpoints_limit": 1,
        }  # fmt: skip

    # models
    def model_name(self, given: Any) -> str:
        """The catalog name of a model as a client names it: a title, a model_name (any
        case: webuiapi lower-cases it), with or without webui's " [hash]" tail."""
        if not isinstance(given, str) or not given.strip():
            raise Refused(400, "sd_model_checkpoint must name a model of /sdapi/v1/sd-models.")
        names = self.catalog.text_to_image
        text = given.strip()
        if text.endswith("]") and " [" in text:
            text = text.rpartition(" [")[0]
        for candidate in (text, text.lower()):
            for name in names:
                if candidate in (name, name.lower(), _short(name), _short(name).lower()):
                    return name
        raise Refused(400, f"No model of that name; choose one of {', '.join(names)}.")

    def info_of(self, name: str) -> Any:
        if name not in self.infos:
            self.infos[name] = self.studio.pipeline(name).describe()
        return self.infos[name]

    def load_model(self, name: str) -> Any:
        """Load ``name`` (under the studio's lock, as every load is) and note its hash."""
        with self.studio.lock:
            try:
                return self.info_of(name)
            except GenlabError as e:
                raise Refused(400, str(e)) from None

    # the queue
    def slot(self) -> _Slot:
        return _Slot(self)


class _Slot:
    def __init__(self, api: Api) -> None:
        self.api = api

    def __enter__(self) -> None:
        with self.api._lock:
            if self.api.active >= self.api.queue_size:
                raise Refused(
                    503, f"The queue is full ({self.api.queue_size} requests); try again soon."
                )
            self.api.active += 1

    def __exit__(self, *exc: Any) -> None:
        with self.api._lock:
            self.api.active -= 1


def _short(name: str) -> str:
    """webui's model_name: the file or folder name without its extension."""
    return Path(name).stem if name.endswith(".safetensors") else Path(name).name


# --- building the request --------------------------------------------------------------------
def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Refused(400, f"{what} must be a finite number, got {value!r}.")
    return float(value)


def hires_of(body: schema.Txt2ImgRequest, loras: tuple = ()) -> HiresFix | None:
    """txt2img's hires fix from webui's enable_hr and hr_* fields (None: off), or Refused.
    The second pass's sampler, scheduler and prompts are its own where given (empty: the
    first pass's, as webui's); ``<lora:...>`` tags in hr_prompt must be the prompt's own
    (``loras``: those), since one draw carries one set of LoRAs. hr_checkpoint_name is
    checked where the model is known (``same_checkpoint``)."""
    if not body.enable_hr:
        return None
    hr_prompt, hr_loras = prompt_loras(body.hr_prompt or "")
    if hr_loras and hr_loras != tuple(loras):
        raise Refused(400, "genlab's hires fix draws both passes with the prompt's LoRAs; "
                           "leave the <lora:...> tags out of hr_prompt.")  # fmt: skip
    strength = 0.75 if body.denoising_strength is None else body.denoising_strength
    try:
        return HiresFix(
            scale=_number(body.hr_scale, "hr_scale"), upscaler=body.hr_upscaler or "Latent",
            steps=body.hr_second_pass_steps,
            denoising_strength=_number(strength, "denoising_strength"),
            resize_x=body.hr_resize_x, resize_y=body.hr_resize_y,
            sampler=body.hr_sampler_name or "", schedule=body.hr_scheduler or "",
            prompt=hr_prompt, negative_prompt=body.hr_negative_prompt or "",
        )  # fmt: skip
    except GenlabError as e:
        raise Refused(400, str(e)) from None


#: what webui's menu says for the first pass's model
SAME_CHECKPOINT = "Use same checkpoint"


def same_checkpoint(api: Api, given: Any, model: str) -> None:
    """Refuse an hr_checkpoint_name that names another model than ``model`` (the one the
    first pass draws with): genlab's second pass draws with the first pass's model.
    Empty, "Use same checkpoint" or ``model``'s own name (title, model_name, " [hash]")
    pass."""
    if given is None or not str(given).strip() or str(given).strip() == SAME_CHECKPOINT:
        return
    try:
        named = api.model_name(given)
    except Refused:
        named = None
    if named != model:
        raise Refused(400, f"genlab's hires fix draws its second pass with the first pass's "
                           f"model ({_short(model)}); leave hr_checkpoint_name empty or "
                           f"'{SAME_CHECKPOINT}'.")  # fmt: skip


def embeddings_listing(models_dir: str | Path | None, model: str | Path) -> dict:
    """webui's ``/embeddings`` answer: the embeddings of ``models_dir``'s ``embeddings/``
    folder that fit the Stable Diffusion model (a diffusers folder) ``model`` (loaded) and
    those that do not (skipped), by name: no paths. genlab's own models take none."""
    from ..interop.diffusers.embeddings import Embeddings, encoder_widths
    from ..interop.diffusers.files import is_diffusers_folder

    if models_dir is None or not is_diffusers_folder(Path(model)):
        return {"loaded": {}, "skipped": {}}
    folder = Path(models_dir) / "embeddings"
    return Embeddings.scan(folder, encoder_widths(model)).webui_listing()


def build_request(api: Api, body: schema.Txt2ImgRequest, **images: Any) -> GenerationRequest:
    """One GenerationRequest from webui's body (the first iteration's seed), or Refused;
    hires fix (enable_hr) for txt2img, the request without ``images``."""
    prompt, tagged = prompt_loras(body.prompt)
    hires = hires_of(body, tagged) if not images else None
    try:
        loras = tuple((str(api.catalog.lora_named(n)), w) for n, w in tagged)
    except GenlabError as e:
        raise Refused(400, str(e)) from None
    sampler = body.sampler_name or body.sampler_index or "dpmpp-2m"
    if body.seed < -1 or body.seed >= 2**32:
        raise Refused(
            400, f"seed must be -1 (random) or a whole number below 2^32, got {body.seed}."
        )
    _number(body.cfg_scale, "cfg_scale")
    if body.steps < 1:
        raise Refused(400, f"steps must be at least 1, got {body.steps}.")
    if body.batch_size < 1 or body.n_iter < 1 or body.batch_size * body.n_iter > MAX_BATCH:
        raise Refused(
            400, f"batch_size and n_iter must be at least 1 and draw at most {MAX_BATCH} images "
            f"together, got {body.batch_size} x {body.n_iter}.",
        )  # fmt: skip
    for side in ("width", "height"):
        value = getattr(body, side)
        if value is not None and value < 1:
            raise Refused(400, f"{side} must be a whole number of pixels from 1, got {value}.")
    seed = resolve_seed(body.seed)
    if seed + body.batch_size * body.n_iter > 2**32:
        seed %= 2**32 - body.batch_size * body.n_iter
    try:
        request = GenerationRequest(
            prompt, body.negative_prompt, sampler=sampler, steps=body.steps,
            cfg_scale=float(body.cfg_scale), seed=seed, batch_size=body.batch_size,
            width=body.width, height=body.height, loras=loras,
            schedule=body.scheduler or "default", hires=hires, deepcache=body.deepcache,
            deepcache_branch=body.deepcache_branch, **images,
        )  # fmt: skip
    except GenlabError as e:
        raise Refused(400, str(e)) from None
    if request.sized and request.work * body.n_iter > MAX_WORK:
        raise Refused(400, "The request asks more work (images x steps x pixels) than one "
                           "request may: fewer steps, images or pixels.")  # fmt: skip
    return request


def own_sampling(
    api: Api, model: str, body: schema.Txt2ImgRequest, request: GenerationRequest
) -> GenerationRequest:
    """``request`` with the model's own sampler, steps and CFG scale (builtin-fast: lcm, 4,
    1) in the fields the client did not send, in place of webui's defaults (50 steps, CFG 7),
    which a distilled few-step model would draw badly and slowly."""
    try:  # not under the draw lock (load_model's): a job waiting behind another is counted
        own = dict(api.info_of(model).sampling)
    except GenlabError as e:
        raise Refused(400, str(e)) from None
    sent = body.model_fields_set
    if "sampler_name" in sent or "sampler_index" in sent:
        own.pop("sampler", None)
    own = {k: v for k, v in own.items() if k not in sent}
    try:
        return replace(request, **own) if own else request
    except GenlabError as e:
        raise Refused(400, str(e)) from None


def run_job(
    api: Api, body: schema.Txt2ImgRequest, request: GenerationRequest, kind: str,
    finish: Callable[[Any], Any] | None = None,
) -> dict:  # fmt: skip
    """Draw ``request`` n_iter times (seeds following on) through the studio and answer as
    webui does; ``finish`` adjusts each image (the inpainting composite)."""
    import contextlib

    model = api.options["sd_model_checkpoint"]
    override = dict(body.override_settings or {})
    if "sd_model_checkpoint" in override:
        model = api.model_name(override["sd_model_checkpoint"])
        if not body.override_settings_restore_afterwards:
            set_model(api, model)
    if model not in api.catalog.text_to_image:
        raise Refused(400, f"Unknown model '{model}'; choose one of /sdapi/v1/sd-models.")
    if request.hires is not None:
        same_checkpoint(api, body.hr_checkpoint_name, model)
    request = own_sampling(api, model, body, request)
    images, seeds, texts, interrupted = [], [], [], False
    with api.slot():
        for i in range(body.n_iter):
            part = replace(request, seed=request.seed + i * request.batch_size)
            try:
                with contextlib.closing(
                    api.studio.generate(part, model, kind if body.save_images else None)
                ) as events:
                    for event in events:
                        if isinstance(event, Drawn):
                            result = event.result
                            images += [finish(im) if finish else im for im in result.images]
                            seeds += result.seeds
                            texts += result.parameters
            except Interrupted as e:  # what the draw had reached, as webui answers
                info = api.info_of(model)
                w, h = e.images[0].size if e.images else (part.width or 0, part.height or 0)
                sized = part.at_size(w, h)
                images += e.images
                seeds += part.seeds[: len(e.images)]
                texts += [
                    format_parameters(sized, s, model=info.name, model_hash=info.model_hash)
                    for s in part.seeds[: len(e.images)]
                ]
                if e.reason != "skip":
                    interrupted = True
                    break
            except GenlabError as e:
                raise Refused(400, str(e)) from None
    info = api.info_of(model)
    first = images[0].size if images else (request.width or 0, request.height or 0)
    all_prompts = [request.prompt] * len(seeds)
    out = {
        "prompt": request.prompt,
        "all_prompts": all_prompts,
        "negative_prompt": request.negative_prompt,
        "all_negative_prompts": [request.negative_prompt] * len(seeds),
        "seed": seeds[0] if seeds else request.seed,
        "all_seeds": seeds,
        "subseed": -1,
        "all_subseeds": [-1] * len(seeds),
        "subseed_strength": 0,
        "width": first[0],
        "height": first[1],
        "sampler_name": WEBUI_SAMPLERS[request.sampler],
        "scheduler": WEBUI_SCHEDULES[request.schedule],
        "cfg_scale": request.cfg_scale,
        "steps": request.steps,
        "batch_size": request.batch_size,
        "restore_faces": False,
        "face_restoration_model": None,
        "sd_model_name": info.name,
        "sd_model_hash": info.model_hash[:10],
        "sd_vae_name": None,
        "sd_vae_hash": None,
        "seed_resize_from_w": -1,
        "seed_resize_from_h": -1,
        "denoising_strength": request.hires.denoising_strength
        if request.hires
        else request.strength,
        "extra_generation_params": {"Schedule type": WEBUI_SCHEDULES[request.schedule]}
        | hires_params(request),
        "index_of_first_image": 0,
        "infotexts": texts,
        "styles": [],
        "job_timestamp": time.strftime("%Y%m%d%H%M%S"),
        "clip_skip": 1,
        "is_using_inpainting_conditioning": False,
        "interrupted": interrupted,
        "version": "genlab",
    }
    parameters = body.model_dump(exclude={"init_images", "mask"})
    if getattr(body, "include_init_images", False):
        parameters |= {"init_images": body.init_images, "mask": body.mask}
    parameters |= {
        "prompt": request.prompt, "seed": out["seed"], "sampler_name": out["sampler_name"],
        "scheduler": out["scheduler"], "width": first[0], "height": first[1],
        "sd_model_checkpoint": model,
    }  # fmt: skip
    sent = [encode_png(im, t) for im, t in zip(images, texts, strict=True)]
    return {
        "images": sent if body.send_images else [],
        "parameters": parameters,
        "info": json.dumps(out),
    }


def hires_params(request: GenerationRequest) -> dict:
    """webui's extra_generation_params of hires fix (none without it)."""
    return {} if request.hires is None else hires_fields(request)


def set_model(api: Api, name: str) -> None:
    info = api.load_model(name)
    api.options["sd_model_checkpoint"] = name
    api.options["sd_checkpoint_hash"] = info.model_hash


def img2img_request(api: Api, body: schema.Img2ImgRequest):
    """(request, finish) of an img2img or inpainting body: the initial image fitted to the
    size asked (the model's own size where none is given: the image's), and for inpainting
    the mask (inverted, blurred) with the composite that keeps every pixel it leaves out.
    With ``inpaint_full_res`` ("only masked") the picture keeps its size: the region around
    the mask (grown by ``inpaint_full_res_padding``) is drawn at width x height and pasted
    back."""
    from PIL import Image, ImageFilter, ImageStat

    from ..generation.masked_region import crop_box, cut, paste_back
    from .studio import fit_image

    if not body.init_images:
        raise Refused(400, "img2img needs init_images: one base64 image.")
    init = decode_image(body.init_images[0], "initial image", "RGB")
    width, height = body.width or init.size[0], body.height or init.size[1]
    if not (1 <= width <= 2048 and 1 <= height <= 2048):
        raise Refused(400, f"width and height must lie in 1..2048, got {width}x{height}.")
    strength = body.denoising_strength if body.denoising_strength is not None else 0.75
    _number(strength, "denoising_strength")
    if not 0 < strength <= 1:
        raise Refused(400, f"denoising_strength must lie in (0, 1], got {strength}.")
    if body.mask is None:
        init = fit_image(init, width, height)
        body = body.model_copy(update={"width": width, "height": height})
        return build_request(api, body, init_image=init, strength=float(strength)), None
    if body.inpainting_fill not in (0, 1, 2, 3):
        raise Refused(400, "inpainting_fill is 0 (fill), 1 (original), 2 (latent noise) or "
                           f"3 (latent nothing), got {body.inpainting_fill}.")  # fmt: skip
    blur = 4 if body.mask_blur is None else body.mask_blur
    if not 0 <= blur <= 64:
        raise Refused(400, f"mask_blur must lie in 0..64 pixels, got {blur}.")
    padding = body.inpaint_full_res_padding
    if body.inpaint_full_res and not 0 <= padding <= 2048:
        raise Refused(400, f"inpaint_full_res_padding must lie in 0..2048 pixels, got {padding}.")
    # the picture at the size it is drawn at; "only masked" keeps the picture's own size
    if not body.inpaint_full_res:
        init = fit_image(init, width, height)
    mask = decode_image(body.mask, "mask", "L").resize(init.size, Image.Resampling.NEAREST)
    mask = mask.point(lambda a: 255 if a > 127 else 0)
    if body.inpainting_mask_invert:
        mask = mask.point(lambda a: 255 - a)
    if mask.getbbox() is None:
        raise Refused(400, "The mask is all black: paint white where to regenerate.")
    # webui blurs the mask and lays the result over the original through it: every pixel the
    # blurred mask touches is regenerated, and the rest is the original's, exactly
    alpha = mask.filter(ImageFilter.GaussianBlur(blur)) if blur else mask
    box = crop_box(alpha, padding, (width, height)) if body.inpaint_full_res else None
    source, touched = init, alpha
    if box is not None:  # the region around the mask, scaled to the size it is drawn at
        source = cut(init, box, (width, height), Image.Resampling.LANCZOS)
        touched = cut(alpha, box, (width, height), Image.Resampling.BILINEAR)
    region = touched.point(lambda a: 255 if a > 0 else 0)
    if body.inpainting_fill == 0:  # "fill": the region starts from the colour around it
        keep = region.point(lambda a: 255 - a)
        colour = (127, 127, 127)
        if keep.getbbox() is not None:
            colour = tuple(int(c) for c in ImageStat.Stat(source, keep).mean)
        source = Image.composite(Image.new("RGB", source.size, colour), source, region)
    if body.inpainting_fill in (2, 3):  # latent noise / nothing: the region from pure noise
        strength = 1.0
    body = body.model_copy(update={"width": width, "height": height})
    request = build_request(api, body, init_image=source, strength=float(strength), mask=region)

    def finish(image: Any) -> Any:
        if box is not None:
            return paste_back(image, init, box, alpha)
        return Image.composite(image.convert("RGB"), init, alpha)

    return request, finish


# --- the routes ------------------------------------------------------------------------------
def _sentence(errors: list[dict]) -> str:
    """One sentence of FastAPI's validation errors (the first one: the client fixes it and
    sends again)."""
    if not errors:
        return "The request body is not valid."
    error = errors[0]
    if error.get("type") == "json_invalid":
        return "The request body is not valid JSON."
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "the body"
    if error.get("type") == "model_attributes_type":
        return "The request body must be a JSON object of webui's fields."
    message = str(error.get("msg", "is not valid")).rstrip(".")
    return f"The field {where} is not valid: {message[:1].lower() + message[1:]}."


def mount_api(
    app: Any, studio: Studio, catalog: Any = None, *, auth: dict[str, str] | None = None,
    queue_size: int = 16, flags: dict | None = None,
) -> Api:  # fmt: skip
    """Add ``/sdapi/v1/*`` to the FastAPI ``app`` (before its other routes, so no catch-all
    of the page's shadows them); ``auth``: {user: password} for HTTP Basic (None: open)."""
    from fastapi import APIRouter, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.routing import APIRoute
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse

    api = Api(studio, queue_size, flags)
    if catalog is not None and catalog is not studio.catalog:
        raise GenlabError("mount_api takes the studio's own catalog.")

    def refusal(request: Request) -> JSONResponse | None:
        """The answer to a request refused before its body is read: no or wrong
        credentials (401), or too long a body (413)."""
        if auth and not authorised(request.headers.get("authorization"), auth):
            return JSONResponse(
                {"detail": "This API needs a user name and password (HTTP Basic)."},
                status_code=401, headers={"WWW-Authenticate": 'Basic realm="genlab"'},
            )  # fmt: skip
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return JSONResponse(
                {"detail": f"The request body is over the {MAX_BODY // 2**20} MiB allowed."},
                status_code=413,
            )
        return None

    class Route(APIRoute):
        """Every failure of a route as JSON {"detail": one sentence}; nothing a client sends
        reaches the server's own error pages or stops it."""

        def get_route_handler(self) -> Callable:
            handler = super().get_route_handler()

            async def route(request: Request) -> Any:
                refused = refusal(request)
                if refused is not None:
                    return refused
                try:
                    return await handler(request)
                except RequestValidationError as e:
                    return JSONResponse({"detail": _sentence(e.errors())}, status_code=422)
                except Refused as e:
                    return JSONResponse({"detail": e.detail}, status_code=e.status)
                except GenlabError as e:
                    return JSONResponse({"detail": str(e)}, status_code=400)
                except HTTPException as e:  # FastAPI's own: a body it could not parse
                    # (JSON nested thousands deep fails inside json.loads as RecursionError)
                    detail = e.detail if isinstance(e.detail, str) else "The request is bad."
                    return JSONResponse({"detail": detail.rstrip(".") + "."},
                                        status_code=e.status_code)  # fmt: skip
                except Exception:
                    log.exception("API request failed")
                    return JSONResponse(
                        {"detail": "genlab failed on this request; the server log says why."},
                        status_code=500,
                    )

            return route

    router = APIRouter(prefix=PREFIX, route_class=Route)

    @router.post("/txt2img", response_model=schema.ImageResponse)
    def txt2img(body: schema.Txt2ImgRequest) -> dict:
        request = build_request(api, body)
        return run_job(api, body, request, "api-txt2img")

    @router.post("/img2img", response_model=schema.ImageResponse)
    def img2img(body: schema.Img2ImgRequest) -> dict:
        request, finish = img2img_request(api, body)
        kind = "api-inpaint" if body.mask is not None else "api-img2img"
        return run_job(api, body, request, kind, finish)

    @router.get("/progress", response_model=schema.ProgressResponse)
    def progress(skip_current_image: bool = False) -> dict:
        job, pending = studio.current, studio.pending
        if job is None:
            state = {"skipped": False, "interrupted": False, "job": "", "job_count": pending,
                     "job_timestamp": "0", "job_no": 0, "sampling_step": 0,
                     "sampling_steps": 0, "stopping_generation": False}  # fmt: skip
            return {"progress": 0.0, "eta_relative": 0.0, "state": state, "current_image": None}
        done = job.step / job.steps if job.steps else 0.0
        elapsed = time.perf_counter() - job.started
        eta = elapsed / done - elapsed if done > 0 else 0.0
        state = {
            "skipped": job.reason == "skip", "interrupted": job.reason == "interrupt",
            "job": "genlab", "job_count": pending, "job_timestamp": "0", "job_no": 0,
            "sampling_step": job.step, "sampling_steps": job.steps,
            "stopping_generation": bool(job.reason),
        }  # fmt: skip
        image = job.preview[0] if job.preview and not skip_current_image else None
        return {
            "progress": round(done, 4), "eta_relative": round(eta, 3), "state": state,
            "current_image": encode_png(image) if image is not None else None,
        }  # fmt: skip

    @router.post("/interrupt")
    def interrupt() -> dict:
        studio.interrupt("interrupt")
        return {}

    @router.post("/skip")
    def skip() -> dict:
        studio.interrupt("skip")
        return {}

    @router.get("/options")
    def get_options() -> dict:
        return dict(api.options)

    @router.post("/options")
    def set_options(body: dict[str, Any]) -> dict:
        if len(set(body) | set(api.options)) > MAX_OPTIONS + 16:
            raise Refused(400, f"genlab keeps at most {MAX_OPTIONS} options.")
        for key, value in body.items():
            if len(json.dumps(value, default=str)) > MAX_OPTION_CHARS:
                raise Refused(400, f"The option {key[:100]} is too long a value.")
        if "sd_model_checkpoint" in body:
            set_model(api, api.model_name(body["sd_model_checkpoint"]))
        ours = ("sd_model_checkpoint", "sd_checkpoint_hash")
        kept = {k: v for k, v in body.items() if k not in ours}
        api.options |= kept
        return {}

    @router.get("/sd-models", response_model=list[schema.SDModelItem])
    def sd_models() -> list[dict]:
        out = []
        for name in catalog_of(api).text_to_image:
            info = api.infos.get(name)
            out.append({
                "title": name, "model_name": _short(name),
                "hash": info.model_hash[:10] if info else None,
                "sha256": info.model_hash if info else None,
                "filename": name, "config": None,
            })  # fmt: skip
        return out

    @router.post("/refresh-checkpoints")
    def refresh_checkpoints() -> dict:
        from .catalog import Catalog

        cat = api.catalog
        fresh = Catalog.scan(cat.models_dir, cat.runs_dir, cat.model_config, cat.place)
        cat.text_to_image, cat.runs, cat.loras = fresh.text_to_image, fresh.runs, fresh.loras
        cat.unreadable = fresh.unreadable
        return {}

    @router.post("/refresh-loras")
    def refresh_loras() -> dict:
        return refresh_checkpoints()

    @router.get("/samplers", response_model=list[schema.SamplerItem])
    def samplers() -> list[dict]:
        return [{"name": webui, "aliases": [name], "options": {}}
                for name, webui in WEBUI_SAMPLERS.items()]  # fmt: skip

    @router.get("/schedulers", response_model=list[schema.SchedulerItem])
    def schedulers() -> list[dict]:
        return [{"name": label.lower(), "label": label, "aliases": [name], "default_rho": None,
                 "need_inner_model": False} for name, label in WEBUI_SCHEDULES.items()]  # fmt: skip

    @router.get("/loras", response_model=list[schema.LoraItem])
    def loras() -> list[dict]:
        return [{"name": Path(n).name, "alias": Path(n).name, "path": n, "metadata": {}}
                for n in api.catalog.loras]  # fmt: skip

    @router.get("/upscalers", response_model=list[schema.UpscalerItem])
    def upscalers() -> list:  # hires fix's pixel upscalers (no upscaling networks)
        return [{"name": name, "model_name": None, "model_path": None, "model_url": None,
                 "scale": 4} for name in PIXEL_UPSCALERS]  # fmt: skip

    @router.get("/latent-upscale-modes", response_model=list[schema.LatentUpscalerModeItem])
    def latent_upscale_modes() -> list:
        return [{"name": name} for name in LATENT_MODES]

    @router.get("/sd-vae", response_model=list[schema.SDVaeItem])
    def sd_vae() -> list:
        return []

    @router.get("/hypernetworks")
    def hypernetworks() -> list:
        return []

    @router.get("/face-restorers")
    def face_restorers() -> list:
        return []

    @router.get("/embeddings", response_model=schema.EmbeddingsResponse)
    def embeddings() -> dict:
        name = api.options["sd_model_checkpoint"]
        if name not in api.catalog.text_to_image:
            return {"loaded": {}, "skipped": {}}
        spec, config, _ = api.catalog.model_spec(name)
        return embeddings_listing(api.catalog.models_dir, config or spec)

    @router.get("/prompt-styles", response_model=list[schema.PromptStyleItem])
    def prompt_styles() -> list:
        return []

    @router.get("/scripts")
    def scripts() -> dict:
        return {"txt2img": [], "img2img": []}

    @router.get("/memory", response_model=schema.MemoryResponse)
    def memory() -> dict:
        return memory_report()

    @router.get("/cmd-flags")
    def cmd_flags() -> dict:
        return dict(api.flags)  # switches and numbers only: never a path or a password

    @router.post("/png-info", response_model=schema.PNGInfoResponse)
    def png_info(body: schema.PNGInfoRequest) -> dict:
        data = decode_bytes(body.image, "image")
        text = parameters_from_bytes(data)
        if text is None:
            return {"info": "", "items": {}, "parameters": {}}
        parsed = parse_parameters(text)
        if "Size" in parsed:
            w, _, h = parsed["Size"].partition("x")
            parsed["Size-1"], parsed["Size-2"] = w, h
        return {"info": text, "items": {"parameters": text}, "parameters": parsed}

    app.include_router(router)
    # the routes just added go first: the page's own routes include catch-alls
    ours = [r for r in app.router.routes if getattr(r, "path", "").startswith(PREFIX)]
    app.router.routes[:] = ours + [r for r in app.router.routes if r not in ours]
    return api


def authorised(header: str | None, auth: dict[str, str]) -> bool:
    """Whether an Authorization header carries HTTP Basic credentials of ``auth``."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        text = base64.b64decode(token.strip(), validate=True).decode()
        user, colon, password = text.partition(":")
    except (binascii.Error, ValueError):
        return False
    want = auth.get(user)
    ok = colon and want is not None
    # compared in constant time whether or not the user exists
    same = secrets.compare_digest(password.encode(), (want or "\0").encode())
    return bool(ok and same)


def catalog_of(api: Api) -> Any:
    return api.catalog


def memory_report() -> dict:
    """webui's /memory: the machine's RAM and, where there is one, the GPU's."""
    ram: dict[str, Any] = {}
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in lines)
        total = int(fields["MemTotal"].split()[0]) * 1024
        free = int(fields["MemAvailable"].split()[0]) * 1024
        ram = {"free": free, "used": total - free, "total": total}
    except (OSError, KeyError, ValueError):
        ram = {"error": "RAM figures are not available on this system."}
    cuda: dict[str, Any] = {"error": "no CUDA device"}
    try:
        import torch

        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            cuda = {"system": {"free": free, "used": total - free, "total": total}}
    except Exception:  # a broken driver is no reason to fail the page's memory report
        pass
    return {"ram": ram, "cuda": cuda}


def serve_api(
    studio: Studio, *, port: int = 7860, listen: bool = False, auth: dict | None = None,
    queue_size: int = 16, allowed_hosts: tuple[str, ...] = (),
    cors_allow_origins: tuple[str, ...] = (), flags: dict | None = None, block: bool = True,
) -> Any:  # fmt: skip
    """``genlab webui --nowebui``: the API alone on a plain FastAPI app, behind the same
    Host/Origin guard as the page, served by uvicorn. With ``block=False`` the server runs
    in a thread and is returned (``.should_exit = True`` stops it)."""
    import uvicorn
    from fastapi import FastAPI

    from .guard import HostGuard
    from .server import LOCALHOST

    app = FastAPI(title="genlab", docs_url=None, redoc_url=None, openapi_url=None)
    mounted = mount_api(app, studio, auth=auth, queue_size=queue_size, flags=flags)
    guarded = HostGuard(app, allowed_hosts=allowed_hosts, listen=listen,
                        cors_origins=cors_allow_origins)  # fmt: skip
    config = uvicorn.Config(guarded, host="0.0.0.0" if listen else LOCALHOST, port=port,
                            log_level="warning", lifespan="off")  # fmt: skip
    server = uvicorn.Server(config)
    server.api = mounted  # the API's state (its queue count), for tests and benchmarks
    threading.Thread(target=studio.warm_up, daemon=True).start()
    if block:
        server.run()  # returns on Ctrl-C (uvicorn handles the signal)
        from .server import stop_and_exit

        stop_and_exit(studio)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise GenlabError(f"The API could not start on port {port}.")
    return server
