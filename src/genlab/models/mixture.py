"""Gaussian mixture trained by expectation-maximization (EM).

The speed comes from one observation: for every covariance type the log of
``w_k N(x | mu_k, Sigma_k)`` is linear in a small feature vector of x,

    phi(x) = [1, x_1 .. x_d, quadratic terms]     (quadratic: x_i x_j for i <= j, or x_j^2,
                                                   or |x|^2, by covariance type)
    log w_k + log N(x | mu_k, Sigma_k) = phi(x) @ W[:, k],

and the M-step needs only the sufficient statistics ``resp^T phi`` (counts, first and second
moments per component). So one EM iteration is a single pass over the data in cache-sized
chunks: two small matrix products and a log-sum-exp per chunk, no (N, K, d) temporaries.
The data are centred first, which keeps the expanded quadratic forms accurate in float64.

The estimator follows scikit-learn's API and initialisation options, so that a run can be
compared with ``sklearn.mixture.GaussianMixture`` from the same start.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from scipy.special import ndtr

from ..base import GenerativeModel
from ..errors import DataError, GenlabError
from ..options import Option
from .events import parse_interval
from .gaussian import LOG_2PI, _Fitted, table_of

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")
TINY = 10 * np.finfo(np.float64).eps  # added to component counts, as scikit-learn does


class ConvergenceWarning(UserWarning):
    """EM stopped at max_iter before the change in lower bound fell below tol."""


class DegenerateComponentWarning(UserWarning):
    """A component's covariance was not positive definite and was regularized further."""


