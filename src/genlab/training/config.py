"""The Trainer's settings: a frozen dataclass, built from a family's defaults, a recipe and
``--set key=value`` overrides, with unknown keys refused by name. Each setting's type and
range is declared once in ``SETTINGS`` (``genlab.options.Option``, the coercer sampling
options use), so ``steps=2.5``, ``lr=nan`` or ``log_every=0`` are refused in one sentence
before any work."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import GenlabError
from ..options import Option
from .schedules import SCHEDULES


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
    lr_scheduler: str = "default"  # "default": the two above; else diffusers' get_scheduler's
    lr_cycles: int = 1  # cosine_with_restarts: the number of cosines over the run
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
    def schema(cls) -> tuple[Option, ...]:
        return SETTINGS

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
        known = {o.name: o for o in SETTINGS}
        typed = {key: known[key].check(value, "Training setting") for key, value in values.items()}
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
        for key in ("beta1", "beta2", "ema_decay"):
            if not 0 <= getattr(self, key) < 1:
                raise GenlabError(
                    f"Training setting {key} must lie in [0, 1), got {getattr(self, key)}."
                )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


BIG = 10**12  # "never" for the every-N-steps settings (compare and tests use 10**9)
#: every setting's type and range, in the dataclass's order (one coercer: Option.check)
SETTINGS: tuple[Option, ...] = (
    Option("steps", int, 2000, "total optimizer steps of the run", low=1, high=BIG),
    Option("batch_size", int, 128, "global batch of one forward pass", low=1, high=2**20),
    Option("grad_accum", int, 1, "forward passes summed into one optimizer step", low=1,
           high=2**16),
    Option("lr", float, 1e-3, "learning rate", low=0.0, high=100.0),
    Option("beta1", float, 0.9, "Adam's first moment decay, in [0, 1)", low=0.0, high=1.0),
    Option("beta2", float, 0.999, "Adam's second moment decay, in [0, 1)", low=0.0, high=1.0),
    Option("weight_decay", float, 0.0, "AdamW's decoupled weight decay", low=0.0, high=100.0),
    Option("warmup_steps", int, 0, "linear warm-up of the learning rate", low=0, high=BIG),
    Option("decay_steps", int, 0, "cosine decay after warm-up (0: none)", low=0, high=BIG),
    Option("lr_scheduler", str, "default", "learning-rate schedule (default: warm-up, then "
           "cosine over decay_steps; the rest as diffusers' get_scheduler)", choices=SCHEDULES),
    Option("lr_cycles", int, 1, "cosine_with_restarts: cosines over the run", low=1, high=BIG),
    Option("grad_clip", float, 1.0, "max global gradient norm (0: off)", low=0.0),
    Option("ema_decay", float, 0.999, "EMA decay in [0, 1) (0: no EMA)", low=0.0, high=1.0),
    Option("mixed_precision", str, "no", "", choices=("no", "bf16", "fp16")),
    Option("fsdp", bool, False, "shard weights, gradients and optimizer state"),
    Option("seed", int, 0, "the run's seed", low=0, high=2**32 - 1),
    Option("log_every", int, 50, "log metrics every N steps", low=1, high=BIG),
    Option("sample_every", int, 0, "a sample grid every N steps (0: at the end)", low=0,
           high=BIG),
    Option("checkpoint_every", int, 500, "a checkpoint every N steps", low=1, high=BIG),
    Option("keep_last", int, 3, "checkpoints kept (0: all)", low=0, high=BIG),
    Option("max_bad_steps", int, 5, "abort after this many non-finite losses in a row", low=1,
           high=BIG),
    Option("progress", bool, True, "show a progress bar"),
)  # fmt: skip
assert [o.name for o in SETTINGS] == [f.name for f in dataclasses.fields(TrainConfig)]
