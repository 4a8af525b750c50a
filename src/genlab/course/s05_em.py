"""Step 5: KL divergence, and EM on Old Faithful with its log-likelihood per iteration."""

from __future__ import annotations

import numpy as np

from ..viz.plots import em_history, scatter_density


def kl_normals(mu1, sigma1, mu2, sigma2, n=200_000, seed=0):
    """KL(N(mu1, sigma1) || N(mu2, sigma2)): the closed form, and a Monte Carlo estimate
    E_q[log q(x) - log p(x)] with x ~ q."""
    from genlab.models.gaussian import Normal

    q, p = Normal.from_params(mu1, sigma1), Normal.from_params(mu2, sigma2)
    closed = np.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2) - 0.5
    x = q.sample(n, seed=seed)
    return closed, float(np.mean(q.log_prob(x) - p.log_prob(x)))


def em_from(x, k=2, seed=0):
    """EM from a stated start (means at k data points, unit covariances, equal weights),
    so that any other EM, scikit-learn's included, can start from the same place."""
    from genlab.models.mixture import GaussianMixture

    rng = np.random.default_rng(seed)
    start = {
        "weights_init": np.full(k, 1 / k),
        "means_init": x[rng.choice(len(x), k, replace=False)],
        "precisions_init": np.stack([np.eye(x.shape[1])] * k),
    }
    model = GaussianMixture(k, tol=1e-8, max_iter=500, **start).fit(x)
    return model, start


def oracle(numbers, options):
    """KL: the Monte Carlo estimate against the closed form; EM: scikit-learn's EM from the
    same start, against the page's final log-likelihood and weights."""
    from sklearn.mixture import GaussianMixture

    from genlab.course.common import compare
    from genlab.data import load_spec

    x = load_spec(options.data or "faithful").x
    _, start = em_from(x, seed=options.seed)
    theirs = GaussianMixture(2, tol=1e-8, max_iter=500, reg_covar=1e-6, **start).fit(x)
    return [
        compare("KL: Monte Carlo against closed form", numbers["kl_monte_carlo"],
                numbers["kl_closed"], 0.01),
        compare("EM never lowers the log-likelihood: smallest change against 0",
                min(numbers["em_smallest_change"], 0.0), 0.0, 1e-12),
        compare("final average log-likelihood against scikit-learn's", numbers["em_final"],
                theirs.lower_bound_, 1e-6),
        compare("phi_1 against scikit-learn's", numbers["phi_1"], theirs.weights_[0], 1e-5),
    ]  # fmt: skip


