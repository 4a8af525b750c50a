"""Step 10: class-conditional diffusion, the score, classifier guidance, classifier-free
guidance, and genlab's latent text-to-image model."""

from __future__ import annotations

import numpy as np

RETRAIN = (
    "genlab train ddpm-digits --out runs/ddpm-digits; "
    "genlab train noisy-classifier-digits --out runs/noisy-classifier-digits"
)


def guided_samples(model, classifier=None, per_class=8, cfg=1.0, cg_scale=1.0, seed=0, steps=20):
    """`per_class` samples of each digit 0-9 (`steps` DPM++ 2M steps), with classifier-free
    guidance scale `cfg` (0: unconditional, 1: conditional) or, given a noise-aware
    classifier, classifier guidance of the unconditional model with scale `cg_scale`."""
    import torch

    rows = []
    for label in range(10):
        if classifier is None:
            x = model.sample(per_class, label=label, cfg=cfg, seed=seed + label, steps=steps)
        else:
            x = model.sample(
                per_class,
                label=label,
                cfg=0.0,
                classifier=classifier,
                cg_scale=cg_scale,
                seed=seed + label,
                steps=steps,
            )
        rows.append(x)
    return torch.cat(rows)


def accuracy(images, per_class=8):
    """The share of samples genlab's digit classifier reads as the class asked for."""
    from genlab.evaluation.features import digits_predict

    asked = np.repeat(np.arange(10), per_class)
    return float(np.mean(digits_predict(images) == asked))


def mixture_score(x, sigma, means, std=0.1):
    """The exact score of an equal mixture of N(mean_k, std^2 I) noised to level sigma, and
    the same by Tweedie's formula, (E[x_0 | x] - x) / sigma^2, from the posterior mean."""
    var = std**2 + sigma**2
    d2 = ((x[:, None, :] - means[None]) ** 2).sum(-1)
    w = np.exp(-(d2 - d2.min(1, keepdims=True)) / (2 * var))
    w /= w.sum(1, keepdims=True)  # p(k | x)
    score = (w[:, :, None] * (means[None] - x[:, None, :])).sum(1) / var
    x0_mean = (w[:, :, None] * (means[None] + std**2 / var * (x[:, None, :] - means[None]))).sum(1)
    return score, (x0_mean - x) / sigma**2


def oracle(numbers, options):
    """The score: Tweedie's formula against the exact score (the page), and the exact score
    against finite differences of the log-density; guidance reads as asked more often than
    unconditional sampling."""
    from genlab.course.common import compare

    means, std, sigma = np.array([[2.0, 0.0], [-1.0, 1.0], [0.0, -2.0]]), 0.1, 0.5
    pts = np.random.default_rng(0).normal(size=(50, 2))
    exact, _ = mixture_score(pts, sigma, means, std)

    def log_p(x):  # the noised mixture's log-density
        d2 = ((x[:, None, :] - means[None]) ** 2).sum(-1)
        return np.log(np.exp(-d2 / (2 * (std**2 + sigma**2))).mean(1))

    h = 1e-5
    fd = np.stack([(log_p(pts + h * e) - log_p(pts - h * e)) / (2 * h) for e in np.eye(2)], 1)
    return [
        compare("score: Tweedie against exact, largest gap", numbers["tweedie_max_abs_diff"],
                0.0, 1e-10),
        compare("score: exact against finite differences, largest gap",
                float(np.abs(exact - fd).max()), 0.0, 1e-5),
        compare("cfg w = 3 reads as asked more than w = 0 (shortfall against 0)",
                max(numbers["acc_cfg_0"] - numbers["acc_cfg_3"], 0.0), 0.0, 0.0),
    ]  # fmt: skip


