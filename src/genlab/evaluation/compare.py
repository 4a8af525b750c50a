"""``genlab compare``: every family trained by its packaged recipe on the same data, with
several seeds, measured the same way: held-out likelihood (exact, a bound, or none),
stability (spread over seeds, diverged runs, learning-rate sensitivity), fidelity and
speed (training time, samples per second, network evaluations per sample).

Fidelity on 2-D data: sliced Wasserstein distance and MMD to held-out points, modes hit
on 8 Gaussians. On digits (``compare_images``): FD, KID, precision/recall against
held-out references, classes covered and a memorisation check. ``shipped=True`` measures
the digits models shipped in the package instead of training (seed 0 only);
``few_step=True`` draws the diffusion column with the sampler sweep's best few-step sampler
instead of 1,000 ancestral steps (the quick tour's choice: same model, a fraction of the
time)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import GenlabError
from . import metrics as M


@dataclass(frozen=True)
class Family:
    """One column of the comparison: a model trained by a recipe (or fitted by EM), sampled
    with ``options``; ``nfe``: network evaluations per sample with those options."""

    label: str
    model: str
    recipe: str | None
    options: dict = field(default_factory=dict)
    nfe: Any = 1
    trains: str | None = None  # label of the family whose trained model this one reuses


ANCESTRAL = "diffusion, DDPM 1000 steps"  # the label of the 1,000-step ancestral column
FAMILIES_2D = (
    Family("Gaussian mixture (EM)", "gmm", None, nfe=0),
    Family("VAE", "vae", "vae-moons"),
    Family("hierarchical VAE", "hvae", "hvae-moons"),
    Family("GAN", "gan", "gan-8gaussians"),
    Family("RealNVP flow", "realnvp", "realnvp-8gaussians"),
    Family("energy-based (Langevin)", "ebm", "ebm-8gaussians", nfe=lambda m: m.sample_steps),
    Family(
        ANCESTRAL,
        "ddpm",
        "ddpm-moons",
        {"sampler": "ddpm", "steps": 1000},
        nfe=1000,
    ),
    Family(
        "diffusion, DPM++ 2M 20 steps",
        "ddpm",
        "ddpm-moons",
        {"sampler": "dpmpp-2m", "steps": 20},
        nfe=20,
        trains=ANCESTRAL,
    ),
)


#: the best few-step sampler of ``benchmarks/sampler_sweep.py`` on the shipped digits DDPM
#: (docs/results.md, "Samplers against network evaluations"), and its label
FEW_STEP = {"sampler": "unipc", "steps": 10}
FEW_STEP_LABEL = "diffusion, UniPC 10 steps"


def with_few_steps(families: tuple[Family, ...]) -> tuple[Family, ...]:
    """``families`` with the 1,000-step ancestral column drawn by FEW_STEP instead (the
    same trained model; the families that reuse it follow the new label)."""
    out = []
    for f in families:
        if f.label == ANCESTRAL:
            f = replace(f, label=FEW_STEP_LABEL, options=dict(FEW_STEP), nfe=FEW_STEP["steps"])
        elif f.trains == ANCESTRAL:
            f = replace(f, trains=FEW_STEP_LABEL)
        out.append(f)
    return tuple(out)


def _digits(family: Family) -> Family:
    """The family's digits column: the same model by its digits recipe."""
    recipe = None if family.recipe is None else family.model + "-digits"
    return Family(family.label, family.model, recipe, family.options, family.nfe, family.trains)


FAMILIES_DIGITS = tuple(_digits(f) for f in FAMILIES_2D)
FAMILIES = FAMILIES_2D  # the default data set's
POINT_SETS = ("8gaussians", "moons", "rings", "checkerboard", "swissroll")
LR_FACTORS = (0.3, 3.0)
LIKELIHOOD_KEYS = ("nll", "nll_kind", "bits_per_dim", "n_nll")


def families_for(data: str) -> tuple[Family, ...]:
    return FAMILIES_DIGITS if data == "digits" else FAMILIES_2D


