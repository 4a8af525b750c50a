"""Step 2: maximum likelihood on heights; new samples; probabilities from the fitted model."""

from __future__ import annotations

import numpy as np

from ..viz.plots import compare_histograms, density_histogram


def fit_heights(data="heights"):
    """Fit N(mu, sigma) by maximum likelihood and ask it questions."""
    from genlab.data import load_spec
    from genlab.models.gaussian import Normal

    x = load_spec(data).x[:, 0]
    model = Normal().fit(x)  # mu = mean, sigma = sqrt(mean squared deviation)
    return (
        model,
        x,
        {
            "mu": model.mean_,
            "sigma": model.std_,
            "p_le_160": model.prob("x <= 160"),
            "p_gt_180": model.prob("x > 180"),
        },
    )


def oracle(numbers, options):
    """The fitted parameters and probabilities against numpy's mean and standard deviation
    and scipy's normal distribution function."""
    import scipy.stats

    from genlab.course.common import compare
    from genlab.data import load_spec

    h = load_spec(options.data or "heights").x[:, 0]
    truth = scipy.stats.norm(h.mean(), h.std())
    return [
        compare("mu against numpy's mean", numbers["mu"], h.mean(), 1e-9 * abs(h.mean())),
        compare("sigma against numpy's std (ddof=0)", numbers["sigma"], h.std(), 1e-9 * h.std()),
        compare("P(x <= 160) against scipy's cdf", numbers["p_le_160"], truth.cdf(160), 1e-9),
        compare("P(x > 180) against scipy's sf", numbers["p_gt_180"], truth.sf(180), 1e-9),
    ]


def run(page, options) -> None:
    from ..data import load_spec

    data = options.data or "heights"
    if load_spec(data).x.shape[1] != 1:
        from ..errors import DataError

        raise DataError(f"Step 2 fits one column of numbers; {data} has more.")
    model, x, numbers = fit_heights(data)
    page.say(
        f"We have {len(x)} heights $x^{{(1)}},\\dots,x^{{(N)}}$ ({data}). Maximum likelihood "
        "picks the parameters under which the data are most probable. For the normal "
        "distribution, setting the derivatives of the log-likelihood to zero gives the sample "
        "mean and the sample standard deviation (divided by $N$, not $N-1$):",
        f"{len(x)} 人分の身長 $x^{{(1)}},\\dots,x^{{(N)}}$（{data}）があります。最尤推定は、"
        "データが最も得られやすくなるパラメータを選びます。正規分布では対数尤度の微分を 0 "
        "とおくと、標本平均と標本標準偏差（$N-1$ ではなく $N$ で割る）が得られます。",
    )
    page.math(
        r"\log p(\mathcal{D};\mu,\sigma)=\sum_{n=1}^{N}\log\mathcal{N}(x^{(n)};\mu,\sigma)",
        r"\hat\mu=\frac{1}{N}\sum_{n=1}^{N}x^{(n)},\qquad"
        r"\hat\sigma=\sqrt{\frac{1}{N}\sum_{n=1}^{N}\left(x^{(n)}-\hat\mu\right)^2}",
    )
    page.figure(
        density_histogram(x, model, xlabel="height"),
        "fit.png",
        "Heights and the fitted normal density",
        "身長のヒストグラムと推定した正規分布",
    )
    samples = model.sample(len(x), seed=options.seed)
    page.say(
        "The fitted model is a generative model: it draws new heights that look like the "
        "real ones. It also answers questions about the population, through its cumulative "
        "distribution function $F$:",
        "推定したモデルは生成モデルです。本物に似た新しい身長を生成できます。また累積分布関数 "
        "$F$ を通して、母集団についての問いにも答えられます。",
    )
    page.figure(
        compare_histograms(x, np.asarray(samples).ravel(), xlabel="height"),
        "generated.png",
        "Real heights and as many generated ones",
        "本物の身長と、同じ数だけ生成した身長",
    )
    page.math(
        r"P(x\le 160)=F(160)=\int_{-\infty}^{160}\mathcal{N}(x;\hat\mu,\hat\sigma)\,dx,"
        r"\qquad P(x>180)=1-F(180)"
    )
    page.table(
        [
            ("mu", "mu (maximum likelihood)", "μ（最尤推定値）", float(numbers["mu"])),
            ("sigma", "sigma (maximum likelihood)", "σ（最尤推定値）", float(numbers["sigma"])),
            ("p_le_160", "P(x <= 160)", "P(x ≤ 160)", float(numbers["p_le_160"])),
            ("p_gt_180", "P(x > 180)", "P(x > 180)", float(numbers["p_gt_180"])),
            (
                "share_le_160",
                "share of the data <= 160",
                "データのうち 160 以下の割合",
                float(np.mean(x <= 160)),
            ),
            (
                "share_gt_180",
                "share of the data > 180",
                "データのうち 180 を超える割合",
                float(np.mean(x > 180)),
            ),
        ]
    )
    page.say(
        "The same from the command line: genlab fit normal --data heights --out runs/h, then "
        'genlab prob runs/h "x <= 160".',
        "コマンドラインでは genlab fit normal --data heights --out runs/h と "
        'genlab prob runs/h "x <= 160" で同じことができます。',
    )
    page.code(fit_heights, call=f"model, x, numbers = fit_heights({data!r})\nprint(numbers)")
    page.tests("tests/test_course.py::test_step2_probabilities_match_scipy")
