"""The few-step built-in model (``builtin-fast``, assets/txt2img-shapes-fast): its card, that it
samples at 4 steps with its own settings everywhere a model is named (CLI, eval-t2i, the
page's sliders, the API's model list), and that its recipe (latent consistency distillation
of the built-in model, txt2img-shapes-lcm) runs on a tiny budget."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genlab.backends import load_backend
from genlab.generation import GenerationRequest, parse_parameters, read_parameters
from genlab.pipelines.text_to_image import builtin_folder
from genlab.training.checkpoint import sha256

FAST = "builtin-fast"
OWN = {"sampler": "lcm", "steps": 4, "cfg_scale": 1.0}


def test_card_matches_the_weights_and_the_model_is_small():
    folder = builtin_folder(FAST)
    card = json.loads((folder / "card.json").read_text())
    assert card["sha256"] == sha256(folder / "model.safetensors")
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert total <= 10 * 2**20  # the budget: at most 10 MB more than the default
    assert card["recipe"] == "txt2img-shapes-lcm"
    assert card["teacher"]["sha256"] == sha256(builtin_folder() / "model.safetensors")
    assert card["sampling"] == {"sampler": "lcm", "steps": 4, "cfg": 1.0}
    assert card["training_seconds"] > 0 and card["eval"]["settings"]["steps"] == 4
    assert card["adherence"]["heldout"]["overall"] > 0


def test_it_samples_in_four_steps_with_its_own_settings(tmp_path):
    from genlab.cli import main

    pipe = load_backend(FAST)
    info = pipe.describe()
    assert info.name == "genlab-shapes-fast" and info.sampling == OWN
    out = tmp_path / "fast.png"
    assert main(["txt2img", "a red circle on the left", "--model", FAST, "--out", str(out)]) == 0
    params = parse_parameters(read_parameters(out))
    assert params["Steps"] == "4" and params["Sampler"] == "LCM" and params["CFG scale"] == "1"
    assert params["Model"] == "genlab-shapes-fast"
    # a flag given wins over the model's own
    assert (
        main(["txt2img", "a red circle", "--model", FAST, "--steps", "2", "--out", str(out)]) == 0
    )
    assert parse_parameters(read_parameters(out))["Steps"] == "2"
    steps = []
    pipe(GenerationRequest("a blue square", **OWN), progress=lambda p: steps.append(p.step))
    assert steps == [1, 2, 3, 4]


def test_it_draws_what_it_is_asked_in_four_steps():
    from genlab.evaluation.scene_detector import detect, judge

    def one(colour, shape, position, size="large"):
        return {"things": [{"colour": colour, "shape": shape, "size": size}], "position": position}

    cases = [
        ("a large red circle on the left", one("red", "circle", "left")),
        ("a large green star in the centre", one("green", "star", "centre")),  # held out
        ("a small blue square at the top", one("blue", "square", "top", "small")),
        ("a yellow triangle, right, large", one("yellow", "triangle", "right")),
    ]
    pipe, right = load_backend(FAST), 0
    for prompt, scene in cases:
        images = pipe(GenerationRequest(prompt, seed=0, batch_size=4, **OWN)).images
        right += sum(judge(scene, detect(np.asarray(im)))["overall"] for im in images)
    assert right >= 12, right  # of 16 (eval-t2i measures the same on hundreds of prompts)


def test_a_negative_prompt_without_guidance_is_said():
    pipe = load_backend(FAST)
    result = pipe(GenerationRequest("a red circle", negative_prompt="blue", **OWN))
    assert "negative prompt" in result.info["notice"]
    assert "notice" not in pipe(GenerationRequest("a red circle", **OWN)).info


def test_eval_t2i_samples_at_the_models_own_settings():
    from genlab.evaluation.text_to_image import evaluate_text_to_image

    report = evaluate_text_to_image(FAST, n=2, seed=0, references=False)
    assert report["settings"] == {"sampler": "lcm", "steps": 4, "cfg": 1.0}
    given = evaluate_text_to_image(FAST, n=1, seed=0, references=False, steps=2)
    assert given["settings"]["steps"] == 2


def test_the_page_and_the_api_offer_it(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from genlab.webui.api import mount_api
    from genlab.webui.catalog import Catalog
    from genlab.webui.handlers import Handlers
    from genlab.webui.server import prepare_out
    from genlab.webui.studio import Studio

    studio = Studio(Catalog(), prepare_out(tmp_path / "out"))
    size = Handlers(studio).model_size(FAST)  # the page's sliders follow the model
    assert (size.sampler, size.steps, size.cfg) == ("lcm", 4, 1.0)
    assert (Handlers(studio).model_size("builtin").steps, size.width) == (20, 32)
    app = FastAPI()
    mount_api(app, studio)
    client = TestClient(app)
    listed = client.get("/sdapi/v1/sd-models").json()
    assert [m["title"] for m in listed] == ["builtin", FAST]
    # a client that sends no steps, sampler or CFG scale gets the model's own, not webui's
    body = {"prompt": "a red circle", "override_settings": {"sd_model_checkpoint": FAST}}
    info = json.loads(client.post("/sdapi/v1/txt2img", json=body).json()["info"])
    assert (
        "Steps: 4, Sampler: LCM, " in info["infotexts"][0]
        and "CFG scale: 1," in info["infotexts"][0]
    )
    sent = client.post("/sdapi/v1/txt2img", json={**body, "steps": 2, "cfg_scale": 2}).json()
    assert "Steps: 2, Sampler: LCM, " in json.loads(sent["info"])["infotexts"][0]


def test_the_recipe_distils_on_a_tiny_budget(tmp_path):
    """Two steps of txt2img-shapes-lcm on 16 scenes: the student moves, the teacher stays,
    the target follows the student, and the student alone is a latent-diffusion model with
    the few-step defaults."""
    import genlab
    from genlab.data.shapes import shapes
    from genlab.models.consistency_distillation import LatentConsistencyDistillation
    from genlab.models.latent_diffusion import LatentDiffusion
    from genlab.serialization import save_model
    from genlab.training.runfolder import load_recipe
    from genlab.training.trainer import TrainConfig, Trainer

    recipe = load_recipe("txt2img-shapes-lcm")
    model = LatentConsistencyDistillation((3, 32, 32), **recipe["model_config"])
    before = {k: v.clone() for k, v in model.net.denoiser.state_dict().items()}
    data = shapes(16, size=32, seed=0, captions_per_image=2)
    config = TrainConfig.make(model, {**recipe["train"], "steps": 2, "batch_size": 8,
                                      "progress": False, "ema_decay": 0.0})  # fmt: skip
    summary = Trainer(model, data, config).train()
    assert np.isfinite(summary["loss"])
    after, teacher = model.net.denoiser.state_dict(), model.net.teacher.state_dict()
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert moved and all(torch.equal(before[k], teacher[k]) for k in before)
    # the target is an EMA of the student: between its start (the teacher) and the student
    key = moved[0]
    target = model.net.target.state_dict()[key]
    assert not torch.equal(target, before[key]) and not torch.equal(target, after[key])
    student = model.student()
    assert type(student) is LatentDiffusion and student.sampling == {
        "sampler": "lcm",
        "steps": 4,
        "cfg": 1.0,
    }
    assert torch.equal(student.net.denoiser.state_dict()[key], after[key])
    x = student.sample(2, seed=0, prompt="a red circle")
    assert x.shape == (2, 3, 32, 32) and torch.isfinite(x).all()
    save_model(model, tmp_path / "model")  # the run's model: the student, no teacher
    saved = genlab.load(tmp_path / "model")
    assert type(saved) is LatentConsistencyDistillation
    assert torch.equal(saved.net.denoiser.state_dict()[key], after[key])
