"""One Trainer for every neural model, on Hugging Face accelerate.

The same loop runs on a CPU, one GPU, or several processes (``accelerate launch`` or
``torchrun``). The model supplies ``training_step(batch) -> {"loss": ..., metrics}``; the
Trainer owns the device, mixed precision, the optimizer and learning-rate schedule,
gradient clipping, EMA, logging, checkpoints, exact resume and the NaN guard.

Exact resume: the batch of step s is a function of (seed, s) alone, and a checkpoint holds
weights, EMA, optimizer, scheduler and the RNG state, so 3 steps + resume + 3 steps gives
the same bits as 6 steps straight.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Dataset
from ..errors import DataError, GenlabError
from . import checkpoint as ckpt
from .config import TrainConfig
from .ema import EMA

__all__ = ["TrainConfig", "Trainer"]


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """Indices of the global batch of ``step``: epochs are seeded permutations, last partial
    batch dropped. Depends on nothing but its arguments (this is what makes resume exact)."""
    per_epoch = n // batch_size
    epoch, pos = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)[pos * batch_size : (pos + 1) * batch_size]


def lr_factor(step: int, warmup: int, decay: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 over ``decay`` steps."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if decay:
        t = min(step - warmup, decay) / decay
        return 0.5 * (1 + math.cos(math.pi * t))
    return 1.0


def _check_labels(model, y) -> None:
    """A class-conditional model needs labels, each below its num_classes."""
    if y is None:
        raise DataError(
            f"This {model.name} model is class-conditional and needs labelled data; "
            "this dataset has no labels."
        )
    classes = getattr(model, "num_classes", 0)
    low, high = int(np.min(y)), int(np.max(y))
    if classes and (low < 0 or high >= classes):
        raise DataError(
            f"The labels run from {low} to {high}; this {model.name} model "
            f"knows classes 0..{classes - 1} (set model.num_classes)."
        )


class Trainer:
    """Train ``model`` on ``data``; with ``run_dir`` also write the run folder's files."""

    def __init__(
        self,
        model: Any,
        data: Dataset | np.ndarray | torch.Tensor,
        config: TrainConfig,
        run_dir: str | Path | None = None,
        resume: str | None = None,
    ) -> None:
        from accelerate import Accelerator

        self.model, self.cfg = model, config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        x = data.x if isinstance(data, Dataset) else data
        self.data = model.as_batch(x)
        # Class-conditional models also get the labels of each batch.
        y = data.y if isinstance(data, Dataset) else None
        wants = getattr(model, "conditional", False)
        if wants:
            _check_labels(model, y)
        self.labels = torch.as_tensor(y).long() if wants else None
        # Without an accelerator, accelerate runs several processes only when told cpu=True.
        on_cpu = not (torch.cuda.is_available() or torch.backends.mps.is_available())
        self.acc = Accelerator(mixed_precision=config.mixed_precision, cpu=on_cpu)
        self.world, self.rank = self.acc.num_processes, self.acc.process_index
        if config.batch_size % self.world:
            raise GenlabError(
                f"batch_size {config.batch_size} does not split evenly over {self.world} processes."
            )
        if len(self.data) < config.batch_size:
            raise DataError(
                f"The dataset has {len(self.data)} samples, fewer than the batch size "
                f"{config.batch_size}; lower --batch-size."
            )
        torch.manual_seed(config.seed + self.rank)
        self.net = model.net.to(self.acc.device)
        self._broadcast_weights()
        # One optimizer per update: most models make one ("main"); a GAN makes two, each
        # with its own optimizer and schedule, all checkpointed.
        groups = getattr(model, "updates", None)
        self.updates = [(n, list(p)) for n, p in groups()] if groups else None
        named = self.updates or [("main", list(self.net.parameters()))]
        self.params = dict(named)
        self.opts = {
            n: torch.optim.AdamW(
                p,
                lr=config.lr,
                betas=(config.beta1, config.beta2),
                weight_decay=config.weight_decay,
            )
            for n, p in named
        }
        self.scheds = {
            n: torch.optim.lr_scheduler.LambdaLR(
                o, lambda s: lr_factor(s, config.warmup_steps, config.decay_steps)
            )
            for n, o in self.opts.items()
        }
        self.ema = EMA(self.net, config.ema_decay) if config.ema_decay > 0 else None
        self.step, self.bad_steps = 0, 0
        if self.run_dir is not None and self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self._resume(resume)

    # --- distributed helpers (no-ops in one process) ---------------------------------------
    @property
    def main(self) -> bool:
        return self.acc.is_main_process

    def _broadcast_weights(self) -> None:
        if self.world > 1:
            for t in self.net.state_dict().values():
                torch.distributed.broadcast(t, src=0)

    def _all_finite(self, loss: torch.Tensor) -> bool:
        flag = torch.tensor([float(torch.isfinite(loss).item())], device=self.acc.device)
        if self.world > 1:  # every rank skips together
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        return bool(flag.item())

    def _sync_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """Average gradients over processes (model-agnostic: the model calls its own
        submodules, so no DistributedDataParallel wrapper is involved)."""
        if self.world == 1:
            return
        grads = [p.grad for p in params if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    # --- the loop ---------------------------------------------------------------------------
    def train(self) -> dict[str, float]:
        from tqdm.auto import tqdm

        cfg = self.cfg
        local = cfg.batch_size // self.world
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            disable=not (cfg.progress and self.main),
            desc=f"train {self.model.name}",
            dynamic_ncols=True,
        )
        t0, seen, last = time.perf_counter(), 0, {}
        self.net.train()
        try:
            while self.step < cfg.steps:
                idx = batch_indices(self.step, len(self.data), cfg.batch_size, cfg.seed)
                mine = idx[self.rank * local : (self.rank + 1) * local]
                labels = None if self.labels is None else self.labels[mine].to(self.acc.device)
                last = self._step(self.data[mine].to(self.acc.device), labels)
                self.step += 1
                seen += cfg.batch_size
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                bar.update(1)
                shown = {k: f"{v:.4g}" for k, v in last.items() if k.endswith("loss")}
                bar.set_postfix(**shown, img_s=f"{rate:.0f}")
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    self._log({"step": self.step, **last, "samples_per_s": rate})
                if cfg.sample_every and self.step % cfg.sample_every == 0:
                    self._write_samples()
                if self.step % cfg.checkpoint_every == 0 and self.step < cfg.steps:
                    self.save_checkpoint()
        except KeyboardInterrupt:
            if self.run_dir is not None:
                self.save_checkpoint()
            raise
        finally:
            bar.close()
        seconds = time.perf_counter() - t0
        self._finish()
        summary = {"steps": self.step, "seconds": seconds, "samples_per_s": seen / seconds}
        summary |= last | {"rank": self.rank}
        return summary

    def _step(self, batch: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for name, params in self.params.items():
            with self.acc.autocast():
                if labels is not None:
                    out = self.model.training_step(batch, labels)
                elif self.updates is None:
                    out = self.model.training_step(batch)
                else:
                    out = self.model.training_step(batch, name)
            loss = out["loss"]
            if not self._all_finite(loss):
                self.net.zero_grad(set_to_none=True)
                self.bad_steps += 1
                if self.bad_steps >= self.cfg.max_bad_steps:
                    raise GenlabError(
                        f"The loss was not finite for {self.bad_steps} steps in a row (last at "
                        f"step {self.step + 1}); training stopped. Lower the learning rate or "
                        "check the data."
                    )
                return {"loss": float("nan"), "skipped": 1.0}
            self.net.zero_grad(set_to_none=True)  # drop gradients another update left behind
            self.acc.backward(loss)
            self._sync_gradients(params)
            if self.cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
            self.opts[name].step()
            self.scheds[name].step()
            prefix = "" if self.updates is None else f"{name}_"
            metrics |= {prefix + k: float(v.detach()) for k, v in out.items()}
        self.net.zero_grad(set_to_none=True)
        self.bad_steps = 0
        if self.ema is not None:
            self.ema.update(self.net)
        return metrics | {"lr": next(iter(self.scheds.values())).get_last_lr()[0]}

    # --- files ------------------------------------------------------------------------------
    def _log(self, row: dict[str, float]) -> None:
        if self.run_dir is None or not self.main:
            return
        with (self.run_dir / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")

    def _check_finite_weights(self) -> None:
        for name, t in self.net.state_dict().items():
            if t.dtype.is_floating_point and not torch.isfinite(t).all():
                raise GenlabError(f"Weight {name} is not finite; refusing to save it.")

    def save_checkpoint(self) -> Path | None:
        if self.run_dir is None:
            return None
        self._check_finite_weights()
        path = None
        if self.main:
            tensors = {"model": self.net.state_dict()}
            if self.ema is not None:
                tensors["ema"] = self.ema.state()
            state = {
                "step": self.step,
                "bad_steps": self.bad_steps,
                "optimizer": {n: o.state_dict() for n, o in self.opts.items()},
                "scheduler": {n: s.state_dict() for n, s in self.scheds.items()},
                "rng": torch.get_rng_state(),
            }
            folder = self.run_dir / "checkpoints"
            path = ckpt.save_checkpoint(folder, self.step, tensors, state)
            ckpt.prune(folder, self.cfg.keep_last)
        self.acc.wait_for_everyone()
        return path

    def _resume(self, resume: str) -> None:
        if resume == "latest":
            if self.run_dir is None:
                raise GenlabError("--resume latest needs a run folder.")
            path = ckpt.latest(self.run_dir / "checkpoints")
            if path is None:
                raise GenlabError(f"No complete checkpoint in {self.run_dir / 'checkpoints'}.")
        else:
            path = Path(resume)
        tensors, state = ckpt.load_checkpoint(path)
        self.net.load_state_dict(tensors["model"])
        if self.ema is not None and "ema" in tensors:
            self.ema.load(tensors["ema"])
        for name, opt in self.opts.items():
            opt.load_state_dict(state["optimizer"][name])
            self.scheds[name].load_state_dict(state["scheduler"][name])
        torch.set_rng_state(state["rng"])
        self.step, self.bad_steps = int(state["step"]), int(state["bad_steps"])
        if self.step > self.cfg.steps:
            raise GenlabError(
                f"Checkpoint {path} is at step {self.step}, beyond --steps {self.cfg.steps}."
            )

    def _write_samples(self) -> None:
        if self.run_dir is None or not self.main or not self.model.generative:
            return
        from ..viz.plots import image_grid, scatter

        images = len(self.model.data_shape) == 3
        x = self.model.sample(64 if images else 1000, seed=0).detach().cpu().numpy()
        self.net.train()
        path = self.run_dir / "samples" / f"step-{self.step}.png"
        if images:
            image_grid(x, path)
        elif x.shape[1] == 2:
            scatter(x, path, title=f"step {self.step}", reference=self.data.numpy())

    def _plot_curves(self) -> None:
        from ..viz.plots import training_curves

        path = self.run_dir / "metrics.jsonl"
        if path.is_file():
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            training_curves(rows, self.run_dir / "plots" / "training.png")

    def _finish(self) -> None:
        """Final checkpoint (raw weights), then the EMA weights become the model's."""
        if self.run_dir is not None:
            self.save_checkpoint()
        if self.ema is not None:
            self.ema.copy_to(self.net)
        self.net.to("cpu")  # sampling draws its noise on the CPU
        if hasattr(self.model, "after_training"):
            self.model.after_training(self.data)
        self.net.eval()
        if self.run_dir is not None and self.main:
            self._check_finite_weights()
            self._write_samples()
            self._plot_curves()
            if hasattr(self.model, "run_plots"):
                self.model.run_plots(self.data.numpy(), self.run_dir / "plots")
            self.model.save(self.run_dir / "model")
        self.acc.wait_for_everyone()
