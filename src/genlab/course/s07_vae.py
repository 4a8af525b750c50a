"""Step 7: the VAE: the ELBO, the reparameterization trick, samples and reconstructions."""

from __future__ import annotations

import numpy as np

from .common import image_data, loss_figure, quick_batch, shown_batch, train_briefly


def train_vae(train, steps=800, reduction="sum", seed=0, batch=128):
    """A VAE with an 8-dimensional latent and a Bernoulli decoder, trained on the ELBO."""
    import torch

    from genlab.models.vae import VAE

    torch.manual_seed(seed)  # the initial weights too: the same seed, the same model
    model = VAE(train.shape, latent_dim=8, likelihood="bernoulli", reduction=reduction)
    losses = train_briefly(model, train, steps=steps, lr=2e-3, seed=seed, batch=batch)
    return model, losses


def kl_check(model, x, draws=4096, seed=0):
    """KL(q(z|x) || N(0, I)) of one image: the closed form the loss uses, and a Monte
    Carlo estimate E_q[log q(z|x) - log p(z)] from reparameterized draws."""
    import torch

    with torch.no_grad():
        mu, log_var = model.encode(torch.as_tensor(x[:1]))
        std = (0.5 * log_var).exp()
        closed = 0.5 * (mu**2 + log_var.exp() - 1 - log_var).sum()
        g = torch.Generator().manual_seed(seed)
        z = mu + std * torch.randn((draws, mu.shape[1]), generator=g)  # reparameterization
        log_q = torch.distributions.Normal(mu, std).log_prob(z).sum(1)
        log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    return float(closed), float((log_q - log_p).mean())


def oracle(numbers, options):
    """The KL term: Monte Carlo against the closed form the loss uses; the ELBO is the
    reconstruction term minus the KL term (an untrained VAE on the held-out images)."""
    import torch

    from genlab.course.common import compare, image_data
    from genlab.models.vae import VAE

    closed = numbers["kl_closed"]
    _, test = image_data(options.data)
    model = VAE(test.shape, latent_dim=8, likelihood="bernoulli")
    x = torch.as_tensor(test.x[:64])
    with torch.no_grad():
        rec, kl = model.elbo_terms(x, torch.Generator().manual_seed(0))
        elbo = model.elbo(test.x[:64], seed=0)
    return [
        compare("KL: Monte Carlo against closed form", numbers["kl_monte_carlo"], closed,
                0.1 + 0.05 * closed),
        compare("ELBO against rec - KL, largest gap", float((elbo - (rec - kl)).abs().max()),
                0.0, 1e-3),
    ]  # fmt: skip


