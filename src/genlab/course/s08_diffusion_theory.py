"""Step 8: the forward process q(x_t | x_0) and the posterior q(x_{t-1} | x_t, x_0), each
checked numerically."""

from __future__ import annotations

import numpy as np

from ..viz.plots import noising, subplots


def iterate_noising(x0, steps, base=1, n=20_000, seed=0):
    """Push n copies of x0 through q(x_t | x_{t-1}) one step at a time, t = base ..
    base + steps - 1; returns the draws after every step."""
    import torch

    from genlab.diffusion.forward import q_step
    from genlab.diffusion.schedules import alpha_bar

    ab = alpha_bar("linear", 1000)
    g = torch.Generator().manual_seed(seed)
    x = torch.full((n,), float(x0), dtype=torch.float64)
    out = []
    for t in range(base, base + steps):
        x = q_step(x, t, ab.double(), generator=g, base=base)
        out.append(x.clone())
    return torch.stack(out).numpy(), ab.double().numpy()


def posterior_by_bayes(x_t, x0, t, ab, base=1):
    """q(x_{t-1} | x_t, x_0) on a grid by Bayes' rule, q(x_t | x_{t-1}) q(x_{t-1} | x_0)
    normalised numerically; returns its mean and variance."""
    i = t - base  # the index of t into alpha_bar
    beta = 1 - ab[i] / ab[i - 1]
    grid = np.linspace(-6, 6, 200_001)
    log_w = -((x_t - np.sqrt(1 - beta) * grid) ** 2) / (2 * beta)
    log_w -= (grid - np.sqrt(ab[i - 1]) * x0) ** 2 / (2 * (1 - ab[i - 1]))
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    mean = float((w * grid).sum())
    return mean, float((w * (grid - mean) ** 2).sum())


def oracle(numbers, options):
    """q(x_t | x_0): the iterated draws against the closed form (5 standard errors of 20,000
    draws; variance within 5 %); q(x_{t-1} | x_t, x_0): the closed form against Bayes' rule
    on a grid."""
    from genlab.course.common import compare

    checks = []
    for t in (10, 100, 500, 1000):
        var = numbers[f"closed_var_{t}"]
        checks += [
            compare(f"t = {t}: mean of the iterated draws against the closed form",
                    numbers[f"iterated_mean_{t}"], numbers[f"closed_mean_{t}"],
                    5 * np.sqrt(var / 20_000)),
            compare(f"t = {t}: their variance over the closed form's, against 1",
                    numbers[f"iterated_var_{t}"] / var, 1.0, 0.05),
        ]  # fmt: skip
    for t in (2, 100, 500):
        checks += [
            compare(f"t = {t}: posterior mean against Bayes' rule on a grid",
                    numbers[f"posterior_mean_{t}"], numbers[f"bayes_mean_{t}"], 1e-7),
            compare(f"t = {t}: posterior variance over Bayes' rule's, against 1",
                    numbers[f"posterior_var_{t}"] / numbers[f"bayes_var_{t}"], 1.0, 1e-4),
        ]  # fmt: skip
    return checks


