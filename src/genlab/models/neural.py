"""Base class of the models built from torch modules and trained by the Trainer.

A neural model owns one ``nn.Module`` (``self.net``) holding every trainable part, answers
``training_step(batch) -> {"loss": ..., other metrics}``, and keeps its constructor
arguments for ``config.yaml``. Its weights are saved as safetensors like every model.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..base import GenerativeModel
from ..errors import DataError


class NeuralModel(GenerativeModel):
    #: The Trainer's defaults for this family (a recipe or --set overrides them).
    train_defaults: ClassVar[dict[str, Any]] = {
        "lr": 1e-3,
        "batch_size": 128,
        "steps": 3000,
        "ema_decay": 0.0,
    }

    def __init__(self, data_shape: tuple[int, ...] | list[int], **hparams: Any) -> None:
        self.data_shape = tuple(int(s) for s in data_shape)
        self.hparams = hparams  # what config.yaml records; also readable as attributes
        for key, value in hparams.items():
            setattr(self, key, value)
        self.net: nn.Module = nn.Module()

    # --- shape checks -----------------------------------------------------------------
    def as_batch(self, x: Any) -> torch.Tensor:
        """``x`` as a float32 tensor of this model's sample shape, or a clear DataError."""
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        t = t.to(torch.float32)
        if tuple(t.shape[1:]) != self.data_shape:
            kind = "images" if len(self.data_shape) == 3 else "samples"
            raise DataError(
                f"This {self.name} model expects {kind} of shape {self.data_shape}, "
                f"got {tuple(t.shape[1:])}."
            )
        return t

    def training_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def fit(self, data: Any, config: Any = None) -> NeuralModel:
        """Train in memory with the Trainer (no run folder); ``config``: TrainConfig or dict."""
        from ..training.trainer import TrainConfig, Trainer

        cfg = config if isinstance(config, TrainConfig) else TrainConfig.make(self, config)
        Trainer(self, data, cfg).train()
        return self

    # --- persistence ----------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {"data_shape": list(self.data_shape), **self.hparams}

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})


def seeded(seed: int | None) -> torch.Generator:
    """A CPU generator: the same seed gives the same sample on any device."""
    g = torch.Generator()
    g.manual_seed(int(seed) if seed is not None else int(torch.randint(0, 2**62, ()).item()))
    return g
