"""Hires fix (generation/hires.py) as stable-diffusion-webui does it: the record checked in one
sentence, webui's target sizes and step counts, the PNG keys written and read back, and the
draw on the built-in model and on tiny Stable Diffusion / SDXL pipelines: the image is scale
x the base size, and the first pass is the plain txt2img of the base size (same seed)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from genlab.errors import GenlabError
from genlab.generation import GenerationRequest, format_parameters, request_from_parameters
from genlab.generation.hires import (
    UPSCALERS,
    HiresFix,
    hires_fix,
    planned_steps,
    second_pass_schedule,
    target_size,
    upscale_latents,
    upscale_size,
)

PROMPT = "a red circle to the left of a blue square"


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"scale": 0.5}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"upscaler": "ESRGAN_4x"}, "upscaler"),
        ({"steps": -1}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"denoising_strength": 0.0}, "strength"),
        ({"denoising_strength": 1.5}, "strength"),
        ({"resize_x": 99999}, "resize_x"),
        ({"sampler": "Euler z"}, "hires sampler"),
        ({"schedule": "sometimes"}, "hires schedule"),
        ({"prompt": 3}, "hires prompt"),
        ({"negative_prompt": None}, "hires negative prompt"),
    ],
)
def test_a_bad_hires_field_is_one_sentence(fields, needle):
    with pytest.raises(GenlabError) as e:
        HiresFix(**fields)
    message = str(e.value)
    assert needle in message and message.endswith(".") and "\n" not in message


def test_the_record_names_and_its_place_in_the_request():
    assert HiresFix(upscaler="latent (BICUBIC)").upscaler == "Latent (bicubic)"
    assert {"Latent", "Lanczos", "Nearest"} <= set(UPSCALERS)
    request = GenerationRequest(PROMPT, hires={"scale": 1.5, "upscaler": "Lanczos"})
    assert request.hires == HiresFix(1.5, "Lanczos")
    assert request.to_dict()["hires"]["scale"] == 1.5
    assert "hires" not in GenerationRequest(PROMPT).to_dict()
    with pytest.raises(GenlabError, match="txt2img"):
        GenerationRequest(PROMPT, init_image=object(), hires=HiresFix())
    # the work bound counts the second pass at its larger size
    plain = GenerationRequest(PROMPT, steps=10, width=32, height=32)
    assert replace(plain, hires=HiresFix(2, steps=5)).work == plain.work + 5 * 64 * 64


def test_the_second_pass_names_its_own_sampler_schedule_and_prompts():
    # webui's names parse into genlab's; a schedule in the sampler's name sets both
    assert HiresFix(sampler="DPM++ 2M Karras").second_pass(GenerationRequest("x")) == {
        "sampler": "dpmpp-2m", "schedule": "karras", "prompt": "x", "negative_prompt": "",
    }  # fmt: skip
    assert HiresFix(sampler="Euler a", schedule="Uniform") == HiresFix(
        sampler="euler-a", schedule="trailing"
    )
    # webui's "Use same ..." and empty fields are the first pass's
    same = HiresFix(sampler="Use same sampler", schedule="Use same scheduler")
    assert same == HiresFix() and same.sampler == same.schedule == ""
    request = GenerationRequest("a cat", "dog", "heun", schedule="karras")
    assert same.second_pass(request) == {
        "sampler": "heun", "schedule": "karras", "prompt": "a cat", "negative_prompt": "dog",
    }  # fmt: skip
    own = HiresFix(sampler="euler", prompt="a big cat", negative_prompt="blur")
    assert own.second_pass(request) == {
        "sampler": "euler", "schedule": "karras", "prompt": "a big cat", "negative_prompt": "blur",
    }  # fmt: skip


def test_target_sizes_and_steps_as_webui_counts_them():
    assert upscale_size(512, 512, HiresFix(2)) == (1024, 1024)
    assert target_size(512, 512, HiresFix(1.3), 8) == (664, 664)  # 665, down to a multiple
    assert target_size(512, 768, HiresFix(resize_x=1024), 8) == (1024, 1536)  # aspect kept
    # both sides: the cover at the base's aspect ratio, cropped to the size asked
    assert upscale_size(512, 512, HiresFix(resize_x=1024, resize_y=768)) == (1024, 1024)
    assert target_size(512, 512, HiresFix(resize_x=1024, resize_y=768), 8) == (1024, 768)
    with pytest.raises(GenlabError, match="2048"):
        target_size(1024, 1024, HiresFix(4), 8)
    # the second pass runs exactly N steps of webui's int(N / strength) schedule
    for n in range(1, 60):
        for d in (0.05, 0.3, 0.5, 0.7, 0.75, 0.999, 1.0):
            length, strength = second_pass_schedule(n, d)
            assert length == max(n, int(n / min(d, 0.999))) and 0 < strength <= 1
            assert min(length, int(length * strength)) == n, (n, d)
    request = GenerationRequest(PROMPT, steps=20, hires=HiresFix(steps=0))
    assert planned_steps(request) == 40
    # the latent upscale interpolates to the cover and cuts the middle (webui's truncate)
    z = torch.arange(64.0).reshape(1, 1, 8, 8).repeat(1, 4, 1, 1)
    up = upscale_latents(z, (16, 16), (16, 11), "Latent (nearest)")
    assert up.shape == (1, 4, 11, 16)
    assert torch.equal(up, upscale_latents(z, (16, 16), (16, 16), "Latent (nearest)")[..., 2:13, :])
    assert planned_steps(replace(request, hires=HiresFix(steps=7))) == 27


def test_the_png_records_hires_as_webui_writes_it_and_reads_it_back():
    request = GenerationRequest(PROMPT, steps=12, seed=3, width=32, height=32,
                                hires=HiresFix(2, "Latent", 6, 0.5))  # fmt: skip
    text = format_parameters(request, 3, model="m")
    assert "Size: 32x32" in text  # the base size, as webui writes it
    hires = "Denoising strength: 0.5, Hires upscale: 2, Hires steps: 6, Hires upscaler: Latent"
    assert hires in text
    fields = request_from_parameters(text)
    assert "strength" not in fields
    assert GenerationRequest(**fields).to_dict() == request.to_dict()
    # webui's own text (no Hires steps: the request's), and a resize
    webui = (
        "x\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1, Size: 512x512, "
        "Denoising strength: 0.45, Hires resize: 1024x768, Hires upscaler: Lanczos"
    )
    hires = GenerationRequest(**request_from_parameters(webui)).hires
    assert hires == HiresFix(2, "Lanczos", 0, 0.45, 1024, 768)
    assert "Hires resize: 1024x768" in format_parameters(
        GenerationRequest("x", width=512, height=512, hires=hires), 1
    )


def test_the_second_pass_settings_round_trip_through_the_png_text():
    hires = HiresFix(2, "Lanczos", 3, 0.4, sampler="euler", schedule="karras",
                     prompt='a blue circle, sharp "edges"',
                     negative_prompt="blurry\nnoisy")  # fmt: skip
    request = GenerationRequest(PROMPT, "red", steps=5, seed=2, width=32, height=32, hires=hires)
    text = format_parameters(request, 2, model="m")
    # webui's keys and spelling (modules/processing.py; "Hires schedule type" is its
    # sampler's), values with a comma, quote or line break JSON-quoted as webui's
    assert "Hires sampler: Euler, " in text and "Hires schedule type: Karras" in text
    assert 'Hires prompt: "a blue circle, sharp \\"edges\\""' in text
    assert 'Hires negative prompt: "blurry\\nnoisy"' in text
    assert text.count("\n") == 2  # prompt, negative prompt, settings: the line breaks quoted
    fields = request_from_parameters(text)
    assert GenerationRequest(**fields).to_dict() == request.to_dict()
    # the same as the first pass: not written (as webui), read back as the first pass's
    same = replace(request, hires=HiresFix(2, "Lanczos", 3, 0.4, sampler="dpmpp-2m",
                                           prompt=PROMPT))  # fmt: skip
    text = format_parameters(same, 2)
    assert "Hires sampler" not in text and "Hires prompt" not in text
    assert "Hires schedule type" not in text and "Hires negative prompt" not in text
    again = GenerationRequest(**request_from_parameters(text))
    assert again.hires.second_pass(again) == same.hires.second_pass(same)
    # webui's own text, with its paste defaults ("Use same sampler")
    webui = ("x\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, "
             "Size: 512x512, Denoising strength: 0.45, Hires sampler: Use same sampler, "
             "Hires prompt: y, Hires upscale: 2, Hires upscaler: Latent")  # fmt: skip
    read = GenerationRequest(**request_from_parameters(webui))
    assert read.hires.second_pass(read) == {
        "sampler": "dpmpp-2m", "schedule": "karras", "prompt": "y", "negative_prompt": "",
    }  # fmt: skip


class Spy:
    """A back end that hands every call to ``backend`` and keeps (request, result)."""

    def __init__(self, backend):
        self.backend, self.calls = backend, []

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def __call__(self, request, progress=None, cancel=None, **kw):
        result = self.backend(request, progress, cancel, **kw)
        self.calls.append((request, result))
        return result


def _pixels(image):
    return np.asarray(image.convert("RGB"))


def test_builtin_hires_fix_draws_scale_times_the_base_from_the_plain_first_pass(tmp_path):
    from genlab.backends import load_backend

    pipe = load_backend("builtin")
    request = GenerationRequest(PROMPT, steps=2, seed=4,
                                hires=HiresFix(2, "Lanczos", 2, 0.3))  # fmt: skip
    spy, steps = Spy(pipe), []
    result = hires_fix(spy, pipe.check(request), lambda p: steps.append((p.step, p.steps)))
    assert [im.size for im in result.images] == [(64, 64)]
    (first_request, first), (second_request, _) = spy.calls
    plain = pipe(GenerationRequest(PROMPT, steps=2, seed=4))
    assert first_request == replace(pipe.check(request), hires=None)
    assert np.array_equal(_pixels(first.images[0]), _pixels(plain.images[0]))
    assert (second_request.width, second_request.height) == (64, 64)
    assert steps[-1] == (4, 4) and [s for s, _ in steps] == sorted(s for s, _ in steps)
    # the latent upscale: the latents of the same first pass, the same final size
    latent = pipe(replace(request, hires=HiresFix(2, "Latent", 1, 0.3)))
    assert latent.images[0].size == (64, 64) and "split shapes" in latent.info["notice"]
    # from noise at 64x64 (strength 1) it would tile: refused before drawing, saying why
    with pytest.raises(GenlabError, match="hires fix"):
        pipe.check(GenerationRequest(PROMPT, width=64, height=64))
    with pytest.raises(GenlabError, match="trained at 32x32"):
        pipe.check(replace(request, hires=HiresFix(2, denoising_strength=1.0)))
    # 2 steps at strength 0.7: the pass's schedule has 2 steps, so it starts from noise too;
    # refused before the first pass, naming the steps, not the size
    spy = Spy(pipe)
    with pytest.raises(GenlabError, match=r"2 steps at denoising strength 0\.7 starts from pure"):
        hires_fix(spy, pipe.check(replace(request, hires=HiresFix(2, "Lanczos", 2, 0.7))))
    assert not spy.calls


def test_the_second_pass_sampler_and_prompt_are_a_plain_img2img_of_the_first(tmp_path):
    """The second pass with its own sampler and prompts is exactly the library's img2img
    of the upscaled first pass with those settings (webui's schedule), and differs from
    the one with the first pass's."""
    from genlab.backends import load_backend
    from genlab.generation.hires import upscale_image

    pipe = load_backend("builtin")
    hires = HiresFix(2, "Lanczos", 2, 0.5, sampler="euler", prompt="a blue square",
                     negative_prompt="red")  # fmt: skip
    request = GenerationRequest(PROMPT, steps=2, seed=4, hires=hires)
    drawn = pipe(request)
    first = pipe(GenerationRequest(PROMPT, steps=2, seed=4))
    init = [upscale_image(first.images[0], (64, 64), (64, 64), "Lanczos")]
    length, strength = second_pass_schedule(2, 0.5)
    direct = pipe(GenerationRequest("a blue square", "red", "euler", length, seed=4, width=64,
                                    height=64, init_image=init, strength=strength))  # fmt: skip
    assert np.array_equal(_pixels(drawn.images[0]), _pixels(direct.images[0]))
    # the second pass with the first pass's sampler and prompts (what hires fix without its
    # own settings draws) is another image
    plain = pipe(GenerationRequest(PROMPT, steps=length, seed=4, width=64, height=64,
                                   init_image=init, strength=strength))  # fmt: skip
    assert not np.array_equal(_pixels(drawn.images[0]), _pixels(plain.images[0]))
    text = drawn.parameters[0]
    assert "Sampler: DPM++ 2M" in text and "Hires sampler: Euler" in text
    assert "Hires prompt: a blue square" in text and "Hires negative prompt: red" in text


def test_cli_hires_flags_and_the_png_redraws_the_same_image(tmp_path, capsys):
    from PIL import Image

    from genlab.cli import main
    from genlab.generation import read_parameters

    out = tmp_path / "big.png"
    args = ["txt2img", PROMPT, "--steps", "2", "--seed", "1", "--hires-scale", "2",
            "--hires-steps", "1", "--denoising-strength", "0.25", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    text = read_parameters(out)
    assert Image.open(out).size == (64, 64) and "Size: 32x32" in text
    assert "Hires upscale: 2, Hires steps: 1, Hires upscaler: Latent" in text
    again = tmp_path / "again.png"
    assert main(["txt2img", "--from-png", str(out), "--out", str(again)]) == 0
    assert np.array_equal(_pixels(Image.open(out)), _pixels(Image.open(again)))
    capsys.readouterr()
    bad = ["txt2img", PROMPT, "--hires-steps", "3", "--out", str(tmp_path / "x.png")]
    assert main(bad) == 2
    assert "--hires-scale" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    # the second pass's own sampler and prompts, recorded and redrawn from the PNG
    own = tmp_path / "own.png"
    assert main([*args[:-1], str(own), "--hr-sampler", "Euler", "--hr-prompt",
                 "a blue square", "--hr-negative-prompt", "red"]) == 0  # fmt: skip
    text = read_parameters(own)
    assert "Hires sampler: Euler" in text and "Hires prompt: a blue square" in text
    assert not np.array_equal(_pixels(Image.open(out)), _pixels(Image.open(own)))
    again = tmp_path / "own-again.png"
    assert main(["txt2img", "--from-png", str(own), "--out", str(again)]) == 0
    assert np.array_equal(_pixels(Image.open(own)), _pixels(Image.open(again)))
    capsys.readouterr()
    bad = ["txt2img", PROMPT, "--hires-scale", "2", "--hr-sampler", "plms", "--out",
           str(tmp_path / "y.png")]  # fmt: skip
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert "hires sampler" in err and err.count("\n") == 1
    assert not (tmp_path / "y.png").exists()
    assert main(["txt2img", PROMPT, "--hr-prompt", "x", "--out", str(tmp_path / "z.png")]) == 2
    assert "--hires-scale" in capsys.readouterr().err


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    from support.tiny_sd import write_tiny_sd

    return write_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny-sd")


def test_stable_diffusion_hires_fix_latent_and_lanczos(sd_folder):
    from genlab.backends import resolve

    backend = resolve(str(sd_folder))
    request = GenerationRequest("a red circle", steps=2, seed=3, batch_size=2, width=16,
                                height=16, hires=HiresFix(2, "Lanczos", 2, 0.5))  # fmt: skip
    spy = Spy(backend)
    result = hires_fix(spy, request)
    assert [im.size for im in result.images] == [(32, 32), (32, 32)]
    first = spy.calls[0][1]
    plain = backend(replace(request, hires=None))
    for a, b in zip(first.images, plain.images, strict=True):
        assert np.array_equal(_pixels(a), _pixels(b))
    assert "Hires upscaler: Lanczos" in result.parameters[1] and "Seed: 4" in result.parameters[1]
    latent = backend(replace(request, batch_size=1, hires=HiresFix(2, "Latent", 2, 0.5)))
    assert latent.images[0].size == (32, 32)
    assert "Size: 16x16" in latent.parameters[0]


@pytest.mark.slow
def test_sdxl_hires_fix(tmp_path):
    from support.tiny_sd import write_tiny_sdxl

    from genlab.backends import resolve

    backend = resolve(str(write_tiny_sdxl(tmp_path / "tiny-sdxl")))
    for upscaler in ("Latent", "Lanczos"):
        request = GenerationRequest("a red circle", steps=2, seed=3, width=16, height=16,
                                    hires=HiresFix(2, upscaler, 2, 0.5))  # fmt: skip
        assert backend(request).images[0].size == (32, 32)
