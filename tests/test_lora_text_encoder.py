"""Text-encoder LoRA (``--train-text-encoder``) and separate U-Net / text-encoder learning
rates, on the tiny pipelines of tests/support/tiny_sd.py: the captions then pass through the
trained encoders at every step (the same embeddings the cached path gives), a run resumes
exactly, each parameter group's learning rate follows its schedule, and the LoRAs genlab
writes (its own folder's diffusers file, kohya's and diffusers' exports) load in diffusers'
own ``load_lora_weights`` with genlab's image, on SD 1.x and SDXL; ``genlab lora fuse`` on
SDXL draws the unfused LoRA's image."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("peft", reason="LoRA needs the extra genlab[lora]")

DRAW = {"steps": 3, "width": 16, "height": 16, "seed": 4, "cfg_scale": 5.0}
PROMPT, NEGATIVE = "a red square", "blue"


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    from support.tiny_sd import write_tiny_sd

    return write_tiny_sd(tmp_path_factory.mktemp("te-sd") / "tiny-sd")


@pytest.fixture(scope="module")
def xl_folder(tmp_path_factory):
    from support.tiny_sd import write_tiny_sdxl

    return write_tiny_sdxl(tmp_path_factory.mktemp("te-xl") / "tiny-xl")


@pytest.fixture(scope="module")
def imgs(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("te-imgs")
    rng = np.random.default_rng(0)
    for i in range(4):
        a = np.zeros((16, 16, 3), np.uint8) + rng.integers(0, 255, 3, dtype=np.uint8)
        Image.fromarray(a).save(root / f"{i}.png")
    return root


def finetune(folder, imgs, out, *extra):
    from genlab.cli import main

    args = ["finetune", "lora", "--model", str(folder), "--data", str(imgs), "--caption",
            PROMPT, "--lr", "0.05", "--batch-size", "2", "--rank", "4", "--alpha", "2",
            "--out", str(out), *extra]  # fmt: skip
    assert main(args) == 0
    return out


def genlab_image(folder, loras=()):
    from genlab.backends import resolve
    from genlab.generation import GenerationRequest

    request = GenerationRequest(PROMPT, NEGATIVE, loras=tuple(loras), **DRAW)
    return np.asarray(resolve(str(folder))(request).images[0], dtype=np.float64) / 255


def diffusers_pipe(folder, sdxl):
    from genlab.interop.diffusers.backend import pipeline_class
    from genlab.interop.diffusers.schedulers import diffusers_scheduler

    pipe = pipeline_class("sdxl" if sdxl else "sd1", "txt2img").from_pretrained(
        folder, local_files_only=True
    )
    pipe.scheduler = diffusers_scheduler("dpmpp-2m", "default", pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def diffusers_image(pipe):
    return pipe(
        PROMPT, negative_prompt=NEGATIVE, num_inference_steps=DRAW["steps"],
        guidance_scale=DRAW["cfg_scale"], height=16, width=16,
        generator=torch.Generator().manual_seed(DRAW["seed"]), output_type="np",
    ).images[0]  # fmt: skip


def test_trained_encoders_give_the_cached_embeddings(sd_folder, xl_folder):
    """Token ids through the encoders (the trained path, with gradients) equal what the
    frozen path caches (the pipeline's own encode_prompt on SDXL)."""
    from genlab.interop.diffusers.lora_base import DiffusersBase

    texts = ["a red square", "two blue circles, left"]
    for folder in (sd_folder, xl_folder):
        base = DiffusersBase(folder)
        with torch.no_grad():
            cached = base.caption_condition(texts)
        base.encode_every_step = True
        with torch.no_grad():
            ids = base.caption_condition(texts)
        assert ids.tokens is None and ids.ids.dtype == torch.int64
        live = base.step_condition(ids)
        assert live.tokens.requires_grad  # through the encoders, with gradients
        torch.testing.assert_close(live.tokens.detach(), cached.tokens, rtol=0, atol=1e-5)
        if base.sdxl:
            assert ids.ids.shape[1] == 2 * base.backend.pipe.tokenizer.model_max_length
            torch.testing.assert_close(live.pooled.detach(), cached.pooled, rtol=0, atol=1e-5)


@pytest.mark.slow  # three short trainings and eight draws: ~270 s at load 16 on 2 cores
def test_sd1_text_encoder_lora_resumes_and_loads_in_diffusers(sd_folder, imgs, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    from genlab.cli import main

    te = ["--train-text-encoder", "--unet-lr", "0.05", "--text-encoder-lr", "0.1"]
    straight = finetune(sd_folder, imgs, tmp_path / "straight", *te, "--steps", "4")
    finetune(sd_folder, imgs, tmp_path / "split", *te, "--steps", "2")
    finetune(sd_folder, imgs, tmp_path / "split", "--steps", "4", "--resume", "latest")
    name = "model/pytorch_lora_weights.safetensors"
    a, b = load_file(straight / name), load_file(tmp_path / "split" / name)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])  # exact resume, text encoder trained
    text_b = [v for k, v in a.items() if k.startswith("text_encoder.") and ".lora_B." in k]
    assert len(text_b) == 2 * 4 and all(np.abs(v).max() > 0 for v in text_b)  # 2 layers x qkvo
    assert "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight" in a

    mine = genlab_image(sd_folder, [(str(straight), 1.0)])
    assert np.abs(mine - genlab_image(sd_folder)).max() > 2 / 255  # the LoRA does something
    kohya, plain = tmp_path / "k.safetensors", tmp_path / "d.safetensors"
    assert main(["lora", "export", str(straight), "--format", "kohya", "--out", str(kohya)]) == 0
    assert main(["lora", "export", str(straight), "--format", "diffusers", "--out",
                 str(plain)]) == 0  # fmt: skip
    with safe_open(str(kohya), "pt") as f:
        keys, meta = set(f.keys()), f.metadata()
    te_name = "lora_te_text_model_encoder_layers_1_self_attn_out_proj"
    assert {f"{te_name}.lora_down.weight", f"{te_name}.lora_up.weight", f"{te_name}.alpha"} <= keys
    assert {k.split("_", 2)[1] for k in keys} == {"unet", "te"}
    assert meta["ss_text_encoder_lr"] == "0.1" and meta["ss_unet_lr"] == "0.05"
    assert meta["ss_learning_rate"] == "0.05" and meta["ss_network_train_unet_only"] == "False"
    assert meta["ss_network_module"] == "networks.lora"
    for lora in (straight / "model", kohya, plain):
        ref = diffusers_pipe(sd_folder, sdxl=False)
        ref.load_lora_weights(str(lora))
        assert np.abs(diffusers_image(ref) - mine).max() <= 2 / 255, lora.name
    for lora in (kohya, plain):
        assert np.abs(genlab_image(sd_folder, [(str(lora), 1.0)]) - mine).max() <= 2 / 255
    # the text encoder's part is applied: without it the image is another
    from safetensors.torch import load_file as load_torch
    from safetensors.torch import save_file

    unet_only = {k: v for k, v in load_torch(kohya).items() if k.startswith("lora_unet_")}
    save_file(unet_only, str(tmp_path / "u.safetensors"))
    other = genlab_image(sd_folder, [(str(tmp_path / "u.safetensors"), 1.0)])
    assert np.abs(other - mine).max() > 2 / 255


