"""genlab course: each step's numbers against an independent oracle (scipy, numpy's least
squares, scikit-learn's EM from the same start, Bayes' rule on a grid, finite differences),
the pages in both languages, and the command line. The training steps are checked through
their functions with a few steps; whole pages of every step run in `make test-all`."""

import re
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch

from genlab.course import STEPS, Options, run_step
from genlab.errors import GenlabError

QUICK = Options(quick=True)


def test_step1_density_and_clt(tmp_path):
    from genlab.course.s01_normal import normal_densities

    x = np.linspace(-3, 5, 50)
    for (mu, sigma), p in normal_densities(x).items():
        np.testing.assert_allclose(p, scipy.stats.norm(mu, sigma).pdf(x), rtol=1e-12)
    n = run_step("1", out=tmp_path, options=QUICK).numbers
    se_mean = np.sqrt(10 / 12 / 10_000)
    assert abs(n["clt_mean"] - 5) < 4 * se_mean
    assert abs(n["clt_var"] / n["clt_var_theory"] - 1) < 0.05


def test_step2_probabilities_match_scipy(tmp_path):
    from genlab.data import load

    h = load("heights").x[:, 0]
    truth = scipy.stats.norm(h.mean(), h.std())
    n = run_step("2", out=tmp_path, options=QUICK).numbers
    assert n["mu"] == pytest.approx(h.mean(), rel=1e-12)
    assert n["p_le_160"] == pytest.approx(truth.cdf(160), rel=1e-9)
    assert n["p_gt_180"] == pytest.approx(truth.sf(180), rel=1e-9)
    # the same from a textbook-style text file: one number per line, no header
    path = tmp_path / "height.txt"
    path.write_text("\n".join(f"{v:.6f}" for v in h) + "\n")
    m = run_step("2", out=tmp_path, options=Options(data=f"txt:{path}", quick=True)).numbers
    assert m["p_le_160"] == pytest.approx(n["p_le_160"], rel=1e-6)


def test_step3_mle_matches_numpy_and_scipy(tmp_path):
    from genlab.data import load

    x = load("height-weight").x
    assert x.shape == (200, 2) and (x[:, 0] > x[:, 1]).all()  # the swapped record put right
    n = run_step("3", out=tmp_path, options=QUICK).numbers
    cov = np.cov(x.T, bias=True)
    assert [n["mu_1"], n["mu_2"]] == pytest.approx(list(x.mean(0)), rel=1e-12)
    assert [n["var_1"], n["cov_12"], n["var_2"]] == pytest.approx(
        [cov[0, 0], cov[0, 1], cov[1, 1]], rel=1e-10
    )
    oracle = scipy.stats.multivariate_normal(x.mean(0), cov).logpdf(x).mean()
    assert n["avg_log_lik"] == pytest.approx(oracle, rel=1e-10)


def test_step4_mixture_sampling(tmp_path):
    from genlab.course.s04_mixture import COVS, MUS, PHI, sample_mixture

    x, z = sample_mixture(20_000, PHI, MUS, COVS, seed=1)
    assert abs(np.mean(z == 0) - PHI[0]) < 4 * np.sqrt(PHI[0] * PHI[1] / 20_000)
    for k in range(2):  # each component's draws have its mean and covariance
        np.testing.assert_allclose(x[z == k].mean(0), MUS[k], atol=0.1)
        np.testing.assert_allclose(np.cov(x[z == k].T), COVS[k], rtol=0.1, atol=0.02)
    assert run_step("4", out=tmp_path, options=QUICK).numbers["phi_1"] == PHI[0]


def test_step5_kl_and_em_match_sklearn(tmp_path):
    from sklearn.mixture import GaussianMixture

    from genlab.course.s05_em import em_from
    from genlab.data import load

    n = run_step("5", out=tmp_path, options=QUICK).numbers
    assert n["kl_monte_carlo"] == pytest.approx(n["kl_closed"], abs=0.01)
    x = load("faithful").x
    ours, start = em_from(x)
    assert np.all(np.diff(ours.history_) >= -1e-12)  # EM never lowers the likelihood
    theirs = GaussianMixture(2, tol=1e-8, max_iter=500, reg_covar=1e-6, **start).fit(x)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-5)
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=1e-5)
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, rel=1e-7)
    assert n["em_final"] == pytest.approx(ours.lower_bound_)


def test_step6_descent_and_regression():
    from genlab.course.s06_neural import fit_mlp, linear_regression, rosenbrock_descent

    path = rosenbrock_descent(10_000)
    assert np.abs(path[-1] - 1).max() < 0.1  # the minimum is at (1, 1)
    x, y, w, b, _ = linear_regression(iters=2000)
    (w_ls, b_ls), *_ = np.linalg.lstsq(np.hstack([x, np.ones_like(x)]), y[:, 0], rcond=None)
    assert (w, b) == pytest.approx((w_ls, b_ls), abs=1e-3)  # long enough: least squares
    *_, losses = fit_mlp(iters=300)
    assert losses[-1] < 0.8 * losses[0]