def run(page, options) -> None:
    from ..data import load_spec
    from ..errors import DataError

    page.say(
        "The KL divergence measures how far a distribution $q$ is from another, $p$. It is "
        "never negative and is zero only when the two are equal; it is not symmetric.",
        "KL ダイバージェンスは分布 $q$ が別の分布 $p$ からどれだけ離れているかを測ります。"
        "常に 0 以上で、2 つが等しいときに限り 0 になります。対称ではありません。",
    )
    page.math(
        r"D_{\mathrm{KL}}(q\,\|\,p)=\int q(x)\log\frac{q(x)}{p(x)}\,dx"
        r"=\mathbb{E}_{q(x)}\left[\log q(x)-\log p(x)\right]"
    )
    closed, mc = kl_normals(0.0, 1.0, 1.0, 2.0, seed=options.seed)
    page.table(
        [
            (
                "kl_closed",
                "KL(N(0, 1) || N(1, 2)), closed form",
                "KL(N(0, 1) || N(1, 2))、解析解",
                float(closed),
            ),
            (
                "kl_monte_carlo",
                "the same, Monte Carlo (200,000 draws)",
                "同じ量のモンテカルロ推定（20 万点）",
                mc,
            ),
        ]
    )

    page.heading("The EM algorithm", "EM アルゴリズム")
    page.say(
        "The log-likelihood of a mixture has a sum inside the logarithm, so there is no closed "
        "form for its maximum. For any distribution $q(z)$ over the latent component, the "
        "log-likelihood splits into the ELBO and a KL divergence:",
        "混合モデルの対数尤度は対数の中に和があるため、最大値を解析的に求められません。潜在変数 "
        "$z$ 上の任意の分布 $q(z)$ について、対数尤度は ELBO（変分下界）と KL ダイバージェンスに"
        "分解できます。",
    )
    page.math(
        r"\log p(\mathbf{x};\theta)=\underbrace{\sum_z q(z)\log\frac{p(\mathbf{x},z;\theta)}{q(z)}}"
        r"_{\mathrm{ELBO}}+D_{\mathrm{KL}}\left(q(z)\,\|\,p(z\mid\mathbf{x};\theta)\right)"
    )
    page.say(
        "The E-step sets $q$ to the posterior (the KL becomes 0, the ELBO touches the "
        "log-likelihood); the M-step maximises the ELBO over $\\theta$ in closed form. "
        "Each iteration therefore never lowers the log-likelihood.",
        "E ステップでは $q$ を事後分布に等しくします（KL が 0 になり、ELBO が対数尤度に接します）。"
        "M ステップでは ELBO を $\\theta$ について解析的に最大化します。したがって各反復で対数尤度は"
        "決して下がりません。",
    )
    page.math(
        r"\text{E: }\ q^{(n)}(k)=\frac{\phi_k\mathcal{N}(\mathbf{x}^{(n)};\boldsymbol{\mu}_k,"
        r"\boldsymbol{\Sigma}_k)}{\sum_j\phi_j\mathcal{N}(\mathbf{x}^{(n)};\boldsymbol{\mu}_j,"
        r"\boldsymbol{\Sigma}_j)}",
        r"\text{M: }\ \phi_k=\frac{1}{N}\sum_n q^{(n)}(k),\quad\boldsymbol{\mu}_k="
        r"\frac{\sum_n q^{(n)}(k)\mathbf{x}^{(n)}}{\sum_n q^{(n)}(k)},\quad\boldsymbol{\Sigma}_k="
        r"\frac{\sum_n q^{(n)}(k)(\mathbf{x}^{(n)}-\boldsymbol{\mu}_k)(\mathbf{x}^{(n)}-"
        r"\boldsymbol{\mu}_k)^\top}{\sum_n q^{(n)}(k)}",
    )
    data = options.data or "faithful"
    x = load_spec(data).x
    if x.shape[1] != 2:
        raise DataError(f"Step 5 fits two columns of numbers; {data} has {x.shape[1]}.")
    model, _ = em_from(x, seed=options.seed)
    history = np.asarray(model.history_)
    page.figure(
        em_history(history),
        "em_history.png",
        "Average log-likelihood per EM iteration",
        "EM の反復ごとの平均対数尤度",
    )
    page.figure(
        scatter_density(x, model, title="EM fit, 2 components"),
        "em_fit.png",
        "The fitted mixture's contours and components",
        "推定した混合モデルの等高線と各成分",
    )
    page.table(
        [
            ("em_iterations", "EM iterations", "EM の反復回数", len(history)),
            (
                "em_first",
                "average log-likelihood at the start",
                "最初の平均対数尤度",
                float(history[0]),
            ),
            (
                "em_final",
                "average log-likelihood at the end",
                "最後の平均対数尤度",
                float(history[-1]),
            ),
            (
                "em_smallest_change",
                "smallest change between iterations (never below 0)",
                "反復間の変化の最小値（0 未満にならない）",
                float(np.diff(history).min()),
            ),
            ("phi_1", "phi_1", "φ_1", float(model.weights_[0])),
            ("phi_2", "phi_2", "φ_2", float(model.weights_[1])),
        ]
    )
    page.code(
        kl_normals,
        em_from,
        call=f"from genlab.data import load_spec\nx = load_spec({data!r}).x\n"
        "model, start = em_from(x)\nprint(model.history_, model.means_)",
    )
    page.tests("tests/test_course.py::test_step5_kl_and_em_match_sklearn")
