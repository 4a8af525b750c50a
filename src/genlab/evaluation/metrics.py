"""Metrics that compare generated samples with real ones.

All functions take arrays of shape (N, D) (features, or 2-D points) and return floats.

- ``frechet_distance``: distance between Gaussians fitted to the two sets (FID when the
  features are Inception's; here the domain feature network's, so "FD").
- ``kid``: kernel inception distance, the unbiased MMD^2 with the cubic polynomial kernel
  (Binkowski et al., 2018), averaged over random subsets.
- ``precision_recall``: improved precision and recall with k-NN balls (Kynkaanniemi et
  al., 2019): precision = share of fakes inside the real manifold, recall = share of reals
  inside the fake manifold.
- ``sliced_wasserstein``: mean 1-D Wasserstein-1 distance over random projections.
- ``mmd_rbf``: unbiased MMD^2 with a Gaussian kernel (median-distance bandwidth).
- ``mode_coverage``: modes hit and share of high-quality samples (8 Gaussians).
- ``memorisation``: how much closer samples lie to their nearest training image than
  held-out images do (a sample nearer than held-out images ever are is a copy).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist


def _as2d(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), -1)


def frechet_distance(real, fake) -> float:
    """||mu_r - mu_f||^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2))."""
    a, b = _as2d(real), _as2d(fake)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(S_a S_b) = sum sqrt(eig(sqrt(S_a) S_b sqrt(S_a))), a symmetric PSD product.
    vals, vecs = np.linalg.eigh(s_a)
    root_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    mid = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    tr_sqrt = np.sqrt(np.clip(mid, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * tr_sqrt)


def _mmd2_unbiased(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    m, n = len(k_xx), len(k_yy)
    xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(xx + yy - 2 * k_xy.mean())


def kid(real, fake, *, subsets: int = 10, subset_size: int = 1000, seed: int = 0):
    """(mean, std) over subsets of the unbiased MMD^2 with k(x, y) = (x.y / D + 1)^3."""
    a, b = _as2d(real), _as2d(fake)
    size = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        values.append(
            _mmd2_unbiased((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        )
    return float(np.mean(values)), float(np.std(values))


def _knn_radius(x: np.ndarray, k: int) -> np.ndarray:
    dist = cdist(x, x)
    return np.partition(dist, k, axis=1)[:, k]  # column 0 is the point itself


def precision_recall(real, fake, *, k: int = 3) -> tuple[float, float]:
    a, b = _as2d(real), _as2d(fake)
    r_a, r_b = _knn_radius(a, k), _knn_radius(b, k)
    d_ab = cdist(b, a)  # fakes x reals
    precision = float((d_ab <= r_a[None, :]).any(1).mean())
    recall = float((d_ab.T <= r_b[None, :]).any(1).mean())
    return precision, recall


def sliced_wasserstein(real, fake, *, projections: int = 256, seed: int = 0) -> float:
    """Mean over random unit directions of W1 between the projected samples."""
    a, b = _as2d(real), _as2d(fake)
    dirs = np.random.default_rng(seed).standard_normal((a.shape[1], projections))
    dirs /= np.linalg.norm(dirs, axis=0)
    pa, pb = np.sort(a @ dirs, axis=0), np.sort(b @ dirs, axis=0)
    # W1 between two empirical 1-D distributions: integrate |F_a^-1 - F_b^-1| over quantiles.
    q = np.linspace(0, 1, max(len(a), len(b)) * 2 + 1)[1:-1:2]
    qa = pa[np.minimum((q * len(a)).astype(int), len(a) - 1)]
    qb = pb[np.minimum((q * len(b)).astype(int), len(b) - 1)]
    return float(np.abs(qa - qb).mean())


def mmd_rbf(real, fake, *, bandwidth: float | None = None) -> float:
    """Unbiased MMD^2 with exp(-|x - y|^2 / (2 h^2)); h defaults to the median distance."""
    a, b = _as2d(real), _as2d(fake)
    d_aa, d_bb, d_ab = (
        cdist(a, a, "sqeuclidean"),
        cdist(b, b, "sqeuclidean"),
        cdist(a, b, "sqeuclidean"),
    )
    h2 = bandwidth**2 if bandwidth else np.median(d_ab) / 2
    return _mmd2_unbiased(
        np.exp(-d_aa / (2 * h2)), np.exp(-d_bb / (2 * h2)), np.exp(-d_ab / (2 * h2))
    )


def mode_coverage(samples, centers, std: float, *, radius: float = 3.0, min_count: int = 1):
    """(modes hit, share of high-quality samples) for a mixture of isotropic Gaussians.

    A sample is high-quality if it lies within ``radius`` standard deviations of some
    center; a mode is hit if at least ``min_count`` high-quality samples are nearest to it.
    Mode collapse shows as few modes hit with a high quality share.
    """
    d = cdist(_as2d(samples), _as2d(centers))
    nearest, dist = d.argmin(1), d.min(1)
    good = dist <= radius * std
    counts = np.bincount(nearest[good], minlength=len(centers))
    return int((counts >= min_count).sum()), float(good.mean())


def nearest_distances(x, reference, batch: int = 1024) -> np.ndarray:
    """Euclidean distance of each row of ``x`` to its nearest row of ``reference``."""
    a, b = _as2d(x), _as2d(reference)
    return np.concatenate([cdist(a[i : i + batch], b).min(1) for i in range(0, len(a), batch)])


def memorisation(train, held_out, fake, *, quantile: float = 0.05) -> dict[str, float]:
    """Nearest-training-image distances of samples against those of held-out images (in
    pixel space). ``copy_share``: samples nearer to the training set than the ``quantile``
    of held-out images are (about ``quantile`` for a model that does not copy; near 1 for
    one that returns its training images); ``distance_ratio``: median sample distance over
    median held-out distance (below 1: samples hug the training set)."""
    d_held, d_fake = nearest_distances(held_out, train), nearest_distances(fake, train)
    threshold = np.quantile(d_held, quantile)
    return {
        "copy_share": float((d_fake < threshold).mean()),
        "distance_ratio": float(np.median(d_fake) / np.median(d_held)),
        "held_out_threshold": float(threshold),
    }
