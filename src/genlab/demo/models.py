"""The demo's sections past the classical models: every family compared on 2-D data and on
digits, the diffusion process, the sampler and guidance sweeps, and the latent-variable
comparison. The digits models come shipped in the package (sampled at once); ``full``
retrains everything with several seeds instead.
"""

from __future__ import annotations

import html
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..runs import machine
from .markup import figure as _figure
from .markup import read

N_DIGITS = 200  # samples per digits measurement in the quick tour (--full: 500)


def _html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:]
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _columns(rows: list[list[str]], keep: tuple[str, ...]) -> list[list[str]]:
    index = [rows[0].index(k) for k in keep if k in rows[0]]
    return [[r[i] for i in index] for r in rows]


@contextmanager
def families_bar(total: int, desc: str, note=None):
    """A progress callback for ``compare``: a bar over its families and seeds on stderr
    (plain tqdm, as the CLI's bars), each family's name beside it and passed on to
    ``note``; no bar when ``note`` is None (a tour run without progress)."""
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, leave=False, disable=note is None) as bar:

        def progress(what: str) -> None:
            bar.set_postfix_str(what)
            if "learning rate" not in what:  # the sweeps' extra runs are not in the count
                bar.update(1)
            if note is not None:
                note(what)

        yield progress


def compare_settings(data: str, full: bool) -> dict:
    """``compare``'s settings in the tour: the quick tour samples the shipped digits models,
    drawing diffusion with the sampler sweep's best few-step sampler (FEW_STEP), where
    1,000 ancestral steps would only cost time; ``--full`` retrains every family with 3
    seeds and keeps the 1,000-step column."""
    if data == "digits":
        settings = dict(seeds=3, n=500) if full else dict(seeds=1, n=N_DIGITS, shipped=True)
        settings["nll_n"] = None if full else 50
        settings["few_step"] = not full
        return settings
    return dict(seeds=3, n=2000) if full else dict(seeds=1, n=2000, steps=500)


def compare_section(root: Path, data: str, full: bool, progress=None) -> str:
    """The families' table on ``data``, written in full to root/compare-DATA/."""
    from ..evaluation.compare import FEW_STEP, compare, families_for
    from ..evaluation.compare_report import table, write_report

    out = root / f"compare-{data}"
    settings = compare_settings(data, full)
    if data == "digits":
        command = "genlab demo --full" if full else "genlab demo"
    else:
        command = "genlab demo --full" if full else "genlab demo (500 training steps a family)"
    total = len(families_for(data)) * settings["seeds"]
    with families_bar(total, f"families on {data}", progress) as note:
        report = compare(data, lr_sweep=full, progress=note, **settings)
    write_report(report, out, command, machine())
    keep = ("family", "held-out bits/dim", "held-out NLL (nats)", "likelihood", "FD",
            "fidelity rank", "SWD", "modes hit", "classes", "copy share", "stability",
            "fidelity", "memorisation", "samples/s", "NFE", "speed")  # fmt: skip
    rows = _columns(table(report), keep)
    if data == "digits":
        what = (
            "the digits models shipped in genlab, sampled now (the mixture is fitted now)"
            if not full
            else "every recipe retrained with 3 seeds"
        )
        head = (
            f"<h2>Every family on digits: {what}</h2><p>{N_DIGITS if not full else 500} "
            "samples a family against held-out references that no model and not the feature "
            f"network saw; FD floor (training images against the references): "
            f"{report['fd_floor']:.1f}. Copy share: samples nearer to a training image than "
            "95% of held-out images are (5% for a model that does not copy)."
            + ("" if full else few_step_note(FEW_STEP))
            + "</p>"
        )
    else:
        head = (
            "<h2>Every family on 2-D data (eight Gaussians)</h2><p>"
            + ("3 seeds, each recipe's length" if full else "one seed, 500 training steps each")
            + ", 2,000 samples a family.</p>"
        )
    link = f'<p><a href="{out.name}/compare.html">The full table, marks and figures</a>.</p>'
    if data == "digits":
        reading = (
            "Lower is better for bits/dim (the bits a model needs to store one pixel of an "
            "unseen digit; only models with a likelihood have one) and for FD (the distance "
            "between the features of samples and of real digits; the +- is its spread over "
            "seeds); fidelity rank 1 is the family whose samples look most like digits, and "
            "(tie) means no significant gap to the next."
        )
    else:
        reading = (
            "Lower is better for NLL (how surprised a model is by unseen points), FD and "
            "SWD (distances between samples and data); modes hit counts the eight blobs "
            "a family's samples reach."
        )
    samples = _figure(out / "compare-samples.png", root, "samples of each family", wide=True)
    return head + read(reading) + _html_table(rows) + link + samples


def few_step_note(few_step: dict) -> str:
    """The sentence that says how the quick tour draws diffusion (the sampler and NFE)."""
    from ..generation.request import WEBUI_SAMPLERS

    name, steps = WEBUI_SAMPLERS[few_step["sampler"]], few_step["steps"]
    return (
        f" Diffusion is drawn with {html.escape(name)} at {steps} network evaluations "
        f"(<code>--sampler {few_step['sampler']} --steps {steps}</code>), the best few-step "
        "sampler of <code>benchmarks/sampler_sweep.py</code> on this model, instead of "
        f"1,000 ancestral steps: {1000 // steps}x fewer network calls (its FD against the "
        "1,000-step chain's is in docs/results.md); <code>genlab demo --full</code> draws "
        "the 1,000 steps."
    )


