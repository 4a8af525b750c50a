"""``genlab webui``: a local Gradio page over the same library calls as the command line.
txt2img (also the API endpoint ``txt2img``), img2img and inpainting, PNG info, the X/Y plot,
LoRA training, the model lab, the 2-D playground and the comparison. This module only lays
the page out and wires its events: what each event does is a method of
``handlers.Handlers``, which knows nothing of Gradio (nor do ``studio``, ``xygrid``, ``lab``
and ``training`` below it)."""

import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import lab, xygrid
from .handlers import (
    CONTROLS,
    HIRES,
    HIRES_SAMPLERS,
    HIRES_SCHEDULES,
    HIRES_UPSCALERS,
    INPAINT_AREAS,
    MAX_BATCH_COUNT,
    MAX_PADDING,
    SAMPLERS,
    SCHEDULES,
    SETTINGS,
    START_SIZE,
    Caller,
    Controls,
    Handlers,
    Shown,
    controls_of,
    error_message,
    hires_from_controls,
    unreadable_text,
)
from .studio import RANDOM_SEED, Studio

log = logging.getLogger("genlab.webui")
#: small images shown large: no smoothing, and an image input fills its box (a 32-px image
#: sent to img2img would otherwise sit as a 32-px speck in it)
CSS = (
    ".pixelated img { image-rendering: pixelated; }\n"
    ".fill-box img { width: 100%; height: 100%; object-fit: contain; }"
)


