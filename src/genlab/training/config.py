"""The Trainer's settings: a frozen dataclass, built from a family's defaults, a recipe and
``--set key=value`` overrides, with unknown keys refused by name."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import GenlabError
from ..options import parse_bool


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000  # total optimizer steps of the run (a resumed run continues to this)
    batch_size: int = 128  # global batch of one forward pass, split evenly across processes
    grad_accum: int = 1  # forward passes summed into one optimizer step (batch x grad_accum)
    lr: float = 1e-3
    beta1: float = 0.9  # Adam's moment decays (GANs use beta1 = 0.5)
    beta2: float = 0.999
    weight_decay: float = 0.0
    warmup_steps: int = 0  # linear warm-up of the learning rate
    decay_steps: int = 0  # cosine decay to 0 over this many steps after warm-up (0: none)
    grad_clip: float = 1.0  # max global gradient norm (0: off)
    ema_decay: float = 0.999  # 0: no EMA (the saved model is the last weights)
    mixed_precision: str = "no"  # "no", "bf16" or "fp16" (where the device has it)
    fsdp: bool = False  # shard weights, gradients and optimizer state over the processes
    seed: int = 0
    log_every: int = 50
    sample_every: int = 0  # write a sample grid every N steps (0: only at the end)
    checkpoint_every: int = 500
    keep_last: int = 3
    max_bad_steps: int = 5  # abort after this many non-finite losses in a row
    progress: bool = True

    @classmethod
    def make(cls, model: Any = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
        values = dict(getattr(model, "train_defaults", {}) or {})
        values.update(overrides or {})
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise GenlabError(
                f"Unknown training setting '{unknown[0]}'; known: {', '.join(fields)}."
            )
        typed = {}
        for key, value in values.items():
            kind = type(fields[key].default)
            try:
                typed[key] = _coerce(value, kind)
            except ValueError:
                raise GenlabError(
                    f"Training setting {key}={value!r} is not a {kind.__name__}."
                ) from None
        cfg = cls(**typed)
        cfg.check()
        return cfg

    def check(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise GenlabError("steps, batch_size and grad_accum must be at least 1.")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise GenlabError("mixed_precision must be 'no', 'bf16' or 'fp16'.")
        if self.fsdp and self.mixed_precision == "fp16":
            raise GenlabError(
                "--fsdp trains in full precision or bf16 (fp16's loss scaling is not sharded "
                "here); use --set mixed_precision=bf16."
            )
        if not 0 <= self.ema_decay < 1:
            raise GenlabError("ema_decay must lie in [0, 1).")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, kind: type) -> Any:
    if kind is bool:
        return parse_bool(value)
    if kind is int and isinstance(value, str):
        return int(float(value)) if value.replace(".", "", 1).isdigit() else int(value)
    return kind(value)
