"""The page's handlers without a browser or a server: one request from the controls, the
model's own size, PNG parameters sent to txt2img through genlab.generation, the X/Y plot's
bounds, the catalog's rescan, the comparison's table from the report's rows, and the one
worker pattern (typed events, stopped when its consumer leaves)."""

import threading
import time

import numpy as np
import pytest

from genlab.errors import GenlabError
from genlab.generation import GenerationRequest, format_parameters, read_parameters
from genlab.webui import handlers, worker, xygrid
from genlab.webui.catalog import Catalog
from genlab.webui.handlers import CONTROLS, Controls, Handlers, ModelSize, request_from_controls
from genlab.webui.server import prepare_out
from genlab.webui.studio import Studio

PROMPT = "a red circle to the left of a blue square"


@pytest.fixture
def page(tmp_path):
    return Handlers(Studio(Catalog(runs_dir=str(tmp_path / "runs")), prepare_out(tmp_path / "out")))


def _last(views):
    *_, last = views
    return last


# --- one request from the controls ---------------------------------------------------------------
def test_one_request_from_the_controls(tmp_path):
    cat = Catalog(loras={"loras/teal": tmp_path / "teal"})
    controls = Controls(
        PROMPT, "blurry", "DPM++ 2M Karras", "default", 12.0, 4.5, 7, 2.0, 48.0, 40.0,
        "builtin", ["loras/teal"], 0.8,
    )  # fmt: skip
    request = request_from_controls(cat, controls)
    assert request == GenerationRequest(
        PROMPT, "blurry", "dpmpp-2m", 12, 4.5, 7, 2, 48, 40,
        loras=((str(tmp_path / "teal"), 0.8),), schedule="karras",
    )  # fmt: skip
    assert isinstance(request.steps, int) and isinstance(request.width, int)
    # a schedule given apart wins; no size: the model's own; -1: a random seed, recorded
    free = request_from_controls(cat, Controls(PROMPT, sampler="euler", schedule="trailing"))
    assert (free.sampler, free.schedule, free.width, free.height) == (
        "euler",
        "trailing",
        None,
        None,
    )
    assert free.seed >= 0 and free.negative_prompt == ""
    with pytest.raises(GenlabError, match="Unknown LoRA"):
        request_from_controls(cat, Controls(PROMPT, loras=["../../etc"]))
    with pytest.raises(GenlabError, match="Unknown schedule"):
        request_from_controls(cat, Controls(PROMPT, schedule="cosine"))
    assert CONTROLS[:2] == ("prompt", "negative_prompt") and "schedule" in CONTROLS


def test_txt2img_draws_at_the_models_own_size_and_streams(page, monkeypatch):
    from genlab.webui import studio as studio_module

    monkeypatch.setattr(studio_module, "PREVIEW_EVERY", 0.0)
    seen = []
    views = list(page.txt2img(Controls(PROMPT, steps=3, seed=4, batch_size=2),
                              progress=lambda p, desc: seen.append(desc)))  # fmt: skip
    previews = [v for v in views[:-1] if v.gallery]
    assert previews and all(c.startswith("preview") for v in previews for _, c in v.gallery)
    last = views[-1]
    assert len(last.gallery) == 2 and last.seed == 4 and "Size: 32x32" in last.info
    assert [read_parameters(p) for p, _ in last.gallery] == [c for _, c in last.gallery]
    assert seen and seen[-1].startswith("step ")
    assert page.model_size("builtin") == ModelSize(32, 32, 4, 32, 32)
    with pytest.raises(GenlabError, match="Unknown model"):
        list(page.txt2img(Controls(PROMPT, model="/etc")))


