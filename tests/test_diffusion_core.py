"""Diffusion building blocks against closed forms: the forward process, and every sampler
given the exact denoiser of Gaussian and Gaussian-mixture data."""

import numpy as np
import pytest
import torch

from genlab.conditioning import Condition
from genlab.diffusion.forward import q_posterior, q_sample, q_step
from genlab.diffusion.samplers import SAMPLERS
from genlab.diffusion.schedules import (
    SCHEDULES,
    cosine_alpha_bar,
    discrete_sigmas,
    karras_sigmas,
    linear_alpha_bar,
)

MEAN = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=torch.float64)


def gaussian_denoiser(mean, cov):
    """E[x0 | x] for x0 ~ N(mean, cov), x = x0 + s eps: mean + cov (cov + s^2 I)^-1 (x - mean)."""
    eye = torch.eye(len(mean), dtype=torch.float64)

    def denoise(x, sigma, cond=None):
        s2 = sigma[0] ** 2
        gain = cov @ torch.linalg.inv(cov + s2 * eye)
        return mean + (x - mean) @ gain.T

    return denoise


def mixture_denoiser(weights, means, covs):
    eye = torch.eye(means.shape[1], dtype=torch.float64)

    def denoise(x, sigma, cond=None):
        s2 = sigma.reshape(-1)[0] ** 2
        logits, posts = [], []
        for w, m, c in zip(weights, means, covs, strict=True):
            total = c + s2 * eye
            dist = torch.distributions.MultivariateNormal(m, total)
            logits.append(torch.log(w) + dist.log_prob(x))
            posts.append(m + (x - m) @ (c @ torch.linalg.inv(total)).T)
        resp = torch.softmax(torch.stack(logits, 1), 1)
        return (resp[..., None] * torch.stack(posts, 1)).sum(1)

    return denoise


def consistency_function(mean, cov):
    """The exact consistency function of x0 ~ N(mean, cov), x = x0 + s eps: the
    probability-flow ODE carries x at s to mean + cov^1/2 (cov + s^2 I)^-1/2 (x - mean) at 0."""
    lam, u = torch.linalg.eigh(cov)

    def f(x, sigma, cond=None):
        gain = u @ torch.diag((lam / (lam + sigma[0] ** 2)).sqrt()) @ u.T
        return mean + (x - mean) @ gain.T

    return f


def ode_consistency_function(denoiser, steps=30):
    """A consistency function by integrating the probability-flow ODE of ``denoiser`` from
    sigma to 0 with a third-order solver (for data with no closed-form flow map)."""

    def f(x, sigma, cond=None):
        s = float(sigma[0])
        if s < 0.01:  # (already clean)
            return denoiser(x, sigma)
        return SAMPLERS["dpmpp-3m"](denoiser, x, karras_sigmas(steps, 0.002, s))

    return f


# First-order samplers have O(1/steps) error, so they get more steps; higher orders fewer;
# LCM is exact at any step count given its consistency function.
HIGH_ORDER = ("heun", "dpmpp-2m", "dpmpp-3m", "unipc", "ipndm")