@pytest.fixture(scope="module")
def small_digits():
    from genlab.course.common import image_data

    train, test = image_data(None)
    return train, test


def test_step7_vae_elbo_and_kl(small_digits):
    from genlab.course.s07_vae import kl_check, train_vae
    from genlab.models.neural import Batch

    train, test = small_digits
    model, losses = train_vae(train, steps=30)
    assert losses[-1] < losses[0]
    closed, mc = kl_check(model, test.x, draws=20_000)
    assert mc == pytest.approx(closed, abs=0.1 + 0.05 * closed)
    x = torch.as_tensor(test.x[:64])
    g = torch.Generator().manual_seed(0)
    rec, kl = model.elbo_terms(x, g)
    elbo = model.elbo(test.x[:64], seed=0)
    torch.testing.assert_close(elbo, rec - kl)
    # the "mean" reduction divides each term by its number of dimensions
    model.reduction = "mean"
    torch.manual_seed(0)
    loss = model.training_step(Batch(x, None))["loss"]
    torch.manual_seed(0)
    rec, kl = model.elbo_terms(x)
    torch.testing.assert_close(loss, -(rec / x[0].numel() - kl / 8).mean())


def test_step8_forward_and_posterior(tmp_path):
    one = run_step("8", out=tmp_path, options=QUICK).numbers
    zero = run_step("8", out=tmp_path, options=Options(quick=True, t_base=0)).numbers
    assert one == zero  # the same noise levels, labelled from 0 or from 1
    for level in (10, 100, 500, 1000):
        var = one[f"closed_var_{level}"]
        assert abs(one[f"iterated_mean_{level}"] - one[f"closed_mean_{level}"]) < 5 * np.sqrt(
            var / 20_000
        )
        assert one[f"iterated_var_{level}"] == pytest.approx(var, rel=0.05)
    for level in (2, 100, 500):
        assert one[f"bayes_mean_{level}"] == pytest.approx(one[f"posterior_mean_{level}"], abs=1e-7)
        assert one[f"bayes_var_{level}"] == pytest.approx(one[f"posterior_var_{level}"], rel=1e-4)


class GaussianDenoiser(torch.nn.Module):
    """The exact denoiser of N(0, s^2) data: E[x0 | x] = s^2 / (s^2 + sigma^2) x."""

    def __init__(self, s: float) -> None:
        super().__init__()
        self.s2 = s**2

    def forward(self, x, sigma, cond=None):
        return self.s2 / (self.s2 + sigma.view(-1, 1) ** 2) * x


@pytest.mark.parametrize("variance", ["posterior", "beta"])
def test_step9_ddpm_sampler_variances_reach_the_data(variance):
    """Either reverse variance, 1000 ancestral steps from the exact denoiser of N(0, 0.5^2)
    data end with standard deviation 0.5 (the closed-form case)."""
    from genlab.diffusion.samplers import sample_ddpm
    from genlab.diffusion.schedules import alpha_bar, discrete_sigmas

    sigmas = discrete_sigmas(alpha_bar("linear", 1000).double(), 1000)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20_000, 1, generator=g, dtype=torch.float64) * sigmas[0]
    out = sample_ddpm(GaussianDenoiser(0.5), x, sigmas, generator=g, variance=variance)
    assert float(out.std()) == pytest.approx(0.5, rel=0.03)


def test_step9_training_lowers_the_loss(small_digits):
    from genlab.course.s09_diffusion_impl import train_ddpm
    from genlab.diffusion.losses import diffusion_loss
    from genlab.models.diffusion import DDPM

    train, _ = small_digits
    untrained = DDPM(train.shape, channels=(16, 32, 32), attention=False)
    torch.manual_seed(0)
    with torch.no_grad():  # the U-Net's last layer starts at zero: eps_hat = 0, loss = E[eps^2]
        loss = diffusion_loss(untrained.net, torch.as_tensor(train.x[:256])).mean()
    assert float(loss) == pytest.approx(1.0, abs=0.03)
    _, losses = train_ddpm(train, steps=40)
    assert losses[-1] < 0.5 * float(loss)


