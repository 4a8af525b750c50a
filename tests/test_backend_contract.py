"""One contract suite run over every text-to-image back end, as diffusers' PipelineTesterMixin
runs one suite over every pipeline: a tiny genlab latent-diffusion model folder, the shipped
"builtin" model, a tiny Stable Diffusion diffusers folder and the same as one original-layout
.safetensors file, each got through ``genlab.backends.resolve`` (the one place that tells
them apart). Every check speaks only the contract: GenerationRequest in, GenerationResult
out, Progress on the way, Cancelled when asked, PNG parameters that draw the image again.
Sizes are the models' own (32x32 for genlab's, 16x16 for the tiny Stable Diffusion) and
runs take 2-4 steps, so the whole file stays cheap on a laptop CPU."""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
import torch

from genlab.backends import resolve
from genlab.errors import Cancelled, GenlabError
from genlab.generation import (
    GenerationRequest,
    Progress,
    parse_parameters,
    parse_sampler,
    read_parameters,
    request_from_parameters,
    save_png,
)
from genlab.generation.output import save_result

KINDS = ("run-folder", "builtin", "sd-folder", "sd-single-file")
#: deterministic, then the stochastic ones (both back ends have DDPM and Euler a)
DETERMINISTIC = ("dpmpp-2m",)
STOCHASTIC = ("euler-a", "ddpm")
#: a batch and its singles run the same arithmetic on differently shaped tensors, and a CPU
#: convolution or matmul may block (and so round) a batch of 2N rows under CFG otherwise
#: than 2 rows: the shipped model's batch of 2 moves 0.15% of its values by 1/255 (the tiny
#: Stable Diffusion and the tiny genlab model happen to come out exact on this CPU). A
#: wrong generator moves most values by tens of levels, so 2/255 on under 1% of the
#: values still tells a seeding fault from rounding.
TOLERANCE = 2


