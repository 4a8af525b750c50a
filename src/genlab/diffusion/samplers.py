"""Samplers as plain functions over a denoiser D(x, sigma, cond) -> x0_hat.

Signature (shared by all): ``sample_X(denoiser, x, sigmas, *, cond=None, generator=None,
callback=None, **opts) -> x0`` where ``x`` is the starting noise already scaled to
``sigmas[0]`` and ``sigmas`` decreases to 0; ``generator`` is a torch generator or a
``seeding.ImageRNG`` (one generator per image, so stochastic samplers run batched).
Everything is in the variance-exploding view x = x0 + sigma * eps; a DDPM-style
(variance-preserving) chain is the same chain with x_vp = x / sqrt(1 + sigma^2).
The callback receives {"i", "x", "sigma", "denoised"}.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..seeding import noise_like

Denoiser = Callable[..., torch.Tensor]


def _denoise(denoiser, x, sigma, cond):
    return denoiser(x, sigma.to(x.dtype).expand(len(x)), cond)


def _report(callback, i, x, sigma, denoised):
    if callback is not None:
        callback({"i": i, "x": x, "sigma": sigma, "denoised": denoised})


@torch.no_grad()
def sample_euler(denoiser, x, sigmas, *, cond=None, generator=None, callback=None):
    """Euler steps on the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma
    (Karras et al. 2022, Algorithm 2 without churn). Equals DDIM with eta = 0."""
    for i in range(len(sigmas) - 1):
        denoised = _denoise(denoiser, x, sigmas[i], cond)
        _report(callback, i, x, sigmas[i], denoised)
        d = (x - denoised) / sigmas[i]
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


@torch.no_grad()
def sample_heun(denoiser, x, sigmas, *, cond=None, generator=None, callback=None):
    """Heun's second-order method (Karras et al. 2022, Algorithm 1, deterministic): an Euler
    step, then the average of the slopes at both ends (plain Euler into sigma = 0)."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, s, cond)
        _report(callback, i, x, s, denoised)
        d = (x - denoised) / s
        x_next = x + d * (s_next - s)
        if s_next > 0:
            d_next = (x_next - _denoise(denoiser, x_next, s_next, cond)) / s_next
            x_next = x + (d + d_next) / 2 * (s_next - s)
        x = x_next
    return x


@torch.no_grad()
def sample_ddim(denoiser, x, sigmas, *, cond=None, generator=None, callback=None, eta=0.0):
    """DDIM (Song et al. 2021, eq. 12) with stochasticity ``eta`` (0: deterministic, 1: the
    DDPM posterior variance), written in the variance-exploding view."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, s, cond)
        _report(callback, i, x, s, denoised)
        if s_next == 0:
            x = denoised
            continue
        eps = (x - denoised) / s
        ab, ab_next = 1 / (1 + s**2), 1 / (1 + s_next**2)
        std = eta * torch.sqrt((1 - ab_next) / (1 - ab) * (1 - ab / ab_next))
        noise = noise_like(x, generator)
        x = denoised + (torch.sqrt(1 - ab_next - std**2) * eps + std * noise) / torch.sqrt(ab_next)
    return x


@torch.no_grad()
def sample_ddpm(
    denoiser, x, sigmas, *, cond=None, generator=None, callback=None, variance="posterior"
):
    """Ancestral DDPM sampling (Ho et al. 2020, Algorithm 2): x_{t-1} = mu_tilde(x_t, x0_hat)
    + s_t z. The reverse variance s_t^2 is the posterior's beta_tilde_t ("posterior", the
    default: the same chain as DDIM with eta = 1) or beta_t ("beta", as in the paper's
    Algorithm 2); the paper found both give similar samples. Computed in the
    variance-preserving view x_vp = sqrt(alpha_bar) x."""
    if variance == "posterior":
        return sample_ddim(
            denoiser, x, sigmas, cond=cond, generator=generator, callback=callback, eta=1.0
        )
    if variance != "beta":
        raise ValueError(f"variance must be 'posterior' or 'beta', got '{variance}'.")
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, s, cond)
        _report(callback, i, x, s, denoised)
        if s_next == 0:
            x = denoised
            continue
        ab, ab_next = 1 / (1 + s**2), 1 / (1 + s_next**2)
        beta = 1 - ab / ab_next
        mean = (ab_next.sqrt() * beta / (1 - ab)) * denoised + (
            (1 - beta).sqrt() * (1 - ab_next) / (1 - ab)
        ) * (x * ab.sqrt())
        noise = noise_like(x, generator)
        x = (mean + beta.sqrt() * noise) / ab_next.sqrt()
    return x


@torch.no_grad()
def sample_dpmpp_2m(denoiser, x, sigmas, *, cond=None, generator=None, callback=None):
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): a multistep second-order solver in
    log-sigma time, t = -log sigma, extrapolating the denoised estimates linearly."""
    old = None
    h_last = None
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, s, cond)
        _report(callback, i, x, s, denoised)
        if s_next == 0:
            x = denoised
            continue
        h = math.log(s) - math.log(s_next)
        if old is None:  # the first step has no history: first order
            d = denoised
        else:
            r = h_last / h
            d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old
        x = (s_next / s) * x - math.expm1(-h) * d
        old, h_last = denoised, h
    return x


