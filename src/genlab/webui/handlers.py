"""What every control of the page does, free of Gradio so that it is tested without a browser
or a server: ``app`` lays the page out and wires each event to one method of ``Handlers``.

The drawing controls every generation tab shares are one ``Controls`` value, and one function,
``request_from_controls``, turns them into the ``GenerationRequest`` that txt2img, img2img,
inpainting and each cell of the X/Y plot draw. Handlers that stream yield plain values
(``Shown``, ``TrainView``); ``None`` in a field means "leave that output as it is". Progress
goes to a ``progress(fraction, desc=...)`` callable (Gradio's ``gr.Progress`` is one)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..backends import BUILTIN
from ..errors import Cancelled, GenlabError
from ..generation.hires import SAME_SAMPLER, SAME_SCHEDULE, UPSCALERS, HiresFix
from ..generation.pnginfo import parse_parameters, read_parameters, request_from_parameters
from ..generation.request import (
    UNCONDITIONAL,
    WEBUI_SAMPLERS,
    WEBUI_SCHEDULES,
    GenerationRequest,
)
from . import lab, xygrid
from .catalog import Catalog, run_summary
from .studio import (
    RANDOM_SEED,
    Interrupted,
    Studio,
    fit_image,
    mask_from_editor,
    painted_mask,
    resolve_seed,
)
from .worker import Drawn, Preview, Step, Stopped, Trained

SAMPLERS = tuple(WEBUI_SAMPLERS)
SCHEDULES = tuple(WEBUI_SCHEDULES)
#: the size the page's sliders show before a model has said its own
START_SIZE = 32
#: the most passes one press of Generate draws (webui's "batch count")
MAX_BATCH_COUNT = 16
#: the most images the History tab keeps for a session (the oldest leave first)
HISTORY_SIZE = 100
Progress = Callable[..., Any]


def _no_progress(*_args: Any, **_kwargs: Any) -> None:
    return None


@dataclass(frozen=True)
class Controls:
    """The values of the drawing controls, by the names the page's API shows, in the order
    the page passes them (width and height None: the model's own size)."""

    prompt: str = ""
    negative_prompt: str | None = None
    sampler: str = "dpmpp-2m"
    schedule: str = "default"
    steps: int = 20
    cfg_scale: float = 5.0
    seed: int = RANDOM_SEED
    batch_size: int = 1
    width: int | None = None
    height: int | None = None
    model: str = BUILTIN
    loras: tuple[str, ...] | list[str] | None = ()
    lora_scale: float = 1.0
    batch_count: int = 1


#: the page's "Hires. fix" controls, by the API's names (txt2img only), in their order
HIRES = ("enable_hr", "hr_scale", "hr_upscaler", "hr_second_pass_steps", "denoising_strength",
         "hr_resize_x", "hr_resize_y", "hr_sampler_name", "hr_scheduler", "hr_prompt",
         "hr_negative_prompt")  # fmt: skip
HIRES_UPSCALERS = UPSCALERS
#: the second pass's sampler and schedule menus: webui's "use the first pass's" first
HIRES_SAMPLERS = (SAME_SAMPLER, *WEBUI_SAMPLERS)
HIRES_SCHEDULES = (SAME_SCHEDULE, *WEBUI_SCHEDULES)


def hires_from_controls(
    enable: Any, scale: Any = 2.0, upscaler: Any = "Latent", steps: Any = 0, strength: Any = 0.7,
    resize_x: Any = 0, resize_y: Any = 0, sampler: Any = "", schedule: Any = "",
    prompt: Any = "", negative_prompt: Any = "",
) -> HiresFix | None:  # fmt: skip
    """The hires fix the page's accordion asks for (None: off); HiresFix checks the values
    (an empty sampler, schedule or prompt, or webui's "Use same ...", is the first pass's)."""
    if not enable:
        return None
    scale, strength = (2.0 if scale is None else scale), (0.7 if strength is None else strength)
    return HiresFix(
        float(scale), str(upscaler or "Latent"), int(_whole(steps) or 0), float(strength),
        int(_whole(resize_x) or 0), int(_whole(resize_y) or 0), str(sampler or ""),
        str(schedule or ""), str(prompt or ""), str(negative_prompt or ""),
    )  # fmt: skip


def hires_controls_of(hires: HiresFix | None) -> dict[str, Any]:
    """The accordion's values {HIRES name: value} that draw ``hires`` (None: unticked, the
    rest left as they are); the inverse of ``hires_from_controls``."""
    if hires is None:
        return {"enable_hr": False}
    return {
        "enable_hr": True, "hr_scale": hires.scale, "hr_upscaler": hires.upscaler,
        "hr_second_pass_steps": hires.steps, "denoising_strength": hires.denoising_strength,
        "hr_resize_x": hires.resize_x, "hr_resize_y": hires.resize_y,
        "hr_sampler_name": hires.sampler or SAME_SAMPLER,
        "hr_scheduler": hires.schedule or SAME_SCHEDULE, "hr_prompt": hires.prompt,
        "hr_negative_prompt": hires.negative_prompt,
    }  # fmt: skip


#: the inpaint tab's "Inpaint area" choices, webui's words (the page passes the index: 1 is
#: the API's inpaint_full_res), and its "Only masked padding, pixels" slider's range
INPAINT_AREAS = ("Whole picture", "Only masked")
MAX_PADDING = 256


#: the controls' names in order (the page wires its components in this order)
CONTROLS = tuple(f.name for f in fields(Controls))
#: the controls of a tab's settings block (the rest: prompts above it, pickers on top)
SETTINGS = ("sampler", "schedule", "steps", "cfg_scale", "seed", "batch_size", "width", "height",
            "batch_count")  # fmt: skip


def _whole(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def request_from_controls(catalog: Catalog, controls: Controls, **images: Any) -> GenerationRequest:
    """The one request the controls ask for (``images``: init_image, strength, mask); LoRAs
    are names of the catalog, the seed -1 a random one. GenerationRequest checks the rest."""
    c = controls
    if c.steps is not None and c.steps != "" and float(c.steps) < 1:
        # the slider reaches 0 so that a 0 typed in is not silently raised to 1, as the
        # command line's --steps 0 is refused too
        raise GenlabError(f"steps must be at least 1, got {c.steps:g}: a draw takes at least "
                          "one denoising step.")  # fmt: skip
    chosen = tuple((str(catalog.lora(name)), float(c.lora_scale)) for name in c.loras or ())
    return GenerationRequest(
        prompt=c.prompt or "", negative_prompt=c.negative_prompt or "", sampler=c.sampler,
        schedule=c.schedule or "default", steps=int(c.steps), cfg_scale=float(c.cfg_scale),
        seed=resolve_seed(c.seed), batch_size=int(c.batch_size), width=_whole(c.width),
        height=_whole(c.height), loras=chosen, **images,
    )  # fmt: skip


@dataclass(frozen=True)
class Shown:
    """One update of a generation tab: gallery items ((image or path, caption) pairs), the
    parameters text, the seed used; None leaves an output as it is."""

    gallery: list[tuple[Any, str]] | None = None
    info: str | None = None
    seed: int | None = None
    #: while drawing: the progress line (step, elapsed, ETA), shown where the parameters go
    status: str | None = None


@dataclass(frozen=True)
class Caller:
    """Who asked for a draw: the page's session (its Interrupt and Skip stop its own draws,
    no one else's) and ``present``, a check that its client still listens (None: not
    watched), asked between steps."""

    session: str | None = None
    present: Callable[[], bool] | None = None


@dataclass(frozen=True)
class TrainView:
    """One update of the Train tab: its status line, the loss plot, and the name of a LoRA
    just saved (None: none yet)."""

    status: str
    figure: Any
    saved: str | None = None


@dataclass(frozen=True)
class ModelSize:
    """The width and height sliders for a model (its describe()): their value, the step
    (the multiple sizes must be, also the smallest), and the largest width and height it
    draws (the page's own limit where the model sets none); and the sampler, steps and CFG
    scale it draws with by default (a distilled few-step model's own: builtin-fast's lcm, 4,
    1; else the request's defaults)."""

    width: int
    height: int
    step: int
    max_width: int
    max_height: int
    sampler: str = "dpmpp-2m"
    steps: int = 20
    cfg: float = 5.0

    @classmethod
    def of(cls, info: Any) -> ModelSize:
        width, height = info.default_size
        step = int(info.size_step)
        top = (xygrid.SIZE_RANGE[1] // step) * step  # the page's limit, a multiple of step
        max_w, max_h = info.max_size or (top, top)
        own = getattr(info, "sampling", {}) or {}
        plain = GenerationRequest("")
        return cls(
            int(width), int(height), step, min(int(max_w), top), min(int(max_h), top),
            own.get("sampler", plain.sampler), own.get("steps", plain.steps),
            own.get("cfg_scale", plain.cfg_scale),
        )  # fmt: skip


def notices(request: GenerationRequest, result_info: dict | None = None) -> list[str]:
    """What the page says beside a draw's parameters: that an empty prompt draws
    unconditionally, and the model's own notice (words it cannot draw, a cut prompt)."""
    out = [UNCONDITIONAL] if request.unconditional else []
    notice = (result_info or {}).get("notice")
    return [*out, notice] if notice else out


def remember(history: list | None, items: list | None, out: Path,
             limit: int = HISTORY_SIZE) -> list[tuple[str, str]]:  # fmt: skip
    """The History tab's images after a draw: ``items`` (a gallery's (path, caption) pairs,
    as the browser sent them back) before the earlier ones, newest first, at most ``limit``;
    only files of the page's output folder, each once."""
    kept: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in [*reversed(items or []), *(history or [])]:
        path, caption = (item[0], item[1]) if isinstance(item, list | tuple) else (item, "")
        if not isinstance(path, str) or path in seen or not Path(path).is_file():
            continue
        if not Path(path).resolve().is_relative_to(out):
            continue
        seen.add(path)
        kept.append((path, caption or ""))
    return kept[:limit]


def error_message(e: BaseException) -> str | None:
    """The page's sentence for a failure: the user's error as it reads, running out of
    memory as advice; None for a bug (the page reports it with its type and logs it)."""
    if isinstance(e, GenlabError):
        return str(e)
    if isinstance(e, Interrupted):
        return "Interrupted before the end; nothing was finished."
    if isinstance(e, MemoryError) or "out of memory" in str(e).lower():
        return "Out of memory: draw fewer or smaller images, or use fewer steps."
    return None


def unreadable_text(cat: Catalog) -> str:
    """The model files found but not readable, with their reasons (empty when none)."""
    if not cat.unreadable:
        return ""
    lines = [f"- `{name}`: {reason}" for name, reason in sorted(cat.unreadable.items())]
    return "**Unreadable model files** (not offered):\n" + "\n".join(lines)


def loss_figure(history: list[tuple[int, float]]) -> Any:
    from ..viz.plots import subplots

    fig, ax = subplots(figsize=(6, 3))
    if history:
        ax.plot(*zip(*history, strict=True))
    ax.set(xlabel="step", ylabel="loss", yscale="log" if history else "linear")
    return fig


def markdown_table(rows: list[list[str]]) -> str:
    """Rows (the first: the header) as a Markdown table."""
    head, *body = rows
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])


class Handlers:
    """The page's work over one Studio (its catalog, output folder and lock)."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.catalog = studio.catalog
        self.training = None  # the Train tab's job, made when first used
        #: sessions whose Interrupt came (between two passes of a batch count too)
        self._interrupted: set[str] = set()

    # --- generation ----------------------------------------------------------------------
    def request(self, controls: Controls, **images: Any) -> GenerationRequest:
        return request_from_controls(self.catalog, controls, **images)

    def model_size(self, model: str) -> ModelSize:
        """The model's own size and the multiple its sizes must be (the sliders follow)."""
        return ModelSize.of(self.studio.describe(model))

    def interrupt(self, session: str | None, reason: str = "interrupt") -> bool:
        """The page's Interrupt ("interrupt": the whole job stops, what is finished is kept)
        or Skip ("skip": the current pass stops, the next one goes on) for ``session``'s
        draws; the same ``Studio.interrupt`` as the HTTP API's. False when none ran."""
        if not session:
            return False  # a page without a session stops nobody's draw
        if reason == "interrupt":
            self._interrupted.add(session)
        return self.studio.interrupt(reason, owner=session)

    def _draw(self, request: GenerationRequest, model: str, kind: str, progress: Progress,
              count: int = 1, caller: Caller = Caller(), finish: Any = None
              ) -> Iterator[Shown]:  # fmt: skip
        """Previews while drawing, then the saved images; ``count`` passes of the request
        (seeds following on, as webui's batch count). It yields at every progress report,
        so Gradio, which stops a generator whose client left at its next yield, closes it
        soon and the draw stops at its next step; ``caller.present`` stops it too. Interrupt
        ends the job with the passes finished (and the current estimate, labelled); Skip
        ends the current pass and goes on with the next. ``finish``: what each finished
        image goes through before it is saved (``Studio.generate``'s)."""
        count = check_count(count, request)
        session = caller.session
        if session:
            self._interrupted.discard(session)
        started = time.perf_counter()
        kept: list[tuple[Any, str]] = []  # finished images (path, parameters) of every pass
        params: list[str] = []
        stopped = ""  # the sentence saying the job was interrupted or a pass skipped
        said: list[str] = []  # an empty prompt's notice, the model's own (words, a cut prompt)
        for i in range(count):
            if session in self._interrupted:
                stopped = stopped or "Interrupted before the next pass; what is finished is kept."
                break
            part = replace(request, seed=request.seed + i * request.batch_size)
            at = (0, request.steps)
            try:
                with contextlib.closing(self.studio.generate(
                    part, model, kind, owner=session, present=caller.present, finish=finish,
                )) as events:  # fmt: skip
                    for event in events:
                        if isinstance(event, Step | Preview):
                            at = (event.step, event.steps)
                            status = progress_line(i, count, event, time.perf_counter() - started)
                            progress(event.step / event.steps, desc=status)
                        if isinstance(event, Step):
                            yield Shown(status=status)
                        elif isinstance(event, Preview):
                            caption = f"preview, step {event.step}/{event.steps}"
                            items = kept + [(im, caption) for im in event.images]
                            yield Shown(items, None, request.seed, status)
                        elif isinstance(event, Drawn):
                            done = event.result.parameters
                            kept += [(str(p), t) for p, t in zip(event.paths, done, strict=True)]
                            params += done
                            said = said or notices(request, event.result.info)
            except Interrupted as e:
                word = "Skipped" if e.reason == "skip" else "Interrupted"
                at = (e.step, e.steps) if e.steps else at  # the step the estimate is of
                caption = f"{word.lower()} at step {at[0]}/{at[1]} (not saved)"
                kept += [(im, caption) for im in e.images]
                stopped = (f"{word} at step {at[0]}/{at[1]} of pass {i + 1}/{count} after "
                           f"{time.perf_counter() - started:.0f} s; the images finished are "
                           "kept.")  # fmt: skip
                if e.reason != "skip":
                    break
            except Cancelled:
                return  # the client left: nobody to show anything to
        info = "\n".join(t for t in (stopped, params[0] if params else "") if t)
        yield Shown(kept, "\n\n".join([info, *said]) if said else info, request.seed)

    def txt2img(self, controls: Controls, progress: Progress = _no_progress,
                caller: Caller = Caller(), *, hires: HiresFix | None = None
                ) -> Iterator[Shown]:  # fmt: skip
        """Draw images from a prompt: the gallery, the first image's parameters and the seed
        used (-1 draws a random seed); ``hires``: the hires fix's second pass."""
        yield from self._draw(self.request(controls, hires=hires), controls.model, "txt2img",
                              progress, controls.batch_count, caller)  # fmt: skip

    def _size(self, controls: Controls) -> tuple[int, int]:
        """The size an uploaded image is fitted to: the controls', or the model's own."""
        if controls.width and controls.height:
            return int(controls.width), int(controls.height)
        size = self.model_size(controls.model)
        return size.width, size.height

    def img2img(self, image: Any, strength: float, controls: Controls,
                progress: Progress = _no_progress, caller: Caller = Caller()
                ) -> Iterator[Shown]:  # fmt: skip
        """Redraw ``image`` (resized to the size asked for) after the prompt."""
        if image is None:
            raise GenlabError("Upload an image (or send one from txt2img) first.")
        init = fit_image(image, *self._size(controls))
        request = self.request(controls, init_image=init, strength=float(strength))
        yield from self._draw(request, controls.model, "img2img", progress,
                              controls.batch_count, caller)  # fmt: skip

    def inpaint(self, editor: Any, strength: float, controls: Controls,
                progress: Progress = _no_progress, caller: Caller = Caller(), *,
                inpaint_full_res: Any = 0, inpaint_full_res_padding: Any = 32,
                ) -> Iterator[Shown]:  # fmt: skip
        """Regenerate the painted region of the editor's image after the prompt. "Whole
        picture" (``inpaint_full_res`` 0): the picture is drawn at the size asked for;
        "Only masked" (1, or its name): the picture keeps its own size, and the region
        around the painted pixels, grown by ``inpaint_full_res_padding`` pixels, is drawn
        at that size and pasted back (``generation.masked_region``, as the API's)."""
        size = self._size(controls)
        if not only_masked(inpaint_full_res):
            init, mask = mask_from_editor(editor, *size)
            request = self.request(controls, init_image=init, strength=float(strength),
                                   mask=mask)  # fmt: skip
            yield from self._draw(request, controls.model, "inpaint", progress,
                                  controls.batch_count, caller)  # fmt: skip
            return
        from PIL import Image

        from ..generation.masked_region import crop_box, cut, paste_back

        padding = check_padding(inpaint_full_res_padding)
        picture, painted = painted_mask(editor)
        box = crop_box(painted, padding, size)
        source = cut(picture, box, size, Image.Resampling.LANCZOS)
        # every pixel of the crop the mask touches once scaled, so that the paste through
        # the mask lays down only regenerated pixels
        region = cut(painted, box, size, Image.Resampling.BILINEAR).point(
            lambda a: 255 if a > 0 else 0
        )
        request = self.request(controls, init_image=source, strength=float(strength),
                               mask=region)  # fmt: skip

        def finish(image: Any) -> Any:  # the drawn crop laid back into the whole picture
            return paste_back(image, picture, box, painted)

        yield from self._draw(request, controls.model, "inpaint", progress,
                              controls.batch_count, caller, finish)  # fmt: skip

    def xy_plot(
        self, controls: Controls, x_axis: str, x_values: str, y_axis: str, y_values: str,
        progress: Progress = _no_progress, caller: Caller = Caller(),
    ) -> Iterator[tuple | None]:  # fmt: skip
        """One grid over two axes (the batch size is ignored: one image a cell); yields None
        at every step (a grid whose client left stops there) and ends with (path, text)."""
        base = self.request(controls)
        size = None if base.sized else self.model_size(controls.model)
        xs, ys, rows = xygrid.cell_requests(
            base, x_axis, x_values, y_axis, y_values,
            size=None if size is None else (size.width, size.height),
        )  # fmt: skip
        total, done, images = len(xs) * len(ys), 0, []
        for row in rows:
            images.append([])
            for request in row:
                with contextlib.closing(self.studio.generate(
                    request, controls.model, "xy-cells", owner=caller.session,
                    present=caller.present,
                )) as events:  # fmt: skip
                    for event in events:
                        if isinstance(event, Drawn):
                            images[-1].append(event.result.images[0])
                        else:
                            yield None
                done += 1
                progress(done / total, desc=f"image {done}/{total}")
        grid = xygrid.draw_grid(images, xygrid.labels(x_axis, xs), xygrid.labels(y_axis, ys))
        text = f"X: {x_axis} = {x_values}\nY: {y_axis} = {y_values}\n" + rows[0][0].prompt
        from ..generation.pnginfo import save_png

        yield str(save_png(grid, self.studio.path("xy", "grid"), text)), text

    # --- PNG info and sending between tabs -----------------------------------------------
    @staticmethod
    def png_info(path: str | None) -> tuple[str, dict]:
        """A PNG's parameters text and its fields."""
        if path is None:
            return "", {}
        text = read_parameters(path)
        return text, parse_parameters(text)

    def send_to_txt2img(self, text: str | None) -> dict[str, Any]:
        """The txt2img controls a parameters text sets (genlab.generation's reading of it,
        checked as a request): {control name: value}, only those the text records, and the
        hires fix accordion's (by HIRES names: ticked with the record's values, or only
        unticked where the text has no hires fix)."""
        if not text:
            raise GenlabError("Read a PNG's parameters first.")
        found = request_from_parameters(text)
        loras = found.pop("loras", ())
        checked = GenerationRequest(**found)  # a value no request takes: one sentence here
        lo, hi = xygrid.SIZE_RANGE
        for side in ("width", "height"):
            if side in found and not lo <= found[side] <= hi:
                raise GenlabError(
                    f"The image's {side} is {found[side]} pixels; the page draws {lo} to {hi}."
                )
        if found.get("steps", 1) > xygrid.MAX_STEPS:
            raise GenlabError(f"The image took {found['steps']} steps; the page draws at most "
                              f"{xygrid.MAX_STEPS}.")  # fmt: skip
        out = {name: found[name] for name in CONTROLS if name in found}
        out |= hires_controls_of(checked.hires)  # the accordion: ticked as the image was
        names = {Path(k).name: k for k in self.catalog.loras}
        picked = [names[name] for name, _ in loras if name in names]
        if loras and len(picked) == len(loras):  # all of them here: picked, at their scale
            out["loras"], out["lora_scale"] = picked, loras[0][1]
        return out

    def send_to_img2img(self, path: str | None, prompt: str, negative: str,
                        gallery: list | None = None) -> tuple:  # fmt: skip
        """(picture at its own size, the editor's value, prompt, negative prompt) of the
        gallery image clicked, or of the gallery's only image when none was; only an image
        of the page's output folder (the browser sends the path: checked)."""
        if gallery is not None:
            shown = [item[0] if isinstance(item, list | tuple) else item for item in gallery]
            if path not in shown:  # a click on an image of an earlier draw: forgotten
                path = None
            if not path and len(shown) == 1:
                path = shown[0]
        if not path:
            raise GenlabError("Click an image in the gallery first." if gallery else
                              "Draw an image first, then send it.")  # fmt: skip
        if not Path(path).resolve().is_relative_to(self.studio.out):
            raise GenlabError("That image is not one of this page's.")
        from PIL import Image

        with Image.open(path) as im:
            picture = im.convert("RGB")
        editor = {"background": picture, "layers": [], "composite": picture}
        return picture, editor, prompt, negative

    # --- the model lists ----------------------------------------------------------------
    def rescan(self) -> tuple[list[str], list[str], str]:
        """(text-to-image models, LoRAs, the unreadable files' text) after a fresh look."""
        self.catalog.rescan()
        cat = self.catalog
        return list(cat.text_to_image), list(cat.loras), unreadable_text(cat)

    # --- Train ---------------------------------------------------------------------------
    def train(
        self, files: list[str] | None, folder: str | None, caption: str, name: str, base: str,
        rank: float, steps: float, lr: float, resume: bool, *, uploads: tuple[Path, ...] = (),
        progress: Progress = _no_progress, bucket: bool = False,
    ) -> Iterator[TrainView]:  # fmt: skip
        """A LoRA of ``base`` trained on uploaded images (inside ``uploads``) or a folder of
        --datasets-dir by name, under <runs>/loras/NAME: status and loss plot as it goes;
        ``bucket``: aspect-ratio buckets (a Stable Diffusion base, kohya's defaults)."""
        from ..finetune.train import lora_config
        from .training import LoraTraining, check_name, gather_images, lora_root

        name = check_name(name)
        root = lora_root(self.catalog.runs_dir)
        out = root / name
        if resume and not (out / "config.yaml").is_file():
            raise GenlabError(f"There is no LoRA run named '{name}' to resume.")
        if resume:
            from ..training.runconfig import RunConfig
            from ..training.runfolder import saved_config

            cfg = RunConfig.from_dict(saved_config(out), "config.yaml").merge({"steps": int(steps)})
        else:
            data = gather_images(files, folder, root / f"{name}-images", uploads=uploads,
                                 datasets=self.catalog.datasets_dir)  # fmt: skip
            spec, model_config, _ = self.catalog.model_spec(base)
            cfg = lora_config(spec, str(data), caption=caption, rank=int(rank),
                              train={"steps": int(steps), "lr": float(lr), "progress": False},
                              model_config=model_config,
                              buckets={"bucket": bool(bucket)})  # fmt: skip
        if self.training is None:
            self.training = LoraTraining()
        events = self.training.run(cfg, out, resume=bool(resume))
        with contextlib.closing(events):  # closed early (the client left): it stops, kept
            yield from self._train_views(events, name, progress)

    @staticmethod
    def _train_views(events: Iterator[Any], name: str, progress: Progress) -> Iterator[TrainView]:
        history: list[tuple[int, float]] = []
        for event in events:
            if isinstance(event, Step):
                progress(event.step / event.steps, desc=f"step {event.step}/{event.steps}")
                if "loss" in event.metrics and (not history or history[-1][0] != event.step):
                    history.append((event.step, event.metrics["loss"]))
                if event.step % 10 == 0 or event.step == event.steps:
                    yield TrainView(f"step {event.step}/{event.steps}", loss_figure(history))
            elif isinstance(event, Stopped):
                text = (f"Cancelled at step {event.step}; a checkpoint is kept: tick resume and "
                        "press Train to continue.")  # fmt: skip
                yield TrainView(text, loss_figure(history))
            elif isinstance(event, Trained):
                s = event.summary
                yield TrainView(f"Saved LoRA **{name}** ({s['steps']} steps, "
                                f"{s['seconds']:.0f} s) in `{event.folder}`; pick it in the "
                                "LoRA list.", loss_figure(history), name)  # fmt: skip

    def cancel_training(self) -> None:
        if self.training is not None:
            self.training.cancel.set()

    # --- Model lab and Compare ----------------------------------------------------------
    def lab_show(self, name: str | None) -> tuple[dict, list]:
        """A run's meta and metrics, and its plots (pixels, never its paths)."""
        if not name:
            return {}, []
        folder = self.catalog.run(name)
        return run_summary(folder), lab.run_figures(folder)

    def lab_options(self, name: str) -> list[dict[str, Any]]:
        return lab.run_options(self.catalog.run(name))

    def lab_sample(self, name: str, n: float, seed: float, options: dict[str, Any]) -> str:
        """``n`` samples of the run with its options, written into the output folder."""
        out = self.studio.path("lab", Path(name).name)
        return str(lab.sample_run_to(self.catalog.run(name), out, int(n), int(seed), options))

    def compare(self, data: str, chosen: list[str], seeds: float, steps: float,
                progress: Progress = _no_progress) -> tuple[str, str]:  # fmt: skip
        """genlab compare: the report written into the output folder; (its table and marks
        from the report's own rows, the samples picture)."""
        from ..evaluation.compare import compare
        from ..evaluation.compare_report import marks_text, table, write_report

        report = compare(data, int(seeds), int(steps), 1000, tuple(chosen), lr_sweep=False,
                         progress=lambda what: progress(None, desc=what))  # fmt: skip
        folder = self.studio.out / "compare" / f"{data}-{int(steps)}-steps"
        write_report(report, folder, f"webui: {data}, {int(steps)} steps", "this machine")
        text = markdown_table(table(report)) + "\n\nMarks:\n\n" + marks_text(report)
        return text, str(folder / "compare-samples.png")


def only_masked(area: Any) -> bool:
    """Whether the "Inpaint area" asks for "Only masked": the index 1 (webui's radio and
    the API's inpaint_full_res), True, or the name; "Whole picture" (0, False, None) else."""
    if isinstance(area, str):
        if area not in INPAINT_AREAS:
            raise GenlabError(f"The inpaint area is one of {', '.join(INPAINT_AREAS)}, got "
                              f"{area!r}.")  # fmt: skip
        return area == INPAINT_AREAS[1]
    return bool(area)


def check_padding(padding: Any) -> int:
    """The "Only masked padding, pixels" as a whole number from 0 to MAX_PADDING (None: 32)."""
    value = 32 if padding is None or padding == "" else padding
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PADDING:
        raise GenlabError(f"The only-masked padding is a whole number of pixels from 0 to "
                          f"{MAX_PADDING}, got {padding!r}.")  # fmt: skip
    return value


def check_count(count: Any, request: GenerationRequest) -> int:
    """The batch count as a whole number in range, its total work within the page's bound."""
    count = 1 if count is None or count == "" else int(count)
    if not 1 <= count <= MAX_BATCH_COUNT:
        raise GenlabError(f"The batch count is {count}; the page draws 1 to {MAX_BATCH_COUNT}.")
    if request.sized and request.work * count > xygrid.MAX_WORK:
        raise GenlabError("The batch count times the batch asks more work (images x steps x "
                          "pixels) than one press may: fewer passes, steps or pixels.")  # fmt: skip
    return count


def progress_line(i: int, count: int, event: Any, elapsed: float) -> str:
    """The "step n/N, elapsed s, ETA s" line of pass ``i`` (0-based) of ``count``: the ETA from this
    pass's own rate (``event.elapsed`` since it got the lock, over its steps done) times the
    steps left in it and in the passes after it; ``elapsed``: since the press, never reset."""
    left = (event.steps - event.step) + (count - 1 - i) * event.steps
    eta = event.elapsed / max(event.step, 1) * left
    where = f"pass {i + 1}/{count}, " if count > 1 else ""
    return f"{where}step {event.step}/{event.steps}, elapsed {elapsed:.0f} s, ETA {eta:.0f} s"


def controls_of(values: dict[str, Any]) -> Controls:
    """Controls from {name: value} (the page's inputs by name); missing ones default."""
    return Controls(**{k: v for k, v in values.items() if k in CONTROLS})
