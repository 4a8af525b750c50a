"""The page's server side, free of any Gradio code so that it is tested directly: requests
from the page's fields, one generation at a time, previews while it runs, and the images
written with their parameters into the output folder (the only folder the page serves)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

from ..backends import BUILTIN, load_backend
from ..errors import Cancelled, GenlabError
from ..generation.backend import Backend, ModelInfo
from ..generation.pnginfo import save_png
from ..generation.request import GenerationRequest
from .catalog import Catalog
from .worker import Drawn, Emit, Preview, Step, stream

#: a seed of -1 asks for a random one (as in stable-diffusion-webui)
RANDOM_SEED = -1
#: seconds between previews (each decodes the current estimate of the clean image and
#: travels to the browser: a fast draw shows none, a slow one shows one every so often)
PREVIEW_EVERY = 1.0
#: seconds between progress messages (each is a message to the browser; 20 a second cost
#: a fast draw half its time)
PROGRESS_EVERY = 0.25


def resolve_seed(seed: Any) -> int:
    seed = int(seed) if seed is not None else RANDOM_SEED
    return random.SystemRandom().randrange(2**31) if seed < 0 else seed


class Studio:
    """Catalog + output folder + one lock: ``generate(request, model, kind)`` yields
    ``worker.Step`` events now and then, ``worker.Preview`` events while drawing, and ends
    with ``worker.Drawn`` (the images written into the output folder with their
    parameters)."""

    def __init__(self, catalog: Catalog, out_dir: str | Path) -> None:
        self.catalog = catalog
        self.out = Path(out_dir).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()  # one generation at a time: 2 cores gain nothing from two
        # loading a model (a draw's, or a model list's describe()) one at a time: two threads
        # importing a model's code collide; apart from the draw lock, so that choosing a model
        # while another draws sets its size at once
        self.load_lock = threading.Lock()
        self._serial = count(len(list(self.out.glob("*/*.png"))))

    def path(self, kind: str, stem: str) -> Path:
        """A fresh file name in the output folder's ``kind`` sub-folder."""
        return self.out / kind / f"{next(self._serial):05d}-{stem}.png"

    def warm_up(self) -> None:
        """Load the built-in model and draw one image, so the first request is fast."""
        try:
            with self.lock:
                pipe = self.pipeline(BUILTIN)
                pipe(pipe.check(GenerationRequest("warm up", steps=2)))
        except Exception as e:  # the page still works; the first request reports the error
            logging.getLogger("genlab.webui").warning("warm-up failed: %s", e)

    def pipeline(self, model: str) -> Backend:
        """The back end of a model of the catalog (loaded once per process)."""
        spec = self.catalog.model_spec(model)
        with self.load_lock:
            return load_backend(*spec)

    def describe(self, model: str) -> ModelInfo:
        """What the model says of itself: name, hash, kind, default size and size step."""
        return self.pipeline(model).describe()

    def generate(self, request: GenerationRequest, model: str, kind: str) -> Iterator[Any]:
        """The events of one draw. Closing the iterator before its end (Gradio closes a
        generator whose client disconnected) stops the draw at its next step."""
        self.catalog.model_spec(model)  # an unknown name: refused here, before any thread

        def work(emit: Emit, stop: threading.Event) -> Drawn:
            start = time.perf_counter()
            last = {"preview": start, "step": start}

            def progress(p: Any) -> None:
                now = time.perf_counter()
                if now - last["preview"] >= PREVIEW_EVERY and p.step < p.steps:
                    emit(Preview(p.step, p.steps, p.preview()))
                    last["preview"] = last["step"] = time.perf_counter()
                elif now - last["step"] >= PROGRESS_EVERY:
                    emit(Step(p.step, p.steps))
                    last["step"] = now

            with self.lock:
                if stop.is_set():  # left while waiting for the lock
                    raise Cancelled()
                pipe = self.pipeline(model)
                result = pipe(pipe.check(request), progress, stop)
            paths = [
                save_png(image, self.path(kind, str(seed)), params)
                for image, seed, params in zip(
                    result.images, result.seeds, result.parameters, strict=True
                )
            ]
            return Drawn(paths, result)

        return stream(work)


def fit_image(image: Any, width: int, height: int, mode: str = "RGB") -> Any:
    """An uploaded picture resized to the size asked for (the model draws at that size)."""
    from PIL import Image

    image = image.convert(mode)
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return image


def mask_from_editor(value: dict | None, width: int, height: int) -> tuple[Any, Any]:
    """(image, mask) from the page's image editor: the background, and white where the user
    painted on any layer."""
    from PIL import Image

    if not value or value.get("background") is None:
        raise GenlabError("Upload an image to paint into first.")
    background = value["background"]
    painted = Image.new("L", background.size, 0)
    for layer in value.get("layers") or []:
        alpha = layer.convert("RGBA").getchannel("A").point(lambda a: 255 if a > 0 else 0)
        painted.paste(255, mask=alpha)
    if painted.getbbox() is None:
        raise GenlabError("Paint the region to regenerate on the image first.")
    image = fit_image(background, width, height)
    mask = painted.resize((width, height), Image.Resampling.NEAREST)
    return image, mask
