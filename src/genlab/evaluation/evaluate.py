"""``genlab eval`` for trained models: likelihood and sample-quality metrics, written to
``eval.json``. The number of generated samples and the reference set are recorded with
every figure.

Images (1 channel): FD, KID and precision/recall (k=3) on the digits feature network,
generated samples against the held-out split; NLL on the held-out split where the model
has a density or a bound (IWAE, k=100). 2-D data: NLL, sliced Wasserstein distance and
MMD against the held-out split.

The references are the held-out split as the recipes cut it (20%, split seed 0), the
images ``genlab compare`` measures against: for every digits recipe (data part "models")
the 288 digits that neither a generator nor the feature network trained on. Against the
training split a model that copies its training images would score best.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GenlabError
from . import metrics as M

IMAGE_METRICS = ("nll", "fd", "kid", "pr", "fid")  # fid: Inception FID, weights by path
POINT_METRICS = ("nll", "swd", "mmd")


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def nll(model, x: np.ndarray, levels: int = 256) -> tuple[float, str]:
    """Average negative log-likelihood in nats per sample, and how it was obtained (the
    model's capability flags say whether it has one). ``levels``: how many values a pixel
    takes, for bounds on discrete data (diffusion)."""
    if not (model.has_log_prob or model.has_elbo):
        raise GenlabError(f"The {model.name} model has no likelihood; drop nll from --metrics.")
    values, kind = model.negative_log_likelihood(x, levels)
    return float(np.mean(_numpy(values))), kind


def evaluate(
    model,
    train_x: np.ndarray,
    test_x: np.ndarray | None,
    metrics: tuple[str, ...] | None = None,
    n: int = 1000,
    seed: int = 0,
    modes: tuple[np.ndarray, float] | None = None,
    plot_dir: Path | None = None,
    levels: int = 256,
    inception: str | Path | None = None,
) -> dict[str, Any]:
    """``levels``: values a pixel takes (likelihood bounds); ``inception``: the FID
    Inception weights (safetensors) for "fid"."""
    images = train_x.ndim == 4
    allowed = IMAGE_METRICS if images else POINT_METRICS
    if metrics is None:
        metrics = tuple(
            m
            for m in allowed
            if (m != "nll" or model.has_log_prob or model.has_elbo) and (m != "fid" or inception)
        )
    bad = [m for m in metrics if m not in allowed]
    if bad:
        kind = "images" if images else "point data"
        raise GenlabError(
            f"Metric '{bad[0]}' is not available for {kind}; use {', '.join(allowed)}."
        )
    if "fid" in metrics and inception is None:
        raise GenlabError(
            "Inception FID needs the FID Inception weights: pass --inception PATH.safetensors "
            "(genlab never downloads them)."
        )
    t0 = time.perf_counter()
    fake = _numpy(model.sample(n, seed=seed))
    result: dict[str, Any] = {"n_generated": n, "sample_seconds": time.perf_counter() - t0}
    if images and {"fd", "kid", "pr", "fid"} & set(metrics) and test_x is None:
        raise GenlabError(
            "FD, KID, precision/recall and FID compare with the held-out split, and this run "
            "kept none (test_fraction 0): train it with a held-out split to measure these."
        )
    if "nll" in metrics:
        if test_x is None:
            raise GenlabError("No held-out split to measure NLL on.")
        scored = test_x[: model.nll_sample_cap]  # None keeps all
        result["nll"], result["nll_kind"] = nll(model, scored, levels)
        result["n_nll"] = len(scored)
        if images:
            result["nll_bits_per_dim"] = result["nll"] / (np.prod(scored.shape[1:]) * np.log(2))
        bpd = model.dequantized_bits_per_dim(scored)  # discrete pixels: a flow's bound
        if bpd is not None:
            result["bits_per_dim"] = float(np.mean(_numpy(bpd)))
    if "fid" in metrics:
        from .inception import inception_fid

        real = test_x[:n]  # at most as many real images as generated ones (a shuffled split)
        low = -1.0 if test_x.min() < 0 else 0.0  # images in [-1, 1] or [0, 1]
        result["inception_fid"], result["inception_sha256"] = inception_fid(
            real, fake, inception, low=low
        )
        result["inception_n_real"] = len(real)
    if images and {"fd", "kid", "pr"} & set(metrics):
        if train_x.shape[1] != 1:
            raise GenlabError(
                "FD/KID/PR need a feature network; genlab has one for digits (1 channel)."
            )
        from .features import digits_features

        f_real, f_fake = digits_features(test_x), digits_features(fake)
        result["reference"] = f"held-out split ({len(test_x)} images), digits features"
        result["n_reference"] = len(test_x)
        if "fd" in metrics:
            result["fd"] = M.frechet_distance(f_real, f_fake)
        if "kid" in metrics:
            result["kid"], result["kid_std"] = M.kid(f_real, f_fake)
        if "pr" in metrics:
            result["precision"], result["recall"] = M.precision_recall(f_real, f_fake)
    else:
        ref = test_x if test_x is not None else train_x
        result["reference"] = f"held-out split ({len(ref)} points)"
        if "swd" in metrics:
            result["swd"] = M.sliced_wasserstein(ref, fake)
        if "mmd" in metrics:
            result["mmd"] = M.mmd_rbf(ref, fake[: max(len(ref), 1000)])
        if modes is not None:  # data with known modes (8 Gaussians): is any mode dropped?
            result["modes_hit"], result["high_quality"] = M.mode_coverage(fake, *modes)
            result["modes_total"] = len(modes[0])
            if plot_dir is not None:
                from ..viz.plots import mode_coverage, save

                hit, quality = result["modes_hit"], result["high_quality"]
                save(mode_coverage(fake, *modes, hit, quality), plot_dir / "mode_coverage.png")
    return result


def evaluate_run(
    run_dir: str | Path,
    metrics: tuple[str, ...] | None = None,
    n: int = 1000,
    inception: str | Path | None = None,
):
    from ..runs import is_shipped, open_run, run_folder, write_json

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise GenlabError(f"--n (samples to draw) must be a whole number of at least 1, got {n!r}.")
    run_dir = run_folder(run_dir)  # a shipped model's name works too (nothing written there)
    shipped = is_shipped(run_dir)
    meta, model, train, test = open_run(run_dir)
    modes = (train.info["centers"], train.info["std"]) if "centers" in train.info else None
    test_x = None if test is None else test.x
    plot_dir = None if shipped else Path(run_dir) / "plots"
    if not model.generative:  # a part (classifier, autoencoder): its own held-out figures
        if test is None:
            raise GenlabError("The run kept no held-out split to evaluate on.")
        result = {"model": meta["model"], "data": meta["data"], **model.held_out_metrics(test)}
        if not shipped:
            write_json(Path(run_dir) / "eval.json", result)
        return result
    levels = train.info.get("levels", 256)
    result = evaluate(
        model, train.x, test_x, metrics, n, modes=modes, plot_dir=plot_dir, levels=levels,
        inception=inception,
    )  # fmt: skip
    result = {"model": meta["model"], "data": meta["data"], **result}
    if not shipped:
        write_json(Path(run_dir) / "eval.json", result)
    return result


def evaluate_folder(
    run_dir: str | Path,
    data: str | None = None,
    metrics: tuple[str, ...] | None = None,
    n: int = 1000,
    inception: str | Path | None = None,
) -> dict[str, Any]:
    """``genlab eval`` of any run (or shipped model): a closed-form model asked for no metrics
    answers held-out log-likelihood, BIC and AIC on its split or on ``data``; every other
    run the metrics of ``evaluate_run`` on its own data."""
    from ..registry import entry
    from ..runs import eval_run, read_meta, run_folder

    run_dir = run_folder(run_dir)
    if entry(read_meta(run_dir)["model"]).kind == "classical" and not metrics:
        return eval_run(run_dir, data)
    if data:
        raise GenlabError("--data applies to closed-form models; trained runs use their own.")
    return evaluate_run(run_dir, metrics, n=n, inception=inception)
