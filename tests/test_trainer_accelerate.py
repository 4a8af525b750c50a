"""The Trainer on accelerate's prepared objects: the GradScaler's unscaling and skipped steps
(with a CPU GradScaler injected, since accelerate's fp16 needs a GPU), gradient
accumulation, several trainings in one process, all-or-nothing steps with several updates."""

import numpy as np
import pytest
import torch
from accelerate import Accelerator

import genlab.data as gd
import genlab.training.trainer as trainer_module
from genlab.models.autoencoder import AE
from genlab.models.gan import GAN
from genlab.models.vae import VAE
from genlab.training.trainer import TrainConfig, Trainer

DATA = np.random.default_rng(0).normal(size=(256, 2)).astype(np.float32)


def _ae():
    torch.manual_seed(0)
    return AE((2,), latent_dim=1, hidden=(16,))


def _grad_norms(trainer):
    """Record the gradient norm the optimizer sees at each of its steps."""
    seen = []
    opt = trainer.opts["main"].optimizer

    def hook(optimizer, args, kwargs):
        seen.append(torch.sqrt(sum(p.grad.pow(2).sum() for p in trainer.params["main"])).item())

    opt.register_step_pre_hook(hook)
    return seen


@pytest.fixture
def cpu_grad_scaler(monkeypatch):
    """``scaled(make)`` builds a Trainer with ``make()`` under accelerate's fp16 loss scaling,
    with a CPU GradScaler (no autocast: the scaling is what is under test)."""
    real = trainer_module.make_accelerator

    def with_scaler(cfg):
        acc = real(cfg)
        acc.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
        return acc

    def scaled(make):
        monkeypatch.setattr(Accelerator, "mixed_precision", property(lambda self: "fp16"))
        with monkeypatch.context() as m:
            m.setattr(trainer_module, "make_accelerator", with_scaler)
            trainer = make()
        # After prepare: unscale before clipping, as accelerate does under fp16 on a GPU.
        trainer.acc.native_amp = True
        return trainer

    return scaled


def test_the_optimizer_sees_unscaled_gradients(cpu_grad_scaler):
    cfg = TrainConfig(steps=4, batch_size=32, ema_decay=0, grad_clip=1.0, progress=False)
    plain = Trainer(_ae(), DATA, cfg)
    expected = _grad_norms(plain)
    plain.train()
    scaled = cpu_grad_scaler(lambda: Trainer(_ae(), DATA, cfg))
    assert scaled.acc.scaler is not None and scaled.opts["main"].scaler is scaled.acc.scaler
    seen = _grad_norms(scaled)
    scaled.train()
    # Clipped to norm 1 after unscaling; clipping the scaled gradients instead would hand
    # AdamW gradients of norm 2^-16, as the Trainer before accelerate's wrappers did.
    assert len(seen) == 4 and 0.5 < min(expected) <= max(expected) <= 1.0 + 1e-6
    np.testing.assert_allclose(seen, expected, rtol=1e-4)


class _Overflowing(AE):
    """Finite loss, but large enough that 2^16 times its gradient overflows on call 2."""

    calls = 0

    def training_step(self, batch, update="main"):
        self.calls += 1
        out = super().training_step(batch, update)
        if self.calls == 2:
            out["loss"] = out["loss"] * 1e36
        return out


def test_an_overflowing_fp16_step_is_skipped_with_finite_weights(cpu_grad_scaler):
    torch.manual_seed(0)
    model = _Overflowing((2,), latent_dim=1, hidden=(16,))
    cfg = TrainConfig(steps=3, batch_size=32, ema_decay=0, progress=False)
    trainer = cpu_grad_scaler(lambda: Trainer(model, DATA, cfg))
    weights = []
    trainer.opts["main"].optimizer.register_step_post_hook(
        lambda *a: weights.append({k: v.clone() for k, v in model.net.named_parameters()})
    )
    trainer.train()
    assert len(weights) == 2  # AdamW ran on steps 1 and 3 only: step 2 overflowed
    assert trainer.acc.scaler.get_scale() == 2.0**15  # and the scale was halved
    assert trainer.scheds["main"].last_epoch == 2  # the schedule skipped it too
    assert all(torch.isfinite(p).all() for p in model.net.parameters())


def test_gradient_accumulation_equals_the_larger_batch():
    cfg = dict(steps=3, ema_decay=0, progress=False, grad_clip=0)
    big = _ae()
    Trainer(big, DATA, TrainConfig(batch_size=64, **cfg)).train()
    small = _ae()
    trainer = Trainer(small, DATA, TrainConfig(batch_size=32, grad_accum=2, **cfg))
    steps = _grad_norms(trainer)
    trainer.train()
    assert len(steps) == 3 and trainer.effective_batch == 64  # one optimizer step per 2 batches
    for (k, a), b in zip(
        big.net.state_dict().items(), small.net.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=k)


