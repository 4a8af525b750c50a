"""Step 4: sampling from a Gaussian mixture; the multimodal Old Faithful data."""

from __future__ import annotations

import numpy as np

from ..viz.plots import subplots

# A two-component mixture in the units of Old Faithful (eruption minutes, waiting minutes).
PHI = np.array([0.35, 0.65])
MUS = np.array([[2.0, 54.5], [4.3, 80.0]])
COVS = np.array([[[0.07, 0.44], [0.44, 33.7]], [[0.17, 0.94], [0.94, 36.0]]])


def sample_mixture(n, phi, mus, covs, seed=0):
    """Ancestral sampling: first the component z ~ Categorical(phi), then x ~ N(mu_z, Sigma_z)."""
    rng = np.random.default_rng(seed)
    z = rng.choice(len(phi), size=n, p=phi)
    x = np.stack([rng.multivariate_normal(mus[k], covs[k]) for k in z])
    return x, z


def oracle(numbers, options):
    """The share of samples from component 1 against phi_1, and the sample mean against the
    mixture mean, each within 4 standard errors of 500 draws."""
    from genlab.course.common import compare
    from genlab.course.s04_mixture import COVS, MUS, PHI

    phi, mus, covs = PHI, MUS, COVS
    mean = phi @ mus
    # the mixture's variance of x1: E[var] + var of the component means
    var = phi @ covs[:, 0, 0] + phi @ (mus[:, 0] - mean[0]) ** 2
    return [
        compare("share from component 1 against phi_1", numbers["share_1"], phi[0],
                4 * np.sqrt(phi[0] * phi[1] / 500)),
        compare("sample mean of x1 against sum of phi_k mu_k", numbers["mean_x1"], mean[0],
                4 * np.sqrt(var / 500)),
    ]  # fmt: skip


def run(page, options) -> None:
    from ..data import load_spec
    from ..errors import DataError

    page.say(
        "A Gaussian mixture model draws a point in two stages: a component $z$ with "
        "probability $\\phi_z$, then a normal with that component's mean and covariance. "
        "Summing the latent $z$ out gives a density with several peaks:",
        "混合ガウスモデルは 2 段階でデータを生成します。まず確率 $\\phi_z$ で成分 $z$ を選び、"
        "次にその成分の平均と共分散をもつ正規分布から点を生成します。潜在変数 $z$ について"
        "和をとると、山を複数もつ密度が得られます。",
    )
    page.math(
        r"z\sim\mathrm{Categorical}(\boldsymbol{\phi}),\qquad"
        r"\mathbf{x}\mid z\sim\mathcal{N}(\boldsymbol{\mu}_z,\boldsymbol{\Sigma}_z)",
        r"p(\mathbf{x})=\sum_{k=1}^{K}\phi_k\,\mathcal{N}(\mathbf{x};\boldsymbol{\mu}_k,\boldsymbol{\Sigma}_k)",
    )
    n = 500
    x, z = sample_mixture(n, PHI, MUS, COVS, seed=options.seed)
    fig, ax = subplots(figsize=(5.5, 4.5))
    ax.scatter(x[:, 0], x[:, 1], s=6, c=np.where(z == 0, "tab:blue", "tab:orange"))
    ax.set(xlabel="x1", ylabel="x2", title=f"{n} samples, coloured by component")
    fig.tight_layout()
    page.figure(
        fig,
        "samples.png",
        "Samples of a two-component mixture",
        "2 成分の混合ガウスモデルから生成した点",
    )
    mixture_mean = PHI @ MUS
    page.table(
        [
            (
                "share_1",
                "share of samples from component 1",
                "成分 1 から生成された割合",
                float(np.mean(z == 0)),
            ),
            ("phi_1", "phi_1", "φ_1", float(PHI[0])),
            ("mean_x1", "sample mean of x1", "x1 の標本平均", float(x[:, 0].mean())),
            (
                "mixture_mean_x1",
                "mixture mean of x1 (sum of phi_k mu_k)",
                "x1 の混合平均（Σ φ_k μ_k）",
                float(mixture_mean[0]),
            ),
        ]
    )

    data = options.data or "faithful"
    real = load_spec(data)
    if real.x.shape[1] != 2:
        raise DataError(f"Step 4 shows two columns of numbers; {data} has {real.x.shape[1]}.")
    page.heading("Real data with several peaks", "複数の山をもつ実データ")
    page.say(
        f"The {data} data ({len(real.x)} rows) are such a case: short eruptions follow short "
        "waits and long ones long waits, so the points form two clusters that one normal "
        "cannot describe. Step 5 fits a mixture to them with the EM algorithm.",
        f"{data} のデータ（{len(real.x)} 行）がその例です。短い噴出の前には短い待ち時間、"
        "長い噴出の前には長い待ち時間があり、点は 2 つの塊になります。1 つの正規分布では"
        "表せません。ステップ 5 で EM アルゴリズムにより混合モデルを当てはめます。",
    )
    names = real.columns or ["x1", "x2"]
    fig, axes = subplots(1, 3, figsize=(13, 3.8))
    axes[0].scatter(real.x[:, 0], real.x[:, 1], s=6)
    axes[0].set(xlabel=names[0], ylabel=names[1])
    for ax, col, name in zip(axes[1:], real.x.T, names, strict=True):
        ax.hist(col, bins=30)
        ax.set(xlabel=name)
    fig.tight_layout()
    page.figure(
        fig,
        "data.png",
        "The data and the histogram of each column",
        "データの散布図と各列のヒストグラム",
    )
    page.code(
        sample_mixture,
        call="phi = np.array([0.35, 0.65])\n"
        "mus = np.array([[2.0, 54.5], [4.3, 80.0]])\n"
        "covs = np.array([[[0.07, 0.44], [0.44, 33.7]], [[0.17, 0.94], [0.94, 36.0]]])\n"
        "x, z = sample_mixture(500, phi, mus, covs)",
    )
    page.tests("tests/test_course.py::test_step4_mixture_sampling")
