"""``genlab webui``: a local Gradio page over the same library calls as the command line.
txt2img (also the API endpoint ``txt2img``), img2img and inpainting, PNG info, the X/Y plot,
LoRA training, the model lab, the 2-D playground and the comparison. The page layout is
here; the work is in ``studio``, ``xygrid``, ``lab`` and ``training``, which know nothing
of Gradio."""

import contextlib
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import GenlabError
from ..generation.pnginfo import parse_parameters, read_parameters
from ..generation.request import WEBUI_SAMPLERS, GenerationRequest
from . import lab, xygrid
from .catalog import Catalog, run_summary
from .studio import RANDOM_SEED, Studio, fit_image, mask_from_editor, resolve_seed

log = logging.getLogger("genlab.webui")
SAMPLERS = list(WEBUI_SAMPLERS)
_FROM_WEBUI = {v: k for k, v in WEBUI_SAMPLERS.items()}
CSS = ".pixelated img { image-rendering: pixelated; }"


def page_errors(func: Callable) -> Callable:
    """Any failure becomes a message in the page (gr.Error); the app keeps serving."""
    import inspect

    import gradio as gr

    def message(e: BaseException) -> gr.Error:
        if isinstance(e, gr.Error):
            return e
        if isinstance(e, GenlabError):
            return gr.Error(str(e))
        if isinstance(e, MemoryError) or "out of memory" in str(e).lower():
            return gr.Error("Out of memory: draw fewer or smaller images, or use fewer steps.")
        log.exception("webui handler failed")
        return gr.Error(f"Generation failed: {type(e).__name__}: {e}")

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


def unreadable_text(cat: Catalog) -> str:
    """The model files found but not readable, with their reasons (empty when none)."""
    if not cat.unreadable:
        return ""
    lines = [f"- `{name}`: {reason}" for name, reason in sorted(cat.unreadable.items())]
    return "**Unreadable model files** (not offered):\n" + "\n".join(lines)


