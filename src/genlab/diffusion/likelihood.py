"""Log-likelihood through the probability-flow ODE (Song et al., 2021, section 4.3).

In the variance-exploding view the ODE dx/dsigma = f(x, sigma) = (x - D(x, sigma)) / sigma
carries data at sigma_min to noise at sigma_max, and the instantaneous change of variables
gives  log p_0(x) = log p_T(x(sigma_max)) + integral of div_x f dsigma,
with p_T = N(0, sigma_max^2 I). The divergence is exact (one backward pass per dimension)
for small data and Hutchinson's unbiased estimate (Rademacher probes) otherwise. Heun's
method integrates the augmented state (x, log-det).
"""

from __future__ import annotations

import math

import torch


def _drift_and_divergence(denoiser, x, sigma, cond, probes):
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        f = (x - denoiser(x, sigma.expand(len(x)), cond)) / sigma
        flat = f.flatten(1)
        if probes is None:  # exact: sum_i d f_i / d x_i
            div = sum(
                torch.autograd.grad(flat[:, i].sum(), x, retain_graph=True)[0].flatten(1)[:, i]
                for i in range(flat.shape[1])
            )
        else:
            div = 0.0
            for v in probes:
                (g,) = torch.autograd.grad((f * v).sum(), x, retain_graph=True)
                div = div + (g * v).flatten(1).sum(1)
            div = div / len(probes)
    return f.detach(), div.detach()


def pf_ode_log_prob(
    denoiser,
    x0: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    cond=None,
    exact: bool | None = None,
    probes: int = 1,
    generator: torch.Generator | None = None,
    prior=None,
) -> torch.Tensor:
    """log p(x0) per sample; ``sigmas`` increasing from a small sigma_min to sigma_max.
    ``prior(x, sigma_max)`` is log p_T (default N(0, sigma_max^2 I), which ignores the data
    mean: its error shrinks like |mean| / sigma_max)."""
    dims = x0[0].numel()
    exact = dims <= 16 if exact is None else exact
    vs = None
    if not exact:  # the same probes along the whole path keep the estimate smooth
        vs = [
            torch.randint(0, 2, x0.shape, generator=generator).to(x0.dtype) * 2 - 1
            for _ in range(probes)
        ]
    x, log_det = x0, torch.zeros(len(x0), dtype=x0.dtype)
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        f, div = _drift_and_divergence(denoiser, x, s, cond, vs)
        x_euler = x + f * (s_next - s)
        f2, div2 = _drift_and_divergence(denoiser, x_euler, s_next, cond, vs)
        x = x + (f + f2) / 2 * (s_next - s)
        log_det = log_det + (div + div2) / 2 * (s_next - s)
    s_max = sigmas[-1]
    if prior is not None:
        return prior(x, s_max) + log_det
    log_prior = (-0.5 * (x / s_max) ** 2).flatten(1).sum(1) - dims * (
        torch.log(s_max) + 0.5 * math.log(2 * math.pi)
    )
    return log_prior + log_det


def _log_ndtr_diff(hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    """log(Phi(hi) - Phi(lo)), stable enough for the bins of a discretized Gaussian."""
    normal = torch.distributions.Normal(0.0, 1.0)
    return torch.log((normal.cdf(hi) - normal.cdf(lo)).clamp_min(1e-12))


def vlb_bits_per_dim(
    denoiser, x0: torch.Tensor, *, levels: int, cond=None, generator=None, callback=None
):
    """The variational bound of Ho et al. (2020), eq. 5, in bits per dimension, for data on
    ``levels`` evenly spaced values in [-1, 1]:
        L_T = KL(q(x_T|x_0) || N(0, I)),  L_{t-1} = KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)),
        L_0 = -log p(x_0|x_1) under a Gaussian discretized to the data's bins,
    with the reverse variance set to the posterior's (beta_tilde). One draw of x_t per t;
    ``callback({"i": t})`` after each of the T network calls (a progress bar)."""
    from .forward import q_posterior, q_sample

    alpha_bar = denoiser.alpha_bar.double()
    x0 = x0.double()  # the bound's sums in float64; the network in its own precision
    params = getattr(denoiser, "parameters", None)
    net_dtype = next(params()).dtype if params is not None else torch.float64
    dims, steps = x0[0].numel(), len(alpha_bar)
    ab_T = alpha_bar[-1]
    m, v = ab_T.sqrt() * x0, 1 - ab_T
    nats = (0.5 * (v + m**2 - 1 - torch.log(v))).flatten(1).sum(1)  # L_T
    for t in range(1, steps + 1):
        x_t = q_sample(x0, t, alpha_bar, generator=generator)
        sigma = ((1 - alpha_bar[t - 1]) / alpha_bar[t - 1]).sqrt()
        x_ve = x_t / alpha_bar[t - 1].sqrt()
        with torch.no_grad():
            s = sigma.expand(len(x0)).to(net_dtype)
            x0_hat = denoiser(x_ve.to(net_dtype), s, cond).double().clamp(-1, 1)
        if t == 1:  # L_0: the decoder N(x0_hat, beta_1) integrated over each value's bin
            std = (1 - alpha_bar[0]).sqrt()
            half = 1.0 / (levels - 1)
            hi = torch.where(x0 > 1 - half, torch.inf, (x0 + half - x0_hat) / std)
            lo = torch.where(x0 < -1 + half, -torch.inf, (x0 - half - x0_hat) / std)
            nats = nats - _log_ndtr_diff(hi, lo).flatten(1).sum(1)
        else:
            mean, var = q_posterior(x_t, x0, t, alpha_bar)
            mean_hat, _ = q_posterior(x_t, x0_hat, t, alpha_bar)
            nats = nats + ((mean - mean_hat) ** 2).flatten(1).sum(1) / (2 * var)
        if callback is not None:
            callback({"i": t})
    return nats / (dims * math.log(2))