def run(page, options) -> None:
    from ..viz.plots import image_grid

    page.say(
        "A VAE is a latent-variable model $p_\\theta(\\mathbf{x}\\mid\\mathbf{z})p(\\mathbf{z})$ "
        "with a neural network as decoder. Its likelihood is an intractable integral over "
        "$\\mathbf{z}$, so an encoder $q_\\phi(\\mathbf{z}\\mid\\mathbf{x})$ approximates the "
        "posterior and both are trained on the evidence lower bound (ELBO):",
        "VAE はデコーダをニューラルネットワークとする潜在変数モデル "
        "$p_\\theta(\\mathbf{x}\\mid\\mathbf{z})p(\\mathbf{z})$ です。尤度は $\\mathbf{z}$ "
        "についての計算できない積分なので、エンコーダ $q_\\phi(\\mathbf{z}\\mid\\mathbf{x})$ で"
        "事後分布を近似し、両者を変分下界（ELBO）の最大化で学習します。",
    )
    page.math(
        r"\log p_\theta(\mathbf{x})\ge\mathbb{E}_{q_\phi(\mathbf{z}\mid\mathbf{x})}"
        r"\left[\log p_\theta(\mathbf{x}\mid\mathbf{z})\right]-D_{\mathrm{KL}}"
        r"\left(q_\phi(\mathbf{z}\mid\mathbf{x})\,\|\,\mathcal{N}(\mathbf{0},\mathbf{I})\right)",
        r"D_{\mathrm{KL}}=\frac{1}{2}\sum_{j}\left(\mu_j^2+\sigma_j^2-1-\log\sigma_j^2\right)",
    )
    page.say(
        "The expectation is estimated with one draw of $\\mathbf{z}$, written so that the "
        "gradient reaches the encoder: the reparameterization trick.",
        "期待値は $\\mathbf{z}$ を 1 回サンプリングして推定します。勾配がエンコーダに届くよう、"
        "次のように書き換えます（変数変換トリック、reparameterization trick）。",
    )
    page.math(
        r"\mathbf{z}=\boldsymbol{\mu}_\phi(\mathbf{x})+\boldsymbol{\sigma}_\phi(\mathbf{x})"
        r"\odot\boldsymbol{\epsilon},\qquad\boldsymbol{\epsilon}\sim\mathcal{N}(\mathbf{0},\mathbf{I})"
    )
    page.switch(
        "--elbo-reduction sum|mean",
        "The ELBO sums log p(x|z) over pixels and the KL over latent dimensions ('sum', the "
        "default, as the math above). Code that calls mse_loss or binary_cross_entropy with "
        "their default 'mean' reduction averages each term instead ('mean'): that weighs the "
        "KL (pixels / latent dims) times more, a different objective that blurs samples.",
        "ELBO では log p(x|z) を画素について、KL を潜在次元について足し合わせます（'sum'、既定。"
        "上の式のとおり）。mse_loss や binary_cross_entropy を既定の 'mean' で呼ぶコードでは"
        "それぞれが平均になります（'mean'）。これは KL を（画素数 / 潜在次元数）倍重く扱うことに"
        "なり、別の目的関数です（生成画像がぼやけます）。",
    )
    train, test = image_data(options.data)
    steps = 100 if options.quick else 800  # quick: a rough model in a few CPU-seconds
    batch = quick_batch(options)
    model, losses = train_vae(train, steps, options.elbo_reduction, options.seed, batch)
    x_test = test.x[:512]
    elbo = model.elbo(x_test).numpy()
    closed, mc = kl_check(model, x_test, seed=options.seed)
    page.figure(
        loss_figure(losses, "negative ELBO"),
        "loss.png",
        f"The training loss ({steps} steps of {batch} images)",
        f"学習中の損失（{batch} 枚のバッチで {steps} ステップ）",
    )
    page.figure(
        image_grid(model.sample(64, seed=options.seed).numpy(), nrow=8),
        "samples.png",
        "Samples: z ~ N(0, I), decoded",
        "生成画像：z ~ N(0, I) をデコード",
    )
    recon = np.concatenate([x_test[:8], model.reconstruct(x_test[:8]).numpy()])
    page.figure(
        image_grid(recon, nrow=8),
        "reconstructions.png",
        "Held-out images (top) and their reconstructions",
        "学習に使っていない画像（上）と再構成",
    )
    page.table(
        [
            (
                "elbo_heldout",
                "ELBO on held-out images (nats per image)",
                "未学習画像での ELBO（1 枚あたり nats）",
                float(elbo.mean()),
            ),
            (
                "kl_closed",
                "KL of one image's q(z|x), closed form",
                "1 枚の q(z|x) の KL、解析解",
                closed,
            ),
            (
                "kl_monte_carlo",
                "the same, Monte Carlo (4,096 reparameterized draws)",
                "同じ量のモンテカルロ推定（再パラメータ化した 4,096 点）",
                mc,
            ),
            ("train_steps", "training steps", "学習ステップ数", steps),
        ]
    )
    page.code(
        train_vae,
        kl_check,
        call="from genlab.course.common import image_data, train_briefly\n"
        f"train, test = image_data(None)\nmodel, losses = "
        f"train_vae(train, steps={steps}, reduction={options.elbo_reduction!r}"
        f"{shown_batch(batch)})\n"
        "print(model.elbo(test.x[:512]).mean(), kl_check(model, test.x))",
    )
    page.tests("tests/test_course.py::test_step7_vae_elbo_and_kl")