@dataclass
class Case:
    kind: str
    backend: Any
    spec: str
    config: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.backend.describe().default_size

    def request(self, prompt: str = "a red circle left of a blue square", **kw):
        w, h = self.size
        fields = {"steps": 2, "cfg_scale": 5.0, "seed": 3, "width": w, "height": h} | kw
        return GenerationRequest(prompt, **fields)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread for this module: the tiny models gain nothing from more, and on a
    shared 2-core machine two spinning threads made the file 4x slower (118 s against 31 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A tiny genlab latent-diffusion model folder, built as tests/test_text_to_image.py
    builds ``tiny_model`` (a tiny KL autoencoder, the trainable "tiny" text encoder) but with
    cross-attention, and with random weights where genlab's U-Net starts at zero (its output
    projections), as diffusers' tiny test pipelines are random: a freshly built or briefly
    trained model draws nearly the same image whatever the prompt, negative prompt or
    schedule, and the checks that those are used would pass or fail by chance."""
    from genlab.models.kl_autoencoder import KLAutoencoder
    from genlab.models.latent_diffusion import LatentDiffusion

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("contract-t2i")
    KLAutoencoder((3, 32, 32), widths=(8, 8, 8)).save(folder / "ae")
    model = LatentDiffusion(
        (3, 32, 32), autoencoder=str(folder / "ae"), text_encoder="tiny", channels=(16, 32),
        attention=True,
    )  # fmt: skip
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.net.denoiser.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    model.save(folder / "ld")
    return folder / "ld"


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    from support.tiny_sd import write_tiny_sd

    return write_tiny_sd(tmp_path_factory.mktemp("contract-sd") / "tiny-sd")


@pytest.fixture(scope="module", params=KINDS)
def case(request) -> Case:
    kind = request.param
    if kind == "builtin":
        spec, config = "builtin", None
    elif kind == "run-folder":
        spec, config = str(request.getfixturevalue("run_folder")), None
    else:
        folder = request.getfixturevalue("sd_folder")
        spec, config = str(folder), None
        if kind == "sd-single-file":
            from support.tiny_sd import write_single_file

            file = folder.parent / "tiny-sd.safetensors"
            if not file.exists():
                write_single_file(folder, file)
            spec, config = str(file), str(folder)
    return Case(kind, resolve(spec, config), spec, config)


def pixels(result) -> np.ndarray:
    return np.stack([np.asarray(im.convert("RGB"), dtype=np.int16) for im in result.images])


def png_bytes(image, parameters: str) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", parameters)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def assert_close_images(got: np.ndarray, want: np.ndarray) -> None:
    """Equal up to rounding (TOLERANCE levels of 255), and exactly equal on nearly every
    pixel."""
    assert got.shape == want.shape
    diff = np.abs(got - want)
    assert diff.max() <= TOLERANCE, f"max difference {diff.max()}"
    assert (diff > 0).mean() < 0.01, f"{(diff > 0).mean():.1%} of the values differ"


# --- what the back end says of itself -----------------------------------------------------
def test_describe(case):
    info = case.backend.describe()
    assert info.kind == ("genlab" if case.kind in ("builtin", "run-folder") else "stable-diffusion")
    assert info.default_size == ((32, 32) if info.kind == "genlab" else (16, 16))
    assert info.size_step >= 1 and all(s % info.size_step == 0 for s in info.default_size)
    assert len(info.model_hash) == 64  # a folder's is its U-Net's, a single file's its own


# --- same seed, same bytes ----------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["dpmpp-2m", "euler-a"])
def test_same_seed_same_bytes(case, sampler):
    request = case.request(seed=11, sampler=sampler)
    a, b = case.backend(request), case.backend(request)
    assert a.parameters == b.parameters
    assert png_bytes(a.images[0], a.parameters[0]) == png_bytes(b.images[0], b.parameters[0])
    other = case.backend(replace(request, seed=12))
    assert not np.array_equal(pixels(other), pixels(a))  # the seed is used


# --- a batch is its singles ---------------------------------------------------------------
@pytest.mark.parametrize("sampler", DETERMINISTIC + STOCHASTIC)
def test_batch_equals_singles(case, sampler):
    """Image i of a batch from seed s is the image seed s + i gives alone, for stochastic
    samplers too (each image has its own generator: seeding.ImageRNG built in, a list of
    generators for diffusers)."""
    request = case.request(sampler=sampler, seed=7, batch_size=2)
    batch = case.backend(request)
    assert batch.seeds == [7, 8]
    assert [parse_parameters(p)["Seed"] for p in batch.parameters] == ["7", "8"]
    singles = [case.backend(replace(request, seed=s, batch_size=1)) for s in (7, 8)]
    want = np.concatenate([pixels(r) for r in singles])
    # within TOLERANCE, not exactly: batched convolutions round differently (see TOLERANCE)
    assert_close_images(pixels(batch), want)
    assert np.abs(want[0] - want[1]).max() > 10 * TOLERANCE  # two images, not one twice


# --- the negative prompt ------------------------------------------------------------------
def test_negative_prompt_is_used(case):
    request = case.request(cfg_scale=6.0, sampler="euler")
    plain = pixels(case.backend(request))
    negative = pixels(case.backend(replace(request, negative_prompt="green star, top")))
    assert np.abs(plain - negative).max() > 10 * TOLERANCE


# --- size rules ---------------------------------------------------------------------------
def test_default_size_when_none_given(case):
    request = GenerationRequest("a red circle", steps=2, seed=1)
    assert request.width is None and request.height is None
    checked = case.backend.check(request)
    assert (checked.width, checked.height) == case.size
    result = case.backend(request)
    assert result.images[0].size == case.size
    assert parse_parameters(result.parameters[0])["Size"] == "{}x{}".format(*case.size)


def test_size_not_a_multiple_is_refused_in_one_sentence(case):
    step = case.backend.describe().size_step
    assert step > 1, "every back end here has a latent space smaller than its images"
    w, h = case.size
    for width, height in ((w + 1, h), (w, h + step // 2), (w + step + 1, h + step + 1)):
        bad = GenerationRequest("a red circle", steps=2, width=width, height=height)
        with pytest.raises(GenlabError) as e:
            case.backend.check(bad)
        message = str(e.value)
        assert str(step) in message and f"{width}x{height}" in message
        assert "\n" not in message and message.endswith(".") and message.count(". ") == 0
        with pytest.raises(GenlabError):  # and drawing it is refused the same way
            case.backend(bad)
    largest = case.backend.describe().max_size
    if largest is None:  # any multiple of the step
        ok = GenerationRequest("a red circle", steps=2, width=w + step, height=h)
        assert case.backend.check(ok).width == w + step
        return
    # genlab's latent models draw at most the size they were trained at (beyond it, tiles)
    for width, height in ((largest[0] + step, h), (w, largest[1] + step)):
        big = GenerationRequest("a red circle", steps=2, width=width, height=height)
        with pytest.raises(GenlabError) as e:
            case.backend.check(big)
        message = str(e.value)
        assert "{}x{}".format(*largest) in message and f"{width}x{height}" in message
        assert "\n" not in message and message.endswith(".") and message.count(". ") == 0
    ok = GenerationRequest("a red circle", steps=2, width=w - step, height=h)
    assert case.backend.check(ok).width == w - step


@pytest.mark.parametrize(
    "fields",
    [
        {"steps": 0},
        {"steps": 1001},
        {"steps": 2.5},
        {"width": 100000, "height": 32},
        {"width": 0, "height": 32},
        {"batch_size": 10000},
        {"batch_size": 0},
        {"seed": -1},
        {"seed": 2**32},
        {"seed": 1.5},
        {"cfg_scale": math.nan},
        {"cfg_scale": math.inf},
        {"cfg_scale": -1.0},
        {"sampler": "nonsense"},
        {"sampler": "euler", "schedule": "nonsense"},
    ],
    ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()),
)
def test_requests_out_of_bounds_are_refused_when_built(fields):
    """Before any back end sees them: every front end builds the same request."""
    with pytest.raises(GenlabError) as e:
        GenerationRequest("a red circle", **fields)
    assert "\n" not in str(e.value) and str(e.value).endswith(".")


def test_bounds_themselves_are_accepted():
    r = GenerationRequest("x", steps=1000, batch_size=64, seed=2**32 - 1, width=2048, height=8)
    assert r.seeds[0] == 2**32 - 1 and r.cfg_scale == 5.0


# --- progress -----------------------------------------------------------------------------
def test_progress_is_monotone_with_previews_of_the_requests_size(case):
    seen: list[Progress] = []
    request = case.request(sampler="euler", steps=4, batch_size=2)
    result = case.backend(request, seen.append)
    assert all(isinstance(p, Progress) for p in seen)
    assert [p.step for p in seen] == [1, 2, 3, 4]
    assert all(p.steps == 4 for p in seen)
    for p in (seen[0], seen[-1]):
        previews = p.preview()
        assert len(previews) == 2
        assert all(im.size == (request.width, request.height) for im in previews)
    # Euler's last step lands on its clean-image estimate (sigma 0), so the last preview is
    # the image itself: the preview decodes the estimate the same way the result does
    last = np.stack([np.asarray(im.convert("RGB"), dtype=np.int16) for im in seen[-1].preview()])
    assert_close_images(last, pixels(result))


def test_stable_diffusion_preview_is_diffusers_clean_estimate(sd_folder):
    """Progress.denoised is the scheduler's own pred_original_sample at each step (not the
    noisy latents the step hands on), the meaning the built-in model's previews have.
    Oracle: diffusers' pipeline on the same folder with a recording scheduler."""
    from diffusers import StableDiffusionPipeline

    from genlab.interop.diffusers.schedulers import diffusers_scheduler

    seen: list[Progress] = []
    backend = resolve(str(sd_folder))
    request = GenerationRequest("a dog", sampler="euler", steps=3, seed=5, width=16, height=16)
    backend(request, seen.append)

    ref = StableDiffusionPipeline.from_pretrained(sd_folder, local_files_only=True)
    ref.set_progress_bar_config(disable=True)
    ref.scheduler = diffusers_scheduler("euler", "default", ref.scheduler.config)
    estimates, noisy = [], []
    step = ref.scheduler.step

    def recording(*args, return_dict=True, **kwargs):
        out = step(*args, return_dict=True, **kwargs)
        estimates.append(out.pred_original_sample)
        return out if return_dict else (out.prev_sample,)

    def on_step(pipe, i, t, state):
        noisy.append(state["latents"])
        return state

    ref.scheduler.step = recording
    ref("a dog", num_inference_steps=3, guidance_scale=5.0, height=16, width=16,
        generator=[torch.Generator().manual_seed(5)], callback_on_step_end=on_step)  # fmt: skip
    assert len(seen) == len(estimates) == 3
    for p, x0 in zip(seen, estimates, strict=True):
        # genlab's U-Net runs channels-last (its default speed-up): the same sums in
        # another order, about 1e-4 apart here, far below a step's change
        torch.testing.assert_close(p.denoised, x0, atol=5e-4, rtol=1e-3)
    assert (seen[0].denoised - noisy[0]).abs().max() > 0.1  # an estimate, not the noisy state