def steps_for(name):
    return 40 if name in HIGH_ORDER else 6 if name == "lcm" else 300


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_samplers_with_exact_gaussian_denoiser(name):
    g = torch.Generator().manual_seed(0)
    sigmas = karras_sigmas(steps_for(name), 0.002, 80.0)
    x = torch.randn(20000, 2, generator=g, dtype=torch.float64) * sigmas[0]
    exact = consistency_function if name == "lcm" else gaussian_denoiser
    out = SAMPLERS[name](exact(MEAN, COV), x, sigmas, generator=g)
    np.testing.assert_allclose(out.mean(0).numpy(), MEAN.numpy(), atol=0.03)
    np.testing.assert_allclose(torch.cov(out.T).numpy(), COV.numpy(), atol=0.03)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_samplers_with_exact_mixture_denoiser(name):
    weights = torch.tensor([0.3, 0.7], dtype=torch.float64)
    means = torch.tensor([[-2.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
    covs = torch.stack([0.1 * torch.eye(2), 0.2 * torch.eye(2)]).double()
    g = torch.Generator().manual_seed(1)
    sigmas = karras_sigmas(steps_for(name), 0.002, 40.0)
    x = torch.randn(8000, 2, generator=g, dtype=torch.float64) * sigmas[0]
    denoiser = mixture_denoiser(weights, means, covs)
    if name == "lcm":
        denoiser = ode_consistency_function(denoiser)
    out = SAMPLERS[name](denoiser, x, sigmas, generator=g)
    left = out[:, 0] < 0
    assert left.double().mean().item() == pytest.approx(0.3, abs=0.02)
    np.testing.assert_allclose(out[left].mean(0).numpy(), means[0].numpy(), atol=0.03)
    np.testing.assert_allclose(out[~left].mean(0).numpy(), means[1].numpy(), atol=0.03)
    np.testing.assert_allclose(out[~left].var(0).numpy(), [0.2, 0.2], atol=0.03)


def test_closed_form_forward_matches_iterated_steps():
    alpha_bar = linear_alpha_bar(1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((50000, 1), 2.0, dtype=torch.float64)
    x = x0
    for t in range(1, 301):
        x = q_step(x, t, alpha_bar, generator=g)
    direct = q_sample(x0, 300, alpha_bar, generator=g)
    ab = alpha_bar[299].item()
    for sample in (x, direct):
        assert sample.mean().item() == pytest.approx(2.0 * ab**0.5, abs=0.01)
        assert sample.var().item() == pytest.approx(1 - ab, abs=0.01)


def test_posterior_is_consistent_with_the_forward_process():
    # Draw x_{t-1} ~ q(x_{t-1}|x_0), then x_t ~ q(x_t|x_{t-1}); regress x_{t-1} on x_t.
    alpha_bar = cosine_alpha_bar(100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((100000, 1), 1.5, dtype=torch.float64)
    t = 40
    x_prev = q_sample(x0, t - 1, alpha_bar, generator=g)
    x_t = q_step(x_prev, t, alpha_bar, generator=g)
    mean, var = q_posterior(x_t, x0, t, alpha_bar)
    resid = x_prev - mean
    assert abs(resid.mean().item()) < 0.005
    assert resid.var().item() == pytest.approx(var.item(), rel=0.02)


def test_schedules_are_decreasing_and_end_in_zero():
    for make in SCHEDULES.values():
        ab = make(1000)
        assert ab.shape == (1000,) and (ab[1:] < ab[:-1]).all() and 0 < ab[-1] < ab[0] <= 1
    k = karras_sigmas(10, 0.002, 80.0)
    assert len(k) == 11 and k[0] == pytest.approx(80.0) and k[-1] == 0 and (k[1:] < k[:-1]).all()
    d = discrete_sigmas(linear_alpha_bar(1000), 20)
    assert len(d) == 21 and d[-1] == 0 and (d[1:] < d[:-1]).all()


def test_probability_flow_likelihood_of_gaussian_data_is_exact():
    from genlab.diffusion.likelihood import pf_ode_log_prob

    denoiser = gaussian_denoiser(MEAN, COV)
    x = torch.tensor([[1.0, -0.5], [0.2, 0.1], [2.0, -1.0]], dtype=torch.float64)
    exact = torch.distributions.MultivariateNormal(MEAN, COV).log_prob(x)

    def true_prior(z, s_max):  # p_T of the noised data: N(mean, cov + s_max^2 I)
        return torch.distributions.MultivariateNormal(MEAN, COV + s_max**2 * torch.eye(2)).log_prob(
            z
        )

    sigmas = karras_sigmas(400, 1e-3, 100.0).flip(0)[1:]  # increasing, from 1e-3
    ours = pf_ode_log_prob(denoiser, x, sigmas, prior=true_prior)
    torch.testing.assert_close(ours, exact, atol=2e-3, rtol=0)  # Heun: error ~1/steps^2
    # The default N(0, s_max^2 I) prior is off by about |mean| / s_max.
    wide = karras_sigmas(800, 1e-3, 1000.0).flip(0)[1:]
    torch.testing.assert_close(pf_ode_log_prob(denoiser, x, wide), exact, atol=5e-3, rtol=0)
    # Hutchinson's estimate is unbiased: averaged over probes it lands near the exact value.
    g = torch.Generator().manual_seed(0)
    est = pf_ode_log_prob(
        denoiser, x, sigmas, exact=False, probes=64, generator=g, prior=true_prior
    )
    torch.testing.assert_close(est, exact, atol=0.15, rtol=0)


def test_classifier_free_guidance_combines_the_right_halves():
    from genlab.diffusion.guidance import ClassifierFreeGuidance

    def toy(x, sigma, cond):  # labelled: the label; unconditional: 10
        labels = cond.labels if cond.labels is not None else torch.zeros(len(x), dtype=torch.long)
        value = torch.where(cond.null_mask(len(x)), 10, labels).double()
        return x * 0 + value[:, None]

    x, sigma = torch.zeros(3, 2, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    labels = torch.tensor([1, 2, 3])
    cond, uncond = Condition.from_labels(labels), Condition.unconditional(3)
    out = ClassifierFreeGuidance(toy, 3.0, uncond)(x, sigma, cond)
    expect = 10 + 3.0 * (labels.double() - 10)  # uncond + w (cond - uncond)
    torch.testing.assert_close(out[:, 0], expect)
    one = ClassifierFreeGuidance(toy, 1.0, uncond)(x, sigma, cond)
    torch.testing.assert_close(one[:, 0], labels.double())
    zero = ClassifierFreeGuidance(toy, 0.0, uncond)(x, sigma, cond)
    torch.testing.assert_close(zero[:, 0], torch.full((3,), 10.0, dtype=torch.float64))


def test_a_negative_condition_replaces_the_null_one():
    """The unconditional half is whatever condition is passed in: a negative prompt's
    tokens steer away from it exactly as the formula says."""
    from genlab.diffusion.guidance import ClassifierFreeGuidance

    def toy(x, sigma, cond):  # the mean of the tokens the mask keeps
        kept = (cond.tokens * cond.mask[..., None]).sum(1) / cond.mask.sum(1, keepdim=True)
        return x * 0 + kept

    x, sigma = torch.zeros(2, 3), torch.ones(2)
    positive = Condition(tokens=torch.ones(2, 4, 3), mask=torch.ones(2, 4, dtype=torch.bool))
    negative = Condition(
        tokens=torch.full((2, 2, 3), -1.0), mask=torch.ones(2, 2, dtype=torch.bool)
    )
    want = torch.full((2, 3), -1.0 + 2.0 * (1.0 - -1.0))
    # token lengths differ: stacking pads the shorter with masked-out zeros
    torch.testing.assert_close(ClassifierFreeGuidance(toy, 2.0, negative)(x, sigma, positive), want)
    padded = Condition(
        tokens=torch.cat([negative.tokens, torch.zeros(2, 2, 3)], 1),
        mask=torch.tensor([[True, True, False, False]] * 2),
    )
    torch.testing.assert_close(ClassifierFreeGuidance(toy, 2.0, padded)(x, sigma, positive), want)


def test_condition_drop_and_stack():
    from genlab.conditioning import Condition

    c = Condition.from_labels([3, 1, 4, 1])
    assert not c.null_mask().any()
    g = torch.Generator().manual_seed(0)
    dropped = c.drop(0.5, generator=g)
    assert 0 < int(dropped.null.sum()) < 4 and torch.equal(dropped.labels, c.labels)
    both = Condition.cat([c, Condition.unconditional(4)])
    assert both.labels.tolist() == [3, 1, 4, 1, 0, 0, 0, 0]
    assert both.null.tolist() == [False] * 4 + [True] * 4
    assert len(both[torch.tensor([0, 5])]) == 2
    with pytest.raises(ValueError, match="unless null"):
        Condition.cat([c, Condition(tokens=torch.zeros(4, 2, 3))])


MIX_WEIGHTS = torch.tensor([0.3, 0.7], dtype=torch.float64)
MIX_MEANS = torch.tensor([[-2.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
MIX_COVS = torch.stack([0.1 * torch.eye(2), 0.2 * torch.eye(2)]).double()


def mixture_classifier(x, sigma):
    """Exact logits of p(component | x) for the mixture noised to level sigma."""
    eye = torch.eye(2, dtype=torch.float64)
    return torch.stack(
        [
            torch.log(w)
            + torch.distributions.MultivariateNormal(m, c + sigma[0] ** 2 * eye).log_prob(x)
            for w, m, c in zip(MIX_WEIGHTS, MIX_MEANS, MIX_COVS, strict=True)
        ],
        1,
    )


@pytest.mark.parametrize("label", [0, 1])
def test_classifier_guidance_with_the_exact_classifier_is_the_conditional_denoiser(label):
    """Bayes + Tweedie: D(x) + sigma^2 grad log p(y | x) = E[x0 | x, y], exactly."""
    from genlab.diffusion.guidance import ClassifierGuidance

    guided = ClassifierGuidance(
        mixture_denoiser(MIX_WEIGHTS, MIX_MEANS, MIX_COVS), mixture_classifier, 1.0
    )
    conditional = gaussian_denoiser(MIX_MEANS[label], MIX_COVS[label])
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for s in (0.05, 0.5, 2.0, 10.0):
        sigma = torch.full((50,), s, dtype=torch.float64)
        y = Condition.from_labels(torch.full((50,), label))
        torch.testing.assert_close(guided(x * (1 + s), sigma, y), conditional(x * (1 + s), sigma))


def test_classifier_guidance_samples_the_requested_component():
    from genlab.diffusion.guidance import ClassifierGuidance

    denoiser = mixture_denoiser(MIX_WEIGHTS, MIX_MEANS, MIX_COVS)
    g = torch.Generator().manual_seed(2)
    sigmas = karras_sigmas(40, 0.002, 40.0)
    x = torch.randn(4000, 2, generator=g, dtype=torch.float64) * sigmas[0]
    y = Condition.from_labels(torch.zeros(4000, dtype=torch.long))  # the 30% component
    out = SAMPLERS["dpmpp-2m"](
        ClassifierGuidance(denoiser, mixture_classifier, 1.0), x, sigmas, cond=y
    )
    assert (out[:, 0] < 0).double().mean().item() > 0.995
    np.testing.assert_allclose(out.mean(0).numpy(), MIX_MEANS[0].numpy(), atol=0.03)
    np.testing.assert_allclose(out.var(0).numpy(), [0.1, 0.1], atol=0.02)
    # scale 0 ignores the label: back to the mixture's 30 / 70 split
    out = SAMPLERS["dpmpp-2m"](
        ClassifierGuidance(denoiser, mixture_classifier, 0.0), x, sigmas, cond=y
    )
    assert (out[:, 0] < 0).double().mean().item() == pytest.approx(0.3, abs=0.03)


def test_a_trained_noise_aware_classifier_guides_toward_its_label():
    """Trained on labelled samples of the mixture, the classifier steers the exact
    unconditional denoiser to the requested component."""
    import genlab.data as gd
    from genlab.diffusion.guidance import ClassifierGuidance
    from genlab.models.noisy_classifier import NoisyClassifier

    g = torch.Generator().manual_seed(3)
    y = (torch.rand(4000, generator=g) > MIX_WEIGHTS[0]).long()
    x0 = (
        MIX_MEANS[y]
        + torch.randn(4000, 2, generator=g, dtype=torch.float64) * MIX_COVS[y, 0, 0].sqrt()[:, None]
    )
    data = gd.Dataset("mixture", x0.float().numpy(), y=y.numpy())
    torch.manual_seed(0)
    clf = NoisyClassifier((2,), hidden=(64, 64), num_classes=2)
    clf.fit(data, {"steps": 600, "batch_size": 256, "lr": 3e-3, "progress": False})
    assert clf.accuracy(x0[:1000], y[:1000], sigma=0.05) > 0.99
    assert clf.accuracy(x0[:1000], y[:1000], sigma=100.0) < 0.8  # noise hides the label
    denoiser = mixture_denoiser(MIX_WEIGHTS, MIX_MEANS, MIX_COVS)
    net = lambda x, sigma: clf.net(x.float(), sigma.float()).double()  # noqa: E731
    sigmas = karras_sigmas(30, 0.002, 40.0)
    x = torch.randn(2000, 2, generator=g, dtype=torch.float64) * sigmas[0]
    want = Condition.from_labels(torch.zeros(2000, dtype=torch.long))
    out = SAMPLERS["dpmpp-2m"](ClassifierGuidance(denoiser, net, 1.0), x, sigmas, cond=want)
    assert (out[:, 0] < 0).double().mean().item() > 0.95


def test_variational_bound_of_two_level_data_is_near_one_bit():
    """Data uniform on {-1, +1}: entropy 1 bit. With the exact denoiser the bound lies just
    above it (and can never fall below it)."""
    from genlab.diffusion.likelihood import vlb_bits_per_dim

    alpha_bar = linear_alpha_bar(1000)

    class Exact:
        alpha_bar = linear_alpha_bar(1000)

        def __call__(self, x, sigma, cond=None):  # E[x0 | x] for x0 = +-1, x = x0 + s eps
            return torch.tanh(x / sigma.view(-1, 1) ** 2)

    x0 = torch.tensor([[-1.0], [1.0]] * 50, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    bits = vlb_bits_per_dim(Exact(), x0, levels=2, generator=g)
    assert alpha_bar.shape == (1000,)
    assert 1.0 <= bits.mean().item() < 1.05
