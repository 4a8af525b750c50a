"""VAE family: bounds in the right order, the ELBO against its closed form."""

import math

import numpy as np
import pytest
import torch

import genlab.data as gd
from genlab.models.hvae import HVAE
from genlab.models.vae import VAE
from genlab.training.trainer import TrainConfig, Trainer


@pytest.fixture(scope="module")
def moons_vae():
    torch.manual_seed(0)
    data = gd.load("moons", n=2000)
    model = VAE((2,), latent_dim=2, hidden=(64, 64))
    cfg = TrainConfig(steps=1500, batch_size=128, lr=2e-3, progress=False)
    Trainer(model, data, cfg).train()
    return model, torch.as_tensor(data.x, dtype=torch.float32)


def test_elbo_below_iwae_and_iwae_increasing_in_k(moons_vae):
    model, x = moons_vae

    def bound(k, seeds):  # average over points and seeds: the claim is about expectations
        return torch.stack([model.iwae(x, k=k, seed=s).mean() for s in seeds]).mean()

    elbo = torch.stack([model.elbo(x, seed=s).mean() for s in range(5)]).mean()
    assert abs(bound(1, range(5)) - elbo) < 0.02  # IWAE with k=1 is the ELBO
    assert elbo < bound(10, range(3)) < bound(100, [0])


def test_linear_gaussian_elbo_matches_closed_form():
    torch.manual_seed(0)
    d, latent = 3, 2
    model = VAE((d,), latent_dim=latent, hidden=())  # linear encoder and decoder
    with torch.no_grad():
        model.net.log_std.fill_(math.log(0.7))
    x = torch.randn(5, d)
    enc, dec = model.net.enc[0], model.net.dec[0]
    with torch.no_grad():
        mu, log_var = model.encode(x)
        var = log_var.exp()
        w, b, sigma2 = dec.weight, dec.bias, 0.7**2
        # E_q log N(x | Wz + b, s2 I) = log N(x | W mu + b, s2 I) - tr(W S W^T) / (2 s2)
        resid = x - (mu @ w.T + b)
        rec = (
            -0.5 * (resid**2).sum(1) / sigma2
            - 0.5 * d * math.log(2 * math.pi * sigma2)
            - 0.5 * (var * (w**2).sum(0)).sum(1) / sigma2
        )
        kl = 0.5 * (mu**2 + var - 1 - log_var).sum(1)
        exact = rec - kl
        # Monte Carlo average of the one-sample ELBO converges to it.
        estimate = torch.stack([model.elbo(x, seed=s) for s in range(4000)]).mean(0)
    assert enc.weight.shape == (2 * latent, d)
    torch.testing.assert_close(estimate, exact, rtol=0, atol=0.05)


def test_hvae_elbo_and_samples():
    torch.manual_seed(0)
    data = gd.load("moons", n=1000)
    model = HVAE((2,), z1_dim=4, z2_dim=2, hidden=(64,))
    before = model.elbo(data.x[:200]).mean()
    Trainer(model, data, TrainConfig(steps=500, batch_size=128, progress=False)).train()
    after = model.elbo(data.x[:200]).mean()
    assert after > before + 0.5
    s = model.sample(500, seed=0)
    assert s.shape == (500, 2) and torch.isfinite(s).all()
    assert np.abs(s.mean(0).numpy() - data.x.mean(0)).max() < 0.5


def test_interpolation_and_traversal_shapes():
    model = VAE((1, 8, 8), latent_dim=3, width=8)
    a, b = torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8)
    assert model.interpolate(a, b, steps=5).shape == (5, 1, 8, 8)
    assert model.traverse(a, steps=4).shape == (12, 1, 8, 8)