def page_errors(func: Callable) -> Callable:
    """Any failure becomes a message in the page (gr.Error); the app keeps serving."""
    import gradio as gr

    def message(e: BaseException) -> gr.Error:
        if isinstance(e, gr.Error):
            return e
        text = error_message(e)
        if text is None:
            log.exception("webui handler failed")
            text = f"Generation failed: {type(e).__name__}: {e}"
        return gr.Error(text)

    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def stream(*args, **kwargs):
            try:
                yield from func(*args, **kwargs)
            except Exception as e:
                raise message(e) from e

        return stream

    @functools.wraps(func)
    def call(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Exception as e:
            raise message(e) from e

    return call


def caller_of(request: Any, clients: Any) -> Caller:
    """The Caller of a queued event: its session (whose Interrupt and Skip stop it) and a
    check that its client still listens on the session's event stream, or on the event's
    own (the REST form, /call/NAME/EVENT). Gradio keeps the event id in its context."""
    session = getattr(request, "session_hash", None) if request is not None else None
    if not session:
        return Caller()
    from gradio.context import LocalContext

    event_id = LocalContext.event_id.get(None)
    return Caller(session, clients.present(session, event_id))


def endpoint(run: Callable[..., Iterator], names: tuple[str, ...], clients: Any = None
             ) -> Callable:  # fmt: skip
    """A streaming event function whose parameters are ``names`` (the API's names, with the
    Controls' defaults) and a progress bar: it calls ``run(values, progress, caller)``,
    ``values`` being {name: value}, ``caller`` who asked (``caller_of``; its ``present``
    watched when ``clients`` is given). One list of names instead of a signature written
    out per tab."""
    import gradio as gr

    defaults = {f: getattr(Controls(), f) for f in CONTROLS}
    progress = gr.Progress()
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(n, kind, default=defaults.get(n)) for n in names]
    signature = inspect.Signature([
        *params, inspect.Parameter("progress", kind, default=progress),
        inspect.Parameter("request", kind, default=None, annotation=gr.Request),
    ])  # fmt: skip

    def call(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        request = values.pop("request")
        caller = caller_of(request, clients) if clients is not None else Caller()
        yield from run(values, values.pop("progress"), caller)

    call.__signature__ = signature
    call.__annotations__ = {"request": gr.Request}  # how Gradio finds the request parameter
    call.__name__ = getattr(run, "__name__", "endpoint")
    return page_errors(call)


def _shown(view: Shown) -> Iterator[tuple]:
    """A generation tab's (gallery, info, seed) outputs; None: left as it is. While drawing,
    the parameters box shows the progress line (labelled so); at the end its label turns
    back, in a message of its own, since the last message must hold plain values (it is
    what an API client such as gradio_client receives)."""
    import gradio as gr

    gallery, seed = (gr.skip() if v is None else v for v in (view.gallery, view.seed))
    if view.status is not None:
        yield gallery, gr.Textbox(value=view.status, label="progress"), seed
        return
    if view.info is not None:
        yield gr.skip(), gr.Textbox(label="parameters"), gr.skip()
    yield gallery, gr.skip() if view.info is None else view.info, seed


def stop_buttons(page: Handlers, prefix: str) -> None:
    """Interrupt (the whole job stops; what is finished is kept and shown) and Skip (the
    current pass stops, the next goes on) for this page's own draws: ``Handlers.interrupt``,
    the HTTP API's /interrupt and /skip mechanism. Unqueued, so they act while a draw runs."""
    import gradio as gr

    with gr.Row():
        interrupt = gr.Button("Interrupt", size="sm", elem_id=f"{prefix}-interrupt")
        skip = gr.Button("Skip", size="sm", elem_id=f"{prefix}-skip")

    def stopper(reason: str) -> Callable:
        def stop(request: gr.Request) -> None:
            page.interrupt(getattr(request, "session_hash", None), reason)

        return stop

    for button, reason in ((interrupt, "interrupt"), (skip, "skip")):
        button.click(stopper(reason), None, None, queue=False, api_visibility="private",
                     show_progress="hidden")  # fmt: skip


def build_app(studio: Studio) -> Any:
    """The gr.Blocks of the whole page."""
    import gradio as gr

    page = Handlers(studio)
    cat = studio.catalog

    def draw_event(method: Callable, first: tuple[str, ...] = (), last: tuple[str, ...] = (),
                   keywords: tuple[str, ...] = ()) -> Callable:  # fmt: skip
        """txt2img / img2img / inpaint: the ``first`` inputs (the image), the controls, the
        ``last`` ones (strength), then ``keywords`` (the inpaint area); the method takes
        ``first`` and ``last`` in that order, and ``keywords`` by name."""

        def run(values: dict, progress: Any, caller: Caller) -> Iterator[tuple]:
            args = [values[name] for name in (*first, *last)]
            named = {name: values[name] for name in keywords}
            views = method(*args, controls=controls_of(values), progress=progress,
                           caller=caller, **named)  # fmt: skip
            for view in views:
                yield from _shown(view)

        run.__name__ = method.__name__
        return endpoint(run, (*first, *CONTROLS, *last, *keywords), studio.clients)

    with gr.Blocks(title="genlab", analytics_enabled=False, fill_width=True) as app:
        gr.Markdown(
            "# genlab\nText to image on your own machine, and every family of generative "
            "model from the Gaussian to diffusion. Images are saved with their parameters in "
            f"`{studio.out}`."
        )
        last_seed = gr.State(RANDOM_SEED)
        selected = gr.State(None)
        with gr.Row():
            model = gr.Dropdown(list(cat.text_to_image), value="builtin", label="model", scale=2)
            lora_pick = gr.Dropdown(list(cat.loras), value=[], multiselect=True, label="LoRA",
                                    elem_id="lora-pick", scale=2)  # fmt: skip
            lora_scale = gr.Slider(0, 2, value=1.0, step=0.05, label="LoRA scale", scale=1)
            refresh = gr.Button("refresh models", scale=0)
        unreadable = gr.Markdown(unreadable_text(cat), elem_id="unreadable-models")
        picks = {"model": model, "loras": lora_pick, "lora_scale": lora_scale}
        sizes = []  # every tab's (width, height) sliders: they follow the model's own size
        drawing = []  # every tab's (sampler, steps, cfg): they follow the model's defaults

        def settings(prefix: str) -> dict[str, Any]:
            """The shared drawing controls of one tab, by their Controls names."""
            with gr.Row():
                sampler = gr.Dropdown(list(SAMPLERS), value="dpmpp-2m", label="sampler")
                schedule = gr.Dropdown(list(SCHEDULES), value="default", label="schedule",
                                       elem_id=f"{prefix}-schedule")  # fmt: skip
                # from 0, so that a 0 typed in is refused in a sentence, not raised to 1
                steps = gr.Slider(0, xygrid.MAX_STEPS, value=20, step=1, label="steps",
                                  elem_id=f"{prefix}-steps")  # fmt: skip
                cfg = gr.Slider(*xygrid.CFG_RANGE, value=5.0, step=0.5, label="CFG scale")
            with gr.Row():
                seed = gr.Number(
                    RANDOM_SEED, precision=0, label="seed (-1: random)", elem_id=f"{prefix}-seed"
                )
                dice = gr.Button("random", scale=0, elem_id=f"{prefix}-dice")
                reuse = gr.Button("reuse last seed", scale=0, elem_id=f"{prefix}-reuse")
            with gr.Row():
                batch = gr.Slider(
                    1, xygrid.MAX_BATCH, value=1, step=1, label="batch size",
                    elem_id=f"{prefix}-batch",
                )  # fmt: skip
                width = gr.Slider(*xygrid.SIZE_RANGE, value=START_SIZE, step=8, label="width",
                                  elem_id=f"{prefix}-width")  # fmt: skip
                height = gr.Slider(*xygrid.SIZE_RANGE, value=START_SIZE, step=8, label="height",
                                   elem_id=f"{prefix}-height")  # fmt: skip
                count = batch_count(prefix)
            dice.click(lambda: RANDOM_SEED, None, seed, api_visibility="private")
            reuse.click(lambda s: s, last_seed, seed, api_visibility="private")
            sizes.extend([width, height])
            drawing.extend([sampler, steps, cfg])
            values = [sampler, schedule, steps, cfg, seed, batch, width, height, count]
            return dict(zip(SETTINGS, values, strict=True))

        def results(prefix: str):
            gallery = gr.Gallery(label="images", columns=2, height=420, object_fit="contain",
                                 elem_id=f"{prefix}-gallery", elem_classes="pixelated")  # fmt: skip
            info = gr.Textbox(label="parameters", lines=3, elem_id=f"{prefix}-info")
            return gallery, info

        def inputs(prompts: dict, tab: dict) -> list:
            """The components of CONTROLS, in their order."""
            every = {**prompts, **tab, **picks}
            return [every[name] for name in CONTROLS]

        def hires_controls() -> list:
            """txt2img's "Hires. fix": draw at the size above, upscale, redraw with img2img."""
            with gr.Accordion("Hires. fix", open=False, elem_id="txt2img-hires"):
                enable = gr.Checkbox(False, label="upscale: draw at the size above, then "
                                     "redraw larger", elem_id="txt2img-enable-hr")  # fmt: skip
                with gr.Row():
                    upscaler = gr.Dropdown(list(HIRES_UPSCALERS), value="Latent",
                                           label="upscaler")  # fmt: skip
                    scale = gr.Slider(1, 4, value=2, step=0.05, label="upscale by")
                    steps = gr.Slider(0, xygrid.MAX_STEPS, value=0, step=1,
                                      label="hires steps (0: as steps)")  # fmt: skip
                    strength = gr.Slider(0.01, 1, value=0.7, step=0.01,
                                         label="denoising strength")  # fmt: skip
                with gr.Row():
                    resize_x = gr.Slider(0, xygrid.SIZE_RANGE[1], value=0, step=8,
                                         label="resize width to (0: by the scale)")  # fmt: skip
                    resize_y = gr.Slider(0, xygrid.SIZE_RANGE[1], value=0, step=8,
                                         label="resize height to (0: by the scale)")  # fmt: skip
                # the second pass's own sampler, schedule and prompts (webui's "Use same
                # ..." and empty prompts: the first pass's)
                with gr.Row():
                    sampler = gr.Dropdown(list(HIRES_SAMPLERS), value=HIRES_SAMPLERS[0],
                                          label="hires sampler",
                                          elem_id="txt2img-hr-sampler")  # fmt: skip
                    schedule = gr.Dropdown(list(HIRES_SCHEDULES), value=HIRES_SCHEDULES[0],
                                           label="hires schedule",
                                           elem_id="txt2img-hr-schedule")  # fmt: skip
                with gr.Row():
                    hr_prompt = gr.Textbox(label="hires prompt (empty: the prompt)", lines=1,
                                           elem_id="txt2img-hr-prompt")  # fmt: skip
                    hr_negative = gr.Textbox(label="hires negative prompt (empty: the "
                                             "negative prompt)", lines=1,
                                             elem_id="txt2img-hr-negative")  # fmt: skip
            values = [enable, scale, upscaler, steps, strength, resize_x, resize_y, sampler,
                      schedule, hr_prompt, hr_negative]  # fmt: skip
            return values

        def txt2img_run(values: dict, progress: Any, caller: Caller) -> Iterator[tuple]:
            hires = hires_from_controls(*(values[name] for name in HIRES))
            for view in page.txt2img(controls_of(values), progress, caller, hires=hires):
                yield from _shown(view)

        txt2img_run.__name__ = "txt2img"
        with gr.Tabs() as tabs:
            with gr.Tab("txt2img", id="txt2img"), gr.Row():
                with gr.Column(scale=3):
                    prompt = gr.Textbox(
                        label="prompt", lines=2, elem_id="prompt",
                        placeholder="a red circle to the left of a blue square",
                    )  # fmt: skip
                    negative = gr.Textbox(label="negative prompt", lines=1)
                    go = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop_buttons(page, "txt2img")
                    t2i = settings("txt2img")
                    hires = hires_controls()
                with gr.Column(scale=2):
                    gallery, info = results("txt2img")
                    send = gr.Button("send to img2img / inpaint", elem_id="txt2img-send")
            t2i_prompts = {"prompt": prompt, "negative_prompt": negative}
            t2i_inputs = inputs(t2i_prompts, t2i)
            txt2img = endpoint(txt2img_run, (*CONTROLS, *HIRES), studio.clients)
            t2i_hires = [*t2i_inputs, *hires]
            t2i_drawn = go.click(txt2img, t2i_hires, [gallery, info, last_seed],
                                 api_name="txt2img", concurrency_id="draw",
                                 show_progress="hidden")  # fmt: skip
            t2i_submitted = prompt.submit(txt2img, t2i_hires, [gallery, info, last_seed],
                                          api_visibility="private", concurrency_id="draw",
                                          show_progress="hidden")  # fmt: skip

            def pick(event: gr.SelectData):
                return event.value["image"]["path"]

            gallery.select(pick, None, selected, api_visibility="private")

            with gr.Tab("img2img", id="img2img"), gr.Row():
                with gr.Column(scale=3):
                    with gr.Tab("img2img"):
                        init = gr.Image(type="pil", label="image", image_mode="RGB", height=280,
                                        elem_id="img2img-image",
                                        elem_classes=["pixelated", "fill-box"])  # fmt: skip
                        i2i_strength = gr.Slider(0.05, 1, value=0.6, step=0.05, label="strength")
                        go_i2i = gr.Button("Redraw (img2img)", variant="primary")
                    # rendered while hidden: an editor first shown after "send" stays empty
                    with gr.Tab("inpaint", render_children=True):
                        editor = gr.ImageEditor(
                            type="pil", label="paint the region to regenerate", layers=False,
                            brush=gr.Brush(colors=["#ffffff"], color_mode="fixed",
                                           default_size=4), height=280,
                            elem_id="inpaint-editor",
                        )  # fmt: skip
                        inp_strength = gr.Slider(0.05, 1, value=1.0, step=0.05, label="strength")
                        with gr.Row():  # webui's: the whole picture, or the region drawn large
                            inp_area = gr.Radio(list(INPAINT_AREAS), value=INPAINT_AREAS[0],
                                                type="index", label="Inpaint area",
                                                elem_id="inpaint-area")  # fmt: skip
                            inp_padding = gr.Slider(0, MAX_PADDING, value=32, step=4,
                                                    label="Only masked padding, pixels",
                                                    elem_id="inpaint-padding")  # fmt: skip
                        go_inp = gr.Button("Inpaint", variant="primary")
                    i2i_prompt = gr.Textbox(label="prompt", lines=2, elem_id="img2img-prompt")
                    i2i_negative = gr.Textbox(label="negative prompt")
                    stop_buttons(page, "img2img")
                    i2i = settings("img2img")
                with gr.Column(scale=2):
                    i2i_gallery, i2i_info = results("img2img")
            i2i_inputs = inputs({"prompt": i2i_prompt, "negative_prompt": i2i_negative}, i2i)
            i2i_drawn = go_i2i.click(
                draw_event(page.img2img, ("image",), ("strength",)),
                [init, *i2i_inputs, i2i_strength], [i2i_gallery, i2i_info, last_seed],
                api_name="img2img", concurrency_id="draw", show_progress="hidden",
            )  # fmt: skip
            inp_drawn = go_inp.click(
                draw_event(page.inpaint, ("editor",), ("strength",),
                           ("inpaint_full_res", "inpaint_full_res_padding")),
                [editor, *i2i_inputs, inp_strength, inp_area, inp_padding],
                [i2i_gallery, i2i_info, last_seed],
                api_name="inpaint", concurrency_id="draw", show_progress="hidden",
            )  # fmt: skip

            def send_to_img2img(path, prompt, negative, shown):
                sent = page.send_to_img2img(path, prompt, negative, shown)
                return (*sent, gr.Tabs(selected="img2img"))

            send.click(
                page_errors(send_to_img2img), [selected, prompt, negative, gallery],
                [init, editor, i2i_prompt, i2i_negative, tabs], api_visibility="private",
            )  # fmt: skip

            with gr.Tab("PNG info", id="pnginfo"):
                png = gr.Image(type="filepath", label="a PNG made by genlab or the webui",
                               elem_id="pnginfo-image")  # fmt: skip
                png_text = gr.Textbox(label="parameters", lines=4, elem_id="pnginfo-text")
                png_fields = gr.JSON(label="fields")
                to_t2i = gr.Button("send to txt2img", elem_id="pnginfo-send")
            png.change(page_errors(page.png_info), png, [png_text, png_fields],
                       api_name="png_info")  # fmt: skip

            # the controls and the hires fix accordion (the batch size is the page's own)
            sent = [name for name in (*CONTROLS, *HIRES) if name != "batch_size"]
            t2i_by_name = dict(zip((*CONTROLS, *HIRES), t2i_hires, strict=True))

            def send_to_txt2img(text):
                values = page.send_to_txt2img(text)
                return (*(values.get(n, gr.skip()) for n in sent), gr.Tabs(selected="txt2img"))

            to_t2i.click(page_errors(send_to_txt2img), png_text,
                         [*(t2i_by_name[n] for n in sent), tabs],
                         api_visibility="private")  # fmt: skip

            with gr.Tab("X/Y plot", id="xy"):
                gr.Markdown("One grid over two axes; the other settings come from txt2img. "
                            "Values are comma-separated; prompt S/R replaces its first value "
                            "in the prompt by each value.")  # fmt: skip
                with gr.Row():
                    x_axis = gr.Dropdown(list(xygrid.AXES), value="seed", label="X axis")
                    x_values = gr.Textbox("1, 2, 3, 4", label="X values")
                with gr.Row():
                    y_axis = gr.Dropdown(list(xygrid.AXES), value="CFG scale", label="Y axis")
                    y_values = gr.Textbox("1, 3, 7", label="Y values")
                go_xy = gr.Button("Draw the grid", variant="primary")
                xy_image = gr.Image(label="grid", type="filepath", interactive=False)
                xy_info = gr.Textbox(label="parameters", lines=3)

            axes = ("x_axis", "x_values", "y_axis", "y_values")

            def xy_plot(values: dict, progress: Any, caller: Caller) -> Iterator[tuple]:
                """One grid over two axes; a generator that yields at every step, so a grid
                whose client left stops at its next step (Gradio closes it, and the caller's
                ``present`` check sees it)."""
                grid = page.xy_plot(controls_of(values), *(values[a] for a in axes),
                                    progress=progress, caller=caller)  # fmt: skip
                for out in grid:
                    yield (gr.skip(), gr.skip()) if out is None else out

            go_xy.click(
                endpoint(xy_plot, (*CONTROLS, *axes), studio.clients),
                [*t2i_inputs, x_axis, x_values, y_axis, y_values], [xy_image, xy_info],
                api_name="xy_plot", concurrency_id="draw",
            )  # fmt: skip

            with gr.Tab("Train", id="train"):
                train_done = train_tab(page)

            with gr.Tab("Model lab", id="lab"):
                lab_tab(page, app)

            with gr.Tab("Playground", id="playground"):
                playground_tab(app)

            with gr.Tab("Compare", id="compare"):
                compare_tab(page)

            with gr.Tab("History", id="history"):
                history_tab(page, [(t2i_drawn, gallery), (t2i_submitted, gallery),
                                   (i2i_drawn, i2i_gallery), (inp_drawn, i2i_gallery)])  # fmt: skip

        def rescan():
            models, loras, text = page.rescan()
            return gr.Dropdown(choices=models), gr.Dropdown(choices=loras), text

        pickers = [model, lora_pick, unreadable]
        refresh.click(rescan, None, pickers, api_visibility="private")
        for trigger in (train_done.change, app.load):  # a new page sees new runs and LoRAs
            trigger(rescan, None, pickers, api_visibility="private")

        def model_size(name):
            """Every tab's sliders at the model's own size, range and step."""
            size = page.model_size(name)
            sliders = tuple(
                gr.Slider(value=value, step=size.step, minimum=size.step, maximum=top)
                for _ in range(len(sizes) // 2)
                for value, top in ((size.width, size.max_width), (size.height, size.max_height))
            )
            own = (gr.Dropdown(value=size.sampler), gr.Slider(value=size.steps),
                   gr.Slider(value=size.cfg))  # fmt: skip
            return sliders + own * (len(drawing) // 3)

        for trigger in (model.change, app.load):  # the model's own size, in every tab
            trigger(page_errors(model_size), model, [*sizes, *drawing], api_visibility="private")
    return app


def batch_count(prefix: str) -> Any:
    """webui's batch count: passes of the batch one press draws, seeds following on (Skip
    ends one pass and goes on with the next)."""
    import gradio as gr

    return gr.Slider(1, MAX_BATCH_COUNT, value=1, step=1, label="batch count",
                     elem_id=f"{prefix}-count")  # fmt: skip


def history_tab(page: Handlers, draws: list[tuple[Any, Any]]) -> None:
    """The session's images, newest first (at most handlers.HISTORY_SIZE): each draw of
    ``draws`` (an event and the gallery it fills) adds its images once it has finished."""
    import gradio as gr

    from .handlers import HISTORY_SIZE, remember

    history = gr.State([])
    gr.Markdown(f"The images this page drew in this session, newest first (the last "
                f"{HISTORY_SIZE}); all of them are also in `{page.studio.out}`.")  # fmt: skip
    shown = gr.Gallery(label="history", columns=6, height=420, object_fit="contain",
                       elem_id="history-gallery", elem_classes="pixelated")  # fmt: skip

    def add(items, past):
        kept = remember(past, items, page.studio.out)
        return kept, kept

    for event, gallery in draws:
        event.success(add, [gallery, history], [history, shown], api_visibility="private")


def train_tab(page: Handlers) -> Any:
    """LoRA fine-tuning of the chosen text-to-image model on uploaded images (or a folder):
    progress, loss plot, cancel and resume; returns a component that changes when a LoRA is
    saved (the pickers refresh on it)."""
    import gradio as gr

    from .training import EXAMPLE_DATASET, EXAMPLE_SETTINGS, dataset_names, lora_root

    root = lora_root(page.catalog.runs_dir)
    datasets = page.catalog.datasets_dir
    gr.Markdown(
        "Teach the model something new from a few dozen images: upload them with a caption "
        "each (`NAME.txt` beside `NAME.png`), or give one caption for all. The LoRA is saved "
        f"in `{root}` and appears in the LoRA picker. To try it first, press **try the "
        "example**: a dozen captioned scenes in teal, a colour the built-in model never saw."
    )
    with gr.Row():
        with gr.Column():
            files = gr.File(label="images and captions", file_count="multiple",
                            file_types=["image", ".txt"])  # fmt: skip
            folder = gr.Dropdown(dataset_names(datasets), value=None, elem_id="train-folder",
                                 label="or a folder: the shipped example"
                                 + (", or one of --datasets-dir" if datasets else ""))  # fmt: skip
            example = gr.Button("try the example", elem_id="train-example", scale=0)
            caption = gr.Textbox(label="caption for images without a NAME.txt",
                                 placeholder="a teal circle")  # fmt: skip
        with gr.Column():
            name = gr.Textbox("my-lora", label="LoRA name", elem_id="lora-name")
            base = gr.Dropdown(list(page.catalog.text_to_image), value="builtin",
                               label="base model")  # fmt: skip
            with gr.Row():
                rank = gr.Slider(1, 64, value=4, step=1, label="rank")
                steps = gr.Slider(10, 5000, value=400, step=10, label="steps")
                lr = gr.Number(1e-3, label="learning rate")
            bucket = gr.Checkbox(False, elem_id="train-bucket",
                                 label="aspect-ratio buckets: keep each image's proportions "
                                 "(Stable Diffusion / SDXL bases)")  # fmt: skip
            resume = gr.Checkbox(False, label="resume the run of this name (up to the steps)")
            with gr.Row():
                go = gr.Button("Train", variant="primary")
                stop = gr.Button("Cancel")
    status = gr.Markdown()
    loss = gr.Plot(label="loss")
    done = gr.Textbox(visible=False)

    @page_errors
    def train(files, folder, caption, name, base, rank, steps, lr, resume, bucket,
              progress=gr.Progress()):  # noqa: B008  # fmt: skip
        from gradio.utils import get_upload_folder

        uploads = (Path(get_upload_folder()),)
        for view in page.train(files, folder, caption, name, base, rank, steps, lr, resume,
                               uploads=uploads, progress=progress, bucket=bucket):  # fmt: skip
            yield view.status, view.figure, gr.update() if view.saved is None else view.saved

    def try_example():
        s = EXAMPLE_SETTINGS
        return None, EXAMPLE_DATASET, s["caption"], s["name"], "builtin", s["steps"], False

    example.click(try_example, None, [files, folder, caption, name, base, steps, resume],
                  api_visibility="private")  # fmt: skip
    go.click(train, [files, folder, caption, name, base, rank, steps, lr, resume, bucket],
             [status, loss, done], concurrency_id="draw", api_visibility="private")  # fmt: skip
    stop.click(page.cancel_training, None, None, api_visibility="private")
    return done


def lab_tab(page: Handlers, app: Any) -> None:
    """Any trained run, or a model shipped in genlab: its metrics and plots (a shipped
    model's card), and samples with controls built from the model's declared sampling
    options."""
    import gradio as gr

    cat = page.catalog
    runs = cat.lab_names()
    run = gr.Dropdown(runs, value=runs[0] if runs else None, label="trained run",
                      elem_id="lab-run", info=f"runs found under {cat.runs_dir}, then the "
                      "models shipped in genlab ('shipped: ...')")  # fmt: skip
    with gr.Row():
        summary = gr.JSON(label="meta and metrics")
        figures = gr.Gallery(label="the run's plots", columns=3, height=300)

    for trigger in (run.change, app.load):
        trigger(page_errors(page.lab_show), run, [summary, figures], api_visibility="private")

    @gr.render(inputs=run)
    def controls(name):
        if not name:
            gr.Markdown("No trained runs found: train one (`genlab train vae --out runs/vae`).")
            return
        schema = page_errors(page.lab_options)(name)
        widgets = []
        with gr.Row():
            n = gr.Slider(1, 256, value=64, step=1, label="samples")
            seed = gr.Number(0, precision=0, label="seed")
        with gr.Row():
            for o in schema:
                label = f"{o['name']} ({o['help']})"
                if o["choices"]:
                    w = gr.Dropdown(o["choices"], value=o["default"], label=label)
                elif o["type"] == "bool":
                    w = gr.Checkbox(value=bool(o["default"]), label=label)
                else:
                    w = gr.Number(o["default"], label=label,
                                  precision=0 if o["type"] == "int" else None)  # fmt: skip
                widgets.append(w)
        go = gr.Button("Sample", variant="primary")
        picture = gr.Image(label="samples", type="filepath", interactive=False)

        @page_errors
        def sample(n, seed, *values):
            options = {o["name"]: v for o, v in zip(schema, values, strict=True)}
            return page.lab_sample(name, n, seed, options)

        go.click(sample, [n, seed, *widgets], picture, concurrency_id="draw",
                 api_visibility="private")  # fmt: skip


def compare_tab(page: Handlers) -> None:
    """genlab compare in the page: the families trained on one data set (2-D or digits),
    measured, with the table and the sample plots."""
    import gradio as gr

    from ..evaluation.compare import FAMILIES

    models = list(dict.fromkeys(f.model for f in FAMILIES))
    gr.Markdown("Train every family on the same data with several seeds and measure them "
                "(the command line's `genlab compare`; recipes' full length takes tens of "
                "minutes on a laptop, a few hundred steps a few minutes).")  # fmt: skip
    with gr.Row():
        data = gr.Dropdown(["8gaussians", "moons", "rings", "checkerboard", "digits"],
                           value="8gaussians", label="data")  # fmt: skip
        chosen = gr.CheckboxGroup(models, value=models, label="families")
        seeds = gr.Slider(1, 5, value=2, step=1, label="seeds")
        steps = gr.Slider(50, 5000, value=300, step=50, label="training steps")
    go = gr.Button("Compare", variant="primary")
    table = gr.Markdown()
    samples = gr.Image(label="samples (seed 0)", interactive=False)

    @page_errors
    def run(data, chosen, seeds, steps, progress=gr.Progress()):  # noqa: B008
        return page.compare(data, chosen, seeds, steps, progress=progress)

    go.click(run, [data, chosen, seeds, steps], [table, samples], concurrency_id="draw",
             api_visibility="private")  # fmt: skip


def playground_tab(app: Any) -> None:
    """A mixture, a flow or a diffusion model fitted live on a 2-D toy set."""
    import gradio as gr

    with gr.Row():
        data = gr.Dropdown(list(lab.TOY_SETS), value="8gaussians", label="toy data")
        family = gr.Radio(list(lab.FAMILIES), value="gmm", label="model")
        components = gr.Slider(1, 16, value=8, step=1, label="mixture components")
        steps = gr.Slider(50, 2000, value=300, step=50, label="training steps (flow, diffusion)")
    fit = gr.Button("Fit and show the density", variant="primary")
    density = gr.Plot(label="log-density")
    with gr.Row():
        with gr.Column():
            iteration = gr.Slider(1, 60, value=1, step=1, label="EM iteration")
            em_plot = gr.Plot(label="EM, step by step")
            em_text = gr.Markdown()
        with gr.Column():
            t = gr.Slider(1, 1000, value=100, step=1, label="diffusion time t")
            forward = gr.Plot(label="forward process q(x_t | x_0)")

    @page_errors
    def fit_density(data, family, components, steps):
        model = lab.fit_toy(family, data, components=int(components), steps=int(steps))
        grid = 25 if family == "ddpm" else 60  # each diffusion log p solves an ODE
        return lab.density_figure(model, data, title=f"{family} on {data}", grid=grid)

    fit.click(fit_density, [data, family, components, steps], density, concurrency_id="draw",
              api_visibility="private")  # fmt: skip
    em_inputs = [data, components, iteration]
    for trigger in (iteration.release, data.change, components.release, app.load):
        trigger(page_errors(lab.em_figure), em_inputs, [em_plot, em_text],
                api_visibility="private")  # fmt: skip
    for trigger in (t.release, data.change, app.load):
        trigger(page_errors(lab.forward_figure), [data, t], forward, api_visibility="private")
