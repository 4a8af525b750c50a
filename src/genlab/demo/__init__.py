"""``genlab demo``: the whole tour, written as an HTML report with its pictures.

Heights (normal fit, probabilities, generated vs real), a single normal against a
two-component mixture on held-out heights, Old Faithful by EM, a 2-D normal in 3-D, a 2-D
toy mixture, autoencoders, every family compared on 2-D data and on digits, diffusion step
by step with its sampler and guidance sweeps, the latent-variable comparison, text to
image and the course (``demo.models`` holds the sections past the classical ones).
Everything is computed when the demo runs, nothing is pre-rendered; the digits and
text-to-image models come trained in the package, and ``full=True`` retrains every family.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

from ..data import load as load_data
from ..runs import cross_validate, fit_run, sample_run
from .markup import figure as _figure
from .markup import page as _page
from .markup import plural
from .markup import table as _table


def _plot(metrics: dict, name: str) -> Path:
    return next(Path(p) for p in metrics["plots"] if Path(p).name == name)


def autoencoder_section(root: Path, steps: int = 500) -> str:
    """An autoencoder trained now (briefly) against the shipped VAE and hierarchical VAE on
    16x16 digits, with their pictures."""
    import torch

    from ..assets import card, load_shipped
    from ..models.autoencoder import AE
    from ..training.trainer import TrainConfig
    from ..viz.plots import image_grid, save

    digits = load_data("digits", size=16, scale="pm1", part="models")
    cfg = TrainConfig(steps=steps, batch_size=128, lr=2e-3, ema_decay=0, progress=False)
    pics = root / "autoencoders"
    torch.manual_seed(0)
    ae = AE(digits.shape, latent_dim=8).fit(digits, cfg)
    vae, hvae = load_shipped("vae-digits"), load_shipped("hvae-digits")
    x = digits.x
    grids = {
        "ae_normal.png": ae.sample(64, seed=0, latent="normal"),
        "ae_fitted.png": ae.sample(64, seed=0, latent="fitted"),
        "vae_samples.png": vae.sample(64, seed=0),
        "vae_reconstructions.png": torch.cat([torch.as_tensor(x[:8]), vae.reconstruct(x[:8])]),
        "vae_interpolation.png": torch.cat(
            [vae.interpolate(x[i : i + 1], x[i + 1 : i + 2], steps=8) for i in range(0, 8, 2)]
        ),
        "vae_traversal.png": vae.traverse(x[:1], steps=8),
        "hvae_samples.png": hvae.sample(64, seed=0),
    }
    paths = {
        name: save(image_grid(imgs.numpy(), nrow=8), pics / name) for name, imgs in grids.items()
    }
    elbo = vae.elbo(x[:500]).mean().item()
    return (
        "<h2>6. Autoencoders and VAEs (16x16 digits)</h2>"
        f"<p>An autoencoder, trained now for {plural(steps, 'step')}, compresses and "
        "reconstructs, but nothing says where its codes lie: decoding z ~ N(0, I) gives "
        "noise-like blobs; a "
        "Gaussian fitted to the training codes does better. The VAE (shipped, "
        f"{plural(card('vae-digits')['steps'], 'step')} of its recipe) makes its codes "
        "follow N(0, I) by "
        f"maximising the ELBO, so its samples come straight from the prior (ELBO {elbo:.1f} "
        "nats per image).</p>"
        + _figure(paths["ae_normal.png"], root, "AE: decoded z ~ N(0, I)")
        + _figure(paths["ae_fitted.png"], root, "AE: decoded z from the fitted code Gaussian")
        + _figure(paths["vae_samples.png"], root, "VAE: samples from the prior")
        + _figure(paths["vae_reconstructions.png"], root, "VAE: inputs (top), reconstructions")
        + _figure(paths["vae_interpolation.png"], root, "VAE: latent interpolations, per row")
        + _figure(paths["vae_traversal.png"], root, "VAE: one latent dimension swept per row")
        + _figure(paths["hvae_samples.png"], root, "two-level hierarchical VAE (shipped): samples")
    )


def text_to_image_section(root: Path, n: int = 24) -> str:
    """The built-in text-to-image model on prompts of held-out compositions (never seen in
    training) and seen ones, each image read back by the scene detector."""
    import numpy as np
    from PIL import Image

    from ..backends import load_backend
    from ..data.shapes import shapes
    from ..evaluation.scene_detector import detect, judge
    from ..generation import GenerationRequest
    from ..generation.output import grid_of

    pipe = load_backend("builtin")
    rows, figures = [], []
    for split, data_split, seed in (("held-out", "heldout", 7), ("seen", "train", 8)):
        data = shapes(n, seed=seed, split=data_split)
        images, hits, cells = [], [], []
        folder = root / "txt2img" / data_split
        folder.mkdir(parents=True, exist_ok=True)
        for i, record in enumerate(data.records):
            prompt = record["captions"][i % len(record["captions"])]
            image = pipe(GenerationRequest(prompt, seed=i)).images[0]
            images.append(image)
            verdict = judge(record["scene"], detect(np.asarray(image)), prompt)
            hits.append(verdict["overall"])
            cell = folder / f"{i:02d}.png"  # 4x, pixels kept sharp
            image.resize((image.width * 4, image.height * 4), Image.NEAREST).save(cell)
            missed = [k for k, v in verdict.items() if k != "overall" and not v]
            word = "drawn right" if verdict["overall"] else "missed " + ", ".join(missed)
            src = html.escape(cell.relative_to(root).as_posix())
            cells.append(
                f'<figure><a href="{src}"><img src="{src}" alt="{html.escape(prompt)}"></a>'
                f"<figcaption>“{html.escape(prompt)}”, seed {i}: <span class="
                f'"{"right" if verdict["overall"] else "wrong"}">{html.escape(word)}</span>'
                "</figcaption></figure>"
            )
        path = root / "txt2img" / f"{data_split}.png"
        grid_of(images).save(path)
        figures.append(f'<h3>{split} compositions</h3><div class="cells">{"".join(cells)}</div>')
        rows.append(
            (f"{split} prompts drawn right (all attributes)", f"{np.mean(hits):.0%} of {n}")
        )
    return (
        "<h2>Text to image: genlab's small Stable Diffusion</h2>"
        "<p>The built-in model, 20 DPM++ 2M steps, CFG 5, seed i for prompt i; every image "
        "read back by the analytic scene detector, whose verdict is under each image. "
        '<code>genlab txt2img "a red circle to the left of a blue square" --out out.png'
        "</code></p>"
        + _table(
            rows,
            "How often the scene detector finds every attribute the prompt names "
            "(shape, colour, size, place): held-out prompts pair words never paired in "
            "training.",
        )
        + "".join(figures)
    )


#: the course's steps that take seconds; the demo writes their pages and links the rest
COURSE_STEPS = ("1", "2", "3", "4", "5", "8")


def course_section(root: Path) -> str:
    """The course's quick steps written into ``root/course``, linked from the report."""
    from ..course import STEPS, run_step

    for key in COURSE_STEPS:
        run_step(key, "en", root / "course")
    items = []
    for step in STEPS:
        name = html.escape(f"{step.key}. {step.name('en')}")
        if step.key in COURSE_STEPS:
            name = f'<a href="course/{step.folder}/index.html">{name}</a>'
        items.append(f"<li>{name}</li>")
    return (
        "<h2>The course</h2><p>The textbook road one step per page, with the math, numbers, "
        "figures, library calls and tests of each (<code>genlab course N</code>, "
        "<code>--lang ja</code> for Japanese). The demo wrote the steps that take seconds; "
        f"<code>genlab course --all --out {html.escape(root.as_posix())}/course</code> writes "
        f'them all. <a href="course/index.html">The course\'s index</a>.</p>'
        f"<ul>{''.join(items)}</ul>"
    )