@pytest.mark.slow  # a training, an export and five draws: ~180 s at load 16 on 2 cores
@pytest.mark.parametrize("text_encoder", [False, True])
def test_sdxl_lora_loads_in_diffusers_and_fuses(xl_folder, imgs, tmp_path, text_encoder):
    from safetensors.numpy import load_file

    from genlab.cli import main

    te = ["--train-text-encoder"] if text_encoder else []
    run = finetune(xl_folder, imgs, tmp_path / "run", *te, "--steps", "2")
    own = load_file(run / "model" / "pytorch_lora_weights.safetensors")
    parts = {k.split(".", 1)[0] for k in own}
    assert parts == ({"unet", "text_encoder", "text_encoder_2"} if text_encoder else {"unet"})
    mine = genlab_image(xl_folder, [(str(run), 1.0)])
    assert np.abs(mine - genlab_image(xl_folder)).max() > 2 / 255
    kohya = tmp_path / "k.safetensors"
    assert main(["lora", "export", str(run), "--format", "kohya", "--out", str(kohya)]) == 0
    prefixes = {k.split("_", 2)[1] for k in load_file(kohya)}
    assert prefixes == ({"unet", "te1", "te2"} if text_encoder else {"unet"})
    for lora in (run / "model", kohya):
        ref = diffusers_pipe(xl_folder, sdxl=True)
        ref.load_lora_weights(str(lora))
        assert np.abs(diffusers_image(ref) - mine).max() <= 2 / 255, lora.name
    if text_encoder:  # the 1.x fuse is in test_stable_diffusion.py
        assert main(["lora", "fuse", str(run), "--out", str(tmp_path / "fused")]) == 0
        assert np.abs(genlab_image(tmp_path / "fused") - mine).max() <= 2 / 255


