"""The contract every genlab model answers, and the capability flags that describe it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .options import Option, resolve


class GenerativeModel:
    """A generative model: fit to data, sample, and (where it can) score.

    Capability flags say which questions a model answers; evaluation and the UI read
    them instead of special-casing classes. A model that cannot answer a question
    raises ``NotImplementedError`` with a sentence, never a fake number.
    """

    name: ClassVar[str] = ""
    generative: ClassVar[bool] = True  # False for helpers such as a guidance classifier
    has_log_prob: ClassVar[bool] = False
    has_elbo: ClassVar[bool] = False
    conditional: ClassVar[bool] = False
    #: The options ``sample`` takes beyond n, cond and seed (see genlab.options).
    sample_options: ClassVar[tuple[Option, ...]] = ()

    # --- learning and generating -------------------------------------------------
    def fit(self, data: Any, config: Any = None) -> GenerativeModel:
        raise NotImplementedError(f"{type(self).__name__} does not implement fit().")

    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement sample().")

    def log_prob(self, x: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no exact log density.")

    def elbo(self, x: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no evidence lower bound.")

    def sampling(self, given: dict[str, Any]) -> dict[str, Any]:
        """``given`` sampling options checked against ``sample_options``, with defaults."""
        return resolve(self.name, self.sample_options, given)

    # --- likelihood, as the capability flags promise -----------------------------------
    def negative_log_likelihood(self, x: Any, levels: int = 256) -> tuple[Any, str]:
        """(-log p(x) per sample in nats, how it was obtained): exact where the model has a
        density, the negative ELBO (an upper bound) where it has a bound. ``levels``: the
        values a pixel takes, for models whose bound is on discrete data."""
        if self.has_log_prob:
            return -_numpy(self.log_prob(x)), "exact"
        if self.has_elbo:
            return -_numpy(self.elbo(x)), "negative ELBO (upper bound)"
        raise NotImplementedError(f"{type(self).__name__} has no likelihood.")

    @property
    def nll_sample_cap(self) -> int | None:
        """Most held-out samples ``genlab eval`` scores (None: all); set by costly bounds."""
        return None

    def dequantized_bits_per_dim(self, x: Any) -> Any:
        """A discrete model of pixels' bound in bits/dim, where the model has one (None)."""
        return None

    # --- what a run folder shows: asked of the model, never decided by its name ------
    def run_plots(self, x: Any) -> dict[str, Any]:
        """Figures that explain this fitted model on its data ``x``, by file stem (a
        mixture's EM curve, a flow's grid); the caller writes them. None by default."""
        return {}

    def fit_metrics(self) -> dict[str, Any]:
        """The fit's own diagnostics for a run's metrics (EM's iterations and
        convergence); none by default."""
        return {}

    # --- persistence: hyperparameters in config.yaml, arrays in safetensors --------
    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, enough to rebuild an unfitted model."""
        raise NotImplementedError

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The learned parameters as named arrays."""
        raise NotImplementedError

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def extra_files(self) -> dict[str, dict[str, np.ndarray]]:
        """Further safetensors files saved beside the weights ({file name: arrays}), for
        other tools to read (a Stable Diffusion LoRA in diffusers' layout); none by default."""
        return {}

    def save(self, path: str | Path) -> Path:
        """Write ``config.yaml`` + ``model.safetensors`` to ``path`` atomically."""
        from .serialization import save_model

        return save_model(self, path)


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