def test_txt2img_with_the_hires_fix_accordion(page):
    from PIL import Image

    from genlab.generation.hires import HiresFix
    from genlab.webui.handlers import HIRES, hires_from_controls

    assert HIRES[0] == "enable_hr" and hires_from_controls(False, 2, "Latent", 0, 0.7) is None
    hires = hires_from_controls(True, 2, "Lanczos", "1", 0.3)
    assert hires == HiresFix(2.0, "Lanczos", 1, 0.3)
    with pytest.raises(GenlabError, match="upscaler"):
        hires_from_controls(True, 2, "ESRGAN", 0, 0.3)
    last = list(page.txt2img(Controls(PROMPT, steps=2, seed=1), hires=hires))[-1]
    path, text = last.gallery[0]
    assert Image.open(path).size == (64, 64) and "Hires upscaler: Lanczos" in text
    # the second pass's own sampler and prompts, from the accordion's controls in HIRES order
    values = dict(zip(HIRES, (True, 2, "Lanczos", 1, 0.3, 0, 0, "euler", "Use same scheduler",
                              "a blue square", "red"), strict=True))  # fmt: skip
    own = hires_from_controls(*(values[name] for name in HIRES))
    assert own == HiresFix(2.0, "Lanczos", 1, 0.3, sampler="euler", prompt="a blue square",
                           negative_prompt="red")  # fmt: skip
    assert hires_from_controls(True, 2, "Lanczos", 1, 0.3, 48, 0).resize_x == 48
    drawn = list(page.txt2img(Controls(PROMPT, steps=2, seed=1), hires=own))[-1]
    path_own, text = drawn.gallery[0]
    assert "Hires sampler: Euler" in text and "Hires prompt: a blue square" in text
    assert "Hires negative prompt: red" in text
    assert not np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(path_own)))
    with pytest.raises(GenlabError, match="hires sampler"):
        hires_from_controls(True, 2, "Lanczos", 1, 0.3, 0, 0, "plms")


def test_img2img_and_inpaint_through_the_same_request(page):
    from PIL import Image

    image = Image.new("RGB", (64, 64), "gray")
    last = _last(page.img2img(image, 0.5, Controls(PROMPT, steps=2, seed=1)))
    assert "Denoising strength: 0.5" in last.info and "Size: 32x32" in last.info
    with pytest.raises(GenlabError, match="Upload an image"):
        list(page.img2img(None, 0.5, Controls(PROMPT)))
    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (0, 0, 32, 64))
    editor = {"background": image, "layers": [layer]}
    last = _last(page.inpaint(editor, 1.0, Controls(PROMPT, steps=2, seed=1, width=32, height=32)))
    after = np.asarray(Image.open(last.gallery[0][0]).convert("RGB"), dtype=int)
    assert np.all(after[:, 16:] == 128)  # outside the mask: the gray kept exactly


def test_inpaint_only_masked_keeps_the_pictures_size_and_every_pixel_outside(page):
    """The inpaint area "Only masked": the region around the painted pixels (grown by the
    padding) is drawn at the size asked for and pasted back into the picture at its own
    size, as the API's inpaint_full_res; "Whole picture" draws the picture at that size."""
    from PIL import Image

    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    layer = Image.new("RGBA", (96, 64), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (60, 30, 72, 42))  # a 12x12 square
    editor = {"background": picture, "layers": [layer]}
    controls = Controls("a green triangle", steps=2, seed=5, width=32, height=32)
    last = _last(page.inpaint(editor, 0.9, controls, inpaint_full_res=1,
                              inpaint_full_res_padding=4))  # fmt: skip
    out = Image.open(last.gallery[0][0])
    assert out.size == (96, 64) and "Size: 32x32" in last.info  # the crop drawn at 32x32
    after, before = np.asarray(out.convert("RGB")), np.asarray(picture)
    inside = np.zeros((64, 96), bool)
    inside[30:42, 60:72] = True
    assert np.array_equal(after[~inside], before[~inside])  # outside the mask: exactly
    assert not np.array_equal(after[inside], before[inside])
    # the radio's name works as its index; "Whole picture" draws at the size asked
    named = _last(page.inpaint(editor, 0.9, controls, inpaint_full_res="Only masked",
                               inpaint_full_res_padding=4))  # fmt: skip
    assert np.array_equal(np.asarray(Image.open(named.gallery[0][0])), np.asarray(out))
    whole = _last(page.inpaint(editor, 0.9, controls, inpaint_full_res=0))
    assert Image.open(whole.gallery[0][0]).size == (32, 32)
    for bad in (-1, 1000, 2.5, "lots"):
        with pytest.raises(GenlabError, match="padding"):
            list(page.inpaint(editor, 0.9, controls, inpaint_full_res=1,
                              inpaint_full_res_padding=bad))  # fmt: skip
    with pytest.raises(GenlabError, match="Only masked"):
        list(page.inpaint(editor, 0.9, controls, inpaint_full_res="Some"))