def run(page, options) -> None:
    import torch

    from ..assets import load_shipped
    from ..conditioning import Condition
    from ..data import load
    from ..viz.plots import image_grid, score_field

    model = load_shipped("ddpm-digits")
    classifier = load_shipped("noisy-classifier-digits")
    # quick: 2 samples a class at 10 sampler steps (the full page: 8 at 20), rougher shares
    per_class, k = (2, 10) if options.quick else (8, 20)
    page.say(
        "genlab ships a class-conditional DDPM on 16x16 digits and a noise-aware classifier, "
        f"so this step samples at once; retrain them with: {RETRAIN}. The share of samples "
        "that genlab's digit classifier (a separate network, trained on clean digits) reads "
        "as the class asked for measures each method below.",
        "genlab には 16x16 の数字で学習したクラス条件付き DDPM とノイズを考慮した分類器が"
        f"同梱されているので、このステップはすぐにサンプリングできます。再学習するには：{RETRAIN}。"
        "以下の各手法は、genlab の数字分類器（きれいな数字で学習した別のネットワーク）が、"
        "指定したクラスとして読んだサンプルの割合で評価します。",
    )
    page.heading("Class-conditional diffusion", "条件付き拡散モデル")
    page.math(
        r"\boldsymbol\epsilon_\theta(\mathbf{x}_t,t,y):\quad"
        r"\text{the label }y\text{ is embedded and added to the time embedding}"
    )
    conditional = guided_samples(model, per_class=per_class, cfg=1.0, seed=options.seed, steps=k)
    page.figure(
        image_grid(conditional.numpy(), nrow=per_class),
        "conditional.png",
        "One row per label 0-9 (cfg = 1: plain conditional sampling)",
        "ラベル 0〜9 を 1 行ずつ（cfg = 1：普通の条件付きサンプリング）",
    )

    page.heading("The score", "スコア")
    page.say(
        "The score is the gradient of the log-density. Noise prediction learns it: for data "
        "noised to level $\\sigma$, the best denoiser gives it by Tweedie's formula. Below, "
        "the exact score of the 8-Gaussians toy noised to two levels, and the check that "
        "Tweedie's formula gives the same numbers.",
        "スコアは対数密度の勾配です。ノイズ予測はこれを学習しています。ノイズの大きさ "
        "$\\sigma$ のデータに対して、最良のノイズ除去器は Tweedie の公式でスコアを与えます。"
        "以下は 8 つのガウス分布のトイデータに 2 段階のノイズを加えたときの厳密なスコアと、"
        "Tweedie の公式が同じ値を与えることの確認です。",
    )
    page.math(
        r"\nabla_{\mathbf{x}}\log p_\sigma(\mathbf{x})=\frac{\mathbb{E}[\mathbf{x}_0\mid\mathbf{x}]"
        r"-\mathbf{x}}{\sigma^2}=-\frac{\boldsymbol\epsilon_\theta(\mathbf{x},\sigma)}{\sigma}"
    )
    toy = load("8gaussians", n=2000, seed=options.seed)
    means, std = toy.info["centers"], toy.info["std"]
    for sigma in (0.3, 1.0):
        page.figure(
            score_field(lambda p, s: mixture_score(p, s, means, std)[0], toy.x, sigma=sigma),
            f"score_{sigma:g}.png",
            f"The score at sigma = {sigma:g}",
            f"sigma = {sigma:g} でのスコア",
        )
    pts = np.random.default_rng(options.seed).normal(size=(1000, 2)) * 2
    exact, tweedie = mixture_score(pts, 0.5, means, std)

    page.heading("Classifier guidance", "分類器ガイダンス")
    page.say(
        "Bayes' rule splits the score of the class-conditional density into the "
        "unconditional score and the gradient of a classifier that sees noisy images; a "
        "scale $\\gamma$ strengthens the classifier's pull.",
        "ベイズの定理により、条件付き密度のスコアは条件なしのスコアと、ノイズの乗った画像を"
        "分類する分類器の勾配に分かれます。係数 $\\gamma$ で分類器の影響を強めます。",
    )
    page.math(
        r"\nabla_{\mathbf{x}}\log p(\mathbf{x}_t\mid y)=\nabla_{\mathbf{x}}\log p(\mathbf{x}_t)"
        r"+\gamma\,\nabla_{\mathbf{x}}\log p_\phi(y\mid\mathbf{x}_t)"
    )
    rows = [
        (
            "tweedie_max_abs_diff",
            "score: largest |exact - Tweedie| over 1,000 points",
            "スコア：1,000 点での |厳密値 − Tweedie| の最大値",
            float(np.abs(exact - tweedie).max()),
        )
    ]
    rows.append(
        (
            "acc_conditional",
            "classified as asked: conditional (cfg = 1)",
            "指定どおりに分類された割合：条件付き（cfg = 1）",
            accuracy(conditional, per_class),
        )
    )
    for scale in (1.0, 4.0):
        cg = guided_samples(
            model, classifier, per_class, cg_scale=scale, seed=options.seed, steps=k
        )
        rows.append(
            (
                f"acc_classifier_{scale:g}",
                f"classifier guidance, scale {scale:g}",
                f"分類器ガイダンス、係数 {scale:g}",
                accuracy(cg, per_class),
            )
        )
    page.figure(
        image_grid(cg.numpy(), nrow=per_class),
        "classifier_guidance.png",
        "Classifier guidance of the unconditional model, scale 4",
        "条件なしモデルへの分類器ガイダンス（係数 4）",
    )

    page.heading("Classifier-free guidance", "分類器なしガイダンス")
    page.say(
        "One network learns both the conditional and the unconditional model: in training "
        "the label is replaced by a 'no label' token some of the time. Sampling "
        "extrapolates from the unconditional prediction towards the conditional one:",
        "1 つのネットワークで条件付きと条件なしの両方のモデルを学習します。学習中、一定の割合で"
        "ラベルを「ラベルなし」に置き換えます。サンプリングでは条件なしの予測から条件付きの予測の"
        "方向へ外挿します。",
    )
    page.math(
        r"\tilde{\boldsymbol\epsilon}=\boldsymbol\epsilon_\theta(\mathbf{x}_t,t,\varnothing)+w"
        r"\left(\boldsymbol\epsilon_\theta(\mathbf{x}_t,t,y)-\boldsymbol\epsilon_\theta"
        r"(\mathbf{x}_t,t,\varnothing)\right)"
    )
    for w in (0.0, 3.0):
        cfg = guided_samples(model, per_class=per_class, cfg=w, seed=options.seed, steps=k)
        rows.append(
            (
                f"acc_cfg_{w:g}",
                f"classifier-free guidance, w = {w:g}",
                f"分類器なしガイダンス、w = {w:g}",
                accuracy(cfg, per_class),
            )
        )
    page.figure(
        image_grid(cfg.numpy(), nrow=per_class),
        "cfg.png",
        "Classifier-free guidance, w = 3",
        "分類器なしガイダンス（w = 3）",
    )
    page.switch(
        "--cond-drop-per sample|batch",
        "Texts drop the label in two ways: each sample on its own with chance p (most "
        "libraries; genlab's default) or the whole batch at once with chance p (some "
        "textbooks' code). Both show the unconditional case to a share p of the samples; "
        "the measured spread per batch differs (table). Train with the other one: "
        "genlab train ddpm-digits --set model.cond_drop_per=batch.",
        "ラベルの落とし方はテキストにより 2 通りあります。サンプルごとに確率 p で落とす方法"
        "（多くのライブラリ、genlab の既定）と、バッチ全体をまとめて確率 p で落とす方法（一部の"
        "教科書のコード）です。どちらも全体の割合 p のサンプルで条件なしの場合を学習しますが、"
        "バッチごとのばらつきが異なります（表）。もう一方で学習するには："
        "genlab train ddpm-digits --set model.cond_drop_per=batch。",
    )
    per = options.cond_drop_per
    g = torch.Generator().manual_seed(options.seed)
    labels = Condition.from_labels(torch.zeros(128, dtype=torch.long))
    shares = np.array(
        [labels.drop(0.1, g, per=per).null.float().mean().item() for _ in range(2000)]
    )
    rows += [
        (
            "drop_share",
            f"labels dropped ({per}, p = 0.1, 2,000 batches of 128)",
            f"落としたラベルの割合（{per}、p = 0.1、128 個のバッチ 2,000 回）",
            float(shares.mean()),
        ),
        (
            "drop_batch_std",
            "its standard deviation across batches",
            "バッチ間の標準偏差",
            float(shares.std()),
        ),
    ]

    page.heading("Text-to-image: latent diffusion", "テキストから画像：潜在拡散モデル")
    page.say(
        "Stable Diffusion runs the same machinery in the latent space of an autoencoder, "
        "with a text encoder's token embeddings as the condition (through cross-attention) "
        "and classifier-free guidance. genlab's built-in model is the same architecture, "
        "small: a KL autoencoder (4x smaller latents), the frozen all-MiniLM-L6-v2 sentence "
        "encoder and a U-Net with cross-attention, trained on genlab's captioned shapes.",
        "Stable Diffusion は同じ仕組みをオートエンコーダの潜在空間で動かし、テキストエンコーダの"
        "トークン埋め込みを（クロスアテンションを通して）条件とし、分類器なしガイダンスを使います。"
        "genlab の組み込みモデルは同じ構成の小型版です。KL オートエンコーダ（潜在は 4 分の 1 の"
        "解像度）、凍結した all-MiniLM-L6-v2 文エンコーダ、クロスアテンション付き U-Net からなり、"
        "genlab の説明文付き図形データで学習しています。",
    )
    page.math(
        r"\mathbf{z}=\mathcal{E}(\mathbf{x}),\quad\boldsymbol\epsilon_\theta(\mathbf{z}_t,t,"
        r"\tau(\text{prompt})),\quad\mathbf{x}=\mathcal{D}(\mathbf{z}_0)"
    )
    images = text_to_image(
        [
            "a red circle on the left",
            "a blue square at the top",
            "a yellow star",
            "a green triangle below a pink heart",
        ],
        options.seed,
    )
    from PIL import Image

    strip = Image.new("RGB", (32 * len(images), 32))
    for i, im in enumerate(images):
        strip.paste(im, (32 * i, 0))
    page.figure(
        strip.resize((128 * len(images), 128), Image.NEAREST),
        "text_to_image.png",
        "'a red circle on the left', 'a blue square at the top', 'a yellow star', "
        "'a green triangle below a pink heart'",
        "「a red circle on the left」「a blue square at the top」「a yellow star」"
        "「a green triangle below a pink heart」",
    )
    page.say(
        'The same from the command line: genlab txt2img "a red circle on the left".',
        'コマンドラインでは genlab txt2img "a red circle on the left" で同じことができます。',
    )
    page.table(rows)
    # the code samples as the page did (the full page's are the functions' defaults)
    page.code(
        guided_samples,
        accuracy,
        mixture_score,
        text_to_image,
        call="from genlab.assets import load_shipped\n"
        "model = load_shipped('ddpm-digits')\n"
        "classifier = load_shipped('noisy-classifier-digits')\n"
        f"free = guided_samples(model, per_class={per_class}, steps={k}, cfg=3.0)\n"
        f"guided = guided_samples(model, classifier, {per_class}, cg_scale=4.0, steps={k})\n"
        f"print(accuracy(free, {per_class}), accuracy(guided, {per_class}))\n"
        "text_to_image(['a red circle on the left'])[0].save('red.png')",
    )
    page.tests(
        "tests/test_course.py::test_step10_guidance_and_score",
        "tests/test_diffusion_model.py (guidance)",
        "tests/test_text_to_image.py",
    )


def text_to_image(prompts, seed=0):
    """genlab's built-in text-to-image model: 20 DPM++ 2M steps, CFG scale 5."""
    from genlab.backends import generate
    from genlab.generation.request import GenerationRequest

    return [generate(GenerationRequest(p, seed=seed)).images[0] for p in prompts]
