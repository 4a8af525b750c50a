"""``genlab compare``: every family trained by its packaged recipe on the same 2-D data, with
several seeds, measured the same way: held-out likelihood (exact, a bound, or none),
stability (spread over seeds, diverged runs, learning-rate sensitivity), fidelity (sliced
Wasserstein distance and MMD to held-out points, modes hit on 8 Gaussians) and speed
(training time, samples per second, network evaluations per sample)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
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


FAMILIES = (
    Family("Gaussian mixture (EM)", "gmm", None, nfe=0),
    Family("VAE", "vae", "vae-moons"),
    Family("hierarchical VAE", "hvae", "hvae-moons"),
    Family("GAN", "gan", "gan-8gaussians"),
    Family("RealNVP flow", "realnvp", "realnvp-8gaussians"),
    Family("energy-based (Langevin)", "ebm", "ebm-8gaussians", nfe=lambda m: m.sample_steps),
    Family(
        "diffusion, DDPM 1000 steps",
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
        trains="diffusion, DDPM 1000 steps",
    ),
)
LR_FACTORS = (0.3, 3.0)


def _train(family: Family, x: np.ndarray, seed: int, steps: int | None, lr_factor: float = 1.0):
    """(model, seconds, loss curve [(step, loss)], diverged reason or None)."""
    if family.recipe is None:
        from ..models.mixture import GaussianMixture

        t = time.perf_counter()
        model = GaussianMixture(n_components=8, n_init=1, seed=seed).fit(x)
        return (
            model,
            time.perf_counter() - t,
            [(i + 1, -h) for i, h in enumerate(model.history_)],
            None,
        )
    import torch

    from ..registry import model_class
    from ..training.runfolder import load_recipe
    from ..training.trainer import TrainConfig, Trainer

    recipe = load_recipe(family.recipe)
    train = dict(recipe.get("train", {}))
    train.update(seed=seed, progress=False, checkpoint_every=10**9, log_every=10**9)
    train["lr"] = train.get("lr", 1e-3) * lr_factor
    if steps is not None:
        train["steps"] = steps
        for key in ("decay_steps", "warmup_steps"):
            train[key] = min(train.get(key, 0), steps)
    torch.manual_seed(seed)
    model = model_class(family.model)((x.shape[1],), **recipe.get("model_config", {}))
    curve: list[tuple[int, float]] = []

    def record(step: int, metrics: dict) -> None:
        if "loss" in metrics and (not curve or curve[-1][0] != step):
            curve.append((step, metrics["loss"]))

    trainer = Trainer(model, x.astype(np.float32), TrainConfig.make(model, train), on_step=record)
    t = time.perf_counter()
    try:
        trainer.train()
    except GenlabError as e:  # the NaN guard stopped it
        return model, time.perf_counter() - t, curve, str(e)
    return model, time.perf_counter() - t, curve, None


def _measure(family: Family, model, test: np.ndarray, data_info: dict, n: int, seed: int):
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
    if model.has_log_prob or model.has_elbo:
        from .evaluate import nll

        out["nll"], out["nll_kind"] = nll(model, test)
    return out


def compare(
    data: str = "8gaussians", seeds: int = 3, steps: int | None = None, n: int = 2000,
    families: tuple[str, ...] | None = None, lr_sweep: bool = True, progress=None,
) -> dict[str, Any]:  # fmt: skip
    """Train and measure each family on ``data`` with ``seeds`` seeds (``steps``: override
    the recipes' training length, for quick runs); returns the report's numbers."""
    from ..data import load_spec

    chosen = [f for f in FAMILIES if families is None or f.model in families]
    if not chosen:
        raise GenlabError(f"No family among {families}; known: gmm, vae, hvae, gan, ...")
    if seeds < 1:
        raise GenlabError(f"--seeds must be at least 1, got {seeds}.")
    if n < 2 or (steps is not None and steps < 1):
        raise GenlabError(f"--n must be at least 2 and --steps at least 1, got {n} and {steps}.")
    ds = load_spec(data, n=6000) if data in ("8gaussians", "moons", "rings", "checkerboard",
                                             "swissroll") else load_spec(data)  # fmt: skip
    if ds.x.ndim != 2 or ds.x.shape[1] != 2:
        raise GenlabError("genlab compare measures 2-D data sets for now (8gaussians, moons ...).")
    train_set, test_set = ds.split(0.2, seed=0)
    x, test = np.asarray(train_set.x), np.asarray(test_set.x)
    report: dict[str, Any] = {
        "data": data, "n_train": len(x), "n_test": len(test), "n_generated": n,
        "seeds": seeds, "steps": steps, "families": {},
    }  # fmt: skip
    report["_test"] = test
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
                trained[key] = _train(family, x, seed, steps)
            model, seconds, curve, diverged = trained[key]
            row = {"seed": seed, "train_seconds": seconds, "diverged": diverged,
                   "final_loss": _tail_mean(curve), "curve": curve}  # fmt: skip
            if diverged is None:
                row |= _measure(family, model, test, ds.info, n, seed)
            runs.append(row)
        entry = {"runs": runs, "summary": summarise(runs)}
        if lr_sweep and family.recipe is not None and family.trains is None:
            entry["lr_sweep"] = {}
            for factor in LR_FACTORS:
                if progress:
                    progress(f"{family.label}, learning rate x{factor:g}")
                model, _, curve, diverged = _train(family, x, 0, steps, factor)
                m = {} if diverged else _measure(family, model, test, ds.info, n, 0)
                entry["lr_sweep"][factor] = {"diverged": diverged or m.get("diverged"),
                                             "swd": m.get("swd")}  # fmt: skip
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
            "samples_per_s", "final_loss")  # fmt: skip
    out: dict[str, Any] = {k: _spread([r.get(k) for r in runs]) for k in keys}
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