# --- cancel -------------------------------------------------------------------------------
def test_cancel_at_step_two_raises_and_writes_nothing(case, tmp_path):
    stop = threading.Event()
    steps: list[int] = []

    def progress(p: Progress) -> None:
        steps.append(p.step)
        if p.step == 2:
            stop.set()

    request = case.request(steps=4, seed=21)
    out = tmp_path / "out" / "g.png"
    with pytest.raises(Cancelled):
        result = case.backend(request, progress, stop)
        save_result(result, out)  # as the CLI does: only after a draw that finished
    assert steps == [1, 2]  # stopped between steps, right after the one that asked
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []
    # the back end is left as it was: the same request draws the same image as before
    again = case.backend(request, cancel=threading.Event())
    assert np.array_equal(pixels(again), pixels(case.backend(request)))
    assert [p.name for p in save_result(again, out)] == ["g.png"]


# --- PNG parameters -----------------------------------------------------------------------
# diffusers' Euler a takes no Karras sigmas (refused in one sentence): Karras with Euler
@pytest.mark.parametrize("sampler,schedule", [("euler-a", "default"), ("euler", "karras")])
def test_png_parameters_round_trip_and_redraw(case, tmp_path, sampler, schedule):
    request = case.request(
        prompt="a red circle, left of a blue square", negative_prompt="green star, top",
        sampler=sampler, schedule=schedule, steps=3, cfg_scale=4.5, seed=1234,
    )  # fmt: skip
    result = case.backend(request)
    path = save_png(result.images[0], tmp_path / "g.png", result.parameters[0])
    fields = request_from_parameters(read_parameters(path))
    assert fields["prompt"] == request.prompt
    assert fields["negative_prompt"] == request.negative_prompt
    assert fields["steps"] == 3 and fields["cfg_scale"] == 4.5 and fields["seed"] == 1234
    assert (fields.get("sampler"), fields.get("schedule", "default")) == (sampler, schedule)
    assert (fields["width"], fields["height"]) == case.size
    again = case.backend(GenerationRequest(**fields))
    # the same back end, the same request: the same pixels, and the same PNG bytes
    assert np.array_equal(pixels(again), pixels(result))
    assert png_bytes(again.images[0], again.parameters[0]) == path.read_bytes()


# --- sampler and schedule -----------------------------------------------------------------
def test_webui_combined_name_is_sampler_and_schedule(case):
    assert parse_sampler("DPM++ 2M Karras") == ("dpmpp-2m", "karras")
    default = case.backend(case.request(sampler="dpmpp-2m", seed=5))
    combined = case.request(sampler="DPM++ 2M Karras", seed=5)
    apart = case.request(sampler="dpmpp-2m", schedule="karras", seed=5)
    assert (combined.sampler, combined.schedule) == ("dpmpp-2m", "karras")
    assert combined == apart
    a, b = case.backend(combined), case.backend(apart)
    assert np.array_equal(pixels(a), pixels(b)) and a.parameters == b.parameters
    params = parse_parameters(a.parameters[0])
    assert params["Sampler"] == "DPM++ 2M" and params["Schedule type"] == "Karras"
    assert not np.array_equal(pixels(default), pixels(a))  # the schedule is used
    # and used for that request only: the default schedule draws as it did before
    after = case.backend(case.request(sampler="dpmpp-2m", seed=5))
    assert np.array_equal(pixels(after), pixels(default))