SHIPPED = (
    "What was computed now: every fit, every sample, every figure and number on this page; "
    "the classical models, the autoencoder of section 6, the 2-D families (500 steps "
    "each, one seed), the digits mixture and the latent-variable models were trained now. "
    "What came shipped (trained by genlab's recipes, weights in the package with their "
    "sha256): the digits models of VAE, hierarchical VAE, GAN, RealNVP, EBM and diffusion, "
    "the noise-aware classifier, the digits feature network and the text-to-image model. "
    "<code>genlab demo --full</code> retrains every family with 3 seeds."
)
SHIPPED_FULL = (
    "Every family was trained now by its recipe, 3 seeds each, with the learning-rate "
    "sweeps; the diffusion sweeps and text to image use the shipped models."
)

#: the tour's parts, in order (the progress bar counts them)
PARTS = ("heights", "one normal or two", "Old Faithful", "2-D normal", "2-D mixture",
         "autoencoders", "families on 2-D data", "families on digits", "diffusion",
         "latent-variable models", "text to image", "course")  # fmt: skip


def run_demo(out: str | Path = "report", full: bool = False, progress: bool = True) -> Path:
    """The tour into ``out``; ``full``: retrain every family with 3 seeds and run the
    longer comparisons (hours on a laptop) instead of sampling the shipped models."""
    from tqdm import tqdm  # on stderr, as the CLI's bars (tqdm.auto also loads notebook parts)

    from ..serialization import load
    from . import models as dm

    t0 = time.perf_counter()
    root = Path(out)
    runs = root / "runs"
    sections: list[str] = []
    bar = tqdm(total=len(PARTS), desc="demo", disable=not progress, leave=False)

    took: dict[str, float] = {}  # seconds per part: where a slow tour spends its time
    last = [t0]

    def done(part: str) -> None:
        now = time.perf_counter()
        took[part], last[0] = now - last[0], now
        bar.set_postfix_str(part)
        bar.update(1)

    def note(what: str) -> None:
        bar.set_postfix_str(what)

    # 1. Heights: maximum likelihood normal, and probabilities of intervals.
    m = fit_run(
        "normal", "heights", runs / "heights-normal", test_fraction=0, argv=["demo"], overwrite=True
    )
    normal = load(runs / "heights-normal")
    sections.append(
        "<h2>1. Heights: a normal fitted by maximum likelihood</h2>"
        "<p>934 adult heights (Galton, 1886) in cm. The maximum-likelihood normal has the "
        "sample mean and standard deviation as its parameters.</p>"
        + _table(
            reading="A typical adult is about 1.68 m tall, give or take 9 cm; the "
            "probabilities are areas under the fitted bell curve.",
            rows=[
                ("mean (cm)", f"{normal.mean_:.2f}"),
                ("standard deviation (cm)", f"{normal.std_:.2f}"),
                ("P(x ≤ 160)", f"{normal.prob('x <= 160'):.4f}"),
                ("P(x > 180)", f"{normal.prob('x > 180'):.4f}"),
                ("average log-likelihood", f"{m['train_avg_loglik']:.4f}"),
            ],
        )
        + _figure(_plot(m, "density.png"), root, "histogram of heights with the fitted density")
        + _figure(
            _plot(m, "real_vs_generated.png"), root, "real heights vs heights sampled from the fit"
        )
    )

    done("heights")

    # 2. One normal or two? Held-out log-likelihood (5-fold cross-validation) decides.
    heights = load_data("heights")
    mix = {"n_components": 2, "seed": 0, "n_init": 5, "tol": 1e-6}
    one, two = cross_validate("normal", heights), cross_validate("gmm", heights, mix)
    t2 = fit_run(
        "gmm", "heights", runs / "heights-gmm2", options=mix, argv=["demo"], overwrite=True
    )
    gmm2 = load(runs / "heights-gmm2")
    sections.append(
        "<h2>2. One normal or a mixture of two?</h2>"
        "<p>Heights mix sons and daughters. Each model is fitted on 4/5 of the data and scored "
        "on the other 1/5, five times (5-fold cross-validation):</p>"
        + _table(
            reading="Higher held-out log-likelihood is better: the model that gives unseen "
            "heights more probability wins.",
            rows=[
                ("normal: held-out avg log-lik", f"{one.mean():.4f}"),
                ("2-component mixture: held-out avg log-lik", f"{two.mean():.4f}"),
                (
                    "mixture components (cm)",
                    ", ".join(
                        f"{w:.2f} × N({mu[0]:.1f}, {c[0, 0] ** 0.5:.1f}²)"
                        for w, mu, c in zip(
                            gmm2.weights_, gmm2.means_, gmm2.full_covariances(), strict=True
                        )
                    ),
                ),
            ],
        )
        + _figure(_plot(t2, "density.png"), root, "two-component mixture on heights")
    )

    done("one normal or two")

    # 3. Old Faithful by EM.
    f = fit_run(
        "gmm",
        "faithful",
        runs / "faithful-gmm2",
        options={"n_components": 2, "seed": 0},
        test_fraction=0,
        argv=["demo"],
        overwrite=True,
    )
    gmm = load(runs / "faithful-gmm2")
    sections.append(
        "<h2>3. Old Faithful: a Gaussian mixture trained by EM</h2>"
        + _table(
            reading="The geyser has short and long eruptions; EM found the share of each "
            "and stopped when the log-likelihood no longer rose.",
            rows=[
                ("mixing weights", ", ".join(f"{w:.3f}" for w in sorted(gmm.weights_))),
                ("EM iterations", str(f["n_iter"])),
                ("average log-likelihood", f"{f['train_avg_loglik']:.4f}"),
            ],
        )
        + _figure(_plot(f, "density.png"), root, "data, density contours, 2-sigma ellipses")
        + _figure(_plot(f, "em_loglik.png"), root, "average log-likelihood per EM iteration")
        + _figure(_plot(f, "responsibilities.png"), root, "responsibilities, coloured per point")
    )

    done("Old Faithful")

    # 4. A 2-D normal, drawn as a surface.
    v = fit_run(
        "mvn", "faithful", runs / "faithful-mvn", test_fraction=0, argv=["demo"], overwrite=True
    )
    sections.append(
        "<h2>4. The multivariate normal</h2>"
        "<p>The maximum-likelihood 2-D normal of Old Faithful: one Gaussian cannot see the two "
        f"clusters (average log-likelihood {v['train_avg_loglik']:.3f} against the mixture's "
        f"{f['train_avg_loglik']:.3f}).</p>"
        + _figure(_plot(v, "surface3d.png"), root, "density of the fitted 2-D normal")
        + _figure(_plot(v, "density.png"), root, "its contours over the data")
    )

    done("2-D normal")

    # 5. A 2-D toy: eight Gaussians, and samples from the fitted mixture.
    t = fit_run(
        "gmm",
        "8gaussians",
        runs / "8gaussians-gmm8",
        options={"n_components": 8, "seed": 0, "n_init": 3},
        argv=["demo"],
        overwrite=True,
    )
    samples_png = sample_run(runs / "8gaussians-gmm8", 1000, root / "8gaussians-samples.png", 0)
    sections.append(
        "<h2>5. A 2-D toy mixture</h2>"
        + _table(
            [("held-out avg log-lik (K=8)", f"{t['test_avg_loglik']:.4f}")],
            "Eight Gaussian blobs on a circle, and a mixture of eight components fitted by "
            "EM: the log-likelihood of points it did not see.",
        )
        + _figure(_plot(t, "density.png"), root, "8 Gaussians: fitted mixture")
        + _figure(samples_png, root, "1,000 samples from the fitted mixture over the data")
    )

    done("2-D mixture")
    sections.append(autoencoder_section(root))
    done("autoencoders")
    families_note = note if progress else None  # each comparison's own bar follows the tour's
    sections.append(dm.compare_section(root, "8gaussians", full, families_note))
    done("families on 2-D data")
    sections.append(dm.compare_section(root, "digits", full, families_note))
    done("families on digits")
    sections.append(dm.diffusion_section(root))
    done("diffusion")
    sections.append(dm.latent_section(root, full, note))
    done("latent-variable models")
    sections.append(text_to_image_section(root))
    done("text to image")
    sections.append(course_section(root))
    done("course")
    bar.close()

    seconds = time.perf_counter() - t0
    parts = ", ".join(f"{part} {s:.0f} s" for part, s in took.items())
    if progress:  # the parts' times, for anyone sizing the tour (docs/results.md)
        import sys

        print(f"genlab demo: {seconds:.0f} s; {parts}", file=sys.stderr)
    intro = (
        f"<p>Computed by <code>genlab demo{' --full' if full else ''}</code> in "
        f"{seconds:.1f} s ({html.escape(parts)}). {SHIPPED_FULL if full else SHIPPED} "
        "Each run folder is in <code>runs/</code> and can be reused: <code>genlab sample "
        f"{html.escape(str(runs))}/faithful-gmm2 --n 500 --out s.png</code>.</p>"
    )
    page = _page("genlab: the tour, from the Gaussian to text to image", intro, sections)
    index = root / "index.html"
    index.write_text(page)
    return index