def _train(family: Family, data, seed: int, steps: int | None, lr_factor: float = 1.0):
    """(model, seconds, loss curve [(step, loss)], diverged reason or None); ``data``: the
    training split (a Dataset: images keep their labels for class-conditional recipes)."""
    x = np.asarray(data.x)
    if family.recipe is None:  # fitted by EM: the registered mixture of points or of pixels
        from ..registry import model_class

        t = time.perf_counter()
        if x.ndim > 2:  # one component per digit class
            model = model_class("pixel-gmm")(n_components=10, seed=seed).fit(x)
        else:
            model = model_class(family.model)(n_components=8, n_init=1, seed=seed).fit(x)
        return (
            model,
            time.perf_counter() - t,
            [(i + 1, -h) for i, h in enumerate(model.history_)],
            None,
        )
    from ..training.runconfig import RunConfig
    from ..training.runfolder import build, load_recipe
    from ..training.trainer import Trainer

    recipe = load_recipe(family.recipe)
    given = dict(recipe.get("train") or {})  # the recipe's own values, as the report used
    overrides = dict(seed=seed, progress=False, checkpoint_every=10**9, log_every=10**9)
    overrides["lr"] = given.get("lr", 1e-3) * lr_factor
    if steps is not None:
        overrides["steps"] = steps
        for key in ("decay_steps", "warmup_steps"):
            overrides[key] = min(given.get(key, 0), steps)
    cfg = RunConfig.from_dict(recipe, f"Recipe {family.recipe}").merge(overrides)
    model, _, train = build(cfg, data=data)  # the run folder's own code: seed, then model
    curve: list[tuple[int, float]] = []

    def record(step: int, metrics: dict) -> None:
        if "loss" in metrics and (not curve or curve[-1][0] != step):
            curve.append((step, metrics["loss"]))

    source = data if x.ndim > 2 else x.astype(np.float32)
    trainer = Trainer(model, source, train, on_step=record)
    t = time.perf_counter()
    try:
        trainer.train()
    except GenlabError as e:  # the NaN guard stopped it
        return model, time.perf_counter() - t, curve, str(e)
    return model, time.perf_counter() - t, curve, None


def _measure(family: Family, model, test, data_info: dict, n: int, seed: int, likelihood=True):
    out: dict[str, Any] = {}
    t = time.perf_counter()
    fake = model.sample(n, seed=seed, **family.options)
    out["sample_seconds"] = time.perf_counter() - t
    fake = fake.detach().cpu().numpy() if hasattr(fake, "detach") else np.asarray(fake)
    out["samples_per_s"] = n / out["sample_seconds"]
    out["_samples"] = fake[:1000]
    out["nfe"] = family.nfe(model) if callable(family.nfe) else family.nfe
    if not np.isfinite(fake).all():
        out["diverged"] = "non-finite samples"
        return out
    out["swd"] = M.sliced_wasserstein(test, fake)
    out["mmd"] = M.mmd_rbf(test, fake[: max(len(test), 1000)])
    if "centers" in data_info:
        out["modes_hit"], out["high_quality"] = M.mode_coverage(
            fake, data_info["centers"], data_info["std"]
        )
    if likelihood and (model.has_log_prob or model.has_elbo):
        from .evaluate import nll

        out["nll"], out["nll_kind"] = nll(model, test)
    return out


def _shipped(family: Family):
    """(model, its card's training seconds) of the family's shipped digits model."""
    from .. import assets

    name = f"{family.model}-digits"
    return assets.load_shipped(name), assets.card(name)["training_seconds"]


def _load(data: str):
    """(the data set, its training split, its held-out split), as the recipes cut them."""
    from ..data import load, load_spec

    if data == "digits":  # the part no feature network saw; the recipes' own split
        ds = load("digits", size=16, scale="pm1", part="models")
    else:
        ds = load_spec(data, n=6000) if data in POINT_SETS else load_spec(data)
        if ds.x.ndim != 2 or ds.x.shape[1] != 2:
            raise GenlabError("genlab compare measures digits or 2-D data (8gaussians, moons ...).")
    return ds, *ds.split(0.2, seed=0)


