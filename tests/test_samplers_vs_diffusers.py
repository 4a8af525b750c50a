"""genlab's samplers against diffusers' scheduler loops: same network, same noise levels,
same starting noise -> the same samples (relative difference <= 1e-4)."""

import diffusers
import pytest
import torch
from torch import nn

from genlab.diffusion.precond import Denoiser
from genlab.diffusion.samplers import (
    sample_ddim,
    sample_dpmpp_2m,
    sample_dpmpp_2m_sde,
    sample_dpmpp_3m,
    sample_dpmpp_3m_sde,
    sample_euler,
    sample_lcm,
    sample_unipc,
)
from genlab.diffusion.schedules import linear_alpha_bar, sigma_from_alpha_bar
from genlab.seeding import ImageRNG


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


class ReplayRNG(ImageRNG):
    """Hands out the noise it is given, in order (one draw per call), so genlab's sampler and
    diffusers' scheduler (fed the same tensors as variance_noise) add the same noise."""

    def __init__(self, noises) -> None:
        self.noises = list(noises)
        self.generators = [None] * len(self.noises[0])

    def randn(self, shape):
        return self.noises.pop(0)


def draws(steps, like, seed=2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(like.shape, generator=g, dtype=torch.float64) for _ in range(steps)]


def dpm_scheduler(order, algorithm, steps):
    # genlab's 3M warm-up step weighs its first difference by phi_2 (k-diffusion's 3M SDE),
    # which is diffusers' "heun" second-order step; its 2M SDE is the "midpoint" one.
    sched = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=1000,
        algorithm_type=algorithm,
        solver_order=order,
        solver_type="heun" if order == 3 else "midpoint",
        final_sigmas_type="zero",
    )
    sched.set_timesteps(steps)
    return sched


def start(noise, sigmas):
    return noise * (1 + sigmas[0] ** 2).sqrt()


# At fewer than 15 steps diffusers also lowers the order of the second-to-last step
# (lower_order_final); genlab's 3M keeps its order there, as k-diffusion's does.
@pytest.mark.parametrize("steps", [15, 25])
def test_dpmpp_3m(setup, steps):
    net, denoiser, noise = setup
    sched = dpm_scheduler(3, "dpmsolver++", steps)
    theirs = diffusers_loop(sched, net, noise.clone())
    sigmas = sched.sigmas.double()
    ours = sample_dpmpp_3m(denoiser, start(noise, sigmas), sigmas)
    assert relative(ours, theirs) <= 1e-4


def sde_loop(scheduler, net, x, noises):
    for t, z in zip(scheduler.timesteps, noises, strict=True):
        eps = net(scheduler.scale_model_input(x, t), t.expand(len(x)))
        x = scheduler.step(eps, t, x, variance_noise=z).prev_sample
    return x


@pytest.mark.parametrize("steps", [10, 20])
def test_dpmpp_2m_sde(setup, steps):
    net, denoiser, noise = setup
    sched = dpm_scheduler(2, "sde-dpmsolver++", steps)
    noises = draws(steps - 1, noise)  # no noise is added on the last step (into sigma = 0)
    theirs = sde_loop(sched, net, noise.clone(), [*noises, torch.zeros_like(noise)])
    sigmas = sched.sigmas.double()
    ours = sample_dpmpp_2m_sde(denoiser, start(noise, sigmas), sigmas, generator=ReplayRNG(noises))
    assert relative(ours, theirs) <= 1e-4


