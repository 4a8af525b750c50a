"""Appendix: the two-level hierarchical VAE."""

from __future__ import annotations

from .common import image_data, loss_figure, quick_batch, shown_batch, train_briefly


def train_hvae(train, steps=800, seed=0, batch=128):
    """A two-level hierarchical VAE, x <- z1 <- z2, trained on its ELBO."""
    import torch

    from genlab.models.hvae import HVAE

    torch.manual_seed(seed)  # the initial weights too: the same seed, the same model
    model = HVAE(train.shape)
    losses = train_briefly(model, train, steps=steps, lr=2e-3, seed=seed, batch=batch)
    return model, losses


def oracle(numbers, options):
    """The ELBO is the reconstruction term minus both KL terms, and the top KL (closed form,
    to N(0, I)) is never negative (an untrained model on the held-out images)."""
    import torch

    from genlab.course.common import compare, image_data
    from genlab.models.hvae import HVAE

    _, test = image_data(options.data)
    model = HVAE(test.shape)
    with torch.no_grad():
        terms = model.elbo_terms(torch.as_tensor(test.x[:64]), torch.Generator().manual_seed(0))
        elbo = model.elbo(test.x[:64], seed=0)
    gap = (elbo - (terms["rec"] - terms["kl1"] - terms["kl2"])).abs().max()
    return [
        compare("ELBO against rec - KL1 - KL2, largest gap", float(gap), 0.0, 1e-3),
        compare("smallest KL2 (never below 0; shortfall against 0)",
                min(float(terms["kl2"].min()), 0.0), 0.0, 0.0),
    ]  # fmt: skip


def run(page, options) -> None:
    import torch

    from ..viz.plots import image_grid

    page.say(
        "A hierarchical VAE stacks latent variables: $\\mathbf{z}_2$ from the prior, "
        "$\\mathbf{z}_1$ from $\\mathbf{z}_2$, the image from $\\mathbf{z}_1$. The encoder "
        "goes the other way. The ELBO then has one reconstruction term and one KL term per "
        "level:",
        "階層型 VAE は潜在変数を積み重ねます。事前分布から $\\mathbf{z}_2$、$\\mathbf{z}_2$ "
        "から $\\mathbf{z}_1$、$\\mathbf{z}_1$ から画像を生成し、エンコーダは逆向きにたどります。"
        "ELBO は再構成の項と、階層ごとに 1 つの KL 項からなります。",
    )
    page.math(
        r"p(\mathbf{x},\mathbf{z}_1,\mathbf{z}_2)=p(\mathbf{x}\mid\mathbf{z}_1)\,p(\mathbf{z}_1"
        r"\mid\mathbf{z}_2)\,p(\mathbf{z}_2),\qquad q(\mathbf{z}_1,\mathbf{z}_2\mid\mathbf{x})="
        r"q(\mathbf{z}_1\mid\mathbf{x})\,q(\mathbf{z}_2\mid\mathbf{z}_1)",
        r"\mathrm{ELBO}=\mathbb{E}_q\left[\log p(\mathbf{x}\mid\mathbf{z}_1)\right]-\mathbb{E}_q"
        r"\left[D_{\mathrm{KL}}\left(q(\mathbf{z}_1\mid\mathbf{x})\,\|\,p(\mathbf{z}_1\mid\mathbf{z}_2)"
        r"\right)\right]-\mathbb{E}_q\left[D_{\mathrm{KL}}\left(q(\mathbf{z}_2\mid\mathbf{z}_1)\,\|\,"
        r"p(\mathbf{z}_2)\right)\right]",
    )
    page.say(
        "This is the bridge to diffusion models: a diffusion model is a hierarchical VAE with "
        "$T$ levels whose encoder is fixed (the forward process) and whose latents have the "
        "size of the data.",
        "これは拡散モデルへの橋渡しです。拡散モデルは、エンコーダが固定（拡散過程）で潜在変数が"
        "データと同じ大きさの、$T$ 階層の階層型 VAE とみなせます。",
    )
    train, test = image_data(options.data)
    steps = 100 if options.quick else 800  # quick: a rough model in a few CPU-seconds
    batch = quick_batch(options)
    model, losses = train_hvae(train, steps, options.seed, batch)
    with torch.no_grad():
        terms = model.elbo_terms(torch.as_tensor(test.x[:512]), torch.Generator().manual_seed(0))
    terms = {k: float(v.mean()) for k, v in terms.items()}
    page.figure(
        loss_figure(losses, "negative ELBO"),
        "loss.png",
        f"The training loss ({steps} steps of {batch} images)",
        f"学習中の損失（{batch} 枚のバッチで {steps} ステップ）",
    )
    page.figure(
        image_grid(model.sample(64, seed=options.seed).numpy(), nrow=8),
        "samples.png",
        "Samples: z2 ~ N(0, I), then z1, then the image",
        "生成画像：z2 ~ N(0, I) から z1、そして画像",
    )
    elbo = float(model.elbo(test.x[:512]).mean())
    page.table(
        [
            (f"term_{k}", f"held-out mean of '{k}'", f"未学習画像での「{k}」の平均", v)
            for k, v in terms.items()
        ]
        + [
            (
                "elbo_heldout",
                "held-out ELBO (nats per image)",
                "未学習画像での ELBO（1 枚あたり nats）",
                elbo,
            ),
            ("train_steps", "training steps", "学習ステップ数", steps),
        ]
    )
    page.code(
        train_hvae,
        call="from genlab.course.common import image_data, train_briefly\n"
        f"train, test = image_data(None)\nmodel, losses = train_hvae(train, steps={steps}"
        f"{shown_batch(batch)})\n"
        "print(model.elbo(test.x[:512]).mean())",
    )
    page.tests("tests/test_course.py::test_appendix_hvae_elbo_terms")