def compare(
    data: str = "8gaussians", seeds: int = 3, steps: int | None = None, n: int = 2000,
    families: tuple[str, ...] | None = None, lr_sweep: bool = True, progress=None,
    shipped: bool = False, nll_n: int | None = None, few_step: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Train and measure each family on ``data`` with ``seeds`` seeds (``steps``: override
    the recipes' training length, for quick runs; ``shipped``: measure the shipped digits
    models instead of training them; ``nll_n``: score at most this many held-out images;
    ``few_step``: draw the 1,000-step diffusion column with FEW_STEP); returns the
    report's numbers."""
    pool = families_for(data)
    if few_step:
        pool = with_few_steps(pool)
    chosen = [f for f in pool if families is None or f.model in families]
    if not chosen:
        raise GenlabError(f"No family among {families}; known: gmm, vae, hvae, gan, ...")
    if seeds < 1:
        raise GenlabError(f"--seeds must be at least 1, got {seeds}.")
    if nll_n is not None and nll_n < 1:
        raise GenlabError(f"--nll-n must be at least 1, got {nll_n}.")
    if n < 2 or (steps is not None and steps < 1):
        raise GenlabError(f"--n must be at least 2 and --steps at least 1, got {n} and {steps}.")
    if shipped and (data != "digits" or seeds != 1 or steps is not None):
        raise GenlabError("--shipped measures the shipped digits models: digits, one seed, "
                          "no --steps.")  # fmt: skip
    ds, train_set, test_set = _load(data)
    images = data == "digits"
    x, test = np.asarray(train_set.x), np.asarray(test_set.x)
    report: dict[str, Any] = {
        "data": data, "n_train": len(x), "n_test": len(test), "n_generated": n,
        "seeds": seeds, "steps": steps, "shipped": shipped, "few_step": few_step,
        "families": {},
    }  # fmt: skip
    if images:
        from .compare_images import References, measure_images

        refs = References(train_set, test_set, n)
        report["fd_floor"] = refs.fd_floor
        measure = lambda f, m, seed: measure_images(  # noqa: E731
            f, m, refs, n, seed, 0 if f.trains else nll_n
        )
    else:
        report["_test"] = test
        measure = lambda f, m, seed: _measure(  # noqa: E731
            f, m, test, ds.info, n, seed, likelihood=not f.trains
        )
    if ds.log_prob is not None:
        report["true_nll"] = float(-np.mean(ds.log_prob(test)))
    trained: dict[tuple[str, int], tuple] = {}
    for family in chosen:
        runs = []
        for seed in range(seeds):
            if progress:
                progress(f"{family.label}, seed {seed}")
            key = (family.trains or family.label, seed)
            if key not in trained:
                if shipped and family.recipe is not None:
                    trained[key] = (*_shipped(family), [], None)
                else:
                    trained[key] = _train(family, train_set, seed, steps)
            model, seconds, curve, diverged = trained[key]
            row = {"seed": seed, "train_seconds": seconds, "diverged": diverged,
                   "final_loss": _tail_mean(curve), "curve": curve}  # fmt: skip
            if diverged is None:
                row |= measure(family, model, seed)
            if family.trains:  # the same model: its likelihood was scored already
                shared = report["families"][family.trains]["runs"][seed]
                row |= {k: shared[k] for k in LIKELIHOOD_KEYS if k in shared}
            runs.append(row)
        entry = {"runs": runs, "summary": summarise(runs)}
        if lr_sweep and not shipped and family.recipe is not None and family.trains is None:
            entry["lr_sweep"] = {}
            for factor in LR_FACTORS:
                if progress:
                    progress(f"{family.label}, learning rate x{factor:g}")
                model, _, curve, diverged = _train(family, train_set, 0, steps, factor)
                m = {} if diverged else measure(family, model, 0)
                entry["lr_sweep"][factor] = {
                    "diverged": diverged or m.get("diverged"),
                    "swd": m.get("swd"), "fd": m.get("fd"),
                }  # fmt: skip
        report["families"][family.label] = entry
    return report


def _tail_mean(curve: list[tuple[int, float]]) -> float | None:
    """Mean loss over the last fifth of training."""
    if not curve:
        return None
    losses = [v for _, v in curve[-max(1, len(curve) // 5) :]]
    return float(np.mean(losses)) if all(math.isfinite(v) for v in losses) else None


def _spread(values: list[float]) -> tuple[float, float] | None:
    """Mean and a 95% interval half-width (t distribution) over seeds."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    if len(values) == 1:
        return values[0], float("nan")
    from scipy import stats

    half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values))
    return float(np.mean(values)), float(half)


def summarise(runs: list[dict]) -> dict[str, Any]:
    keys = ("nll", "swd", "mmd", "modes_hit", "high_quality", "train_seconds",
            "samples_per_s", "final_loss", "fd", "kid", "precision", "recall",
            "classes_covered", "copy_share", "distance_ratio", "bits_per_dim")  # fmt: skip
    out: dict[str, Any] = {k: _spread([r.get(k) for r in runs]) for k in keys}
    if len(runs) == 1 and out["fd"] is not None and "fd_half" in runs[0]:
        out["fd"] = (out["fd"][0], runs[0]["fd_half"])  # one model: the bootstrap interval
    out["diverged"] = sum(1 for r in runs if r.get("diverged"))
    out["nll_kind"] = next((r["nll_kind"] for r in runs if "nll_kind" in r), None)
    out["nfe"] = runs[0].get("nfe")
    losses = [r["final_loss"] for r in runs if r.get("final_loss") is not None]
    out["loss_cv"] = (
        float(np.std(losses) / abs(np.mean(losses)))
        if len(losses) > 1 and np.mean(losses)
        else None
    )
    return out
