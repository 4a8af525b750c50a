"""What one training step sees, the record between a model's ``training_data`` and the
Trainer (which knows no model: it only draws these and hands them back)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..conditioning import Condition


@dataclass(frozen=True)
class Batch:
    """What one training step sees: inputs and their condition (None: unconditional)."""

    x: torch.Tensor
    cond: Condition | None = None

    def __len__(self) -> int:
        return len(self.x)
