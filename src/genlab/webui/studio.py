"""The page's server side, free of any Gradio code so that it is tested directly: requests
from the page's fields, one generation at a time, previews while it runs, and the images
written with their parameters into the output folder (the only folder the page serves)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import count
from pathlib import Path
from typing import Any

from ..backends import BUILTIN, load_backend
from ..errors import Cancelled, GenlabError
from ..generation.backend import Backend, ModelInfo
from ..generation.pnginfo import save_png
from ..generation.request import GenerationRequest
from .catalog import Catalog
from .clients import Clients
from .worker import Drawn, Emit, Preview, Step, stream

#: a seed of -1 asks for a random one (as in stable-diffusion-webui)
RANDOM_SEED = -1
#: seconds between previews (each decodes the current estimate of the clean image and
#: travels to the browser: a fast draw shows none, a slow one shows one every so often)
PREVIEW_EVERY = 1.0
#: seconds between progress messages (each is a message to the browser; 20 a second cost
#: a fast draw half its time)
PROGRESS_EVERY = 0.25
#: seconds between looks, while a job waits for the lock, at whether it should still wait
WAIT_CHECK = 0.25


class Interrupted(Cancelled):
    """The job's stop flag set by the user (the HTTP API's /interrupt or /skip, for a job
    of the page or of the API alike): ``images`` holds the estimate of the clean image the
    draw had reached, decoded (empty before its first step), at ``step`` of ``steps``."""

    def __init__(self, images: list[Any], reason: str = "interrupt", step: int = 0,
                 steps: int = 0) -> None:  # fmt: skip
        super().__init__(reason)
        self.images, self.reason, self.step, self.steps = images, reason, step, steps


@dataclass(eq=False)  # one job is one job: kept in a set by identity
class Job:
    """The draw in progress, as /sdapi/v1/progress reports it: its step of steps, when it
    started, the latest preview, and its stop flag (``stop``, set when the client left or
    the user interrupted; ``reason`` says which). ``owner``: who may stop it besides the
    API (the page's session); ``present``: None, or a check that its client still listens
    (``Clients.present``), asked between steps and while it waits for the lock."""

    step: int = 0
    steps: int = 0
    started: float = field(default_factory=time.perf_counter)
    preview: list[Any] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    reason: str = ""  # "interrupt" or "skip" when the user stopped it, "left": nobody listens
    owner: str | None = None
    present: Any = None

    def check(self) -> None:
        """Set the stop flag once the client has gone (its reason "left")."""
        if self.present is not None and not self.stop.is_set() and not self.present():
            self.reason = self.reason or "left"
            self.stop.set()


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
        #: the job holding the lock (None between jobs), every job waiting or running, and
        #: how many jobs wait or run
        self.current: Job | None = None
        self.jobs: set[Job] = set()
        self.pending = 0
        self._state = threading.Lock()
        #: the page's event streams, fed by the server (``clients.ClientWatch``)
        self.clients = Clients()

    def interrupt(self, reason: str = "interrupt", owner: str | None = None) -> bool:
        """Stop a draw at its next step, whichever front end asked for it (its consumer gets
        ``Interrupted``). ``owner`` None (the HTTP API, as webui's): the running draw;
        ``owner`` given (a page's session): every draw of that owner, running or waiting,
        and no one else's. False when there was none."""
        with self._state:
            if owner is None:
                jobs = [self.current] if self.current is not None else []
            else:
                jobs = [job for job in self.jobs if job.owner == owner]
            for job in jobs:
                job.reason = reason
                job.stop.set()
            return bool(jobs)

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

    def generate(
        self, request: GenerationRequest, model: str, kind: str | None, *,
        owner: str | None = None, present: Any = None, finish: Any = None,
    ) -> Iterator[Any]:  # fmt: skip
        """The events of one draw (``worker.Step``, ``worker.Preview``, then ``worker.Drawn``).
        Closing the iterator before its end (Gradio closes a generator whose client
        disconnected) stops the draw at its next step; so does ``interrupt`` (the draw then
        raises ``Interrupted`` with what it had reached), and so does ``present()`` turning
        False (the client left: ``Cancelled``). ``kind``: the output sub-folder the images
        are saved in (None: not saved, no paths); ``owner``, ``present``: see ``Job``;
        ``finish``: a function each finished image goes through before it is saved (the
        "only masked" inpainting's paste into the whole picture)."""
        self.catalog.model_spec(model)  # an unknown name: refused here, before any thread
        job = Job(owner=owner, present=present)

        def stopped(preview: Any = list) -> None:
            """Raise what the stop flag means: the user's Interrupted (with what the draw
            had reached), or Cancelled when the client left."""
            job.check()
            if job.stop.is_set():
                if job.reason in ("interrupt", "skip"):
                    raise Interrupted(preview(), job.reason, job.step, job.steps)
                raise Cancelled()

        def work(emit: Emit, stop: threading.Event) -> Drawn:
            start = time.perf_counter()
            last = {"preview": start, "step": start}

            def progress(p: Any) -> None:
                job.step, job.steps = p.step, p.steps
                stopped(p.preview)
                now = time.perf_counter()
                elapsed = now - job.started
                if now - last["preview"] >= PREVIEW_EVERY and p.step < p.steps:
                    job.preview = p.preview()
                    emit(Preview(p.step, p.steps, job.preview, elapsed))
                    last["preview"] = last["step"] = time.perf_counter()
                elif now - last["step"] >= PROGRESS_EVERY:
                    emit(Step(p.step, p.steps, elapsed=elapsed))
                    last["step"] = now

            while not self.lock.acquire(timeout=WAIT_CHECK):
                stopped()  # interrupted, or the client left, while waiting: gone at once
            try:
                stopped()
                job.started = time.perf_counter()
                with self._state:
                    self.current = job
                try:
                    pipe = self.pipeline(model)
                    result = pipe(pipe.check(request), progress, stop)
                except Cancelled as e:  # the back end saw the flag first: say what it means
                    if isinstance(e, Interrupted):
                        raise
                    stopped(lambda: job.preview)
                    raise
                finally:
                    with self._state:
                        self.current = None
            finally:
                self.lock.release()
            if finish is not None:
                result = replace(result, images=[finish(image) for image in result.images])
            paths = [
                save_png(image, self.path(kind, str(seed)), params)
                for image, seed, params in zip(
                    result.images, result.seeds, result.parameters, strict=True
                )
            ] if kind is not None else []  # fmt: skip
            return Drawn(paths, result)

        return self._counted(job, stream(work, job.stop))

    def _counted(self, job: Job, events: Iterator[Any]) -> Iterator[Any]:
        """``events``, counted in ``pending`` and ``jobs`` (waiting or running) while they
        last."""
        with self._state:
            self.pending += 1
            self.jobs.add(job)
        try:
            yield from events
        finally:
            with self._state:
                self.pending -= 1
                self.jobs.discard(job)


def fit_image(image: Any, width: int, height: int, mode: str = "RGB") -> Any:
    """An uploaded picture resized to the size asked for (the model draws at that size)."""
    from PIL import Image

    image = image.convert(mode)
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return image


def painted_mask(value: dict | None) -> tuple[Any, Any]:
    """(picture, mask) from the page's image editor at the picture's own size: the
    background (RGB), and white where the user painted on any layer (L)."""
    from PIL import Image

    if not value or value.get("background") is None:
        raise GenlabError("Upload an image to paint into first.")
    background = value["background"]
    painted = Image.new("L", background.size, 0)
    for layer in value.get("layers") or []:
        alpha = layer.convert("RGBA").getchannel("A").point(lambda a: 255 if a > 0 else 0)
        if alpha.size != background.size:  # a layer the editor kept at another size
            alpha = alpha.resize(background.size, Image.Resampling.NEAREST)
        painted.paste(255, mask=alpha)
    if painted.getbbox() is None:
        raise GenlabError("Paint the region to regenerate on the image first.")
    return background.convert("RGB"), painted


def mask_from_editor(value: dict | None, width: int, height: int) -> tuple[Any, Any]:
    """(image, mask) from the page's image editor, both at ``width`` x ``height``: the
    background, and white where the user painted on any layer."""
    from PIL import Image

    background, painted = painted_mask(value)
    image = fit_image(background, width, height)
    mask = painted.resize((width, height), Image.Resampling.NEAREST)
    return image, mask