def test_dpmpp_3m_sde_first_two_steps_match_diffusers(setup):
    """diffusers' third-order SDE step (0.42) weighs the second difference D2 by
    (1 - e^-2h - 2h) / (2h)^2 - 0.5, which tends to -1 as h -> 0 instead of 0, so its 3M SDE
    is not a third-order method (genlab's samples the exact Gaussian and mixture data in
    tests/test_diffusion_core.py): the two agree on the warm-up steps (orders 1 and 2), and
    on the whole run once diffusers' weight is corrected to 0.5 - (e^-2h - 1 + 2h) / (2h)^2,
    the exponential integrator's own weight (as in k-diffusion and in diffusers' ODE case)."""
    net, denoiser, noise = setup
    steps = 20
    sched = dpm_scheduler(3, "sde-dpmsolver++", steps)
    noises = draws(steps - 1, noise)
    sigmas = sched.sigmas.double()
    x = noise.clone()
    for t, z in zip(sched.timesteps[:2], noises[:2], strict=True):
        x = sched.step(net(x, t.expand(len(x))), t, x, variance_noise=z).prev_sample
    ours = sample_dpmpp_3m_sde(
        denoiser, start(noise, sigmas), sigmas[:3], generator=ReplayRNG(noises[:2])
    )
    theirs = x * (1 + sigmas[2] ** 2).sqrt()  # back to the variance-exploding view
    assert relative(ours, theirs) <= 1e-4

    # the full run against diffusers' loop with its D2 weight corrected
    original = diffusers.DPMSolverMultistepScheduler.multistep_dpm_solver_third_order_update

    def corrected(self, model_output_list, *args, sample=None, noise=None, **kwargs):
        out = original(self, model_output_list, *args, sample=sample, noise=noise, **kwargs)
        s = self.sigmas
        alpha_t, _ = self._sigma_to_alpha_sigma_t(s[self.step_index + 1])
        lams = [
            torch.log(a) - torch.log(b)
            for a, b in (
                self._sigma_to_alpha_sigma_t(s[self.step_index - k]) for k in (-1, 0, 1, 2)
            )
        ]
        h, h_0, h_1 = lams[0] - lams[1], lams[1] - lams[2], lams[2] - lams[3]
        m0, m1, m2 = model_output_list[-1], model_output_list[-2], model_output_list[-3]
        r0, r1 = h_0 / h, h_1 / h
        d2 = ((m0 - m1) / r0 - (m1 - m2) / r1) / (r0 + r1)
        return out + alpha_t * 1.0 * d2  # -0.5 -> +0.5 in the D2 weight

    sched = dpm_scheduler(3, "sde-dpmsolver++", steps)
    sched.multistep_dpm_solver_third_order_update = corrected.__get__(sched)
    theirs = sde_loop(sched, net, noise.clone(), [*noises, torch.zeros_like(noise)])
    ours = sample_dpmpp_3m_sde(denoiser, start(noise, sigmas), sigmas, generator=ReplayRNG(noises))
    assert relative(ours, theirs) <= 1e-4


@pytest.mark.parametrize("steps", [10, 20])
@pytest.mark.parametrize("order", [2, 3])
def test_unipc(setup, steps, order):
    net, denoiser, noise = setup
    sched = diffusers.UniPCMultistepScheduler(
        num_train_timesteps=1000, solver_type="bh2", solver_order=order, final_sigmas_type="zero"
    )
    sched.set_timesteps(steps)
    theirs = diffusers_loop(sched, net, noise.clone())
    sigmas = sched.sigmas.double()
    ours = sample_unipc(denoiser, start(noise, sigmas), sigmas, order=order)
    assert relative(ours, theirs) <= 1e-4


@pytest.mark.parametrize("steps", [4, 8])
def test_lcm(setup, steps):
    """LCMScheduler on the same eps network; its boundary scalings c_skip, c_out (1e-8 away
    from 0 and 1 at the timesteps it picks) are applied to genlab's denoiser too."""
    net, denoiser, noise = setup
    sched = diffusers.LCMScheduler(
        num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear"
    )
    sched.set_timesteps(steps)
    noises = draws(steps - 1, noise)
    g = ReplayRNG([z.clone() for z in noises])
    x = noise.clone()
    gd = torch.Generator().manual_seed(2)  # diffusers draws its own noise: the same stream
    for t in sched.timesteps:
        x = sched.step(net(x, t.expand(len(x))), t, x, generator=gd).prev_sample
    ab = sched.alphas_cumprod.double()[sched.timesteps]
    sigmas = torch.cat([sigma_from_alpha_bar(ab), torch.zeros(1, dtype=torch.float64)])
    timestep = dict(zip(sigmas.tolist(), sched.timesteps.tolist(), strict=False))

    def consistency(x, sigma, cond=None):
        c_skip, c_out = sched.get_scalings_for_boundary_condition_discrete(
            timestep[float(sigma[0])]
        )
        s = sigma[0]
        return c_out * denoiser(x, sigma) + c_skip * x / (1 + s**2).sqrt()

    ours = sample_lcm(consistency, start(noise, sigmas), sigmas, generator=g)
    assert relative(ours, x) <= 1e-4