@torch.no_grad()
def sample_euler_ancestral(denoiser, x, sigmas, *, cond=None, generator=None, callback=None):
    """Euler ancestral ("Euler a" in stable-diffusion-webui): each step goes down to
    sigma_down by an Euler step of the ODE, then adds fresh noise of std sigma_up, where
    sigma_down^2 + sigma_up^2 = sigma_next^2 and sigma_up is the DDPM posterior's std
    (eta = 1). Stochastic: the same seed gives the same image."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, s, cond)
        _report(callback, i, x, s, denoised)
        if s_next == 0:
            x = denoised
            continue
        up = torch.sqrt(s_next**2 * (s**2 - s_next**2) / s**2)
        down = torch.sqrt(s_next**2 - up**2)
        x = x + (x - denoised) / s * (down - s)
        x = x + noise_like(x, generator) * up
    return x


def _lam(sigma) -> float:
    """log-SNR time of the variance-exploding view: lambda = -log sigma."""
    return -math.log(float(sigma))


@torch.no_grad()
def sample_dpmpp_2m_sde(
    denoiser, x, sigmas, *, cond=None, generator=None, callback=None, eta=1.0, s_noise=1.0
):
    """DPM-Solver++(2M) SDE (Lu et al. 2022, DPM-Solver++, the second-order multistep solver
    of the data-prediction SDE, midpoint variant as in k-diffusion's ``sample_dpmpp_2m_sde``
    and diffusers' "sde-dpmsolver++"): the exact exponential-integrator step of the reverse
    SDE in lambda = -log sigma with the denoised estimate extrapolated linearly, plus fresh
    noise of std sigma_next sqrt(1 - e^(-2 eta h)). ``eta = 0`` is DPM-Solver++(2M)."""
    old = None
    h_last = None
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, s, cond)
        _report(callback, i, x, s, denoised)
        if s_next == 0:
            x = denoised
            continue
        h = _lam(s_next) - _lam(s)
        eta_h = eta * h
        x = (s_next / s) * math.exp(-eta_h) * x - math.expm1(-h - eta_h) * denoised
        if old is not None:  # midpoint: the slope from the last two estimates, at half weight
            r = h_last / h
            x = x - 0.5 * math.expm1(-h - eta_h) * (denoised - old) / r
        if eta:
            noise = noise_like(x, generator)
            x = x + noise * s_next * math.sqrt(-math.expm1(-2 * eta_h)) * s_noise
        old, h_last = denoised, h
    return x


@torch.no_grad()
def sample_dpmpp_3m_sde(
    denoiser, x, sigmas, *, cond=None, generator=None, callback=None, eta=1.0, s_noise=1.0
):
    """DPM-Solver++(3M) SDE (Lu et al. 2022, DPM-Solver++, third-order multistep, as
    k-diffusion's ``sample_dpmpp_3m_sde``): the exponential-integrator step of the reverse
    SDE in lambda = -log sigma with the denoised estimate extrapolated quadratically from the
    last three (first and second order while the history fills), plus fresh noise of std
    sigma_next sqrt(1 - e^(-2 eta h)). ``eta = 0`` is the ODE solver DPM-Solver++(3M)."""
    d1_old = d2_old = None  # the two previous denoised estimates
    h_1 = h_2 = None  # the two previous step sizes
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, s, cond)
        _report(callback, i, x, s, denoised)
        if s_next == 0:
            x = denoised
            continue
        h = _lam(s_next) - _lam(s)
        h_eta = h * (eta + 1)
        x = (s_next / s) * math.exp(-eta * h) * x - math.expm1(-h_eta) * denoised
        phi_2 = math.expm1(-h_eta) / h_eta + 1  # the weight of the first derivative
        if h_2 is not None:  # third order: first and second divided differences
            r0, r1 = h_1 / h, h_2 / h
            d1_0 = (denoised - d1_old) / r0
            d1_1 = (d1_old - d2_old) / r1
            d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
            d2 = (d1_0 - d1_1) / (r0 + r1)
            phi_3 = phi_2 / h_eta - 0.5
            x = x + phi_2 * d1 - phi_3 * d2
        elif h_1 is not None:  # second order
            x = x + phi_2 * (denoised - d1_old) / (h_1 / h)
        if eta:
            noise = noise_like(x, generator)
            x = x + noise * s_next * math.sqrt(-math.expm1(-2 * eta * h)) * s_noise
        d1_old, d2_old = denoised, d1_old
        h_1, h_2 = h, h_1
    return x


@torch.no_grad()
def sample_dpmpp_3m(denoiser, x, sigmas, *, cond=None, generator=None, callback=None):
    """DPM-Solver++(3M) (Lu et al. 2022, the third-order multistep data-prediction ODE
    solver, as diffusers' DPMSolverMultistepScheduler with solver_order=3): the
    probability-flow step in lambda = -log sigma with the last three denoised estimates
    extrapolated quadratically. Deterministic; it is the 3M SDE with eta = 0."""
    return sample_dpmpp_3m_sde(
        denoiser, x, sigmas, cond=cond, generator=generator, callback=callback, eta=0.0
    )


def _unipc_weights(rks: list[float], h: float, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """UniPC's linear system for data prediction with B(h) = e^(-h) - 1 (bh2): R[i, k] =
    rk^i over the points' relative log-SNR offsets rks, and b[i] = i! phi_(i+2)(-h) h / B(h)
    (Zhao et al. 2023, Theorem 3.1 / eq. 9)."""
    hh = -h
    h_phi_1 = math.expm1(hh)  # h phi_1(h) = e^h - 1 in the paper's notation (with hh = -h)
    h_phi_k = h_phi_1 / hh - 1
    b_h = math.expm1(hh)  # bh2
    factorial = 1
    r = torch.tensor(rks, dtype=torch.float64)
    rows, b = [], []
    for i in range(1, order + 1):
        rows.append(r ** (i - 1))
        b.append(h_phi_k * factorial / b_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    return torch.stack(rows), torch.tensor(b, dtype=torch.float64)


def _weighted(rhos: torch.Tensor, diffs: list[torch.Tensor]) -> torch.Tensor:
    return sum(float(rho) * d for rho, d in zip(rhos, diffs, strict=True))


@torch.no_grad()
def sample_unipc(
    denoiser, x, sigmas, *, cond=None, generator=None, callback=None, order=2, corrector=True
):
    """UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework", Algorithm
    2, B(h) = e^h - 1 ("bh2"), data prediction): the predictor UniP-p extrapolates the last
    ``order`` denoised estimates in lambda = -log sigma; after the network evaluates the
    predicted point, the corrector UniC refits the same step with that new estimate included
    (one order higher, no extra network call) and the next step starts from the corrected
    point. The last step lowers the order (as diffusers' UniPCMultistepScheduler does)."""
    n = len(sigmas) - 1
    ms: list[torch.Tensor] = []  # denoised estimates, newest last
    lams: list[float] = []  # their log-SNR times
    x_prev = step_order = None  # the last predictor's start and order, for the corrector
    for i in range(n):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, s, cond)
        _report(callback, i, x, s, denoised)
        if s_next == 0:  # the corrected point is never evaluated again: return the estimate
            x = denoised
            continue
        lam = _lam(s)
        if corrector and ms:  # UniC: redo the last step with the new estimate as a node
            m0, lam0, s0 = ms[-1], lams[-1], sigmas[i - 1]
            h = lam - lam0
            rks = [(lams[-(k + 1)] - lam0) / h for k in range(1, step_order)]
            diffs = [(ms[-(k + 1)] - m0) / rk for k, rk in enumerate(rks, 1)]
            big_r, b = _unipc_weights([*rks, 1.0], h, step_order)
            rhos = torch.tensor([0.5]) if step_order == 1 else torch.linalg.solve(big_r, b)
            b_h = math.expm1(-h)
            x = (s / s0) * x_prev - math.expm1(-h) * m0
            x = x - b_h * (_weighted(rhos[:-1], diffs) + float(rhos[-1]) * (denoised - m0))
        ms, lams = [*ms, denoised][-order:], [*lams, lam][-order:]
        step_order = min(order, n - i, len(ms))
        # UniP: the predictor from x at sigma to sigma_next
        h = _lam(s_next) - lam
        rks = [(lams[-(k + 1)] - lam) / h for k in range(1, step_order)]
        diffs = [(ms[-(k + 1)] - denoised) / rk for k, rk in enumerate(rks, 1)]
        x_prev = x
        x = (s_next / s) * x - math.expm1(-h) * denoised
        if step_order == 2:
            x = x - math.expm1(-h) * 0.5 * diffs[0]
        elif step_order > 2:
            big_r, b = _unipc_weights([*rks, 1.0], h, step_order)
            rhos = torch.linalg.solve(big_r[:-1, :-1], b[:-1])
            x = x - math.expm1(-h) * _weighted(rhos, diffs)
    return x


@torch.no_grad()
def sample_ipndm(denoiser, x, sigmas, *, cond=None, generator=None, callback=None, max_order=4):
    """iPNDM (Zhang & Chen 2023, "Fast Sampling of Diffusion Models with Exponential
    Integrator", the improved pseudo-numerical method of Liu et al. 2022): a fourth-order
    Adams-Bashforth multistep on the probability-flow ODE dx/dsigma = (x - D(x, sigma)) /
    sigma, warming up with orders 1-3 from the history it has (as k-diffusion's and EDM-style
    solvers' ``sample_ipndm``). Deterministic, one network call a step."""
    slopes: list[torch.Tensor] = []  # previous slopes, newest last
    coeffs = {1: [1], 2: [3, -1], 3: [23, -16, 5], 4: [55, -59, 37, -9]}
    scale = {1: 1, 2: 2, 3: 12, 4: 24}
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, s, cond)
        _report(callback, i, x, s, denoised)
        d = (x - denoised) / s
        order = min(max_order, len(slopes) + 1)
        history = [d, *reversed(slopes)][:order]
        slope = sum(c * dk for c, dk in zip(coeffs[order], history, strict=True)) / scale[order]
        x = x + slope * (s_next - s)
        slopes = [*slopes, d][-(max_order - 1) :] if max_order > 1 else []
    return x


@torch.no_grad()
def sample_lcm(denoiser, x, sigmas, *, cond=None, generator=None, callback=None):
    """Multistep consistency sampling (Song et al. 2023, "Consistency Models", Algorithm 1;
    the sampler of Latent Consistency Models, Luo et al. 2023): jump to the clean estimate,
    then re-noise it to the next level with fresh noise, x = D(x, sigma) + sigma_next z.
    Exact when D is a consistency function (the probability-flow ODE's map to sigma = 0, what
    an LCM network learns); with an ordinary denoiser (a posterior mean) it is only a coarse
    few-step sampler."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, s, cond)
        _report(callback, i, x, s, denoised)
        x = denoised
        if s_next > 0:
            x = denoised + s_next * noise_like(x, generator)
    return x


SAMPLERS: dict[str, Callable] = {
    "ddpm": sample_ddpm,
    "ddim": sample_ddim,
    "euler": sample_euler,
    "heun": sample_heun,
    "dpmpp-2m": sample_dpmpp_2m,
    "euler-a": sample_euler_ancestral,
    "dpmpp-3m": sample_dpmpp_3m,
    "dpmpp-2m-sde": sample_dpmpp_2m_sde,
    "dpmpp-3m-sde": sample_dpmpp_3m_sde,
    "unipc": sample_unipc,
    "ipndm": sample_ipndm,
    "lcm": sample_lcm,
}
#: The samplers that draw fresh noise at each step (a seed is needed per image).
STOCHASTIC = frozenset({"ddpm", "euler-a", "dpmpp-2m-sde", "dpmpp-3m-sde", "lcm"})