def diffusion_section(root: Path, n: int = N_DIGITS) -> str:
    """The shipped diffusion model: the forward process, the reverse process as an
    animation, quality against steps per sampler, and the two guidances swept."""
    from ..assets import load_shipped
    from ..data import load
    from ..evaluation.compare import FEW_STEP
    from ..evaluation.features import digits_features, digits_predict
    from ..evaluation.metrics import frechet_distance
    from ..viz.plots import animation, noising, save, subplots

    model = load_shipped("ddpm-digits")
    classifier = load_shipped("noisy-classifier-digits")
    _, test = load("digits", size=16, scale="pm1", part="models").split(0.2, seed=0)
    real = digits_features(test.x)
    folder = root / "diffusion"
    forward = save(noising(test.x[:6], model.net.alpha_bar), folder / "forward.png")
    frames: list[np.ndarray] = []
    labels = torch.arange(16) % 10

    def keep(state: dict) -> None:  # x_t in the variance-preserving scale, as q makes it
        frames.append((state["x"] / (1 + state["sigma"] ** 2) ** 0.5).numpy().copy())

    model.sample(16, cond=labels, seed=0, steps=40, sampler="ddim", callback=keep)
    reverse = save(animation(frames), folder / "reverse.gif")

    cond = torch.arange(n) % 10
    sweep = {}
    # DDIM with eta 0 is Euler's curve exactly (samplers.sample_euler): the sweep's best
    # few-step sampler takes its place
    for sampler in dict.fromkeys(("euler", "dpmpp-2m", FEW_STEP["sampler"])):
        sweep[sampler] = [
            (steps, frechet_distance(real, digits_features(
                model.sample(n, cond=cond, seed=0, sampler=sampler, steps=steps).numpy())))
            for steps in (5, 10, 20)
        ]  # fmt: skip
    fig, ax = subplots(figsize=(5, 3.5))
    for sampler, points in sweep.items():
        ax.plot(*zip(*points, strict=True), marker="o", label=sampler)
    ax.set(xlabel="steps (network evaluations)", ylabel="FD to held-out digits", yscale="log")
    ax.legend()
    steps_png = save(fig, folder / "sampler_sweep.png")

    guidance = [["guidance", "scale", "drawn as asked", "FD"]]
    for kind, scales in (("classifier-free", (0.0, 1.0, 3.0)), ("classifier", (1.0, 3.0))):
        for scale in scales:
            opts = {"cfg": scale} if kind == "classifier-free" else {
                "cfg": 0.0, "classifier": classifier, "cg_scale": scale}  # fmt: skip
            x = model.sample(n, cond=cond, seed=0, steps=20, **opts).numpy()
            asked = float(np.mean(digits_predict(x) == cond.numpy()))
            fd = frechet_distance(real, digits_features(x))
            guidance.append([kind, f"{scale:g}", f"{asked:.0%}", f"{fd:.1f}"])
    return (
        "<h2>Diffusion, step by step (the shipped class-conditional model)</h2>"
        "<p>The forward process adds noise until nothing of the digit is left; the reverse "
        "process removes it, one network evaluation a step. Fast samplers reach in 20 steps "
        f"what the 1,000-step chain reaches; guidance trades diversity (FD) for digits drawn "
        f"as asked. {n} samples a cell, labels 0-9 in turn.</p>"
        + _figure(forward, root, "forward process q(x_t | x_0) at t = 0 ... 999")
        + _figure(reverse, root, "reverse process, 40 DDIM steps (animated; holds the end)")
        + _figure(steps_png, root, "FD against steps, per sampler")
        + read(
            "Drawn as asked: the share of samples the digits classifier reads as the label "
            "asked for; FD: lower means samples more like real digits. More guidance draws "
            "the asked digit more often and less varied."
        )
        + _html_table(guidance)
    )


def latent_section(root: Path, full: bool, progress=None) -> str:
    """PCA, PPCA, linear AE / VAE, AE, VAE and the GPLVM side by side."""
    from ..evaluation.latent import compare_latent
    from ..evaluation.latent_report import rows, write_report

    out = root / "latent"
    results = compare_latent(quick=not full, progress=progress)
    command = "genlab demo --full" if full else "genlab demo (quick settings)"
    write_report(results, out, command, machine())
    head = ["model", "held-out MSE", "held-out log-lik / dim", "latent quality", "fit (s)",
            "embed (ms)"]  # fmt: skip
    table = [head, *rows(results, "digits")]
    how = "each model's full settings" if full else "shortened training (--full: full)"
    return (
        "<h2>Latent-variable models: PCA, PPCA, GPLVM and the VAE</h2>"
        f"<p>Digits, a 2-D latent, {how}. PCA is a linear autoencoder; PPCA is its "
        "probabilistic version, which a linear VAE reaches exactly; the GPLVM puts a "
        "Gaussian process on PPCA's map; the VAE a neural network with an encoder.</p>"
        + read(
            "Lower held-out MSE: unseen digits rebuilt more closely from two numbers; "
            "higher log-likelihood per dimension: a better density (models with one); latent "
            "quality: how well the 2-D codes keep the digit classes apart."
        )
        + _html_table(table)
        + f'<p><a href="{out.name}/latent.html">The full comparison</a>.</p>'
        + _figure(
            out / "latent_digits.png", root, "2-D latent spaces of digits, side by side", wide=True
        )
    )
