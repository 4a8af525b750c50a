"""The normal distribution in one and in d dimensions, fitted by closed-form maximum likelihood.

For the 1-D normal the likelihood is maximized by the sample mean and the (biased, ddof=0)
sample standard deviation; for the multivariate normal by the mean vector and the biased
sample covariance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import ndtr

from ..base import GenerativeModel
from ..data import Dataset, as_table
from ..errors import DataError, GenlabError
from .events import parse_interval

LOG_2PI = math.log(2 * math.pi)


def table_of(data: Any, dim: int | None = None) -> np.ndarray:
    """The ``(N, d)`` float64 table held by a Dataset or an array."""
    x = data.x if isinstance(data, Dataset) else data
    return as_table(x, getattr(data, "name", "data"), dim=dim)


class _Fitted:
    """Shared helpers of the closed-form estimators."""

    def _check_fitted(self) -> None:
        if not getattr(self, "fitted_", False):
            raise GenlabError(f"This {type(self).__name__} is not fitted yet; call fit() first.")

    def score(self, x: Any) -> float:
        """Average log-likelihood per sample."""
        return float(np.mean(self.log_prob(x)))

    def score_samples(self, x: Any) -> np.ndarray:
        return self.log_prob(x)

    def bic(self, x: Any) -> float:
        """Bayesian information criterion (lower is better)."""
        n = len(table_of(x))
        return -2 * self.score(x) * n + self.n_parameters() * math.log(n)

    def aic(self, x: Any) -> float:
        """Akaike information criterion (lower is better)."""
        return -2 * self.score(x) * len(table_of(x)) + 2 * self.n_parameters()


class Normal(_Fitted, GenerativeModel):
    """1-D normal N(mean, std^2). ``Normal().fit(heights)`` or ``Normal.from_params(170, 7)``."""

    name = "normal"
    has_log_prob = True

    def __init__(self) -> None:
        self.fitted_ = False

    @classmethod
    def from_params(cls, mean: float, std: float) -> Normal:
        if not std > 0:
            raise GenlabError(f"std must be positive, got {std}.")
        model = cls()
        model.mean_, model.std_, model.fitted_ = float(mean), float(std), True
        return model

    def fit(self, data: Any, config: Any = None) -> Normal:
        x = table_of(data, dim=1)[:, 0]
        if len(x) < 2:
            raise DataError("A normal needs at least 2 values to fit.")
        self.mean_, self.std_ = float(x.mean()), float(x.std())
        if self.std_ == 0.0:
            raise DataError("All values are identical; a normal needs some spread to fit.")
        self.fitted_ = True
        return self

    def log_prob(self, x: Any) -> np.ndarray:
        self._check_fitted()
        z = (table_of(x, dim=1)[:, 0] - self.mean_) / self.std_
        return -0.5 * z**2 - math.log(self.std_) - 0.5 * LOG_2PI

    def cdf(self, x: Any) -> np.ndarray:
        self._check_fitted()
        return ndtr((np.asarray(x, dtype=float) - self.mean_) / self.std_)

    def prob(self, event: str) -> float:
        """Probability of an event such as ``"x <= 160"`` or ``"150 < x <= 170"``."""
        lo, hi = parse_interval(event)
        return float(self.cdf(hi) - self.cdf(lo))

    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        self.sampling(kw)
        self._check_fitted()
        rng = np.random.default_rng(seed)
        return (self.mean_ + self.std_ * rng.standard_normal(n))[:, None]

    def n_parameters(self) -> int:
        return 2

    def get_config(self) -> dict[str, Any]:
        return {}

    def state_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {"mean": np.array([self.mean_]), "std": np.array([self.std_])}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.mean_, self.std_ = float(arrays["mean"][0]), float(arrays["std"][0])
        self.fitted_ = True


class MultivariateNormal(_Fitted, GenerativeModel):
    """d-dimensional normal N(mean, covariance), fitted by maximum likelihood.

    ``reg_covar`` is added to the diagonal of the fitted covariance (0 by default, the exact
    MLE); a singular covariance is reported as an error that suggests it.
    """

    name = "mvn"
    has_log_prob = True

    def __init__(self, reg_covar: float = 0.0) -> None:
        self.reg_covar = float(reg_covar)
        self.fitted_ = False

    @classmethod
    def from_params(cls, mean: Any, covariance: Any) -> MultivariateNormal:
        model = cls()
        model._set(np.asarray(mean, dtype=float), np.asarray(covariance, dtype=float))
        return model

    def _set(self, mean: np.ndarray, covariance: np.ndarray) -> None:
        try:
            chol = np.linalg.cholesky(covariance)
        except np.linalg.LinAlgError:
            raise DataError(
                "The covariance is singular (some columns are linear combinations of others); "
                "pass reg_covar > 0 or drop the redundant columns."
            ) from None
        self.mean_, self.covariance_, self.cholesky_ = mean, covariance, chol
        self.fitted_ = True

    def fit(self, data: Any, config: Any = None) -> MultivariateNormal:
        x = table_of(data)
        if len(x) < 2:
            raise DataError("A multivariate normal needs at least 2 samples to fit.")
        mean = x.mean(0)
        diff = x - mean
        cov = diff.T @ diff / len(x)
        cov[np.diag_indices_from(cov)] += self.reg_covar
        self._set(mean, cov)
        return self

    def log_prob(self, x: Any) -> np.ndarray:
        self._check_fitted()
        from scipy.linalg import solve_triangular

        d = len(self.mean_)
        diff = table_of(x, dim=d) - self.mean_
        z = solve_triangular(self.cholesky_, diff.T, lower=True)  # (d, N): L^-1 (x - mean)
        log_det = 2 * np.log(np.diag(self.cholesky_)).sum()
        return -0.5 * (z**2).sum(0) - 0.5 * log_det - 0.5 * d * LOG_2PI

    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        self.sampling(kw)
        self._check_fitted()
        eps = np.random.default_rng(seed).standard_normal((n, len(self.mean_)))
        return self.mean_ + eps @ self.cholesky_.T

    def n_parameters(self) -> int:
        d = len(self.mean_)
        return d + d * (d + 1) // 2

    def run_plots(self, x: np.ndarray) -> dict[str, Any]:
        """The density of 2-D data as a surface."""
        if x.ndim != 2 or x.shape[1] != 2:
            return {}
        from ..viz.plots import normal_surface

        return {"surface3d": normal_surface(self)}

    def get_config(self) -> dict[str, Any]:
        return {"reg_covar": self.reg_covar}

    def state_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {"mean": self.mean_, "covariance": self.covariance_}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self._set(arrays["mean"], arrays["covariance"])