def test_trainer_steps_each_parameter_group_at_its_scheduled_rate():
    """A model's update given as parameter groups (one with its own ``lr``, one taking the
    run's): each group's rate at every step is its base rate times the schedule's factor,
    and only the groups' parameters move."""
    from torch import nn

    from genlab.models.neural import NeuralModel
    from genlab.training.config import TrainConfig
    from genlab.training.schedules import lr_factor
    from genlab.training.trainer import Trainer

    class Two(NeuralModel):
        name = "two"

        def __init__(self):
            super().__init__((2,))
            self.net = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 1),
                                      "c": nn.Linear(2, 1)})  # fmt: skip
            self.net["c"].requires_grad_(False)

        def updates(self):
            return [("main", [{"name": "a", "lr": 0.1, "params": [*self.net["a"].parameters()]},
                              {"name": "b", "params": [*self.net["b"].parameters()]},
                              {"name": "c", "params": [*self.net["c"].parameters()]}])]  # fmt: skip

        def training_step(self, batch, update="main"):
            x = batch.x
            return {"loss": sum(self.net[k](x).pow(2).mean() for k in "abc")}

    model, seen = Two(), []
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    cfg = TrainConfig(steps=6, batch_size=4, lr=0.02, lr_scheduler="cosine", warmup_steps=2,
                      ema_decay=0.0, log_every=1, progress=False)  # fmt: skip
    data = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    Trainer(model, data, cfg, on_step=lambda step, m: seen.append((step, m))).train()
    assert [s for s, _ in seen] == [1, 2, 3, 4, 5, 6]
    for step, metrics in seen:  # the rate of the next step, step index ``step``
        factor = lr_factor("cosine", step, warmup=2, total=6)
        assert metrics["lr_a"] == pytest.approx(0.1 * factor, rel=1e-6, abs=1e-9)
        assert metrics["lr_b"] == pytest.approx(0.02 * factor, rel=1e-6, abs=1e-9)
        assert "lr_c" not in metrics  # a group with nothing to train is left out
    after = model.net.state_dict()
    assert not torch.equal(after["a.weight"], before["a.weight"])
    assert not torch.equal(after["b.weight"], before["b.weight"])
    assert torch.equal(after["c.weight"], before["c.weight"])


@pytest.mark.slow
def test_each_groups_learning_rate_follows_its_schedule(sd_folder, imgs, tmp_path):
    from genlab.finetune.train import finetune as train
    from genlab.finetune.train import lora_config
    from genlab.training.schedules import lr_factor

    settings = {"train_text_encoder": True, "unet_lr": 0.01, "text_encoder_lr": 0.003}
    train_cfg = {"steps": 5, "lr": 0.5, "lr_scheduler": "cosine", "warmup_steps": 2,
                 "log_every": 1, "batch_size": 2}  # fmt: skip
    cfg = lora_config(str(sd_folder), str(imgs), caption=PROMPT, train=train_cfg,
                      settings=settings)  # fmt: skip
    train(cfg, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    for row in rows:  # the rate the next step uses: step index row["step"]
        factor = lr_factor("cosine", row["step"], warmup=2, total=5)
        assert row["lr_unet"] == pytest.approx(0.01 * factor, rel=1e-6, abs=1e-12)
        assert row["lr_text_encoder"] == pytest.approx(0.003 * factor, rel=1e-6, abs=1e-12)
    assert rows[0]["lr_unet"] > 0 and rows[0]["lr_text_encoder"] < rows[0]["lr_unet"]


def test_text_encoder_flags_are_checked(sd_folder, imgs, tmp_path, capsys):
    from genlab.cli import main

    args = ["finetune", "lora", "--model", str(sd_folder), "--data", str(imgs), "--caption",
            PROMPT, "--steps", "1"]  # fmt: skip
    assert main([*args, "--text-encoder-lr", "0.1", "--out", str(tmp_path / "a")]) == 2
    assert "--text-encoder-lr needs --train-text-encoder" in capsys.readouterr().err
    assert main([*args, "--unet-lr", "-1", "--out", str(tmp_path / "b")]) == 2
    assert "unet_lr" in capsys.readouterr().err
    assert main([*args, "--unet-lr", "0", "--out", str(tmp_path / "c")]) == 2  # trains nothing
    assert "--unet-lr 0 leaves nothing to train" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