def build_app(studio: Studio) -> Any:
    """The gr.Blocks of the whole page."""
    import gradio as gr

    cat = studio.catalog

    def request_of(prompt, negative, sampler, steps, cfg, seed, batch, width, height,
                   loras=None, lora_scale=1.0, **images):  # fmt: skip
        chosen = tuple((str(cat.lora(name)), float(lora_scale)) for name in loras or ())
        return GenerationRequest(
            prompt, negative or "", sampler, int(steps), float(cfg), resolve_seed(seed),
            int(batch), int(width), int(height), loras=chosen, **images,
        )  # fmt: skip

    def draw(request: GenerationRequest, model: str, kind: str, progress: Any):
        """Stream (gallery, info, seed): previews while drawing, then the saved images. It
        yields at every progress report, so Gradio, which stops a generator whose client
        left at its next yield, closes it soon and the draw stops at its next step."""
        with contextlib.closing(studio.generate(request, model, kind)) as events:
            yield from _draw_events(events, request, progress)

    def _draw_events(events, request: GenerationRequest, progress: Any):
        for event in events:
            if event[0] == "step":
                progress(event[1] / event[2], desc=f"step {event[1]}/{event[2]}")
                yield gr.skip(), gr.skip(), gr.skip()
            elif event[0] == "preview":
                _, step, steps, images = event
                progress(step / steps, desc=f"step {step}/{steps}")
                yield [(im, f"preview, step {step}/{steps}") for im in images], "", request.seed
            else:
                _, paths, result = event
                items = [(str(p), text) for p, text in zip(paths, result.parameters, strict=True)]
                yield items, result.parameters[0], request.seed

    @page_errors
    def txt2img(
        prompt: str,
        negative_prompt: str | None = None,
        sampler: str = "dpmpp-2m",
        steps: int = 20,
        cfg_scale: float = 5.0,
        seed: int = RANDOM_SEED,
        batch_size: int = 1,
        width: int = 32,
        height: int = 32,
        model: str = "builtin",
        loras: list[str] | None = None,
        lora_scale: float = 1.0,
        progress=gr.Progress(),  # noqa: B008 (Gradio's way of asking for a progress bar)
    ):
        """Draw images from a prompt; returns the gallery, the first image's parameters
        and the seed used (-1 draws a random seed)."""
        request = request_of(
            prompt, negative_prompt, sampler, steps, cfg_scale, seed, batch_size, width, height,
            loras, lora_scale,
        )  # fmt: skip
        yield from draw(request, model, "txt2img", progress)

    @page_errors
    def img2img(
        image: Any,
        prompt: str,
        negative_prompt: str | None = None,
        sampler: str = "dpmpp-2m",
        steps: int = 20,
        cfg_scale: float = 5.0,
        seed: int = RANDOM_SEED,
        batch_size: int = 1,
        width: int = 32,
        height: int = 32,
        strength: float = 0.6,
        model: str = "builtin",
        loras: list[str] | None = None,
        lora_scale: float = 1.0,
        progress=gr.Progress(),  # noqa: B008
    ):
        """Redraw ``image`` (resized to width x height) after the prompt."""
        if image is None:
            raise GenlabError("Upload an image (or send one from txt2img) first.")
        init = fit_image(image, int(width), int(height))
        request = request_of(
            prompt, negative_prompt, sampler, steps, cfg_scale, seed, batch_size, width, height,
            loras, lora_scale, init_image=init, strength=float(strength),
        )  # fmt: skip
        yield from draw(request, model, "img2img", progress)

    @page_errors
    def inpaint(
        editor: Any,
        prompt: str,
        negative_prompt: str | None = None,
        sampler: str = "dpmpp-2m",
        steps: int = 20,
        cfg_scale: float = 5.0,
        seed: int = RANDOM_SEED,
        batch_size: int = 1,
        width: int = 32,
        height: int = 32,
        strength: float = 1.0,
        model: str = "builtin",
        loras: list[str] | None = None,
        lora_scale: float = 1.0,
        progress=gr.Progress(),  # noqa: B008
    ):
        """Regenerate the painted region of the editor's image after the prompt."""
        init, mask = mask_from_editor(editor, int(width), int(height))
        request = request_of(
            prompt, negative_prompt, sampler, steps, cfg_scale, seed, batch_size, width, height,
            loras, lora_scale, init_image=init, strength=float(strength), mask=mask,
        )  # fmt: skip
        yield from draw(request, model, "inpaint", progress)

    @page_errors
    def png_info(path):
        if path is None:
            return "", {}
        text = read_parameters(path)
        return text, parse_parameters(text)

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
        picks = [model, lora_pick, lora_scale]

        def settings(prefix: str):
            """The shared drawing controls of one tab."""
            with gr.Row():
                sampler = gr.Dropdown(SAMPLERS, value="dpmpp-2m", label="sampler")
                steps = gr.Slider(1, xygrid.MAX_STEPS, value=20, step=1, label="steps")
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
                width = gr.Slider(*xygrid.SIZE_RANGE, value=32, step=8, label="width")
                height = gr.Slider(*xygrid.SIZE_RANGE, value=32, step=8, label="height")
            dice.click(lambda: RANDOM_SEED, None, seed, api_visibility="private")
            reuse.click(lambda s: s, last_seed, seed, api_visibility="private")
            return [sampler, steps, cfg, seed, batch, width, height]

        def results(prefix: str):
            gallery = gr.Gallery(label="images", columns=2, height=420, object_fit="contain",
                                 elem_id=f"{prefix}-gallery", elem_classes="pixelated")  # fmt: skip
            info = gr.Textbox(label="parameters", lines=3, elem_id=f"{prefix}-info")
            return gallery, info

        with gr.Tabs() as tabs:
            with gr.Tab("txt2img", id="txt2img"), gr.Row():
                with gr.Column(scale=3):
                    prompt = gr.Textbox(
                        label="prompt", lines=2, elem_id="prompt",
                        placeholder="a red circle to the left of a blue square",
                    )  # fmt: skip
                    negative = gr.Textbox(label="negative prompt", lines=1)
                    go = gr.Button("Generate", variant="primary", elem_id="generate")
                    t2i = settings("txt2img")
                with gr.Column(scale=2):
                    gallery, info = results("txt2img")
                    send = gr.Button("send to img2img")
            go.click(
                txt2img, [prompt, negative, *t2i, *picks], [gallery, info, last_seed],
                api_name="txt2img", concurrency_id="draw",
            )  # fmt: skip
            prompt.submit(txt2img, [prompt, negative, *t2i, *picks], [gallery, info, last_seed],
                          api_visibility="private", concurrency_id="draw")  # fmt: skip

            def pick(event: gr.SelectData):
                return event.value["image"]["path"]

            gallery.select(pick, None, selected, api_visibility="private")

            with gr.Tab("img2img", id="img2img"), gr.Row():
                with gr.Column(scale=3):
                    with gr.Tab("img2img"):
                        init = gr.Image(type="pil", label="image", image_mode="RGB", height=280)
                        i2i_strength = gr.Slider(0.05, 1, value=0.6, step=0.05, label="strength")
                        go_i2i = gr.Button("Redraw (img2img)", variant="primary")
                    with gr.Tab("inpaint"):
                        editor = gr.ImageEditor(
                            type="pil", label="paint the region to regenerate", layers=False,
                            brush=gr.Brush(colors=["#ffffff"], color_mode="fixed",
                                           default_size=4), height=280,
                        )  # fmt: skip
                        inp_strength = gr.Slider(0.05, 1, value=1.0, step=0.05, label="strength")
                        go_inp = gr.Button("Inpaint", variant="primary")
                    i2i_prompt = gr.Textbox(label="prompt", lines=2, elem_id="img2img-prompt")
                    i2i_negative = gr.Textbox(label="negative prompt")
                    i2i = settings("img2img")
                with gr.Column(scale=2):
                    i2i_gallery, i2i_info = results("img2img")
            go_i2i.click(
                img2img,
                [init, i2i_prompt, i2i_negative, *i2i, i2i_strength, *picks],
                [i2i_gallery, i2i_info, last_seed], api_name="img2img", concurrency_id="draw",
            )  # fmt: skip
            go_inp.click(
                inpaint,
                [editor, i2i_prompt, i2i_negative, *i2i, inp_strength, *picks],
                [i2i_gallery, i2i_info, last_seed], api_name="inpaint", concurrency_id="draw",
            )  # fmt: skip

            def send_to_img2img(path, prompt, negative):
                if not path:
                    raise gr.Error("Click an image in the gallery first.")
                if not Path(path).resolve().is_relative_to(studio.out):  # a path the browser
                    raise gr.Error("That image is not one of this page's.")  # sent: checked
                from PIL import Image

                with Image.open(path) as im:
                    picture = im.convert("RGB")
                return (picture, {"background": picture, "layers": [], "composite": picture},
                        prompt, negative, gr.Tabs(selected="img2img"))  # fmt: skip

            send.click(
                send_to_img2img, [selected, prompt, negative],
                [init, editor, i2i_prompt, i2i_negative, tabs], api_visibility="private",
            )  # fmt: skip

            with gr.Tab("PNG info", id="pnginfo"):
                png = gr.Image(type="filepath", label="a PNG made by genlab or the webui",
                               elem_id="pnginfo-image")  # fmt: skip
                png_text = gr.Textbox(label="parameters", lines=4, elem_id="pnginfo-text")
                png_fields = gr.JSON(label="fields")
                to_t2i = gr.Button("send to txt2img")
            png.change(page_errors(png_info), png, [png_text, png_fields], api_name="png_info")

            def send_to_txt2img(fields):
                if not fields:
                    raise gr.Error("Read a PNG's parameters first.")
                width, _, height = fields.get("Size", "32x32").partition("x")
                return (
                    fields.get("Prompt", ""), fields.get("Negative prompt", ""),
                    _FROM_WEBUI.get(fields.get("Sampler"), "dpmpp-2m"),
                    int(fields.get("Steps", 20)), float(fields.get("CFG scale", 5)),
                    int(fields.get("Seed", RANDOM_SEED)), int(width), int(height),
                    gr.Tabs(selected="txt2img"),
                )  # fmt: skip

            sampler, steps, cfg, seed, _, width, height = t2i
            to_t2i.click(
                page_errors(send_to_txt2img), png_fields,
                [prompt, negative, sampler, steps, cfg, seed, width, height, tabs],
                api_visibility="private",
            )  # fmt: skip

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

            @page_errors
            def xy_plot(prompt, x_axis, x_values, y_axis, y_values, negative_prompt=None,
                        sampler="dpmpp-2m", steps=20, cfg_scale=5.0, seed=RANDOM_SEED,
                        batch_size=1, width=32, height=32, model="builtin", loras=None,
                        lora_scale=1.0, progress=gr.Progress()):  # noqa: B008  # fmt: skip
                """One grid over two axes (batch_size is ignored: one image a cell). A
                generator that yields at every step, so a grid whose client left stops at
                its next step (Gradio closes it) instead of holding the queue."""
                x_text, y_text = x_values, y_values
                base = request_of(prompt, negative_prompt, sampler, steps, cfg_scale, seed,
                                  batch_size, width, height, loras, lora_scale)  # fmt: skip
                xs, ys, rows = xygrid.cell_requests(base, x_axis, x_text, y_axis, y_text)
                total, done, images = len(xs) * len(ys), 0, []
                for row in rows:
                    images.append([])
                    for request in row:
                        with contextlib.closing(studio.generate(request, model, "xy-cells")) as ev:
                            for event in ev:
                                if event[0] == "done":
                                    images[-1].append(event[2].images[0])
                                else:
                                    yield gr.skip(), gr.skip()
                        done += 1
                        progress(done / total, desc=f"image {done}/{total}")
                grid = xygrid.draw_grid(images, xygrid.labels(x_axis, xs),
                                        xygrid.labels(y_axis, ys))  # fmt: skip
                text = f"X: {x_axis} = {x_text}\nY: {y_axis} = {y_text}\n" + rows[0][0].prompt
                from ..generation.pnginfo import save_png

                yield str(save_png(grid, studio.path("xy", "grid"), text)), text

            go_xy.click(
                xy_plot, [prompt, x_axis, x_values, y_axis, y_values, negative, *t2i, *picks],
                [xy_image, xy_info], api_name="xy_plot", concurrency_id="draw",
            )  # fmt: skip

            with gr.Tab("Train", id="train"):
                train_done = train_tab(studio)

            with gr.Tab("Model lab", id="lab"):
                lab_tab(studio, app)

            with gr.Tab("Playground", id="playground"):
                playground_tab(app)

            with gr.Tab("Compare", id="compare"):
                compare_tab(studio)

        def rescan():
            old = studio.catalog
            fresh = Catalog.scan(old.models_dir, old.runs_dir, old.model_config, old.place)
            cat.text_to_image, cat.runs, cat.loras = fresh.text_to_image, fresh.runs, fresh.loras
            cat.unreadable = fresh.unreadable
            return (gr.Dropdown(choices=list(cat.text_to_image)),
                    gr.Dropdown(choices=list(cat.loras)), unreadable_text(cat))  # fmt: skip

        pickers = [model, lora_pick, unreadable]
        refresh.click(rescan, None, pickers, api_visibility="private")
        for trigger in (train_done.change, app.load):  # a new page sees new runs and LoRAs
            trigger(rescan, None, pickers, api_visibility="private")
    return app