def run(page, options) -> None:
    import torch

    from ..diffusion.forward import q_posterior
    from ..diffusion.schedules import alpha_bar
    from .common import image_data

    base = options.t_base
    page.say(
        "A diffusion model's forward process adds a little Gaussian noise at each of $T$ "
        "steps, with a schedule $\\beta_t$ (here linear from $10^{-4}$ to 0.02, $T=1000$), "
        "until nothing of the data is left:",
        "拡散モデルの拡散過程は、$T$ ステップの各ステップで少しずつガウスノイズを加え、"
        "最後にはデータの情報が何も残らなくなります。ノイズの大きさはスケジュール $\\beta_t$ "
        "で決まります（ここでは $10^{-4}$ から 0.02 への線形、$T=1000$）。",
    )
    page.math(
        r"q(\mathbf{x}_t\mid\mathbf{x}_{t-1})=\mathcal{N}\left(\sqrt{1-\beta_t}\,"
        r"\mathbf{x}_{t-1},\ \beta_t\mathbf{I}\right)"
    )
    page.say(
        "Because Gaussians compose, any $\\mathbf{x}_t$ can be drawn from $\\mathbf{x}_0$ in "
        "one step, with $\\alpha_t=1-\\beta_t$ and $\\bar\\alpha_t=\\prod_{s\\le t}\\alpha_s$:",
        "ガウス分布は合成してもガウス分布なので、$\\alpha_t=1-\\beta_t$、"
        "$\\bar\\alpha_t=\\prod_{s\\le t}\\alpha_s$ とおくと、任意の $\\mathbf{x}_t$ を "
        "$\\mathbf{x}_0$ から 1 回でサンプリングできます。",
    )
    page.math(
        r"q(\mathbf{x}_t\mid\mathbf{x}_0)=\mathcal{N}\left(\sqrt{\bar\alpha_t}\,\mathbf{x}_0,"
        r"\ (1-\bar\alpha_t)\mathbf{I}\right)"
    )
    page.switch(
        "--t-base 1|0",
        "Texts number the steps differently: the DDPM paper and many textbooks use t = 1..T "
        "(1, the default), diffusers and much code t = 0..T-1 (0). The noise levels are the "
        "same; only their labels shift by one. genlab's forward-process functions take "
        f"base= for this. This page uses t = {base}..{999 + base}.",
        "テキストによってステップの番号の付け方が違います。DDPM の論文や多くの教科書は t = 1..T"
        "（1、既定）、diffusers や多くのコードは t = 0..T-1（0）です。ノイズの大きさは同じで、"
        "番号が 1 つずれるだけです。genlab の拡散過程の関数は base= でこれを指定します。"
        f"このページは t = {base}..{999 + base} を使います。",
    )
    train, _ = image_data(None)
    ab = alpha_bar("linear", 1000)
    shown = [0, 50, 100, 200, 400, 600, 800, 1000]
    page.figure(
        noising(train.x[:6], ab, steps=shown),
        "noising.png",
        "Digits noised by q(x_t | x_0) at t = 0, 50, 100, 200, 400, 600, 800, 1000 (1-based)",
        "q(x_t | x_0) でノイズを加えた数字（t = 0, 50, …, 1000、1 始まり）",
    )

    page.heading(
        "Checked: one step at a time equals the closed form",
        "検証：1 ステップずつ加えても閉じた式と一致する",
    )
    x0 = 1.5
    draws, ab64 = iterate_noising(x0, 1000, base=base, seed=options.seed)
    fig, axes = subplots(1, 4, figsize=(13, 3))
    rows = []
    for ax, level in zip(axes, (10, 100, 500, 1000), strict=True):
        x = draws[level - 1]
        mean, var = np.sqrt(ab64[level - 1]) * x0, 1 - ab64[level - 1]
        grid = np.linspace(x.min(), x.max(), 200)
        ax.hist(x, bins=60, density=True, alpha=0.5)
        ax.plot(grid, np.exp(-((grid - mean) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var), "r")
        ax.set(title=f"t = {level - 1 + base}")
        rows += [
            (
                f"iterated_mean_{level}",
                f"t = {level - 1 + base}: mean of 20,000 iterated draws",
                f"t = {level - 1 + base}：逐次ノイズ 2 万点の平均",
                float(x.mean()),
            ),
            (
                f"closed_mean_{level}",
                "closed form sqrt(alpha_bar_t) x_0",
                "閉じた式 √ᾱ_t x_0",
                float(mean),
            ),
            (
                f"iterated_var_{level}",
                "variance of the iterated draws",
                "逐次ノイズの分散",
                float(x.var()),
            ),
            (f"closed_var_{level}", "closed form 1 - alpha_bar_t", "閉じた式 1 − ᾱ_t", float(var)),
        ]
    fig.tight_layout()
    page.figure(
        fig,
        "iterated.png",
        f"x_0 = {x0} noised step by step (histograms) against q(x_t | x_0) (red)",
        f"x_0 = {x0} に 1 ステップずつノイズを加えた分布（ヒストグラム）と q(x_t | x_0)（赤）",
    )
    page.table(rows)

    page.heading("The posterior q(x_{t-1} | x_t, x_0)", "事後分布 q(x_{t-1} | x_t, x_0)")
    page.say(
        "Given $\\mathbf{x}_0$, the step back is Gaussian too, by Bayes' rule. The reverse "
        "model $p_\\theta(\\mathbf{x}_{t-1}\\mid\\mathbf{x}_t)$ is trained to match it; the "
        "ELBO of a diffusion model is a sum of KL divergences to it:",
        "$\\mathbf{x}_0$ が与えられれば、1 ステップ戻る分布もベイズの定理によりガウス分布です。"
        "逆過程のモデル $p_\\theta(\\mathbf{x}_{t-1}\\mid\\mathbf{x}_t)$ はこれに近づくよう学習"
        "され、拡散モデルの ELBO はこの分布との KL ダイバージェンスの和になります。",
    )
    page.math(
        r"q(\mathbf{x}_{t-1}\mid\mathbf{x}_t,\mathbf{x}_0)=\mathcal{N}\left(\tilde{\boldsymbol{\mu}}_t,"
        r"\tilde\beta_t\mathbf{I}\right),\quad\tilde{\boldsymbol{\mu}}_t=\frac{\sqrt{\bar\alpha_{t-1}}"
        r"\beta_t}{1-\bar\alpha_t}\mathbf{x}_0+\frac{\sqrt{\alpha_t}(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}"
        r"\mathbf{x}_t,\quad\tilde\beta_t=\frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t"
    )
    rows = []
    for level in (2, 100, 500):
        t, x_t = level - 1 + base, 0.7
        mean, var = q_posterior(
            torch.tensor(x_t, dtype=torch.float64),
            torch.tensor(x0, dtype=torch.float64),
            t,
            ab.double(),
            base=base,
        )
        b_mean, b_var = posterior_by_bayes(x_t, x0, t, ab64, base=base)
        rows += [
            (
                f"posterior_mean_{level}",
                f"t = {t}: closed-form mean (x_t = 0.7, x_0 = 1.5)",
                f"t = {t}：平均の閉じた式（x_t = 0.7、x_0 = 1.5）",
                float(mean),
            ),
            (
                f"bayes_mean_{level}",
                "mean by Bayes' rule on a grid",
                "格子上でベイズの定理から求めた平均",
                b_mean,
            ),
            (f"posterior_var_{level}", "closed-form variance", "分散の閉じた式", float(var)),
            (
                f"bayes_var_{level}",
                "variance by Bayes' rule on a grid",
                "格子上で求めた分散",
                b_var,
            ),
        ]
    page.table(rows)
    page.code(
        iterate_noising,
        posterior_by_bayes,
        call=f"draws, ab = iterate_noising(1.5, 1000, base={base})\n"
        "print(draws[99].mean(), np.sqrt(ab[99]) * 1.5)\n"
        f"print(posterior_by_bayes(0.7, 1.5, {99 + base}, ab, base={base}))",
    )
    page.tests("tests/test_course.py::test_step8_forward_and_posterior")
