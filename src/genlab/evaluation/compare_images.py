"""The comparison's measurements on digits (16x16): FD, KID and precision/recall on the
digits feature network against references that neither the generators nor the feature
network trained on; a memorisation check; classes covered; held-out NLL in bits/dim where
a model has a likelihood; samples per second.

The three parts of digits (see ``genlab.data.images``): the feature network trained on
``part="features"``; the generators train on the 80% training split of ``part="models"``;
the references are that part's held-out 20%.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..base import _numpy
from . import metrics as M

LEVELS = 17  # digits' pixels take k/16 values; bounds on discrete data use them


class References:
    """The data a digits measurement compares against, with features computed once; ``n``:
    the samples each measurement draws."""

    def __init__(self, train, held_out, n: int) -> None:
        from .features import digits_features

        self.train_x, self.x, self.y = train.x, held_out.x, held_out.y
        self.features = digits_features(self.x)
        # the floor: n training images' FD to the references (FD's bias depends on n, so
        # the floor is drawn with as many images as a model's measurement)
        pick = np.random.default_rng(0).permutation(len(train.x))[:n]
        self.fd_floor = M.frechet_distance(self.features, digits_features(train.x[pick]))


def _bits_per_dim(model, x: np.ndarray, nll_n: int | None) -> tuple[float, str, int] | None:
    """(held-out NLL in bits/dim, what kind, images scored), or None without a likelihood
    (or with ``nll_n`` 0: not asked for)."""
    if not (model.has_log_prob or model.has_elbo) or nll_n == 0:
        return None
    caps = [c for c in (model.nll_sample_cap, nll_n) if c is not None]
    x = x[: min(caps)] if caps else x
    dims = math.prod(x.shape[1:])
    discrete = model.dequantized_bits_per_dim(x)  # a flow's bound on the 17-level pixels
    if discrete is not None:
        return float(np.mean(_numpy(discrete))), "dequantized bound, 17 levels", len(x)
    values, kind = model.negative_log_likelihood(x, LEVELS)
    return float(np.mean(_numpy(values))) / (dims * math.log(2)), kind, len(x)


def _bootstrap_half(real: np.ndarray, fake: np.ndarray, seed: int, rounds: int = 50) -> float:
    """95% half-width of FD from resampling both sets: the measurement's own noise, the
    interval a single trained model gets (several seeds get theirs from the seeds)."""
    rng = np.random.default_rng(seed)
    values = [
        M.frechet_distance(
            real[rng.integers(0, len(real), len(real))], fake[rng.integers(0, len(fake), len(fake))]
        )
        for _ in range(rounds)
    ]
    return float(1.96 * np.std(values, ddof=1))


def measure_images(family, model, refs: References, n: int, seed: int, nll_n=None) -> dict:
    """Every digits figure of one trained model; ``n`` samples, drawn with ``seed``."""
    from .features import digits_features, digits_predict

    out: dict[str, Any] = {"n_generated": n, "n_reference": len(refs.x)}
    cond = np.arange(n) % 10 if getattr(model, "conditional", False) else None
    t = time.perf_counter()
    fake = _numpy(model.sample(n, seed=seed, cond=cond, **family.options))
    out["sample_seconds"] = time.perf_counter() - t
    out["samples_per_s"] = n / out["sample_seconds"]
    out["nfe"] = family.nfe(model) if callable(family.nfe) else family.nfe
    out["_samples"] = fake[:64]
    if not np.isfinite(fake).all():
        out["diverged"] = "non-finite samples"
        return out
    f_fake = digits_features(fake)
    out["fd"] = M.frechet_distance(refs.features, f_fake)
    out["fd_half"] = _bootstrap_half(refs.features, f_fake, seed)
    out["kid"], _ = M.kid(refs.features, f_fake, subset_size=min(len(refs.x), n))
    out["precision"], out["recall"] = M.precision_recall(refs.features, f_fake)
    counts = np.bincount(digits_predict(fake), minlength=10)
    out["classes_covered"] = int((counts >= 0.2 * n / 10).sum())  # a fifth of a fair share
    out |= M.memorisation(refs.train_x, refs.x, fake)
    scored = _bits_per_dim(model, refs.x, nll_n)
    if scored is not None:
        out["bits_per_dim"], out["nll_kind"], out["n_nll"] = scored
    return out
