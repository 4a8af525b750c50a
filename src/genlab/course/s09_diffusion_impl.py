"""Step 9: the U-Net with its sinusoidal time embedding, noise prediction, DDPM training and
1000-step sampling."""

from __future__ import annotations

import numpy as np

from .common import image_data, loss_figure, quick_batch, shown_batch, train_briefly

RETRAIN = "genlab train ddpm-digits --out runs/ddpm-digits"


def train_ddpm(train, steps=250, seed=0, batch=128):
    """A small unconditional DDPM (U-Net widths 16, 32, 32; eps prediction, linear
    schedule, T = 1000) trained for a few hundred steps."""
    import torch

    from genlab.models.diffusion import DDPM

    torch.manual_seed(seed)  # the initial weights too: the same seed, the same model
    model = DDPM(train.shape, channels=(16, 32, 32), attention=False)
    losses = train_briefly(model, train, steps=steps, lr=2e-3, seed=seed, batch=batch)
    return model, losses


def sample_ddpm(model, n=32, steps=1000, variance="posterior", seed=0):
    """Ancestral sampling through `steps` of the 1000 levels (all of them by default):
    x_T ~ N(0, I), then x_{t-1} from p(x_{t-1} | x_t) down to x_0."""
    return model.sample(n, sampler="ddpm", steps=steps, variance=variance, seed=seed)


def oracle(numbers, options):
    """Before training the U-Net predicts no noise (its last layer starts at zero), so the
    loss is the noise's variance, 1; training lowers it."""
    import torch

    from genlab.course.common import compare, image_data
    from genlab.diffusion.losses import diffusion_loss
    from genlab.models.diffusion import DDPM

    train, _ = image_data(options.data)
    untrained = DDPM(train.shape, channels=(16, 32, 32), attention=False)
    torch.manual_seed(0)
    with torch.no_grad():
        loss = float(diffusion_loss(untrained.net, torch.as_tensor(train.x[:256])).mean())
    return [
        compare("untrained loss against 1 (E[eps^2])", loss, 1.0, 0.03),
        compare("final loss below the untrained loss (shortfall against 0)",
                max(numbers["final_loss"] - loss, 0.0), 0.0, 0.0),
    ]  # fmt: skip


