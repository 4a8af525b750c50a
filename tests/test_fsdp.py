"""Sharded training (--fsdp, torch's FSDP2) on two CPU processes over gloo: the same weights
as DDP, exact resume, checkpoints that load anywhere, clear refusals."""

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_training import tensors_of, two_processes

from genlab.data import load
from genlab.errors import GenlabError
from genlab.models.diffusion import DDPM
from genlab.models.vae import VAE
from genlab.training.config import TrainConfig
from genlab.training.sharding import Sharding
from genlab.training.trainer import Trainer

MODELS = textwrap.dedent(
    """
    import os
    import torch
    from genlab.data import load
    from genlab.models.diffusion import DDPM
    from genlab.models.kl_autoencoder import KLAutoencoder
    from genlab.models.latent_diffusion import LatentDiffusion

    def ddpm():
        torch.manual_seed(0)
        data = load("digits", size=8, scale="pm1")
        return DDPM((1, 8, 8), channels=(8, 16), attention=True), data

    def latent(folder):
        torch.manual_seed(0)
        ae = f"{folder}/ae-{os.environ.get('RANK', '0')}"  # one each: no race over one folder
        KLAutoencoder((3, 32, 32), widths=(8, 8, 8)).save(ae)
        model = LatentDiffusion((3, 32, 32), autoencoder=ae, text_encoder="tiny",
                                channels=(16, 32), attention=True)
        return model, load("shapes", n=64, captions_per_image=2)
    """
)

COMPARE = """
import sys
from safetensors.torch import save_file
from genlab.training.trainer import Trainer, TrainConfig
from models import ddpm, latent

fsdp, out = sys.argv[1] == "fsdp", sys.argv[2]
for name, (model, data) in {"ddpm": ddpm(), "latent": latent(out)}.items():
    # clipping binds (norms are far above 0.05), two micro-batches a step, an EMA
    cfg = TrainConfig(steps=3, batch_size=16, grad_accum=2, ema_decay=0.9, grad_clip=0.05,
                      progress=False, log_every=1, sample_every=3, fsdp=fsdp)
    trainer = Trainer(model, data, cfg, run_dir=f"{out}/{name}")
    trainer.train()
    state = {k: v.contiguous() for k, v in model.net.state_dict().items()}
    save_file(state, f"{out}/{name}/rank{trainer.rank}.safetensors")
"""

RESUME = """
import sys
from genlab.training.trainer import Trainer, TrainConfig
from models import ddpm

out = sys.argv[1]

def run(folder, steps, resume=None):
    model, data = ddpm()
    cfg = TrainConfig(steps=steps, batch_size=32, grad_accum=2, ema_decay=0.9, progress=False,
                      checkpoint_every=1000, fsdp=True)
    Trainer(model, data, cfg, run_dir=f"{out}/{folder}", resume=resume).train()

run("straight", 6)
run("resumed", 3)
run("resumed", 6, resume="latest")
"""


def _torchrun(tmp_path: Path, script: str, *args: str) -> None:
    (tmp_path / "models.py").write_text(MODELS)
    (tmp_path / "script.py").write_text(script)
    two_processes(tmp_path / "script.py", *args, pythonpath=str(tmp_path))


@pytest.mark.slow  # over 10 s on 2 cores: make test-all
def test_sharded_training_gives_the_weights_of_ddp(tmp_path):
    """DDPM and text-to-image latent diffusion, 3 steps of 2 micro-batches with clipping and
    an EMA: the sharded run ends with DDP's weights, whole and equal on both processes, and
    writes the same run folder (previews drawn while sharded, the saved model)."""
    for mode in ("ddp", "fsdp"):
        _torchrun(tmp_path, COMPARE, mode, str(tmp_path / mode))
    for name in ("ddpm", "latent"):
        ddp = load_file(tmp_path / "ddp" / name / "rank0.safetensors")
        r0 = load_file(tmp_path / "fsdp" / name / "rank0.safetensors")
        r1 = load_file(tmp_path / "fsdp" / name / "rank1.safetensors")
        assert ddp.keys() == r0.keys()
        for k in r0:
            assert torch.equal(r0[k], r1[k]), (name, k)
            torch.testing.assert_close(r0[k], ddp[k], rtol=1e-5, atol=1e-6, msg=(name, k))
        run = tmp_path / "fsdp" / name
        assert (run / "samples" / "step-3.png").is_file()
        saved = load_file(run / "model" / "model.safetensors")
        for k, v in saved.items():
            torch.testing.assert_close(v.reshape(r0[k].shape), r0[k].to(v.dtype), msg=(name, k))


@pytest.mark.slow  # 15 s: in `make test-all`, to keep CI's run under 10 minutes
def test_a_sharded_run_resumes_exactly_and_its_checkpoints_load_unsharded(tmp_path):
    _torchrun(tmp_path, RESUME, str(tmp_path))
    straight = tensors_of(tmp_path / "straight" / "checkpoints" / "step-6")
    resumed = tensors_of(tmp_path / "resumed" / "checkpoints" / "step-6")
    assert straight.keys() == resumed.keys() and any(k.startswith("opt/") for k in straight)
    for k in straight:  # weights, EMA, Adam's moments, every process's RNG: bit for bit
        assert torch.equal(straight[k], resumed[k]), k
    # A sharded run's checkpoint holds whole tensors: one process resumes it, unsharded.
    torch.manual_seed(0)
    model = DDPM((1, 8, 8), channels=(8, 16), attention=True)
    cfg = TrainConfig(steps=6, batch_size=32, grad_accum=2, ema_decay=0.9, progress=False)
    checkpoint = tmp_path / "resumed" / "checkpoints" / "step-3"
    trainer = Trainer(model, load("digits", size=8, scale="pm1"), cfg, resume=str(checkpoint))
    weights = load_file(checkpoint / "model.safetensors")
    for k, v in model.trainable_state().items():
        assert torch.equal(v, weights[k]), k
    assert trainer.step == 3
    trainer.train()


def test_fsdp_refuses_what_it_cannot_shard():
    with pytest.raises(GenlabError, match=r"vae model does not name sharding units.*ddpm"):
        Sharding(VAE((1, 8, 8), latent_dim=2), torch.device("cpu"), 2)
    with pytest.raises(GenlabError, match="fp16"):
        TrainConfig(fsdp=True, mixed_precision="fp16").check()
    data = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    cfg = TrainConfig(steps=2, batch_size=16, progress=False, fsdp=True)
    with pytest.warns(UserWarning, match="one process"):  # nothing to shard over
        Trainer(DDPM((2,), hidden=(8,)), data, cfg).train()