def train_tab(studio: Studio) -> Any:
    """LoRA fine-tuning of the chosen text-to-image model on uploaded images (or a folder):
    progress, loss plot, cancel and resume; returns a component that changes when a LoRA is
    saved (the pickers refresh on it)."""
    import gradio as gr

    from ..finetune.train import lora_config
    from .training import LoraTraining, check_name, dataset_names, gather_images, lora_root

    job = LoraTraining()
    root = lora_root(studio.catalog.runs_dir)
    datasets = studio.catalog.datasets_dir
    gr.Markdown(
        "Teach the model something new from a few dozen images: upload them with a caption "
        "each (`NAME.txt` beside `NAME.png`), or give one caption for all. The LoRA is saved "
        f"in `{root}` and appears in the LoRA picker."
    )
    with gr.Row():
        with gr.Column():
            files = gr.File(label="images and captions", file_count="multiple",
                            file_types=["image", ".txt"])  # fmt: skip
            folder = gr.Dropdown(dataset_names(datasets), value=None, visible=bool(datasets),
                                 label="or a folder of --datasets-dir")  # fmt: skip
            caption = gr.Textbox(label="caption for images without a NAME.txt",
                                 placeholder="a teal circle")  # fmt: skip
        with gr.Column():
            name = gr.Textbox("my-lora", label="LoRA name", elem_id="lora-name")
            base = gr.Dropdown(list(studio.catalog.text_to_image), value="builtin",
                               label="base model")  # fmt: skip
            with gr.Row():
                rank = gr.Slider(1, 64, value=4, step=1, label="rank")
                steps = gr.Slider(10, 5000, value=400, step=10, label="steps")
                lr = gr.Number(1e-3, label="learning rate")
            resume = gr.Checkbox(False, label="resume the run of this name (up to the steps)")
            with gr.Row():
                go = gr.Button("Train", variant="primary")
                stop = gr.Button("Cancel")
    status = gr.Markdown()
    loss = gr.Plot(label="loss")
    done = gr.Textbox(visible=False)

    def figure(history: list[tuple[int, float]]):
        from ..viz.plots import subplots

        fig, ax = subplots(figsize=(6, 3))
        if history:
            ax.plot(*zip(*history, strict=True))
        ax.set(xlabel="step", ylabel="loss", yscale="log" if history else "linear")
        return fig

    @page_errors
    def train(files, folder, caption, name, base, rank, steps, lr, resume,
              progress=gr.Progress()):  # noqa: B008  # fmt: skip
        name = check_name(name)
        out = root / name
        if resume and not (out / "config.yaml").is_file():
            raise GenlabError(f"There is no LoRA run named '{name}' to resume.")
        if resume:
            from ..training.runfolder import saved_config

            cfg = saved_config(out)
            cfg["train"]["steps"] = int(steps)
        else:
            from gradio.utils import get_upload_folder

            uploads = (Path(get_upload_folder()),)
            data = gather_images(files, folder, root / f"{name}-images", uploads=uploads,
                                 datasets=datasets)  # fmt: skip
            spec, model_config, _ = studio.catalog.model_spec(base)
            cfg = lora_config(spec, str(data), caption=caption, rank=int(rank),
                              train={"steps": int(steps), "lr": float(lr), "progress": False},
                              model_config=model_config)  # fmt: skip
        history: list[tuple[int, float]] = []
        for event in job.run(cfg, out, resume=bool(resume)):
            if event[0] == "step":
                _, step, total, metrics = event
                progress(step / total, desc=f"step {step}/{total}")
                if "loss" in metrics and (not history or history[-1][0] != step):
                    history.append((step, metrics["loss"]))
                if step % 10 == 0 or step == total:
                    yield f"step {step}/{total}", figure(history), gr.update()
            elif event[0] == "cancelled":
                yield (f"Cancelled at step {event[1]}; a checkpoint is kept: tick resume and "
                       "press Train to continue.", figure(history), gr.update())  # fmt: skip
            else:
                _, summary, folder_out = event
                yield (f"Saved LoRA **{name}** ({summary['steps']} steps, "
                       f"{summary['seconds']:.0f} s) in `{folder_out}`; pick it in the LoRA "
                       "list.", figure(history), name)  # fmt: skip

    go.click(train, [files, folder, caption, name, base, rank, steps, lr, resume],
             [status, loss, done], concurrency_id="draw", api_visibility="private")  # fmt: skip
    stop.click(lambda: job.cancel.set(), None, None, api_visibility="private")
    return done


