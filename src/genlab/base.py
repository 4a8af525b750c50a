"""The contract every genlab model answers, and the capability flags that describe it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np


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
    has_energy: ClassVar[bool] = False
    conditional: ClassVar[bool] = False

    # --- learning and generating -------------------------------------------------
    def fit(self, data: Any, config: Any = None) -> GenerativeModel:
        raise NotImplementedError(f"{type(self).__name__} does not implement fit().")

    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement sample().")

    def log_prob(self, x: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no exact log density.")

    def elbo(self, x: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no evidence lower bound.")

    # --- persistence: hyperparameters in config.yaml, arrays in safetensors --------
    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, enough to rebuild an unfitted model."""
        raise NotImplementedError

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The learned parameters as named arrays."""
        raise NotImplementedError

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        """Write ``config.yaml`` + ``model.safetensors`` to ``path`` atomically."""
        from .serialization import save_model

        return save_model(self, path)