# --- the feature map and its weights -------------------------------------------------------
def _pairs(d: int, covariance_type: str) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) of the quadratic features; spherical uses one |x|^2 feature."""
    if covariance_type in ("full", "tied"):
        return np.triu_indices(d)
    if covariance_type == "diag":
        return np.arange(d), np.arange(d)
    return np.zeros(1, dtype=int), np.zeros(1, dtype=int)


def n_features(d: int, covariance_type: str) -> int:
    return 1 + d + len(_pairs(d, covariance_type)[0])


def features(xt: np.ndarray, covariance_type: str) -> np.ndarray:
    """phi(x) = [1, x, quadratic terms] for a chunk given feature-major: (d, B) -> (F, B).

    Feature-major layout makes the per-sample reductions over components (max, sum) run
    across contiguous rows, which NumPy vectorizes; along a short last axis they are slow.
    """
    d, b = xt.shape
    phi = np.empty((n_features(d, covariance_type), b), xt.dtype)
    phi[0] = 1.0
    phi[1 : 1 + d] = xt
    if covariance_type == "spherical":
        np.einsum("ib,ib->b", xt, xt, out=phi[1 + d])
    elif covariance_type in ("full", "tied"):
        # triu_indices runs row by row, so the pairs (i, i..d-1) are one block of rows:
        # one broadcast product per i instead of one call per pair (Python's share of a
        # chunk's time is large at d = 8: 8 calls instead of 36)
        f = 1 + d
        for i in range(d):
            np.multiply(xt[i], xt[i:], out=phi[f : f + d - i])
            f += d - i
    else:
        rows, cols = _pairs(d, covariance_type)
        for f, (i, j) in enumerate(zip(rows, cols, strict=True), start=1 + d):
            np.multiply(xt[i], xt[j], out=phi[f])
    return phi


def feature_major(x: np.ndarray, shift: np.ndarray, dtype=np.float64) -> np.ndarray:
    """(x - shift)^T as a C-contiguous (d, B) array."""
    return np.subtract(x.T, shift[:, None], dtype=dtype, order="C")


def precision_matrices(prec_chol: np.ndarray, covariance_type: str, k: int, d: int):
    """Dense precisions (K, d, d) and log det of each precision Cholesky factor (K,)."""
    if covariance_type == "full":
        return prec_chol @ prec_chol.transpose(0, 2, 1), np.log(
            np.diagonal(prec_chol, axis1=1, axis2=2)
        ).sum(1)
    if covariance_type == "tied":
        p = prec_chol @ prec_chol.T
        return np.broadcast_to(p, (k, d, d)), np.full(k, np.log(np.diag(prec_chol)).sum())
    if covariance_type == "diag":
        return np.einsum("kj,ij->kij", prec_chol**2, np.eye(d)), np.log(prec_chol).sum(1)
    return prec_chol[:, None, None] ** 2 * np.eye(d), d * np.log(prec_chol)


def natural_weights(weights, means, prec_chol, covariance_type: str) -> np.ndarray:
    """W (F, K) with ``phi(x) @ W = log w_k + log N(x | mu_k, Sigma_k)`` for centred x."""
    k, d = means.shape
    p, log_det = precision_matrices(prec_chol, covariance_type, k, d)
    p_mu = np.einsum("kij,kj->ki", p, means)
    w = np.empty((n_features(d, covariance_type), k))
    w[0] = np.log(weights) + log_det - 0.5 * d * LOG_2PI - 0.5 * np.einsum("ki,ki->k", means, p_mu)
    w[1 : 1 + d] = p_mu.T
    rows, cols = _pairs(d, covariance_type)
    # -x^T P x / 2 = sum_i -P_ii x_i^2 / 2 + sum_{i<j} -P_ij x_i x_j
    w[1 + d :] = np.where(rows == cols, -0.5, -1.0)[:, None] * p[:, rows, cols].T
    return w


# --- one pass over the data -----------------------------------------------------------------
def _chunk_size(n_cols: int) -> int:
    # About 2^18 numbers per buffer: large enough to amortise Python, small enough for cache.
    return max(256, (1 << 18) // max(n_cols, 1))


def _n_threads() -> int:
    return max(1, min(os.cpu_count() or 1, int(os.environ.get("GENLAB_NUM_THREADS", 8))))


@functools.cache
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="genlab-em")


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _pass(x, shift, w, covariance_type, dtype, *, stats=True, resp_out=None, ll_out=None):
    """One pass: the total log-likelihood, and resp^T phi if ``stats`` (E- and M-step sums).

    ``resp_out`` / ``ll_out`` receive responsibilities / per-sample log-likelihoods if given.
    """
    n, _d = x.shape
    f, k = w.shape
    size = _chunk_size(max(f, k))
    w_t = np.ascontiguousarray(w.T, dtype=dtype)  # (K, F)
    # exp is up to 40x slower where its result nears underflow. Below this floor a
    # responsibility is under 1e-130 (float64) or 4e-18 (float32): zero for every sum here.
    floor = -300.0 if dtype == np.float64 else -40.0
    starts = range(0, n, size)

    def work(start: int):
        stop = min(start + size, n)
        phi = features(feature_major(x[start:stop], shift, dtype), covariance_type)  # (F, B)
        log_joint = w_t @ phi  # (K, B): log w_k + log N(x | k)
        top = log_joint.max(0)
        log_joint -= top
        np.maximum(log_joint, floor, out=log_joint)
        np.exp(log_joint, out=log_joint)
        total = log_joint.sum(0)
        ll = np.log(total) + top  # (B,) log p(x)
        log_joint /= total  # now the responsibilities
        if resp_out is not None:
            resp_out[start:stop] = log_joint.T
        if ll_out is not None:
            ll_out[start:stop] = ll
        s = (log_joint @ phi.T).astype(np.float64) if stats else None
        return float(ll.sum(dtype=np.float64)), s

    threads = _n_threads()
    if threads > 1 and len(starts) > 1:
        # Chunks run in parallel threads; BLAS threads inside them would oversubscribe cores.
        with _blas_controller().limit(limits=1, user_api="blas"):
            parts = list(_pool(threads).map(work, starts))
    else:
        parts = [work(s) for s in starts]
    log_lik = sum(p[0] for p in parts)
    return log_lik, (sum(p[1] for p in parts) if stats else None)


# --- the M-step from sufficient statistics ---------------------------------------------------
def m_step(stats: np.ndarray, d: int, covariance_type: str, reg_covar: float):
    """Weights, means (centred) and covariances from ``stats = resp^T phi`` (K, F)."""
    nk = stats[:, 0] + TINY
    means = stats[:, 1 : 1 + d] / nk[:, None]
    second = stats[:, 1 + d :]
    k = len(nk)
    if covariance_type in ("full", "tied"):
        rows, cols = _pairs(d, covariance_type)
        moment = np.zeros((k, d, d))
        moment[:, rows, cols] = second
        moment[:, cols, rows] = second  # sum_n r_nk x x^T, symmetric
        if covariance_type == "full":
            cov = moment / nk[:, None, None] - means[:, :, None] * means[:, None, :]
            cov[:, np.arange(d), np.arange(d)] += reg_covar
        else:
            cov = (moment.sum(0) - np.einsum("k,ki,kj->ij", nk, means, means)) / nk.sum()
            cov[np.diag_indices(d)] += reg_covar
    elif covariance_type == "diag":
        cov = second / nk[:, None] - means**2 + reg_covar
    else:
        cov = (second[:, 0] / nk - (means**2).sum(1)) / d + reg_covar
    weights = nk / nk.sum()
    return weights, means, cov


def precision_cholesky(cov: np.ndarray, covariance_type: str, reg_covar: float):
    """Cholesky factors of the precisions; a covariance that is not positive definite gets
    more regularization (with a warning) instead of failing, so EM never yields NaN."""
    floor = max(reg_covar, 1e-10)
    if covariance_type in ("diag", "spherical"):
        bad = ~(cov > 0)
        if bad.any():
            _warn_degenerate(np.argwhere(bad)[:, 0], floor)
            cov = np.where(bad, floor, cov)
        return 1.0 / np.sqrt(cov), cov
    mats = cov[None] if covariance_type == "tied" else cov.copy()
    d = mats.shape[-1]
    try:  # the common case, batched: all components positive definite
        chol = np.linalg.cholesky(mats)
    except np.linalg.LinAlgError:
        chol = np.stack([_repaired_cholesky(mats, i, floor) for i in range(len(mats))])
    # precision = inv(L)^T inv(L), so its Cholesky factor is inv(L)^T (upper triangular)
    out = np.linalg.solve(chol, np.broadcast_to(np.eye(d), chol.shape)).transpose(0, 2, 1)
    if covariance_type == "tied":
        return out[0], mats[0]
    return out, mats


def _repaired_cholesky(mats: np.ndarray, i: int, floor: float) -> np.ndarray:
    """Cholesky factor of ``mats[i]``, adding to its diagonal (in place) until it exists."""
    m, d = mats[i], mats.shape[-1]
    extra = 0.0
    while True:
        try:
            chol = np.linalg.cholesky(m + extra * np.eye(d))
            break
        except np.linalg.LinAlgError:
            extra = floor if extra == 0.0 else extra * 10
            if extra > 1e6 * max(1.0, np.abs(m).max()):
                msg = f"Component {i} has a covariance that cannot be repaired."
                raise GenlabError(msg) from None
    if extra:
        _warn_degenerate([i], extra)
        mats[i] = m + extra * np.eye(d)
    return chol


def _warn_degenerate(components, amount: float) -> None:
    warnings.warn(
        f"Mixture component(s) {sorted(set(int(c) for c in components))} collapsed (covariance "
        f"not positive definite); regularized by adding {amount:.3g} to the diagonal. "
        "Consider fewer components or a larger reg_covar.",
        DegenerateComponentWarning,
        stacklevel=4,
    )


def precisions_from_init(precisions: np.ndarray, covariance_type: str):
    """(precision Cholesky, covariances) from scikit-learn-style ``precisions_init``."""
    p = np.asarray(precisions, dtype=float)
    if covariance_type in ("diag", "spherical"):
        return np.sqrt(p), 1.0 / p
    if covariance_type == "full":
        return np.linalg.cholesky(p), np.linalg.inv(p)
    return np.linalg.cholesky(p), np.linalg.inv(p)


# --- initialisation --------------------------------------------------------------------------
def kmeans_plusplus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur and Vassilvitskii, 2007), with greedy local trials."""
    n = len(x)
    trials = 2 + int(math.log(k))
    centers = [x[rng.integers(n)]]
    dist = ((x - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        cand = np.searchsorted(np.cumsum(dist), rng.random(trials) * dist.sum())
        cand = np.minimum(cand, n - 1)
        cand_dist = np.minimum(dist[None], ((x[None] - x[cand][:, None]) ** 2).sum(-1))
        best = int(np.argmin(cand_dist.sum(1)))
        centers.append(x[cand[best]])
        dist = cand_dist[best]
    return np.array(centers)


def nearest(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest center for every row, in chunks."""
    out = np.empty(len(x), dtype=np.int64)
    c2 = (centers**2).sum(1)
    size = _chunk_size(len(centers))
    for s in range(0, len(x), size):
        out[s : s + size] = np.argmin(c2 - 2 * x[s : s + size] @ centers.T, axis=1)
    return out


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, max_iter: int = 100) -> np.ndarray:
    """Lloyd's algorithm from k-means++ seeds; returns the hard labels."""
    centers = kmeans_plusplus(x, k, rng)
    labels = nearest(x, centers)
    for _ in range(max_iter):
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(centers)
        for j in range(x.shape[1]):
            sums[:, j] = np.bincount(labels, weights=x[:, j], minlength=k)
        empty = counts == 0
        centers = np.where(empty[:, None], centers, sums / np.maximum(counts, 1)[:, None])
        new = nearest(x, centers)
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def initial_stats(x, k, covariance_type, init, rng) -> np.ndarray:
    """Sufficient statistics ``resp^T phi`` of the initial responsibilities chosen by ``init``
    (``x`` already centred)."""
    n = len(x)
    if init == "random":
        resp = rng.uniform(size=(n, k))
        resp /= resp.sum(1, keepdims=True)
    else:
        if init == "kmeans":
            labels = kmeans(x, k, rng)
        elif init == "k-means++":
            labels = nearest(x, kmeans_plusplus(x, k, rng))
        else:  # random_from_data
            labels = nearest(x, x[rng.choice(n, size=k, replace=False)])
        resp = np.zeros((n, k))
        resp[np.arange(n), labels] = 1.0
    size = _chunk_size(k)
    zero = np.zeros(x.shape[1])
    return sum(
        resp[s : s + size].T @ features(feature_major(x[s : s + size], zero), covariance_type).T
        for s in range(0, n, size)
    )


# --- the estimator ---------------------------------------------------------------------------
class GaussianMixture(_Fitted, GenerativeModel):
    """Gaussian mixture model fitted by EM, with scikit-learn's parameters and attributes.

    Parameters
    ----------
    n_components : number of components K.
    covariance_type : "full", "tied", "diag" or "spherical".
    tol : stop when the average log-likelihood improves by less than this.
    reg_covar : added to covariance diagonals (keeps them positive definite).
    max_iter, n_init : EM iterations per start, and starts (the best is kept).
    init_params : "kmeans" (k-means++ then Lloyd), "k-means++" (seeds only), "random"
        (random responsibilities) or "random_from_data" (random points as centers).
    weights_init, means_init, precisions_init : a given start, as in scikit-learn.
    seed : seed of the initialisation.
    dtype : "float64" (default) or "float32" (faster, less exact).

    Attributes after ``fit``: ``weights_`` (K,), ``means_`` (K, d), ``covariances_``,
    ``precisions_cholesky_``, ``lower_bound_``, ``n_iter_``, ``converged_``, and ``history_``,
    the average log-likelihood before each iteration's M-step (never decreasing).
    """

    name = "gmm"
    sample_options = (Option("return_labels", bool, False, "also return each sample's component"),)
    has_log_prob = True

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        seed: int | None = None,
        dtype: str = "float64",
    ) -> None:
        self.n_components = int(n_components)
        self.covariance_type = covariance_type
        self.tol, self.reg_covar = float(tol), float(reg_covar)
        self.max_iter, self.n_init = int(max_iter), int(n_init)
        self.init_params = init_params
        self.weights_init, self.means_init, self.precisions_init = (
            weights_init,
            means_init,
            precisions_init,
        )
        self.seed = seed
        self.dtype = dtype
        self.fitted_ = False
        self._check_params()

    def _check_params(self) -> None:
        if self.covariance_type not in COVARIANCE_TYPES:
            raise GenlabError(
                f"covariance_type must be one of {', '.join(COVARIANCE_TYPES)}, "
                f"got '{self.covariance_type}'."
            )
        if self.init_params not in INIT_METHODS:
            raise GenlabError(
                f"init_params must be one of {', '.join(INIT_METHODS)}, got '{self.init_params}'."
            )
        if self.n_components < 1 or self.max_iter < 1 or self.n_init < 1:
            raise GenlabError("n_components, max_iter and n_init must be at least 1.")
        if self.dtype not in ("float64", "float32"):
            raise GenlabError(f"dtype must be 'float64' or 'float32', got '{self.dtype}'.")
        if not (0 <= self.tol < float("inf")) or not (0 <= self.reg_covar < float("inf")):
            raise GenlabError(
                f"tol and reg_covar must be finite and at least 0, got {self.tol} and "
                f"{self.reg_covar}."
            )

    # --- fitting ----------------------------------------------------------------------------
    def fit(self, data: Any, config: Any = None) -> GaussianMixture:
        x = table_of(data)
        n, _d = x.shape
        if n < self.n_components:
            raise DataError(f"{n} samples are too few for {self.n_components} mixture components.")
        shift = x.mean(0)
        rng = np.random.default_rng(self.seed)
        given = self.weights_init is not None and self.means_init is not None
        best = None
        for _ in range(1 if given and self.precisions_init is not None else self.n_init):
            params = self._start(x, shift, rng)
            run = self._em(x, shift, *params)
            if best is None or run["lower_bound_"] > best["lower_bound_"]:
                best = run
        for key, value in best.items():
            setattr(self, key, value)
        self.fitted_ = True
        if not self.converged_:
            warnings.warn(
                f"EM did not converge in {self.max_iter} iterations (tol={self.tol}); "
                "raise max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _start(self, x, shift, rng):
        """Initial (weights, centred means, precision Cholesky, covariances)."""
        k, d, ct = self.n_components, x.shape[1], self.covariance_type
        need_stats = self.weights_init is None or self.means_init is None
        need_stats = need_stats or self.precisions_init is None
        if need_stats:
            stats = initial_stats(x - shift, k, ct, self.init_params, rng)
            weights, means, cov = m_step(stats, d, ct, self.reg_covar)
        if self.weights_init is not None:
            weights = np.asarray(self.weights_init, dtype=float)
        if self.means_init is not None:
            means = np.asarray(self.means_init, dtype=float) - shift
        if self.precisions_init is not None:
            prec_chol, cov = precisions_from_init(self.precisions_init, ct)
        else:
            prec_chol, cov = precision_cholesky(cov, ct, self.reg_covar)
        return weights, means, prec_chol, cov

    def _em(self, x, shift, weights, means, prec_chol, cov) -> dict[str, Any]:
        n, d = x.shape
        ct, dtype = self.covariance_type, np.dtype(self.dtype)
        history: list[float] = []
        converged = False
        for _ in range(self.max_iter):
            w = natural_weights(weights, means, prec_chol, ct)
            log_lik, stats = _pass(x, shift, w, ct, dtype)
            history.append(log_lik / n)
            weights, means, cov = m_step(stats, d, ct, self.reg_covar)
            prec_chol, cov = precision_cholesky(cov, ct, self.reg_covar)
            if len(history) > 1 and abs(history[-1] - history[-2]) < self.tol:
                converged = True
                break
        return {
            "weights_": weights,
            "means_": means + shift,
            "covariances_": cov,
            "precisions_cholesky_": prec_chol,
            "lower_bound_": history[-1],
            "history_": history,
            "n_iter_": len(history),
            "converged_": converged,
        }

    # --- using a fitted mixture -------------------------------------------------------------
    def _weights_matrix(self):
        shift = self.weights_ @ self.means_
        w = natural_weights(
            self.weights_, self.means_ - shift, self.precisions_cholesky_, self.covariance_type
        )
        return shift, w

    def log_prob(self, x: Any) -> np.ndarray:
        """log p(x) for every row (scikit-learn's ``score_samples``)."""
        self._check_fitted()
        x = table_of(x, dim=self.means_.shape[1])
        shift, w = self._weights_matrix()
        out = np.empty(len(x))
        _pass(x, shift, w, self.covariance_type, np.float64, stats=False, ll_out=out)
        return out

    def predict_proba(self, x: Any) -> np.ndarray:
        """Responsibilities p(z = k | x), shape (N, K)."""
        self._check_fitted()
        x = table_of(x, dim=self.means_.shape[1])
        shift, w = self._weights_matrix()
        out = np.empty((len(x), self.n_components))
        _pass(x, shift, w, self.covariance_type, np.float64, stats=False, resp_out=out)
        return out

    def predict(self, x: Any) -> np.ndarray:
        return self.predict_proba(x).argmax(1)

    def full_covariances(self) -> np.ndarray:
        """Covariances as (K, d, d) whatever the covariance type (for plots and sampling)."""
        self._check_fitted()
        k, d = self.means_.shape
        c = self.covariances_
        if self.covariance_type == "full":
            return c
        if self.covariance_type == "tied":
            return np.broadcast_to(c, (k, d, d)).copy()
        if self.covariance_type == "diag":
            return np.einsum("kj,ij->kij", c, np.eye(d))
        return c[:, None, None] * np.eye(d)

    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        """``n`` samples (N, d); with ``return_labels=True`` also their components."""
        return_labels = self.sampling(kw)["return_labels"]
        self._check_fitted()
        rng = np.random.default_rng(seed)
        labels = rng.choice(self.n_components, size=n, p=self.weights_)
        chol = np.linalg.cholesky(self.full_covariances())
        eps = rng.standard_normal((n, self.means_.shape[1]))
        x = self.means_[labels] + np.einsum("nij,nj->ni", chol[labels], eps)
        return (x, labels) if return_labels else x

    def cdf(self, x: Any) -> np.ndarray:
        """P(X <= x) for a 1-D mixture."""
        self._check_fitted()
        if self.means_.shape[1] != 1:
            raise GenlabError("Probabilities of intervals are defined for 1-D mixtures only.")
        std = np.sqrt(self.full_covariances()[:, 0, 0])
        z = (np.asarray(x, dtype=float)[..., None] - self.means_[:, 0]) / std
        return (ndtr(z) * self.weights_).sum(-1)

    def prob(self, event: str) -> float:
        lo, hi = parse_interval(event)
        return float(self.cdf(hi) - self.cdf(lo))

    def n_parameters(self) -> int:
        k, d = self.means_.shape
        cov = {
            "full": k * d * (d + 1) // 2,
            "tied": d * (d + 1) // 2,
            "diag": k * d,
            "spherical": k,
        }[self.covariance_type]
        return cov + k * d + k - 1

    # --- persistence ------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {
            "n_components": self.n_components,
            "covariance_type": self.covariance_type,
            "tol": self.tol,
            "reg_covar": self.reg_covar,
            "max_iter": self.max_iter,
            "n_init": self.n_init,
            "init_params": self.init_params,
            "seed": self.seed,
            "dtype": self.dtype,
        }

    def state_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {
            "weights": self.weights_,
            "means": self.means_,
            "covariances": np.asarray(self.covariances_),
            "precisions_cholesky": np.asarray(self.precisions_cholesky_),
            "history": np.asarray(self.history_),
            "converged": np.array([self.converged_], dtype=np.int8),
        }

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights_, self.means_ = arrays["weights"], arrays["means"]
        self.covariances_ = arrays["covariances"]
        self.precisions_cholesky_ = arrays["precisions_cholesky"]
        self.history_ = arrays["history"].tolist()
        self.lower_bound_, self.n_iter_ = self.history_[-1], len(self.history_)
        self.converged_ = bool(arrays["converged"][0])
        self.fitted_ = True

    def fit_metrics(self) -> dict[str, Any]:
        """EM's diagnostics for a run's metrics: iterations run and whether it converged."""
        self._check_fitted()
        return {"n_iter": self.n_iter_, "converged": self.converged_}

    def run_plots(self, x: np.ndarray) -> dict[str, Any]:
        """The responsibilities of 2-D data, and the EM curve."""
        from ..viz import plots

        figures: dict[str, Any] = {}
        if x.ndim == 2 and x.shape[1] == 2:
            figures["responsibilities"] = plots.responsibilities(x, self.predict_proba(x))
        figures["em_loglik"] = plots.em_history(self.history_)
        return figures


class FlatMixture(GaussianMixture):
    """A Gaussian mixture over the pixels of an image, as an image model: it is fitted,
    sampled and scored on flattened images (the mixture knows vectors only), and its
    samples are clipped to the range the training pixels took.

    ``reg_covar`` defaults to 1e-2: the border pixels of digits are -1 in every image (zero
    variance). The other parameters are GaussianMixture's."""

    name = "pixel-gmm"

    def __init__(self, n_components: int = 10, *, reg_covar: float = 1e-2, **kw: Any) -> None:
        super().__init__(n_components, reg_covar=reg_covar, **kw)

    @staticmethod
    def _flat(x: Any) -> np.ndarray:
        x = np.asarray(getattr(x, "x", x))
        return x.reshape(len(x), -1).astype(np.float64, copy=False)

    def fit(self, data: Any, config: Any = None) -> FlatMixture:
        x = np.asarray(getattr(data, "x", data))
        if x.ndim < 2:
            raise DataError(f"A pixel mixture fits images, got an array of shape {x.shape}.")
        super().fit(self._flat(x))
        self.image_shape_ = tuple(x.shape[1:])
        self.range_ = (float(x.min()), float(x.max()))
        return self

    def log_prob(self, x: Any) -> np.ndarray:
        """log p(x) of each flattened image (a continuous density over pixels)."""
        return super().log_prob(self._flat(x))

    def predict_proba(self, x: Any) -> np.ndarray:
        return super().predict_proba(self._flat(x))

    def bic(self, x: Any) -> float:
        return super().bic(self._flat(x))

    def aic(self, x: Any) -> float:
        return super().aic(self._flat(x))

    def negative_log_likelihood(self, x: Any, levels: int = 256) -> tuple[np.ndarray, str]:
        return -self.log_prob(x), "exact (continuous density)"

    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        """``n`` images (N, *image shape), float32, clipped to the training pixels' range."""
        out = super().sample(n, cond=cond, seed=seed, **kw)
        flat, labels = out if isinstance(out, tuple) else (out, None)
        images = np.clip(flat.reshape(n, *self.image_shape_), *self.range_).astype(np.float32)
        return images if labels is None else (images, labels)

    def run_plots(self, x: np.ndarray) -> dict[str, Any]:
        from ..viz import plots

        return {"em_loglik": plots.em_history(self.history_)}

    def state_arrays(self) -> dict[str, np.ndarray]:
        return super().state_arrays() | {
            "image_shape": np.array(self.image_shape_, dtype=np.int64),
            "range": np.array(self.range_),
        }

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        super().load_state_arrays(arrays)
        self.image_shape_ = tuple(int(s) for s in arrays["image_shape"])
        self.range_ = (float(arrays["range"][0]), float(arrays["range"][1]))
        if math.prod(self.image_shape_) != self.means_.shape[1]:
            raise ValueError(f"image_shape {self.image_shape_} does not match the means' size")
