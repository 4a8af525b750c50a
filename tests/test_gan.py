import pytest
import torch

import genlab.data as gd
from genlab.evaluation.metrics import mode_coverage
from genlab.models.gan import GAN
from genlab.training.trainer import TrainConfig, Trainer


@pytest.mark.slow  # 37 s: `make test-all` runs it (test_contract trains the GAN in CI)
def test_gan_covers_the_modes_of_8_gaussians():
    data = gd.load("8gaussians", n=8000)
    torch.manual_seed(0)
    model = GAN((2,), latent_dim=8)
    cfg = TrainConfig.make(model, {"steps": 2000, "batch_size": 256, "lr": 1e-3, "progress": False})
    Trainer(model, data, cfg).train()
    hit, quality = mode_coverage(model.sample(2000, seed=0), data.info["centers"], data.info["std"])
    assert hit >= 7 and quality > 0.5


def test_mode_coverage_sees_collapse():
    data = gd.load("8gaussians", n=2000)
    one_mode = data.x[data.y == 3]
    hit, quality = mode_coverage(one_mode, data.info["centers"], data.info["std"])
    assert hit == 1 and quality > 0.98  # P(|x - mu| < 3 sigma) = 1 - exp(-4.5) in 2-D
    assert mode_coverage(data.x, data.info["centers"], data.info["std"])[0] == 8
