"""genlab's samplers against diffusers' scheduler loops: same network, same noise levels,
same starting noise -> the same samples (relative difference <= 1e-4)."""

import diffusers
import pytest
import torch
from torch import nn

from genlab.diffusion.precond import Denoiser
from genlab.diffusion.samplers import sample_ddim, sample_dpmpp_2m, sample_euler
from genlab.diffusion.schedules import linear_alpha_bar, sigma_from_alpha_bar


class EpsNet(nn.Module):
    """A fixed random eps-prediction network, smooth in x and in t."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(4, 4, generator=g, dtype=torch.float64) * 0.3)
        self.v = nn.Parameter(torch.randn(4, generator=g, dtype=torch.float64) * 0.5)

    def forward(self, x, t, cond=None):
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1, 1) / 1000
        return torch.tanh(x @ self.w) + 0.5 * x + t * self.v


def relative(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.fixture(scope="module")
def setup():
    net = EpsNet()
    alpha_bar = linear_alpha_bar(1000)
    return (
        net,
        Denoiser(net, alpha_bar, "eps").double(),
        torch.randn(64, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64),
    )


def diffusers_loop(scheduler, net, x):
    for t in scheduler.timesteps:
        eps = net(scheduler.scale_model_input(x, t), t.expand(len(x)))
        x = scheduler.step(eps, t, x).prev_sample
    return x


@pytest.mark.parametrize("steps", [10, 25])
def test_ddim(setup, steps):
    net, denoiser, noise = setup
    sched = diffusers.DDIMScheduler(
        num_train_timesteps=1000, set_alpha_to_one=True, clip_sample=False
    )
    sched.set_timesteps(steps)
    theirs = diffusers_loop(sched, net, noise.clone())
    ab = sched.alphas_cumprod.double()[sched.timesteps]
    sigmas = torch.cat([sigma_from_alpha_bar(ab), torch.zeros(1, dtype=torch.float64)])
    ours = sample_ddim(denoiser, noise * (1 + sigmas[0] ** 2).sqrt(), sigmas)
    assert relative(ours, theirs) <= 1e-4


@pytest.mark.parametrize("steps", [10, 25])
def test_euler(setup, steps):
    net, denoiser, noise = setup
    sched = diffusers.EulerDiscreteScheduler(num_train_timesteps=1000)
    sched.set_timesteps(steps)
    theirs = diffusers_loop(sched, net, noise.clone() * sched.init_noise_sigma)
    sigmas = sched.sigmas.double()
    ours = sample_euler(denoiser, noise * (1 + sigmas[0] ** 2).sqrt(), sigmas)
    assert relative(ours, theirs) <= 1e-4


@pytest.mark.parametrize("steps", [10, 20])
def test_dpmpp_2m(setup, steps):
    net, denoiser, noise = setup
    sched = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=1000,
        algorithm_type="dpmsolver++",
        solver_order=2,
        final_sigmas_type="zero",
    )
    sched.set_timesteps(steps)
    theirs = diffusers_loop(sched, net, noise.clone())
    sigmas = sched.sigmas.double()
    ours = sample_dpmpp_2m(denoiser, noise * (1 + sigmas[0] ** 2).sqrt(), sigmas)
    assert relative(ours, theirs) <= 1e-4


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
@pytest.mark.parametrize("steps", [7, 10, 20, 50, 1000])
def test_noise_levels_match_diffusers_timestep_spacing(spacing, steps):
    """genlab's discrete_sigmas picks the same training levels as diffusers'
    timestep_spacing, computed by diffusers itself (not fed to both)."""
    from genlab.diffusion.schedules import discrete_sigmas

    alpha_bar = linear_alpha_bar(1000).double()
    scheduler = diffusers.DDIMScheduler(
        beta_schedule="linear",
        beta_start=1e-4,
        beta_end=0.02,
        timestep_spacing=spacing,
        steps_offset=0,
    )
    scheduler.set_timesteps(steps)
    theirs = sigma_from_alpha_bar(alpha_bar[scheduler.timesteps.long()])
    ours = discrete_sigmas(alpha_bar, steps, spacing)
    assert ours[-1] == 0
    torch.testing.assert_close(ours[:-1], theirs)