def lab_tab(studio: Studio, app: Any) -> None:
    """Any trained run: its metrics and plots, and samples with controls built from the
    model's declared sampling options."""
    import gradio as gr

    cat = studio.catalog
    runs = list(cat.runs)
    run = gr.Dropdown(runs, value=runs[0] if runs else None, label="trained run",
                      info=f"runs found under {cat.runs_dir}")  # fmt: skip
    with gr.Row():
        summary = gr.JSON(label="meta and metrics")
        figures = gr.Gallery(label="the run's plots", columns=3, height=300)

    @page_errors
    def show(name):
        if not name:
            return {}, []
        folder = cat.run(name)
        return run_summary(folder), lab.run_figures(folder)

    for trigger in (run.change, app.load):
        trigger(show, run, [summary, figures], api_visibility="private")

    @gr.render(inputs=run)
    def controls(name):
        if not name:
            gr.Markdown("No trained runs found: train one (`genlab train vae --out runs/vae`).")
            return
        schema = page_errors(lab.run_options)(cat.run(name))
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
            out = studio.path("lab", Path(name).name)
            return str(lab.sample_run_to(cat.run(name), out, int(n), int(seed), options))

        go.click(sample, [n, seed, *widgets], picture, concurrency_id="draw",
                 api_visibility="private")  # fmt: skip


def compare_tab(studio: Studio) -> None:
    """genlab compare in the page: the families trained on one data set (2-D or digits),
    measured, with the table and the sample plots."""
    import gradio as gr

    from ..evaluation.compare import FAMILIES, compare
    from ..evaluation.compare_report import write_report

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
        report = compare(data, int(seeds), int(steps), 1000, tuple(chosen), lr_sweep=False,
                         progress=lambda what: progress(None, desc=what))  # fmt: skip
        folder = studio.out / "compare" / f"{data}-{int(steps)}-steps"
        path = write_report(report, folder, f"webui: {data}, {steps} steps", "this machine")
        text = path.read_text().split("\n![")[0]  # the table and marks; the picture below
        return text, str(folder / "compare-samples.png")

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