def run(page, options) -> None:
    import torch

    from ..assets import card, load_shipped
    from ..nn.unet import sinusoidal_embedding
    from ..viz.plots import image_grid, subplots

    page.say(
        "The reverse process $p_\\theta(\\mathbf{x}_{t-1}\\mid\\mathbf{x}_t)$ is a Gaussian "
        "whose mean comes from a network that predicts the noise $\\boldsymbol\\epsilon$ in "
        "$\\mathbf{x}_t$. Simplified, the ELBO becomes a regression on that noise:",
        "逆過程 $p_\\theta(\\mathbf{x}_{t-1}\\mid\\mathbf{x}_t)$ はガウス分布で、その平均は "
        "$\\mathbf{x}_t$ に含まれるノイズ $\\boldsymbol\\epsilon$ を予測するネットワークから"
        "求めます。ELBO を簡略化すると、そのノイズの回帰問題になります。",
    )
    page.math(
        r"L(\theta)=\mathbb{E}_{\mathbf{x}_0,\,t,\,\boldsymbol\epsilon}\left\|\boldsymbol\epsilon-"
        r"\boldsymbol\epsilon_\theta\left(\sqrt{\bar\alpha_t}\,\mathbf{x}_0+\sqrt{1-\bar\alpha_t}\,"
        r"\boldsymbol\epsilon,\ t\right)\right\|^2",
        r"\mathbf{x}_{t-1}=\frac{1}{\sqrt{\alpha_t}}\left(\mathbf{x}_t-\frac{\beta_t}{\sqrt{1-"
        r"\bar\alpha_t}}\boldsymbol\epsilon_\theta(\mathbf{x}_t,t)\right)+\sigma_t\mathbf{z},"
        r"\qquad\mathbf{z}\sim\mathcal{N}(\mathbf{0},\mathbf{I})",
    )
    page.switch(
        "--reverse-variance posterior|beta",
        "The variance of the reverse step differs between texts: sigma_t^2 = beta_tilde_t, the "
        "posterior's (posterior, the default), or sigma_t^2 = beta_t (beta, as in the DDPM "
        "paper's Algorithm 2). The paper found both give similar samples.",
        "逆過程の 1 ステップの分散はテキストによって異なります。sigma_t^2 = 事後分布の "
        "beta_tilde_t（posterior、既定）または sigma_t^2 = beta_t（beta、DDPM 論文の "
        "Algorithm 2）。論文ではどちらも同程度の画像になると報告されています。",
    )
    page.heading(
        "The U-Net and the sinusoidal time embedding", "U-Net と正弦波による時刻の埋め込み"
    )
    page.say(
        "The network is a U-Net: convolutions that halve the resolution, then double it "
        "back, with skip connections between matching levels. It must know $t$: the step "
        "is encoded as sines and cosines of geometrically spaced frequencies (the "
        "Transformer's position encoding), passed through an MLP and added inside each block.",
        "ネットワークは U-Net です。畳み込みで解像度を半分にしていき、再び 2 倍に戻します。"
        "同じ解像度の層どうしはスキップ接続でつながります。ネットワークは $t$ を知る必要があり、"
        "時刻を幾何級数的な周波数の正弦・余弦（Transformer の位置エンコーディング）で表し、"
        "MLP を通して各ブロックに加えます。",
    )
    page.math(
        r"\mathrm{PE}(t)_{2i}=\cos\left(t/10000^{2i/d}\right),\quad"
        r"\mathrm{PE}(t)_{2i+1}=\sin\left(t/10000^{2i/d}\right)"
    )
    emb = sinusoidal_embedding(torch.arange(1, 1001), 64).numpy()
    fig, ax = subplots(figsize=(7, 3.5))
    ax.imshow(emb.T, aspect="auto", cmap="RdBu", extent=(1, 1000, 64, 0))
    ax.set(xlabel="t", ylabel="embedding dimension")
    fig.tight_layout()
    page.figure(
        fig,
        "time_embedding.png",
        "The 64-dimensional sinusoidal embedding of t = 1..1000",
        "t = 1..1000 の 64 次元の正弦波埋め込み",
    )

    train, _ = image_data(options.data)
    page.heading("Noising an image", "画像へのノイズ付加")
    page.say(
        "Training draws a random step t for each image and noises it in one go with "
        "q(x_t | x_0); the network sees the noisy image and t, and predicts the noise.",
        "学習では画像ごとにステップ t をランダムに選び、q(x_t | x_0) で一度にノイズを加えます。"
        "ネットワークはノイズの乗った画像と t を受け取り、加えたノイズを予測します。",
    )
    from ..diffusion.schedules import alpha_bar
    from ..viz.plots import noising

    page.figure(
        noising(
            train.x[:1], alpha_bar("linear", 1000), steps=(0, 10, 50, 100, 250, 500, 750, 1000)
        ),
        "noising.png",
        "One training image at t = 0, 10, 50, 100, 250, 500, 750, 1000",
        "学習画像 1 枚の t = 0, 10, 50, 100, 250, 500, 750, 1000 での様子",
    )
    steps = 100 if options.quick else 250
    batch = quick_batch(options)
    model, losses = train_ddpm(train, steps, options.seed, batch)
    params = sum(p.numel() for p in model.net.parameters())
    page.heading("Training", "学習")
    page.figure(
        loss_figure(losses, "noise-prediction MSE"),
        "loss.png",
        f"The loss of a small U-Net ({params:,} parameters), {steps} steps of {batch} images",
        f"小さな U-Net（パラメータ {params:,} 個）の損失、{batch} 枚のバッチで {steps} ステップ",
    )
    n = 8 if options.quick else 16
    # quick: 100 ancestral steps over every tenth level (the full page walks all 1000)
    k = 100 if options.quick else 1000
    brief = sample_ddpm(model, n, k, options.reverse_variance, options.seed)
    page.figure(
        image_grid(brief.numpy(), nrow=8),
        "samples_brief.png",
        f"{k}-step samples after {steps} training steps",
        f"{steps} ステップ学習後の {k} ステップのサンプリング",
    )
    shipped = load_shipped("ddpm-digits")
    info = card("ddpm-digits")
    page.say(
        f"A few hundred steps are not enough. genlab ships the ddpm-digits recipe trained "
        f"for {info['steps']} steps ({info['training_seconds'] / 60:.0f} minutes on 2 CPU "
        f"cores); retrain it with: {RETRAIN}. Its samples, the same sampler:",
        f"数百ステップでは足りません。genlab には ddpm-digits のレシピで {info['steps']} "
        f"ステップ（2 コアの CPU で {info['training_seconds'] / 60:.0f} 分）学習した重みが"
        f"同梱されています。再学習するには：{RETRAIN}。同じサンプラーでの生成結果：",
    )
    full = sample_ddpm(shipped, n, k, options.reverse_variance, options.seed)
    page.figure(
        image_grid(full.numpy(), nrow=8),
        "samples_shipped.png",
        f"{k}-step samples of the shipped model",
        f"同梱モデルによる {k} ステップのサンプリング",
    )
    page.table(
        [
            (
                "first_loss",
                "loss after 10 steps (before training: 1, the noise's variance)",
                "10 ステップ後の損失（学習前は 1、ノイズの分散）",
                float(losses[0]),
            ),
            (
                "final_loss",
                "loss at the end (mean of the last 3 readings)",
                "最後の損失（最後の 3 回の平均）",
                float(np.mean(losses[-3:])),
            ),
            (
                "unet_parameters",
                "parameters of the small U-Net",
                "小さな U-Net のパラメータ数",
                params,
            ),
            (
                "shipped_parameters",
                "parameters of the shipped U-Net",
                "同梱の U-Net のパラメータ数",
                sum(p.numel() for p in shipped.net.parameters()),
            ),
            (
                "sample_std",
                "standard deviation of the shipped model's samples",
                "同梱モデルのサンプルの標準偏差",
                float(full.std()),
            ),
            (
                "data_std",
                "standard deviation of the data",
                "データの標準偏差",
                float(train.x.std()),
            ),
        ]
    )
    # quick: the code samples as the page did; the full page's code keeps 32 of 1000 steps
    sample_args = f"n={n}, steps={k}" if options.quick else "n=32"
    page.code(
        train_ddpm,
        sample_ddpm,
        call="from genlab.course.common import image_data, train_briefly\n"
        f"train, _ = image_data(None)\nmodel, losses = train_ddpm(train, steps={steps}"
        f"{shown_batch(batch)})\n"
        f"images = sample_ddpm(model, {sample_args})",
    )
    page.tests(
        "tests/test_course.py::test_step9_training_lowers_the_loss",
        "tests/test_samplers_vs_diffusers.py (the samplers against diffusers' schedulers)",
    )