def test_several_trainings_in_one_process_with_different_precision():
    data = gd.load("moons")
    settings = {"steps": 3, "batch_size": 64, "progress": False, "ema_decay": 0}

    def vae():
        torch.manual_seed(0)
        return VAE((2,), hidden=[16])

    first = vae().fit(data, settings)
    vae().fit(data, {**settings, "mixed_precision": "bf16"})  # autocast in bf16 on the CPU
    again = vae().fit(data, settings)  # full precision again, not a leftover bf16 state
    for k, v in first.net.state_dict().items():
        assert torch.equal(v, again.net.state_dict()[k]), k


class _FailingGenerator(GAN):
    """A GAN whose generator loss is NaN on the generator updates listed in ``bad``."""

    bad, calls = (1,), 0

    def training_step(self, batch, update="d"):
        out = super().training_step(batch, update)
        if update == "g":
            self.calls += 1
            if self.calls in self.bad:
                out["loss"] = out["loss"] * float("nan")
        return out


def test_a_step_with_several_updates_is_all_or_nothing():
    torch.manual_seed(0)
    model = _FailingGenerator((2,), hidden=(16,))
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    cfg = TrainConfig(steps=1, batch_size=32, ema_decay=0, progress=False, max_bad_steps=2)
    trainer = Trainer(model, DATA, cfg)
    out = trainer._step(trainer._micro_batches())
    assert out["skipped"] == 1 and trainer.bad_steps == 1
    # the discriminator's update, applied before the generator failed, was rolled back
    for k, v in model.net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(not s for s in trainer.opts["d"].optimizer.state.values())


def test_a_later_failed_step_restores_the_optimizer_state_too():
    torch.manual_seed(0)
    model = _FailingGenerator((2,), hidden=(16,))
    model.bad = (2,)
    cfg = TrainConfig(steps=2, batch_size=32, ema_decay=0, progress=False, max_bad_steps=2)
    trainer = Trainer(model, DATA, cfg)
    trainer._step(trainer._micro_batches())  # a good step: both players move
    trainer.step = 1
    weights = {k: v.clone() for k, v in model.net.state_dict().items()}
    opt = trainer.opts["d"].optimizer
    d_state = {(i, k): v.clone() for i, st in enumerate(opt.state.values()) for k, v in st.items()}
    assert trainer._step(trainer._micro_batches())["skipped"] == 1
    for k, v in model.net.state_dict().items():
        assert torch.equal(v, weights[k]), k
    after = {(i, k): v for i, st in enumerate(opt.state.values()) for k, v in st.items()}
    assert after.keys() == d_state.keys() and len(d_state) == 12  # 4 tensors x 3 states
    assert all(torch.equal(after[k], d_state[k]) for k in d_state)


FAMILIES = {
    "ae": {"latent_dim": 2, "width": 8},
    "vae": {"latent_dim": 2, "width": 8},
    "hvae": {"z1_dim": 4, "z2_dim": 2, "width": 8},
    "gan": {"width": 8},
    "realnvp": {"width": 8},
    "ebm": {"width": 8, "train_steps": 3},
    "ddpm": {"channels": [8, 16], "num_classes": 10},
    "noisy-classifier": {"channels": [8, 16]},
    "kl-autoencoder": {"widths": [8, 8, 8]},
}


def _checkpoint(run, step):
    from genlab.training import checkpoint as ckpt

    tensors, state = ckpt.load_checkpoint(run / "checkpoints" / f"step-{step}")
    flat = {f"{stem}/{k}": v for stem, named in tensors.items() for k, v in named.items()}
    for name, opt in state["optimizer"].items():
        for i, s in opt["state"].items():
            flat |= {f"opt/{name}/{i}/{k}": torch.as_tensor(v) for k, v in s.items()}
    return flat


@pytest.mark.parametrize("name,accum", [*((n, 1) for n in FAMILIES), ("vae", 2), ("ddpm", 2)])
def test_exact_resume_for_every_family(tmp_path, name, accum):
    """3 steps, a new model and Trainer resumed from the checkpoint, 3 more: the same bits
    as 6 steps straight (labels and gradient accumulation included)."""
    from genlab.registry import model_class

    data = gd.load("digits", size=8, scale="pm1")
    cfg = dict(batch_size=32, grad_accum=accum, ema_decay=0.9, progress=False)

    def trainer(run, steps, resume=None):
        torch.manual_seed(0)
        model = model_class(name)(data.shape, **FAMILIES[name])
        return Trainer(model, data, TrainConfig(steps=steps, **cfg), run_dir=run, resume=resume)

    trainer(tmp_path / "straight", 6).train()
    trainer(tmp_path / "split", 3).train()
    trainer(tmp_path / "split", 6, resume="latest").train()
    a, b = _checkpoint(tmp_path / "straight", 6), _checkpoint(tmp_path / "split", 6)
    assert a.keys() == b.keys() and any(k.startswith("ema/") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
