"""Step 1: the normal distribution, and the central limit theorem by experiment."""

from __future__ import annotations

import numpy as np

from ..viz.plots import subplots


def normal_densities(x):
    """p(x) of three normals, from genlab's Normal."""
    from genlab.models.gaussian import Normal

    params = [(0.0, 1.0), (0.0, 0.5), (2.0, 1.0)]
    return {(mu, sigma): np.exp(Normal.from_params(mu, sigma).log_prob(x)) for mu, sigma in params}


def sums_of_uniforms(n, trials=10_000, seed=0):
    """`trials` sums of `n` draws of U(0, 1): by the central limit theorem, close to
    N(n / 2, n / 12) as n grows."""
    rng = np.random.default_rng(seed)
    return rng.random((trials, n)).sum(axis=1)


def oracle(numbers, options):
    """The densities against scipy's, and the sums' mean and variance against the central
    limit theorem's N / 2 and N / 12."""
    import scipy.stats

    from genlab.course.common import compare

    x = np.linspace(-4, 6, 500)
    gap = max(
        np.abs(p - scipy.stats.norm(mu, sigma).pdf(x)).max()
        for (mu, sigma), p in normal_densities(x).items()
    )
    se = np.sqrt(10 / 12 / 10_000)  # the standard error of the mean of 10,000 sums
    return [
        compare("p(x) against scipy.stats.norm.pdf, largest gap", gap, 0.0, 1e-12),
        compare("mean of S_10 against N / 2, 4 standard errors", numbers["clt_mean"], 5.0, 4 * se),
        compare(
            "variance of S_10 over N / 12, against 1", numbers["clt_var"] / (10 / 12), 1.0, 0.05
        ),
    ]


def run(page, options) -> None:
    from ..models.gaussian import Normal

    page.say(
        "The normal (Gaussian) distribution has two parameters, the mean $\\mu$ (where the "
        "bell is centred) and the standard deviation $\\sigma$ (how wide it is):",
        "正規分布（ガウス分布）は平均 $\\mu$（山の中心）と標準偏差 $\\sigma$（山の幅）の "
        "2 つのパラメータで決まります。",
    )
    page.math(
        r"\mathcal{N}(x;\mu,\sigma)=\frac{1}{\sqrt{2\pi}\,\sigma}"
        r"\exp\left(-\frac{(x-\mu)^2}{2\sigma^2}\right)"
    )
    x = np.linspace(-4, 6, 500)
    dens = normal_densities(x)
    fig, ax = subplots(figsize=(6, 3.6))
    for (mu, sigma), p in dens.items():
        ax.plot(x, p, label=f"mu={mu:g}, sigma={sigma:g}")
    ax.set(xlabel="x", ylabel="p(x)")
    ax.legend()
    fig.tight_layout()
    page.figure(fig, "densities.png", "Three normal densities", "3 つの正規分布の確率密度")

    page.heading("The central limit theorem", "中心極限定理")
    page.say(
        "Add up $N$ independent draws of the uniform distribution on [0, 1]. Each has mean "
        "1/2 and variance 1/12, so the sum has mean $N/2$ and variance $N/12$; the central "
        "limit theorem says its distribution approaches the normal with those parameters as "
        "$N$ grows, whatever the distribution of the terms.",
        "区間 [0, 1] の一様分布から独立に $N$ 個取り出して足し合わせます。1 個あたりの平均は "
        "1/2、分散は 1/12 なので、和の平均は $N/2$、分散は $N/12$ です。中心極限定理によれば、"
        "元の分布が何であっても、$N$ が大きくなるにつれて和の分布はこの正規分布に近づきます。",
    )
    page.math(
        r"S_N=\sum_{i=1}^{N}u_i,\quad u_i\sim\mathcal{U}(0,1)"
        r"\quad\Rightarrow\quad S_N\approx\mathcal{N}\left(\frac{N}{2},\sqrt{\frac{N}{12}}\right)"
    )
    fig, axes = subplots(1, 4, figsize=(12, 3))
    rows = []
    for ax, n in zip(axes, (1, 2, 4, 10), strict=True):
        s = sums_of_uniforms(n, seed=options.seed)
        grid = np.linspace(s.min(), s.max(), 200)
        theory = Normal.from_params(n / 2, np.sqrt(n / 12))
        ax.hist(s, bins=40, density=True, alpha=0.5)
        ax.plot(grid, np.exp(theory.log_prob(grid)), "r")
        ax.set(title=f"N = {n}")
        if n == 10:
            rows = [
                (
                    "clt_mean",
                    "mean of S_10 (10,000 sums)",
                    "S_10 の平均（10,000 回）",
                    float(s.mean()),
                ),
                ("clt_mean_theory", "N / 2", "N / 2", n / 2),
                ("clt_var", "variance of S_10", "S_10 の分散", float(s.var())),
                ("clt_var_theory", "N / 12", "N / 12", n / 12),
            ]
    fig.tight_layout()
    page.figure(
        fig,
        "clt.png",
        "Histograms of sums of N uniforms; red: N(N/2, N/12)",
        "一様乱数 N 個の和のヒストグラム。赤は N(N/2, N/12)",
    )
    page.table(rows)
    page.code(
        normal_densities,
        sums_of_uniforms,
        call="dens = normal_densities(np.linspace(-4, 6, 500))\ns = sums_of_uniforms(10)"
        "\nprint(s.mean(), s.var())",
    )
    page.tests("tests/test_course.py::test_step1_density_and_clt")