def test_a_stable_diffusion_model_sets_its_own_size(tmp_path):
    pytest.importorskip("diffusers")
    from support.tiny_sd import write_tiny_sd

    folder = write_tiny_sd(tmp_path / "models" / "tiny-sd")
    cat = Catalog.scan(tmp_path / "models", None)
    page = Handlers(Studio(cat, prepare_out(tmp_path / "out")))
    info = page.studio.describe("tiny-sd")
    assert info.kind == "stable-diffusion" and folder.is_dir()
    step = info.size_step
    top = (xygrid.SIZE_RANGE[1] // step) * step  # no limit of its own: the page's
    assert page.model_size("tiny-sd") == ModelSize(*info.default_size, step, top, top)
    assert page.model_size("tiny-sd") != page.model_size("builtin")


def test_the_size_rule_and_steps_are_the_command_lines(page):
    """The sliders' range is the model's (the built-in model: 4 to 32 in steps of 4); a
    larger size is refused in the library's one sentence, as the CLI and the API refuse it;
    0 steps is refused, not drawn as 1."""
    size = page.model_size("builtin")
    assert (size.step, size.max_width, size.max_height) == (4, 32, 32)
    with pytest.raises(GenlabError, match="trained at 32x32") as e:
        list(page.txt2img(Controls(PROMPT, steps=2, width=64, height=64)))
    assert "\n" not in str(e.value) and "64x64" in str(e.value)
    for steps in (0, 0.0, -3):
        with pytest.raises(GenlabError, match="steps must be at least 1"):
            list(page.txt2img(Controls(PROMPT, steps=steps)))


def test_an_empty_prompt_says_it_draws_unconditionally(page):
    from genlab.generation.request import UNCONDITIONAL

    for prompt in ("", "   "):
        last = _last(page.txt2img(Controls(prompt, steps=2, seed=1)))
        assert UNCONDITIONAL in last.info and last.info.startswith(last.gallery[0][1])
    assert UNCONDITIONAL not in _last(page.txt2img(Controls(PROMPT, steps=2, seed=1))).info
    # the model's own notice (words it cannot draw) travels the same way
    assert '"car"' in _last(page.txt2img(Controls("a blue car", steps=2, seed=1))).info


# --- the X/Y plot --------------------------------------------------------------------------------
def test_xy_plot_cells_at_the_models_size_and_bounded(page):
    steps = []
    grid = page.xy_plot(Controls(PROMPT, steps=2, seed=0), "seed", "1, 2", "schedule",
                        "default, karras", progress=lambda p, desc: steps.append(p))  # fmt: skip
    out = list(grid)
    path, text = out[-1]
    assert "Y: schedule = default, karras" in read_parameters(path) and text.endswith(PROMPT)
    assert steps[-1] == 1.0
    from PIL import Image

    assert Image.open(path).size[1] == 20 + 2 * 128
    many = Controls(PROMPT, steps=150, width=1024, height=1024)
    started = time.perf_counter()
    # the built-in model draws at most its trained 32x32: refused by the size rule, or by
    # the work bound on a model that could take the size; either way before any drawing
    with pytest.raises(GenlabError, match=r"more work|trained at 32x32"):
        next(page.xy_plot(many, "seed", "1,2,3,4,5,6,7,8", "CFG scale", "1,2,3,4,5,6,7,8"))
    assert time.perf_counter() - started < 5  # refused before drawing anything


# --- PNG info and sending between tabs -----------------------------------------------------------
def test_send_to_txt2img_reads_the_parameters_through_generation(page, tmp_path):
    request = GenerationRequest(PROMPT, "blurry", "euler", 12, 3.5, 99, width=48, height=40,
                                schedule="karras")  # fmt: skip
    values = page.send_to_txt2img(format_parameters(request, 99, model="shapes"))
    assert values == {
        "prompt": PROMPT, "negative_prompt": "blurry", "sampler": "euler",
        "schedule": "karras", "steps": 12, "cfg_scale": 3.5, "seed": 99, "width": 48,
        "height": 40, "enable_hr": False,
    }  # fmt: skip
    # webui's combined names, and a text that records only some fields
    assert page.send_to_txt2img("a cat\nSteps: 9, Sampler: DPM++ 2M Karras") == {
        "prompt": "a cat", "negative_prompt": "", "steps": 9, "sampler": "dpmpp-2m",
        "schedule": "karras", "enable_hr": False,
    }  # fmt: skip
    assert page.send_to_txt2img("just a prompt") == {"prompt": "just a prompt",
                                                     "negative_prompt": "",
                                                     "enable_hr": False}  # fmt: skip
    for text, match in (("", "Read a PNG"), ("x\nSteps: many", "whole number"),
                        ("x\nSampler: plms", "Unknown sampler"), ("x\nSize: 4096x4096", "pixels"),
                        ("x\nSteps: 500", "at most")):  # fmt: skip
        with pytest.raises(GenlabError, match=match):
            page.send_to_txt2img(text)
    # a LoRA the catalog has is picked at its scale
    page.catalog.loras["loras/teal"] = tmp_path / "teal"
    got = page.send_to_txt2img("x\nSteps: 2, Lora hashes: teal: abc, Lora scales: teal: 0.7")
    assert got["loras"] == ["loras/teal"] and got["lora_scale"] == 0.7


def test_send_to_txt2img_carries_the_hires_fields_into_the_accordion(page):
    """Hires upscale, upscaler, steps, denoising strength and the second pass's own sampler,
    schedule and prompts go back into the accordion's controls (by HIRES names), which
    draw the same hires fix again."""
    from genlab.generation.hires import HiresFix
    from genlab.webui.handlers import HIRES, hires_from_controls

    hires = HiresFix(1.5, "Latent (bicubic)", 3, 0.45, sampler="euler-a", schedule="karras",
                     prompt="a blue square, big", negative_prompt="red")  # fmt: skip
    request = GenerationRequest(PROMPT, steps=4, seed=7, width=32, height=32, hires=hires)
    values = page.send_to_txt2img(format_parameters(request, 7))
    assert {k: values[k] for k in HIRES} == {
        "enable_hr": True, "hr_scale": 1.5, "hr_upscaler": "Latent (bicubic)",
        "hr_second_pass_steps": 3, "denoising_strength": 0.45, "hr_resize_x": 0,
        "hr_resize_y": 0, "hr_sampler_name": "euler-a", "hr_scheduler": "karras",
        "hr_prompt": "a blue square, big", "hr_negative_prompt": "red",
    }  # fmt: skip
    assert hires_from_controls(*(values[k] for k in HIRES)) == hires
    assert {handlers.HIRES_SAMPLERS[0], values["hr_sampler_name"]} <= set(handlers.HIRES_SAMPLERS)
    assert values["hr_scheduler"] in handlers.HIRES_SCHEDULES
    # webui's text: no own sampler (its paste default), a resize
    webui = page.send_to_txt2img(
        "x\nSteps: 20, Sampler: Euler, Seed: 1, Size: 32x32, Denoising strength: 0.3, "
        "Hires resize: 64x48, Hires sampler: Use same sampler, Hires upscaler: Lanczos"
    )
    assert webui["enable_hr"] and webui["hr_sampler_name"] == "Use same sampler"
    assert (webui["hr_resize_x"], webui["hr_resize_y"]) == (64, 48)
    assert webui["hr_scheduler"] == "Use same scheduler" and webui["hr_prompt"] == ""


def test_png_info_and_send_to_img2img_stay_in_the_output_folder(page, tmp_path):
    last = _last(page.txt2img(Controls(PROMPT, steps=2, seed=3)))
    path = last.gallery[0][0]
    text, fields = page.png_info(path)
    assert fields["Seed"] == "3" and text == last.info
    assert page.png_info(None) == ("", {})
    picture, editor, prompt, _negative = page.send_to_img2img(path, PROMPT, "")
    assert picture.size == (32, 32) and editor["background"] is picture and prompt == PROMPT
    # nothing clicked: the gallery's only image goes, at the size it was saved
    only = page.send_to_img2img(None, PROMPT, "", [(path, "caption")])[0]
    assert only.size == (32, 32) and np.array_equal(np.asarray(only), np.asarray(picture))
    with pytest.raises(GenlabError, match="Click an image"):
        page.send_to_img2img(None, PROMPT, "", [(path, "a"), (path, "b")])
    # a click on an image of an earlier draw is forgotten: the new draw's only image goes
    newer = _last(page.txt2img(Controls(PROMPT, steps=2, seed=4))).gallery[0][0]
    assert page.send_to_img2img(path, PROMPT, "", [(newer, "c")])[0].tobytes() == (
        page.send_to_img2img(newer, PROMPT, "")[0].tobytes()
    )
    with pytest.raises(GenlabError, match="Click an image"):
        page.send_to_img2img(path, PROMPT, "", [(newer, "c"), (newer, "d")])
    with pytest.raises(GenlabError, match="Draw an image first"):
        page.send_to_img2img(None, PROMPT, "", None)
    (tmp_path / "elsewhere.png").write_bytes(open(path, "rb").read())
    for bad, match in ((str(tmp_path / "elsewhere.png"), "not one of this page's"),
                       (None, "Draw an image first")):  # fmt: skip
        with pytest.raises(GenlabError, match=match):
            page.send_to_img2img(bad, PROMPT, "")


def test_the_history_keeps_the_sessions_images_newest_first_and_bounded(page, tmp_path):
    out = page.studio.out
    files = []
    for i in range(5):
        f = out / "txt2img" / f"{i}.png"
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(b"png")
        files.append(str(f))
    history = handlers.remember([], [(files[0], "a"), (files[1], "b")], out)
    assert history == [(files[1], "b"), (files[0], "a")]
    history = handlers.remember(history, [(files[2], "c")], out)
    assert [p for p, _ in history] == [files[2], files[1], files[0]]
    # bounded: the oldest leave first; a file seen again is kept once, as the newest
    history = handlers.remember(history, [(files[3], "d"), (files[0], "a")], out, limit=3)
    assert [p for p, _ in history] == [files[0], files[3], files[2]]
    (tmp_path / "elsewhere.png").write_bytes(b"png")
    kept = handlers.remember(history, [(str(tmp_path / "elsewhere.png"), "x"), ("/etc", "y"),
                                        (str(out / "missing.png"), "z")], out)  # fmt: skip
    assert kept == history  # only the output folder's own files
    assert handlers.remember(None, None, out) == []
    assert handlers.HISTORY_SIZE >= 50


# --- the model lists, Train, Model lab, Compare --------------------------------------------------
def test_the_catalog_rescans_itself(tmp_path):
    from genlab.runs import fit_run

    cat = Catalog.scan(None, tmp_path / "runs")
    page = Handlers(Studio(cat, prepare_out(tmp_path / "out")))
    assert page.rescan() == (["builtin", "builtin-fast"], [], "")
    fit_run("gmm", "faithful", tmp_path / "runs" / "faithful", options={"n_components": 2})
    models, _loras, _text = page.rescan()
    assert page.catalog is cat and "faithful" in cat.runs and models == ["builtin", "builtin-fast"]
    summary, _figures = page.lab_show("faithful")
    assert "meta" in summary and page.lab_options("faithful") == []
    out = page.lab_sample("faithful", 20, 0, {})
    assert out.endswith(".png") and out.startswith(str(page.studio.out))
    assert page.lab_show(None) == ({}, [])


def test_train_refuses_before_any_work(page):
    with pytest.raises(GenlabError, match="Name the LoRA"):
        next(page.train(None, None, "", "../../etc", "builtin", 4, 10, 1e-3, False))
    with pytest.raises(GenlabError, match="no LoRA run named"):
        next(page.train(None, None, "", "missing", "builtin", 4, 10, 1e-3, True))
    with pytest.raises(GenlabError, match="Upload images"):
        next(page.train(None, None, "", "fine", "builtin", 4, 10, 1e-3, False))
    page.cancel_training()  # nothing running: nothing to do


def test_train_on_the_shipped_example(page):
    """The Train tab's example: the shipped teal scenes with their captions, by its name in
    the datasets list (offered without --datasets-dir); a LoRA trains on them."""
    from genlab.data.examples import TEAL
    from genlab.webui import training

    assert training.dataset_names(None) == [training.EXAMPLE_DATASET]
    assert training.gather_images(None, training.EXAMPLE_DATASET, TEAL / "x") == TEAL
    *_, last = page.train(None, training.EXAMPLE_DATASET, "", "teal-try", "builtin", 2, 2,
                          1e-3, False)  # fmt: skip
    assert last.saved == "teal-try" and "2 steps" in last.status
    assert (training.lora_root(page.catalog.runs_dir) / "teal-try" / "config.yaml").is_file()
    assert not (TEAL / "x").exists()  # nothing written into the shipped folder


def test_the_model_lab_lists_the_shipped_models(page):
    """Beside the user's runs: every shipped model that samples, viewed the same way (its
    card for metrics), sampled into the output folder; a guidance classifier is not one."""
    names = page.catalog.lab_names()
    for name in ("ddpm-digits", "vae-digits", "gan-digits", "txt2img-shapes"):
        assert f"shipped: {name}" in names
    assert "shipped: noisy-classifier-digits" not in names
    summary, figures = page.lab_show("shipped: gan-digits")
    assert summary["card"]["name"] == "gan-digits" and figures == []
    assert {"sampler", "steps"} <= {o["name"] for o in page.lab_options("shipped: ddpm-digits")}
    out = page.lab_sample("shipped: gan-digits", 4, 0, {})
    assert out.endswith(".png") and out.startswith(str(page.studio.out))
    with pytest.raises(GenlabError, match="Unknown run"):
        page.lab_show("shipped: ../../etc")


def test_compare_table_comes_from_the_reports_rows(page):
    text, samples = page.compare("8gaussians", ["gmm"], 1, 50)
    assert text.startswith("| family | held-out NLL (nats) |")
    assert "Gaussian mixture (EM)" in text and "![" not in text and "Marks:" in text
    assert samples.endswith("compare-samples.png") and samples.startswith(str(page.studio.out))


def test_error_messages():
    assert handlers.error_message(GenlabError("Pick one.")) == "Pick one."
    assert "Out of memory" in handlers.error_message(RuntimeError("CUDA out of memory"))
    assert handlers.error_message(ValueError("a bug")) is None


# --- one worker pattern --------------------------------------------------------------------------
def test_the_worker_streams_typed_events_and_stops_when_left():
    def work(emit, stop):
        for i in range(1, 1000):
            if stop.is_set():
                return worker.Stopped(i, None)
            emit(worker.Step(i, 1000))
            time.sleep(0.001)
        return worker.Trained({}, None)

    stop = threading.Event()
    events = worker.stream(work, stop)
    first = next(events)
    assert first == worker.Step(1, 1000)
    events.close()  # the consumer leaves: the work sees stop at its next step
    assert stop.is_set()

    def finished(emit, stop):
        emit(worker.Step(1, 1))
        return worker.Trained({"steps": 1}, None)

    assert list(worker.stream(finished)) == [worker.Step(1, 1), worker.Trained({"steps": 1}, None)]

    def failing(emit, stop):
        raise GenlabError("No room.")

    with pytest.raises(GenlabError, match="No room"):
        list(worker.stream(failing))


def test_the_page_wires_a_schedule_and_the_model_size(tmp_path):
    pytest.importorskip("gradio", reason="the web page needs the extra genlab[webui]")
    from genlab.webui import create

    app, _studio = create(tmp_path / "out", runs_dir=tmp_path / "runs")
    api = app.get_api_info()["named_endpoints"]
    names = [p["parameter_name"] for p in api["/txt2img"]["parameters"]]
    assert names == [*CONTROLS, *handlers.HIRES]  # the "Hires. fix" accordion last
    assert [p["parameter_name"] for p in api["/img2img"]["parameters"]] == [
        "image", *CONTROLS, "strength",
    ]  # fmt: skip
    assert [p["parameter_name"] for p in api["/inpaint"]["parameters"]] == [
        "editor", *CONTROLS, "strength", "inpaint_full_res", "inpaint_full_res_padding",
    ]  # fmt: skip
    assert handlers.HIRES == (
        "enable_hr", "hr_scale", "hr_upscaler", "hr_second_pass_steps", "denoising_strength",
        "hr_resize_x", "hr_resize_y", "hr_sampler_name", "hr_scheduler", "hr_prompt",
        "hr_negative_prompt",
    )  # fmt: skip
    config = app.get_config_file()
    schedules = [c for c in config["components"]
                 if c.get("props", {}).get("label") == "schedule"]  # fmt: skip
    assert len(schedules) == 2  # txt2img's and img2img's
    assert [v for v, _ in schedules[0]["props"]["choices"]] == list(handlers.SCHEDULES)
    assert list(handlers.SCHEDULES) == ["default", "karras", "trailing", "leading", "linspace"]
    # steps reach 0 in the page (refused in a sentence), not clamped to 1 by the browser
    steps = [c for c in config["components"]
             if str(c.get("props", {}).get("elem_id")).endswith("2img-steps")]  # fmt: skip
    assert len(steps) == 2 and all(c["props"]["minimum"] == 0 for c in steps)
    labels = {c.get("props", {}).get("label") for c in config["components"]}
    assert {"history", "or a folder: the shipped example"} <= labels
