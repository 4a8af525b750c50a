"""Step 3: the multivariate normal; its maximum-likelihood fit on heights and weights."""

from __future__ import annotations

import numpy as np

from ..viz.plots import normal_surface, scatter_density


def fit_mvn(data="height-weight"):
    """Fit a 2-D normal by maximum likelihood: the sample mean and the sample covariance
    (divided by N)."""
    from genlab.data import load_spec
    from genlab.models.gaussian import MultivariateNormal

    x = load_spec(data).x
    model = MultivariateNormal().fit(x)
    return model, x


def oracle(numbers, options):
    """The maximum-likelihood mean and covariance against numpy's, and the average
    log-likelihood against scipy's multivariate normal."""
    import scipy.stats

    from genlab.course.common import compare
    from genlab.data import load_spec

    x = load_spec(options.data or "height-weight").x
    cov = np.cov(x.T, bias=True)
    avg = scipy.stats.multivariate_normal(x.mean(0), cov).logpdf(x).mean()
    return [
        compare("mu_1 against numpy's mean", numbers["mu_1"], x[:, 0].mean(), 1e-9),
        compare("mu_2 against numpy's mean", numbers["mu_2"], x[:, 1].mean(), 1e-9),
        compare("var_1 against np.cov(bias=True)", numbers["var_1"], cov[0, 0], 1e-8),
        compare("cov_12 against np.cov(bias=True)", numbers["cov_12"], cov[0, 1], 1e-8),
        compare("var_2 against np.cov(bias=True)", numbers["var_2"], cov[1, 1], 1e-8),
        compare("average log-likelihood against scipy", numbers["avg_log_lik"], avg, 1e-9),
    ]


def run(page, options) -> None:
    from ..errors import DataError
    from ..models.gaussian import MultivariateNormal

    page.say(
        "In $D$ dimensions the normal distribution has a mean vector $\\boldsymbol{\\mu}$ and "
        "a covariance matrix $\\boldsymbol{\\Sigma}$, which sets the spread along each axis "
        "and how the coordinates move together:",
        "$D$ 次元の正規分布は平均ベクトル $\\boldsymbol{\\mu}$ と共分散行列 "
        "$\\boldsymbol{\\Sigma}$ をもちます。共分散行列は各軸方向の広がりと、座標どうしが"
        "どう連動するかを表します。",
    )
    page.math(
        r"\mathcal{N}(\mathbf{x};\boldsymbol{\mu},\boldsymbol{\Sigma})="
        r"\frac{1}{\sqrt{(2\pi)^D|\boldsymbol{\Sigma}|}}\exp\left(-\frac{1}{2}"
        r"(\mathbf{x}-\boldsymbol{\mu})^\top\boldsymbol{\Sigma}^{-1}(\mathbf{x}-\boldsymbol{\mu})\right)"
    )
    example = MultivariateNormal.from_params([0.0, 0.0], [[1.0, 0.6], [0.6, 1.0]])
    page.figure(
        normal_surface(example, title="mu = (0, 0), Sigma = [[1, 0.6], [0.6, 1]]"),
        "surface.png",
        "A 2-D normal as a surface, with its contours below",
        "2 次元正規分布の曲面と、その下の等高線",
    )
    data = options.data or "height-weight"
    model, x = fit_mvn(data)
    if x.shape[1] != 2:
        raise DataError(f"Step 3 fits two columns of numbers; {data} has {x.shape[1]}.")
    page.heading("Maximum likelihood", "最尤推定")
    page.say(
        f"Fitted to {len(x)} people's heights and weights ({data}), maximum likelihood "
        "gives the sample mean and the sample covariance:",
        f"{len(x)} 人分の身長と体重（{data}）に当てはめると、最尤推定値は標本平均と"
        "標本共分散行列になります。",
    )
    page.math(
        r"\hat{\boldsymbol{\mu}}=\frac{1}{N}\sum_{n=1}^{N}\mathbf{x}^{(n)},\qquad"
        r"\hat{\boldsymbol{\Sigma}}=\frac{1}{N}\sum_{n=1}^{N}(\mathbf{x}^{(n)}-\hat{\boldsymbol{\mu}})"
        r"(\mathbf{x}^{(n)}-\hat{\boldsymbol{\mu}})^\top"
    )
    page.figure(
        scatter_density(x, model, title="fitted 2-D normal"),
        "fit.png",
        "The data and the fitted density's contours",
        "データと推定した密度の等高線",
    )
    page.figure(
        normal_surface(model, title="fitted 2-D normal"),
        "fit_surface.png",
        "The fitted density as a surface",
        "推定した密度の曲面",
    )
    mu, cov = model.mean_, model.covariance_
    corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    page.table(
        [
            ("mu_1", "mean of column 1", "1 列目の平均", float(mu[0])),
            ("mu_2", "mean of column 2", "2 列目の平均", float(mu[1])),
            ("var_1", "variance of column 1", "1 列目の分散", float(cov[0, 0])),
            ("var_2", "variance of column 2", "2 列目の分散", float(cov[1, 1])),
            ("cov_12", "covariance", "共分散", float(cov[0, 1])),
            ("corr", "correlation", "相関係数", float(corr)),
            ("avg_log_lik", "average log-likelihood", "平均対数尤度", float(model.score(x))),
        ]
    )
    page.code(
        fit_mvn,
        call=f"model, x = fit_mvn({data!r})\nprint(model.mean_, model.covariance_, model.score(x))",
    )
    page.tests("tests/test_course.py::test_step3_mle_matches_numpy_and_scipy")
