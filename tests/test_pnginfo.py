"""The generation request and the PNG parameters chunk in stable-diffusion-webui's layout."""

import numpy as np
import pytest
from PIL import Image

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.generation import (
    GenerationRequest,
    format_parameters,
    parse_parameters,
    read_parameters,
    save_png,
)


def test_parameters_round_trip_in_webui_layout():
    request = GenerationRequest(
        "a red circle to the left of a blue square", negative_prompt="blurry, dark",
        sampler="dpmpp-2m-karras", steps=20, cfg_scale=5.0, seed=7, batch_size=2, width=32,
        height=32,
    )  # fmt: skip
    text = format_parameters(request, 8, model="shapes", model_hash="1a2b3c4d5e6f7")
    assert text == (
        "a red circle to the left of a blue square\n"
        "Negative prompt: blurry, dark\n"
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5, Seed: 8, Size: 32x32, "
        "Model hash: 1a2b3c4d5e, Model: shapes"
    )
    parsed = parse_parameters(text)
    assert parsed["Prompt"] == request.prompt and parsed["Negative prompt"] == "blurry, dark"
    assert parsed["Seed"] == "8" and parsed["Sampler"] == "DPM++ 2M"
    assert parsed["Schedule type"] == "Karras"
    assert parsed["CFG scale"] == "5" and parsed["Size"] == "32x32"


def test_parse_reads_what_stable_diffusion_webui_writes():
    text = (
        "masterpiece, (red circle:1.3)\nsecond line of the prompt\n"
        "Negative prompt: lowres\n"
        "Steps: 30, Sampler: Euler a, CFG scale: 7.5, Seed: 123, Size: 512x512, "
        'Lora hashes: "a: 1f, b: 2e", Denoising strength: 0.6'
    )
    parsed = parse_parameters(text)
    assert parsed["Prompt"] == "masterpiece, (red circle:1.3)\nsecond line of the prompt"
    assert parsed["Negative prompt"] == "lowres"
    assert parsed["Lora hashes"] == "a: 1f, b: 2e" and parsed["Denoising strength"] == "0.6"
    assert parsed["Sampler"] == "Euler a" and parsed["Steps"] == "30"


def test_values_with_commas_or_quotes_are_quoted():
    request = GenerationRequest("x")
    text = format_parameters(request, 0, extra={"Note": 'says "hi", twice'})
    assert parse_parameters(text)["Note"] == 'says "hi", twice'
    assert GenerationRequest("img", init_image=object(), strength=0.6).strength == 0.6
    text = format_parameters(GenerationRequest("img", init_image=object(), strength=0.6), 1)
    assert parse_parameters(text)["Denoising strength"] == "0.6"


def test_same_pixels_and_parameters_give_the_same_bytes(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    text = format_parameters(GenerationRequest("a star"), 1)
    a = save_png(Image.fromarray(pixels), tmp_path / "a.png", text)
    b = save_png(Image.fromarray(pixels), tmp_path / "b.png", text)
    assert a.read_bytes() == b.read_bytes()
    assert read_parameters(a) == text


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"steps": 0}, "steps must be a whole number from 1 to 1000"),
        ({"steps": 10_001}, "steps must be a whole number from 1 to 1000"),
        ({"width": 100_000}, "width must be a whole number of pixels from 1 to 2048"),
        ({"batch_size": 10_000}, "batch_size must be a whole number from 1 to 64"),
        ({"seed": 2**32}, "seed must be a whole number from 0 to 4294967295"),
        ({"cfg_scale": float("nan")}, "CFG scale must be a finite number"),
        ({"cfg_scale": -1.0}, "CFG scale must be a finite number"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"sampler": "plms"}, "Unknown sampler 'plms'; choose one of ddpm, ddim"),
        ({"seed": -1}, "seed must be"),
        ({"strength": 0.5}, "strength applies to img2img"),
    ],
)
def test_bad_requests_are_one_sentence(fields, message):
    with pytest.raises(GenlabError, match=message):
        GenerationRequest("a circle", **fields)


def test_png_info_command(tmp_path, capsys):
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "p.png",
                    format_parameters(GenerationRequest("a heart", seed=3), 3))  # fmt: skip
    assert main(["png-info", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("a heart\n") and "Seed: 3" in out
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    assert main(["png-info", str(tmp_path / "plain.png")]) == 2
    assert "carries no generation parameters" in capsys.readouterr().err
    (tmp_path / "fake.png").write_text("not an image")
    assert main(["png-info", str(tmp_path / "fake.png")]) == 2
    assert main(["png-info", str(tmp_path / "missing.png")]) == 2
