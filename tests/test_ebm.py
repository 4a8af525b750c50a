"""Energy-based models: Langevin sampling against closed forms, products of experts."""

import numpy as np
import pytest
import torch

import genlab.data as gd
from genlab.evaluation.metrics import mode_coverage
from genlab.models.ebm import EBM, GaussianEnergy, langevin, product
from genlab.training.trainer import TrainConfig, Trainer

MEAN = np.array([1.0, -2.0])
COV = np.array([[1.0, 0.6], [0.6, 0.8]])


def test_langevin_with_the_true_energy_reproduces_mean_and_covariance():
    energy = GaussianEnergy(MEAN, COV)
    g = torch.Generator().manual_seed(0)
    x = langevin(energy.energy, torch.zeros(4000, 2), 1000, 0.01, generator=g)
    # ULA's bias is O(step size); 4000 chains give sampling error ~0.02-0.03.
    np.testing.assert_allclose(x.mean(0).numpy(), MEAN, atol=0.06)
    np.testing.assert_allclose(torch.cov(x.T).numpy(), COV, atol=0.08)


def test_product_of_gaussian_energies_samples_the_product_gaussian():
    m2, c2 = np.array([-1.0, 1.0]), np.array([[0.5, -0.2], [-0.2, 0.7]])
    p1, p2 = np.linalg.inv(COV), np.linalg.inv(c2)
    cov = np.linalg.inv(p1 + p2)
    mean = cov @ (p1 @ MEAN + p2 @ m2)
    both = product(GaussianEnergy(MEAN, COV), GaussianEnergy(m2, c2), steps=1000, step_size=0.005)
    x = both.sample(4000, seed=0)
    np.testing.assert_allclose(x.mean(0).numpy(), mean, atol=0.05)
    np.testing.assert_allclose(torch.cov(x.T).numpy(), cov, atol=0.05)


@pytest.mark.slow  # over 10 s on 2 cores: make test-all
def test_ebm_learns_the_modes_of_8_gaussians_and_products_select_them():
    data = gd.load("8gaussians", n=4000)
    torch.manual_seed(0)
    model = EBM((2,), step_size=0.01, train_steps=20, init_range=3.0, sample_steps=300)
    Trainer(model, data, TrainConfig.make(model, {"steps": 1000, "progress": False})).train()
    centers, std = data.info["centers"], data.info["std"]
    x = model.sample(1000, seed=0)
    hit, _ = mode_coverage(x, centers, std, radius=6)
    assert hit >= 7
    assert model.energy(data.x[:200]).mean() < model.energy(np.zeros((1, 2))).mean()
    # Multiplying by a Gaussian centred on the right keeps only the right-hand modes.
    right = product(model, GaussianEnergy([2.0, 0.0], np.eye(2) * 0.5), steps=300)
    xr = right.sample(1000, seed=0).numpy()
    near = np.linalg.norm(xr[:, None] - centers[None], axis=-1).argmin(1)
    assert np.isin(near, [0, 1, 7]).mean() > 0.9  # the modes at angles 0, 45 and -45 degrees


def test_ebm_resumes_exactly_with_a_growing_replay_buffer(tmp_path):
    data = gd.load("8gaussians", n=512)

    def run(folder, steps, resume=None):
        torch.manual_seed(0)
        model = EBM((2,), hidden=(16,), train_steps=3, buffer_size=100)
        cfg = TrainConfig(steps=steps, batch_size=32, ema_decay=0.9, progress=False,
                          checkpoint_every=1000)  # fmt: skip
        Trainer(model, data, cfg, run_dir=folder, resume=resume).train()
        return model

    straight = run(tmp_path / "a", 6)
    run(tmp_path / "b", 3)  # the buffer holds 96 of 100 chains when this run stops
    resumed = run(tmp_path / "b", 6, resume="latest")
    for (k, a), b in zip(
        straight.net.state_dict().items(), resumed.net.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k
