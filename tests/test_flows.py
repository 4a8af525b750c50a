"""RealNVP against brute force: Jacobians, inverses, and a density that integrates to one."""

import math

import numpy as np
import pytest
import torch

import genlab.data as gd
from genlab.models.flows.realnvp import RealNVP
from genlab.models.flows.transforms import Logit, Squeeze
from genlab.training.trainer import TrainConfig, Trainer


def perturbed(model: RealNVP, seed: int = 0) -> RealNVP:
    """Move every weight off its identity start, so the test sees real couplings."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


def flat_forward(model, shape):
    def f(v):
        pieces, _ = model.forward(v.view(1, *shape))
        return torch.cat([p.flatten(1) for p in pieces], 1)[0]

    return f


@pytest.mark.parametrize("shape", [(2,), (3,), (1, 4, 4), (1, 8, 8)])
def test_log_det_matches_brute_force_jacobian(shape):
    torch.manual_seed(0)
    model = perturbed(RealNVP(shape, n_couplings=3, hidden=(16,), width=8))
    x = torch.rand(4, *shape) * 1.6 - 0.8
    _, log_det = model.forward(x)
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(flat_forward(model, shape), x[i].flatten())
        assert torch.linalg.slogdet(jac.double())[1].item() == pytest.approx(
            log_det[i].item(), abs=1e-3
        )


@pytest.mark.parametrize("shape", [(2,), (1, 8, 8), (1, 16, 16)])
def test_inverse_of_forward_is_identity(shape):
    torch.manual_seed(0)
    model = perturbed(RealNVP(shape, n_couplings=3, hidden=(16,), width=8))
    x = torch.rand(5, *shape) * 1.6 - 0.8
    pieces, _ = model.forward(x)
    torch.testing.assert_close(model.inverse(pieces), x, atol=1e-5, rtol=0)
    z = [torch.randn(5, *s) for s in model.latent_shapes()]
    back, _ = model.forward(model.inverse(z))
    for a, b in zip(back, z, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_building_blocks_are_bijections():
    x = torch.rand(3, 2, 4, 6)
    sq = Squeeze()
    z, ld = sq(x)
    assert z.shape == (3, 8, 2, 3) and torch.equal(sq.inverse(z), x) and not ld.any()
    u = torch.rand(3, 5) * 0.98 + 0.01
    logit = Logit(0.05)
    y, ld = logit(u)
    torch.testing.assert_close(logit.inverse(y), u)
    jac = torch.autograd.functional.jacobian(lambda v: logit(v[None])[0][0], u[0])
    assert torch.linalg.slogdet(jac)[1].item() == pytest.approx(ld[0].item(), abs=1e-5)


def test_trained_2d_density_integrates_to_one():
    torch.manual_seed(0)
    data = gd.load("moons", n=2000)
    model = RealNVP((2,), n_couplings=6, hidden=(64, 64))
    Trainer(model, data, TrainConfig.make(model, {"steps": 400, "progress": False})).train()
    g = np.linspace(-5, 5, 501)
    xx, yy = np.meshgrid(g, g)
    p = np.exp(model.log_prob(np.stack([xx.ravel(), yy.ravel()], 1)).numpy().astype(np.float64))
    assert p.sum() * (g[1] - g[0]) ** 2 == pytest.approx(1.0, abs=0.01)
    assert model.log_prob(data.x).mean() > -1.5  # it learned something (a N(0,I) gives ~-2.8)


def test_bits_per_dim_on_digits():
    torch.manual_seed(0)
    data = gd.load("digits", size=8, scale="pm1")
    model = RealNVP(data.shape, n_couplings=2, width=16, levels=17)
    cfg = TrainConfig.make(model, {"steps": 100, "progress": False})
    before = model.bits_per_dim(data.x[:200]).mean()
    Trainer(model, data, cfg).train()
    after = model.bits_per_dim(data.x[:200]).mean()
    assert after < before and after < math.log2(17)  # better than uniform over 17 levels
