"""Linear latent-variable models of tables: probabilistic PCA (closed form) and the
linear-Gaussian VAE (closed-form ELBO, L-BFGS in float64).

Both model x = W z + mean + noise with z ~ N(0, I_q). PPCA's maximum-likelihood W spans the
PCA subspace (Tipping and Bishop 1999); the linear VAE's ELBO reaches PPCA's exact
log-likelihood at its optimum, because PPCA's posterior is Gaussian and the bound is tight
there (``genlab compare --latent`` shows both, and a test checks the link). Each answers
``encode`` (latent means) and ``decode`` (latents to reconstructions) beside the contract.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..base import GenerativeModel
from ..errors import DataError, GenlabError
from .gaussian import LOG_2PI, _Fitted, table_of


def ppca_mle(x: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Tipping and Bishop (1999): mean, W = U_q (L_q - s2 I)^(1/2), s2 = the mean of the
    discarded eigenvalues of the sample covariance (divided by N)."""
    mean = x.mean(0)
    cov = np.cov(x.T, bias=True)
    vals, vecs = np.linalg.eigh(cov)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    s2 = float(vals[q:].mean())
    w = vecs[:, :q] * np.sqrt(np.maximum(vals[:q] - s2, 0.0))
    return mean, w, s2


def _check_latent(q: int, x: np.ndarray, name: str) -> None:
    if not 1 <= q < x.shape[1]:
        raise DataError(
            f"A {name} with {q} latent dimensions needs more than {q} columns; "
            f"the data has {x.shape[1]}."
        )