def test_step10_guidance_and_score():
    from genlab.assets import load_shipped
    from genlab.conditioning import Condition
    from genlab.course.s10_guidance import accuracy, guided_samples, mixture_score

    means = np.array([[2.0, 0.0], [-1.0, 1.0], [0.0, -2.0]])
    pts = np.random.default_rng(0).normal(size=(50, 2))
    exact, tweedie = mixture_score(pts, 0.5, means, 0.1)
    np.testing.assert_allclose(exact, tweedie, atol=1e-10)

    def log_p(x):  # the noised mixture's log-density, for finite differences
        var = 0.1**2 + 0.5**2
        d2 = ((x[:, None, :] - means[None]) ** 2).sum(-1)
        return np.log(np.exp(-d2 / (2 * var)).mean(1))

    h = 1e-5
    fd = np.stack([(log_p(pts + h * e) - log_p(pts - h * e)) / (2 * h) for e in np.eye(2)], 1)
    np.testing.assert_allclose(exact, fd, atol=1e-5)

    labels = Condition.from_labels(torch.zeros(64, dtype=torch.long))
    g = torch.Generator().manual_seed(0)
    for _ in range(20):  # per batch: all or nothing
        assert labels.drop(0.5, g, per="batch").null.float().mean().item() in (0.0, 1.0)

    model = load_shipped("ddpm-digits")
    classifier = load_shipped("noisy-classifier-digits")
    assert accuracy(guided_samples(model, per_class=2, cfg=3.0), per_class=2) >= 0.8
    assert accuracy(guided_samples(model, per_class=2, cfg=0.0), per_class=2) < 0.5
    guided = guided_samples(model, classifier, per_class=2, cg_scale=4.0)
    assert accuracy(guided, per_class=2) >= 0.6


def test_appendix_hvae_elbo_terms(small_digits):
    from genlab.course.sa_hvae import train_hvae

    train, test = small_digits
    model, losses = train_hvae(train, steps=20)
    assert losses[-1] < losses[0]
    terms = model.elbo_terms(torch.as_tensor(test.x[:64]), torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        model.elbo(test.x[:64], seed=0), terms["rec"] - terms["kl1"] - terms["kl2"]
    )
    assert (terms["kl2"] >= 0).all()  # closed-form KL to N(0, I)


def test_pages_in_both_languages_are_offline_and_linked(tmp_path):
    en = run_step("2", "en", tmp_path / "en", QUICK)
    ja = run_step("2", "ja", tmp_path / "ja", QUICK)
    assert en.numbers == ja.numbers
    for result, words in ((en, "Maximum likelihood"), (ja, "最尤推定")):
        html = result.page.read_text()
        assert words in html and "<math" in html and "<pre><code>" in html
        assert "tests/test_course.py::" in html
        # nothing fetched, no CDN (MathML's xmlns names a namespace; it is not loaded)
        assert not re.search(r"<script|<link|(src|href)=\"https?:|url\(", html)
        for src in re.findall(r'src="([^"]+)"', html):
            assert (result.page.parent / src).is_file()
        # from a clone, each test named is a link to its file
        links = re.findall(r'href="file://([^"]+)"', html)
        assert links and all(Path(link).is_file() for link in links)
        index = (result.page.parent.parent / "index.html").read_text()
        assert index.count("<tr>") == len(STEPS) == 11
        assert 'href="02-maximum-likelihood/index.html"' in index
    assert sorted(p.name for p in en.page.parent.iterdir()) == sorted(
        p.name for p in ja.page.parent.iterdir()
    )  # the same figures


def test_shown_code_runs_as_written(tmp_path, monkeypatch):
    """The code block of step 2 is copy-pasteable: run it, get the page's numbers."""
    import html as html_lib

    result = run_step("2", out=tmp_path, options=QUICK)
    code = re.search(r"<pre><code>(.*?)</code></pre>", result.page.read_text(), re.S).group(1)
    scope: dict = {}
    exec(html_lib.unescape(code), scope)  # our own page's code, not user input
    assert scope["numbers"]["p_le_160"] == pytest.approx(result.numbers["p_le_160"])


def test_a_failed_step_leaves_the_previous_page(tmp_path):
    first = run_step("4", out=tmp_path, options=QUICK)
    before = first.page.read_text()
    with pytest.raises(GenlabError, match="two columns"):
        run_step("4", out=tmp_path, options=Options(data="heights", quick=True))
    assert first.page.read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_command_line(tmp_path, capsys, monkeypatch):
    from genlab.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["course"]) == 0
    assert capsys.readouterr().out.count("\n") >= 11
    assert main(["course", "--lang", "ja"]) == 0 and "正規分布" in capsys.readouterr().out
    for bad in (["course", "1", "--data", "heights"], ["course", "Z"],
                ["course", "--all", "--data", "heights"], ["course", "2", "--seed", "-1"],
                ["course", "2", "--out", ""]):  # fmt: skip
        assert main(bad) == 2, bad
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (bad, err)
    assert main(["course", "8", "--quick", "--t-base", "0", "--out", "c"]) == 0
    assert "t = 0..999" in (tmp_path / "c" / "08-diffusion-theory" / "index.html").read_text()
