"""The LoRA training options of diffusers' train_text_to_image_lora.py and kohya's sd-scripts:
captions from metadata.jsonl, repeats, random flip, learning-rate schedules, min-SNR gamma,
noise offset, validation prompts, gradient checkpointing, exact resume with all of them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("peft", reason="LoRA needs the extra genlab[lora]")

from genlab.cli import main


def _images(root, n: int = 4, size: int = 32):
    from PIL import Image

    from genlab.data import load

    data = load("shapes", n=n, seed=3, scale="unit", size=size)
    root.mkdir(parents=True)
    for i, x in enumerate(data.x):
        Image.fromarray((x.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(
            root / f"{i}.png"
        )
    return data


def test_metadata_jsonl_captions_and_kohya_folder_repeats(tmp_path):
    from genlab.data import load
    from genlab.errors import DataError

    _images(tmp_path / "d" / "3_teal", n=2)
    _images(tmp_path / "d" / "plain", n=1)
    rows = [{"file_name": "3_teal/0.png", "text": "a  teal circle"},
            {"file_name": "plain/0.png", "text": "a square"}]  # fmt: skip
    (tmp_path / "d" / "metadata.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n")
    (tmp_path / "d" / "3_teal" / "1.txt").write_text("from the side file")
    ds = load("folder", path=tmp_path / "d", captioned=True, repeats=2)
    captions = [r["captions"][0] for r in ds.records]
    # 3_teal: 2 images x 3 (folder) x 2 (--repeats); plain: 1 image x 2
    assert len(ds.x) == len(ds.records) == 14 and not ds.info["skipped"]
    assert captions.count("a teal circle") == 6 and captions.count("from the side file") == 6
    assert captions.count("a square") == 2
    (tmp_path / "d" / "metadata.jsonl").write_text("not json\n")
    with pytest.raises(DataError, match="line 1 is not a JSON object"):
        load("folder", path=tmp_path / "d", captioned=True)


@pytest.mark.parametrize(
    "name", ["constant", "constant_with_warmup", "cosine", "cosine_with_restarts", "linear"]
)
def test_schedules_equal_diffusers_get_scheduler(name):
    from diffusers.optimization import get_scheduler

    from genlab.training.schedules import lr_factor

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    oracle = get_scheduler(name, opt, num_warmup_steps=3, num_training_steps=20, num_cycles=3)
    for k in range(22):
        mine = lr_factor(name, k, warmup=3, total=20, cycles=3)
        assert mine == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12), (name, k)
        opt.step()
        oracle.step()


def test_min_snr_weights_equal_diffusers_formula():
    from diffusers import DDPMScheduler
    from diffusers.training_utils import compute_snr

    from genlab.interop.diffusers.lora_base import DiffusersBase

    t = torch.tensor([0, 1, 10, 100, 400, 999])
    for prediction in ("epsilon", "v_prediction"):
        base = object.__new__(DiffusersBase)  # only its schedule is needed
        base.schedule = DDPMScheduler(prediction_type=prediction)
        snr = compute_snr(base.schedule, t)
        gamma = torch.full_like(snr, 5.0)
        expected = torch.stack([snr, gamma], dim=1).min(dim=1)[0]  # the script's lines
        expected = expected / (snr if prediction == "epsilon" else snr + 1)
        torch.testing.assert_close(base.min_snr_weights(t, 5.0), expected.float())
        if prediction == "epsilon":  # noisy levels (SNR < gamma) keep weight 1, clean ones less
            weights = base.min_snr_weights(t, 5.0)
            assert weights[-1] == 1.0 and weights[0] < 0.01


def test_noise_offset_shifts_each_channel_by_one_draw():
    from genlab.diffusion.losses import noised

    class Levels:
        log_sigmas = torch.zeros(1)  # sigma = 1: x = x0 + eps

    x0 = torch.zeros(3, 4, 8, 8)
    torch.manual_seed(0)
    plain = noised(Levels, x0)[0]
    torch.manual_seed(0)
    shifted = noised(Levels, x0, noise_offset=0.1)[0]
    offset = shifted - plain
    assert offset.abs().max() > 0.01  # a shift, the same over each channel's pixels
    torch.testing.assert_close(offset, offset[..., :1, :1].expand_as(offset))


def test_options_resume_exactly_validate_and_are_checked(tmp_path, capsys):
    """4 steps straight equal a run stopped after 2 and resumed (--resume latest) to 4, with
    flip, a cosine schedule (over the run's 4 steps), min-SNR and the noise offset on;
    validation prompts are drawn into samples/; bad values exit 2."""
    from genlab import load
    from genlab.errors import Cancelled
    from genlab.finetune.train import finetune, lora_config

    _images(tmp_path / "imgs", n=3)
    common = ["finetune", "lora", "--data", str(tmp_path / "imgs"), "--caption", "a picture",
              "--lr", "0.01", "--flip", "--lr-scheduler", "cosine", "--lr-warmup-steps", "1",
              "--min-snr-gamma", "5", "--noise-offset", "0.05", "--repeats", "2",
              "--validation-prompt", "a red circle", "--validation-every", "2"]  # fmt: skip
    assert main([*common, "--steps", "4", "--out", str(tmp_path / "straight")]) == 0
    cfg = lora_config(
        "builtin", str(tmp_path / "imgs"), caption="a picture", repeats=2,
        train={"steps": 4, "lr": 0.01, "lr_scheduler": "cosine", "warmup_steps": 1,
               "sample_every": 2},
        settings={"flip": True, "min_snr_gamma": 5.0, "noise_offset": 0.05,
                  "validation_prompts": ["a red circle"]},
    )  # fmt: skip

    def stop(step, _):
        if step == 2:
            raise Cancelled("stopped")

    with pytest.raises(Cancelled):
        finetune(cfg, tmp_path / "split", on_step=stop)
    assert main([*common, "--steps", "4", "--out", str(tmp_path / "split"),
                 "--resume", "latest"]) == 0  # fmt: skip
    a, b = load(tmp_path / "straight").state_arrays(), load(tmp_path / "split").state_arrays()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    lora = load(tmp_path / "straight")
    assert lora.flip and lora.min_snr_gamma == 5.0 and lora.noise_offset == 0.05
    assert lora.validation_prompts == ["a red circle"]
    shown = sorted(p.name for p in (tmp_path / "straight" / "samples").glob("validation-*"))
    assert shown == ["validation-2-0.png", "validation-4-0.png"]
    capsys.readouterr()
    bad = ["finetune", "lora", "--data", str(tmp_path / "imgs"), "--caption", "a", "--steps",
           "1", "--out", str(tmp_path / "bad")]  # fmt: skip
    assert main([*bad, "--noise-offset", "3"]) == 2
    assert "noise_offset" in capsys.readouterr().err
    assert main([*bad, "--gradient-checkpointing"]) == 2
    assert "Stable Diffusion base" in capsys.readouterr().err
    assert main([*bad, "--repeats", "0"]) == 2
    assert not (tmp_path / "bad" / "model").exists()


def test_flip_caches_the_mirrors_latents_and_picks_either():
    from genlab.data import load as load_data
    from genlab.finetune.model import LoRA

    data = load_data("shapes", n=2, seed=1, scale="pm1", captions_per_image=1)
    lora = LoRA(data.x.shape[1:], flip=True)
    x, _ = lora.training_data(data)
    plain, mirrored = x.chunk(2, dim=1)
    expected, _ = lora.base_model.training_data(
        type(data)(data.name, np.ascontiguousarray(data.x[..., ::-1]), records=data.records)
    )
    torch.testing.assert_close(mirrored, expected)
    assert not torch.allclose(plain, mirrored)


def _sd_step(lora, data, seed: int = 0):
    from genlab.training.batch import Batch

    x, cond = lora.training_data(data)
    lora.net.train()
    torch.manual_seed(seed)
    loss = lora.training_step(Batch(x, cond))["loss"]
    loss.backward()
    grads = {k: p.grad.clone() for k, p in lora.net.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def test_stable_diffusion_gradient_checkpointing_min_snr_and_kohya_fields(tmp_path):
    """On a tiny Stable Diffusion: diffusers' gradient checkpointing gives the same loss and
    gradients; --min-snr-gamma and --noise-offset change the loss; the kohya export's header
    carries the options."""
    from safetensors import safe_open
    from support.tiny_sd import write_tiny_sd

    from genlab.data import load as load_data
    from genlab.finetune.model import LoRA

    folder = write_tiny_sd(tmp_path / "sd")
    data = load_data("shapes", n=2, seed=1, scale="pm1", captions_per_image=1, size=16)
    plain = LoRA(data.x.shape[1:], base=str(folder))
    loss, grads = _sd_step(plain, data)
    checkpointed = LoRA(data.x.shape[1:], base=str(folder), gradient_checkpointing=True)
    assert checkpointed.net["denoiser"].is_gradient_checkpointing
    checkpointed.load_state_arrays(plain.state_arrays())  # the same adapters' random A
    loss2, grads2 = _sd_step(checkpointed, data)
    torch.testing.assert_close(loss2, loss)
    assert grads.keys() == grads2.keys() and grads
    for k in grads:
        torch.testing.assert_close(grads2[k], grads[k], rtol=1e-4, atol=1e-6)
    weighted = LoRA(data.x.shape[1:], base=str(folder), min_snr_gamma=5.0, noise_offset=0.1)
    weighted.load_state_arrays(plain.state_arrays())
    assert not torch.allclose(_sd_step(weighted, data)[0], loss)

    imgs = tmp_path / "imgs"
    _images(imgs, n=2)
    run = tmp_path / "run"
    assert main(["finetune", "lora", "--model", str(folder), "--data", str(imgs), "--caption",
                 "a red square", "--steps", "1", "--flip", "--lr-scheduler",
                 "cosine_with_restarts", "--lr-cycles", "2", "--min-snr-gamma", "5",
                 "--gradient-checkpointing", "--out", str(run), "--format", "kohya"]
                ) == 0  # fmt: skip
    with safe_open(str(run / "run.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["ss_flip_aug"] == "True" and meta["ss_min_snr_gamma"] == "5.0"
    assert meta["ss_lr_scheduler"] == "cosine_with_restarts"
    assert meta["ss_lr_scheduler_num_cycles"] == "2" and meta["ss_gradient_checkpointing"] == "True"
    assert json.loads(meta["ss_dataset_dirs"]) == {"imgs": {"n_repeats": 1}}