class PPCA(_Fitted, GenerativeModel):
    """Probabilistic PCA: x ~ N(mean, W W^T + sigma2 I), W of shape (d, q), fitted in
    closed form. ``n_components``: the latent size q."""

    name = "ppca"
    has_log_prob = True

    def __init__(self, n_components: int = 2) -> None:
        self.n_components = int(n_components)
        if self.n_components < 1:
            raise GenlabError(f"n_components must be at least 1, got {n_components}.")
        self.fitted_ = False

    def fit(self, data: Any, config: Any = None) -> PPCA:
        x = table_of(data)
        _check_latent(self.n_components, x, "PPCA")
        self._set(*ppca_mle(x, self.n_components))
        return self

    def _set(self, mean: np.ndarray, w: np.ndarray, s2: float) -> None:
        if not s2 > 0:
            raise DataError("The data has no variance outside the latent subspace (sigma2 = 0).")
        self.mean_, self.components_, self.sigma2_ = mean, w, float(s2)
        q = w.shape[1]
        # M = W^T W + s2 I: the posterior of z given x is N(M^-1 W^T (x - mean), s2 M^-1)
        self._m_inv = np.linalg.inv(w.T @ w + s2 * np.eye(q))
        self.fitted_ = True

    def log_prob(self, x: Any) -> np.ndarray:
        self._check_fitted()
        d = len(self.mean_)
        diff = table_of(x, dim=d) - self.mean_
        cov = self.components_ @ self.components_.T + self.sigma2_ * np.eye(d)
        chol = np.linalg.cholesky(cov)
        from scipy.linalg import solve_triangular

        z = solve_triangular(chol, diff.T, lower=True)
        log_det = 2 * np.log(np.diag(chol)).sum()
        return -0.5 * (z**2).sum(0) - 0.5 * log_det - 0.5 * d * LOG_2PI

    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        self.sampling(kw)
        self._check_fitted()
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.n_components))
        eps = rng.standard_normal((n, len(self.mean_)))
        return self.decode(z) + math.sqrt(self.sigma2_) * eps

    def encode(self, x: Any) -> np.ndarray:
        """The posterior means E[z | x] = M^-1 W^T (x - mean), shape (N, q)."""
        self._check_fitted()
        return (table_of(x, dim=len(self.mean_)) - self.mean_) @ self.components_ @ self._m_inv

    def decode(self, z: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.asarray(z) @ self.components_.T + self.mean_

    def n_parameters(self) -> int:
        d, q = self.components_.shape
        return d * q - q * (q - 1) // 2 + d + 1  # W up to a rotation, the mean, sigma2

    def get_config(self) -> dict[str, Any]:
        return {"n_components": self.n_components}

    def state_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {
            "mean": self.mean_,
            "components": self.components_,
            "sigma2": np.array([self.sigma2_]),
        }

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        w = arrays["components"]
        if w.ndim != 2 or w.shape[1] != self.n_components:
            raise ValueError(f"components has shape {w.shape}, not (d, {self.n_components})")
        self._set(arrays["mean"], w, float(arrays["sigma2"][0]))


# --- the linear-Gaussian VAE ---------------------------------------------------------------
PARAMS = ("enc", "enc_bias", "log_std", "dec", "dec_bias", "log_s2")


def linear_vae_elbo(x, enc, enc_bias, log_std, dec, dec_bias, log_s2):
    """The ELBO of a linear-Gaussian VAE per point, in closed form (no sampling): q(z|x) =
    N(enc (x - dec_bias) + enc_bias, diag(exp(2 log_std))), p(x|z) = N(dec z + dec_bias,
    exp(log_s2) I), p(z) = N(0, I). Torch tensors in, (N,) out."""
    m = (x - dec_bias) @ enc + enc_bias
    v = (2 * log_std).exp()
    d = x.shape[1]
    s2 = log_s2.exp()
    err = ((x - m @ dec - dec_bias) ** 2).sum(1) + (v * (dec**2).sum(1)).sum()
    rec = -0.5 * d * (math.log(2 * math.pi) + log_s2) - 0.5 * err / s2
    kl = 0.5 * (m**2 + v - 1 - 2 * log_std).sum(1)
    return rec - kl


def lbfgs(params: list, loss: Callable[[], Any], iters: int) -> None:
    """Full-batch L-BFGS with a strong-Wolfe line search, tolerances tight for float64."""
    import torch

    opt = torch.optim.LBFGS(
        params,
        max_iter=iters,
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        value = loss()
        value.backward()
        return value

    opt.step(closure)


class LinearVAE(GenerativeModel):
    """A VAE whose encoder and decoder are affine maps and whose likelihood is Gaussian with
    one learned variance: its ELBO has a closed form, maximised by L-BFGS in float64.
    ``n_components``: the latent size q; ``iters``: L-BFGS iterations; ``seed``: the start."""

    name = "linear-vae"
    has_elbo = True

    def __init__(self, n_components: int = 2, iters: int = 500, seed: int = 0) -> None:
        self.n_components, self.iters, self.seed = int(n_components), int(iters), int(seed)
        if self.n_components < 1 or self.iters < 1:
            raise GenlabError("n_components and iters must be at least 1.")
        self.params_: dict[str, Any] | None = None

    def _check_fitted(self) -> dict[str, Any]:
        if self.params_ is None:
            raise GenlabError("This LinearVAE is not fitted yet; call fit() first.")
        return self.params_

    def fit(self, data: Any, config: Any = None) -> LinearVAE:
        import torch

        x = table_of(data)
        q = self.n_components
        _check_latent(q, x, "linear VAE")
        g = torch.Generator().manual_seed(self.seed)
        t = torch.as_tensor(x, dtype=torch.float64)
        d = t.shape[1]

        def param(*shape, scale=0.1):
            return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).requires_grad_()

        enc, enc_bias, log_std = param(d, q), param(q, scale=0.0), param(q, scale=0.0)
        dec, log_s2 = param(q, d), torch.zeros((), dtype=torch.float64, requires_grad=True)
        dec_bias = t.mean(0).clone().requires_grad_()
        params = [enc, enc_bias, log_std, dec, dec_bias, log_s2]
        lbfgs(params, lambda: -linear_vae_elbo(t, *params).mean(), self.iters)
        self.params_ = {k: p.detach() for k, p in zip(PARAMS, params, strict=True)}
        return self

    def elbo(self, x: Any) -> np.ndarray:
        """The ELBO of each row (nats), in closed form."""
        import torch

        p = self._check_fitted()
        t = torch.as_tensor(table_of(x, dim=p["dec"].shape[1]), dtype=torch.float64)
        return linear_vae_elbo(t, *(p[k] for k in PARAMS)).numpy()

    @property
    def sigma2(self) -> float:
        return float(self._check_fitted()["log_s2"].exp())

    def encode(self, x: Any) -> np.ndarray:
        """The means of q(z | x), shape (N, q)."""
        p = self._check_fitted()
        x = table_of(x, dim=p["dec"].shape[1])
        return (x - p["dec_bias"].numpy()) @ p["enc"].numpy() + p["enc_bias"].numpy()

    def decode(self, z: np.ndarray) -> np.ndarray:
        p = self._check_fitted()
        return np.asarray(z) @ p["dec"].numpy() + p["dec_bias"].numpy()

    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        self.sampling(kw)
        p = self._check_fitted()
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.n_components))
        eps = rng.standard_normal((n, p["dec"].shape[1]))
        return self.decode(z) + math.sqrt(self.sigma2) * eps

    def get_config(self) -> dict[str, Any]:
        return {"n_components": self.n_components, "iters": self.iters, "seed": self.seed}

    def state_arrays(self) -> dict[str, np.ndarray]:
        p = self._check_fitted()
        return {k: p[k].numpy().reshape(p[k].shape or (1,)) for k in PARAMS}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        import torch

        missing = [k for k in PARAMS if k not in arrays]
        if missing:
            raise KeyError(f"missing {missing[0]}")
        if arrays["enc"].shape[1] != self.n_components:
            raise ValueError(f"enc has shape {arrays['enc'].shape}, not (d, {self.n_components})")
        p = {k: torch.as_tensor(np.asarray(arrays[k], dtype=np.float64)) for k in PARAMS}
        p["log_s2"] = p["log_s2"].reshape(())
        self.params_ = p
