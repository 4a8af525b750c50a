"""The page's server side, free of any Gradio code so that it is tested directly: requests
from the page's fields, one generation at a time, previews while it runs, and the images
written with their parameters into the output folder (the only folder the page serves)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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


class Interrupted(Cancelled):
    """The job's stop flag set by the user (the HTTP API's /interrupt or /skip, for a job
    of the page or of the API alike): ``images`` holds the estimate of the clean image the
    draw had reached, decoded (empty before its first step)."""

    def __init__(self, images: list[Any], reason: str = "interrupt") -> None:
        super().__init__(reason)
        self.images, self.reason = images, reason


@dataclass
class Job:
    """The draw in progress, as /sdapi/v1/progress reports it: its step of steps, when it
    started, the latest preview, and its stop flag (``stop``, set when the client left or
    the user interrupted; ``reason`` says which)."""

    step: int = 0
    steps: int = 0
    started: float = field(default_factory=time.perf_counter)
    preview: list[Any] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    reason: str = ""  # "interrupt" or "skip" when the user stopped it


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
        #: the job holding the lock (None between jobs) and how many jobs wait or run
        self.current: Job | None = None
        self.pending = 0
        self._state = threading.Lock()

    def interrupt(self, reason: str = "interrupt") -> bool:
        """Stop the running draw at its next step, whichever front end asked for it (its
        consumer gets ``Interrupted``); False when nothing is running."""
        with self._state:
            job = self.current
            if job is None:
                return False
            job.reason = reason
            job.stop.set()
            return True

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
            backend = load_backend(*spec)
            if hasattr(backend, "use_embeddings") and self.catalog.models_dir:  # webui's layout
                backend.use_embeddings(Path(self.catalog.models_dir) / "embeddings")
            return backend

    def describe(self, model: str) -> ModelInfo:
        """What the model says of itself: name, hash, kind, default size and size step."""
        return self.pipeline(model).describe()

    def generate(self, request: GenerationRequest, model: str, kind: str | None) -> Iterator[Any]:
        """The events of one draw (``worker.Step``, ``worker.Preview``, then ``worker.Drawn``).
        Closing the iterator before its end (Gradio closes a generator whose client
        disconnected) stops the draw at its next step; so does ``interrupt`` (the draw then
        raises ``Interrupted`` with what it had reached). ``kind``: the output sub-folder the
        images are saved in (None: not saved, no paths)."""
        self.catalog.model_spec(model)  # an unknown name: refused here, before any thread
        job = Job()

        def work(emit: Emit, stop: threading.Event) -> Drawn:
            start = time.perf_counter()
            last = {"preview": start, "step": start}

            def progress(p: Any) -> None:
                job.step, job.steps = p.step, p.steps
                if stop.is_set() and job.reason:  # the user stopped it: keep what it reached
                    raise Interrupted(p.preview(), job.reason)
                now = time.perf_counter()
                if now - last["preview"] >= PREVIEW_EVERY and p.step < p.steps:
                    job.preview = p.preview()
                    emit(Preview(p.step, p.steps, job.preview))
                    last["preview"] = last["step"] = time.perf_counter()
                elif now - last["step"] >= PROGRESS_EVERY:
                    emit(Step(p.step, p.steps))
                    last["step"] = now

            with self.lock:
                if stop.is_set():  # left while waiting for the lock
                    raise Cancelled()
                job.started = time.perf_counter()
                with self._state:
                    self.current = job
                try:
                    pipe = self.pipeline(model)
                    result = pipe(pipe.check(request), progress, stop)
                finally:
                    with self._state:
                        self.current = None
            paths = [
                save_png(image, self.path(kind, str(seed)), params)
                for image, seed, params in zip(
                    result.images, result.seeds, result.parameters, strict=True
                )
            ] if kind is not None else []  # fmt: skip
            return Drawn(paths, result)

        return self._counted(stream(work, job.stop))

    def _counted(self, events: Iterator[Any]) -> Iterator[Any]:
        """``events``, counted in ``pending`` (the jobs waiting or running) while they last."""
        with self._state:
            self.pending += 1
        try:
            yield from events
        finally:
            with self._state:
                self.pending -= 1


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
