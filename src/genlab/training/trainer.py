"""One Trainer for every neural model, on Hugging Face accelerate's prepared objects.

The same loop runs on a CPU, one GPU, or several processes (``accelerate launch`` or
``torchrun``). The model supplies the hooks declared on ``NeuralModel`` (conditions,
updates, training_step, after_training, run_plots); the Trainer owns the rest:

- accelerate: the model's training step runs as the forward of one prepared module (so DDP
  all-reduces gradients in buckets, overlapped with the backward pass), every optimizer is
  prepared (under fp16 its wrapper unscales gradients and skips overflowed steps), gradients
  are clipped by ``accelerator.clip_grad_norm_`` and accumulated by
  ``accelerator.accumulate`` (``grad_accum`` forward passes per optimizer step); with
  ``fsdp``, torch's FSDP2 shards the model's units instead of DDP (``sharding.py``);
- the optimizers and learning-rate schedule (only the trainable parameters), the EMA of
  the trainable weights, logging, checkpoints, exact resume and the NaN guard. A step is
  all-or-nothing: if any update of a step (a GAN's generator after its discriminator) has a
  non-finite loss, the updates already applied are rolled back.

Exact resume: the batch of step s is a function of (seed, s) alone, and a checkpoint holds
the trainable weights, EMA, optimizers, schedules, the GradScaler and every process's RNG
state, so 3 steps + resume + 3 steps gives the same bits as 6 steps straight.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import Dataset
from ..errors import Cancelled, DataError, GenlabError
from . import checkpoint as ckpt
from . import rng, schedules
from .batch import Batch
from .config import TrainConfig
from .ema import EMA
from .sharding import (
    Sharding,
    optimizer_state_like,
    shard_state_like,
    whole_optimizer_state,
    whole_state,
)

__all__ = ["Cancelled", "TrainConfig", "Trainer"]


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """Indices of the global batch of ``step``: epochs are seeded permutations, last partial
    batch dropped. Depends on nothing but its arguments (this is what makes resume exact)."""
    per_epoch = n // batch_size
    epoch, pos = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)[pos * batch_size : (pos + 1) * batch_size]


def batch_plan(x: Any, batch_size: int, seed: int) -> Callable[[int], torch.Tensor]:
    """``draw(step)``: the indices of each step's global batch: ``batch_indices`` over one
    tensor, or one bucket's samples at a time over a ``Bucketed`` (training/buckets.py)."""
    from .buckets import BucketBatches, Bucketed

    if isinstance(x, Bucketed):
        return BucketBatches(x.part, batch_size, seed)
    return partial(batch_indices, n=len(x), batch_size=batch_size, seed=seed)


def param_groups(params: list, lr: float) -> list[dict[str, Any]]:
    """An update's parameters as the optimizer's groups: a plain list is one group at the
    run's ``lr``; a model may give groups (dicts with ``params`` and optionally ``lr`` and
    ``name``, as kohya's separate U-Net and text-encoder rates), a group without ``lr``
    taking the run's. Only parameters that require gradients are kept; empty groups go."""
    if not params or not isinstance(params[0], dict):
        params = [{"params": params}]
    out = []
    for group in params:
        kept = [p for p in group["params"] if p.requires_grad]
        if kept:
            out.append({**group, "params": kept, "lr": group.get("lr", lr)})
    return out  # none at all: AdamW's own "empty parameter list" error, as before


def lr_factor(step: int, warmup: int, decay: int) -> float:
    """genlab's default schedule (kept here for its callers; see schedules.py)."""
    return schedules.default_factor(step, warmup, decay)


class TrainingStep(nn.Module):
    """One update's ``training_step`` as a module's forward, holding the parameters that
    update moves. Models call their own submodules (a VAE its encoder and decoder, a GAN
    one player at a time), so a DDP wrapper around ``model.net`` would never see a forward
    pass; around this module it sees every one, autocast covers it, and DDP all-reduces
    exactly this update's gradients (a GAN's generator step does not sync the
    discriminator's)."""

    def __init__(self, model: Any, update: str, params: list[nn.Parameter]) -> None:
        super().__init__()
        self.params = nn.ParameterList(params)  # shared with model.net, not copies
        self.training_step, self.update = model.training_step, update

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.training_step(batch, self.update)


def make_accelerator(cfg: TrainConfig):
    """An Accelerator for one training run. accelerate keeps its settings in process-wide
    singletons, so a second run in the same process (a notebook, ``genlab compare``, the web
    page) with other settings would be refused: clear them first (the process group, if
    any, stays)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import DistributedDataParallelKwargs

    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    on_cpu = not (torch.cuda.is_available() or torch.backends.mps.is_available())
    # Buffers (an EBM's replay buffer, batch-norm statistics) stay each process's own;
    # gradients live in DDP's buckets (no copy into them and back).
    ddp = DistributedDataParallelKwargs(broadcast_buffers=False, gradient_as_bucket_view=True)
    return Accelerator(
        mixed_precision=cfg.mixed_precision,
        cpu=on_cpu,
        gradient_accumulation_steps=cfg.grad_accum,
        kwargs_handlers=[ddp],
    )


class Trainer:
    """Train ``model`` on ``data``; with ``run_dir`` also write the run folder's files.
    ``on_step(step, metrics)`` is called after each step (metrics: the latest logged ones;
    a front end's progress bar and loss plot), and may raise Cancelled."""

    def __init__(
        self,
        model: Any,
        data: Dataset | np.ndarray | torch.Tensor,
        config: TrainConfig,
        run_dir: str | Path | None = None,
        resume: str | None = None,
        on_step: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        self.model, self.cfg, self.on_step = model, config, on_step
        self.run_dir = Path(run_dir) if run_dir is not None else None
        # checks labels (or captions) before anything is written
        self.x, self.cond = model.training_data(data)
        self.acc = make_accelerator(config)
        if self.acc.distributed_type.name == "FSDP":
            # accelerate would shard the TrainingStep wrappers, not the modules they call.
            raise GenlabError(
                "An accelerate config that asks for FSDP is not used by genlab: launch with a "
                "multi-process (--multi_gpu) config and pass --fsdp to genlab train."
            )
        self.world, self.rank = self.acc.num_processes, self.acc.process_index
        if config.batch_size % self.world:
            raise GenlabError(
                f"batch_size {config.batch_size} does not split evenly over {self.world} processes."
            )
        if len(self.x) < config.batch_size:
            raise DataError(
                f"The dataset has {len(self.x)} samples, fewer than the batch size "
                f"{config.batch_size}; lower --batch-size."
            )
        self.draw = batch_plan(self.x, config.batch_size, config.seed)
        from accelerate.utils import set_seed

        set_seed(config.seed + self.rank)  # torch (CPU and every GPU), numpy, random
        for key, p in model.net.named_parameters():
            if model.is_frozen(key):
                p.requires_grad_(False)
        self.sharding = None
        if config.fsdp and self.world > 1:
            # Sharded while still on the CPU: fully_shard moves one unit at a time to the
            # device, so the whole model is never there at once. It replaces the units'
            # parameters, so the updates are listed after it.
            self.sharding = Sharding(model, self.acc.device, self.world)
        elif config.fsdp:
            warnings.warn(
                "--fsdp with one process: nothing to shard over; training unsharded.",
                stacklevel=2,
            )
        groups = {name: param_groups(ps, config.lr) for name, ps in model.updates()}
        self.params = {name: [p for g in gs for p in g["params"]] for name, gs in groups.items()}
        opts = [
            torch.optim.AdamW(
                gs, lr=config.lr, betas=(config.beta1, config.beta2),
                weight_decay=config.weight_decay,
            )
            for gs in groups.values()
        ]  # fmt: skip
        # The schedules step once per optimizer step of the run (not once per process, as a
        # prepared scheduler would), and not after a step the GradScaler skipped.
        factor = partial(
            schedules.lr_factor, config.lr_scheduler, warmup=config.warmup_steps,
            decay=config.decay_steps, total=config.steps, cycles=config.lr_cycles,
        )  # fmt: skip
        self.scheds = {
            name: torch.optim.lr_scheduler.LambdaLR(o, factor)
            for name, o in zip(self.params, opts, strict=True)
        }
        model.net.to(self.acc.device)  # frozen parts and buffers too
        steps = [TrainingStep(model, name, ps) for name, ps in self.params.items()]
        if self.sharding is not None:  # the units reduce-scatter their own gradients: no DDP
            self.modules = dict(zip(self.params, steps, strict=True))
            self.opts = dict(zip(self.params, map(self.acc.prepare_optimizer, opts), strict=True))
        else:
            prepared = self.acc.prepare(*steps, *opts)
            self.modules = dict(zip(self.params, prepared[: len(steps)], strict=True))
            self.opts = dict(zip(self.params, prepared[len(steps) :], strict=True))
        self.ema = None
        if config.ema_decay > 0:
            names = {k for k, _ in model.net.named_parameters() if not model.is_frozen(k)}
            self.ema = EMA(model.trainable_state(), names, config.ema_decay)
        self.step, self.bad_steps = 0, 0
        if self.run_dir is not None and self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self._resume(resume)

    @property
    def main(self) -> bool:
        return self.acc.is_main_process

    @property
    def effective_batch(self) -> int:
        return self.cfg.batch_size * self.cfg.grad_accum

    # --- the loop ---------------------------------------------------------------------------
    def train(self) -> dict[str, float]:
        from tqdm.auto import tqdm

        cfg = self.cfg
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            disable=not (cfg.progress and self.main),
            desc=f"train {self.model.name}",
            dynamic_ncols=True,
        )
        t0, seen, last = time.perf_counter(), 0, {}
        self.model.net.train()
        try:
            while self.step < cfg.steps:
                out = self._step(self._micro_batches())
                self.step += 1
                seen += self.effective_batch
                bar.update(1)
                logging = self.step % cfg.log_every == 0 or self.step == cfg.steps
                if logging or self.step % 10 == 0:  # metrics leave the device only here
                    last = {k: float(v) for k, v in out.items()}
                    rate = seen / max(time.perf_counter() - t0, 1e-9)
                    shown = {k: f"{v:.4g}" for k, v in last.items() if k.endswith("loss")}
                    bar.set_postfix(**shown, img_s=f"{rate:.0f}")
                if logging:
                    self._log({"step": self.step, **last, "samples_per_s": rate})
                if cfg.sample_every and self.step % cfg.sample_every == 0 and self.step < cfg.steps:
                    self._write_samples()  # the last step's samples: _finish draws them once
                if self.step % cfg.checkpoint_every == 0 and self.step < cfg.steps:
                    self.save_checkpoint()
                if self.on_step is not None:
                    self.on_step(self.step, last)
        except (KeyboardInterrupt, Cancelled):
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

    def _micro_batches(self) -> list[Batch]:
        """This process's share of the ``grad_accum`` global batches of the current step."""
        cfg, local = self.cfg, self.cfg.batch_size // self.world
        out = []
        for m in range(cfg.grad_accum):
            idx = self.draw(self.step * cfg.grad_accum + m)
            mine = idx[self.rank * local : (self.rank + 1) * local]
            cond = None if self.cond is None else self.cond[mine].to(self.acc.device)
            out.append(Batch(self.x[mine].to(self.acc.device), cond))
        return out

    def _step(self, micro_batches: list[Batch]) -> dict[str, torch.Tensor]:
        """One optimizer step of every update; metrics stay tensors on the device."""
        several = len(self.opts) > 1
        before = self._snapshot() if several else None
        metrics: dict[str, torch.Tensor] = {}
        for name, opt in self.opts.items():
            self.acc.step = 0  # keep accelerate's accumulation counter in phase per update
            # An earlier update's backward leaves gradients on parameters it does not move
            # (a GAN's generator loss reaches the discriminator): drop them.
            self.model.net.zero_grad(set_to_none=True)
            for batch in micro_batches:
                with self.acc.accumulate(self.modules[name]):
                    out = self._forward(name, batch)
                    finite = self._finite_everywhere(out["loss"])
                    self.acc.backward(out["loss"])
                    if not finite():  # before the optimizer changes anything
                        return self._skip(before)
                    if self.acc.sync_gradients and self.cfg.grad_clip > 0:
                        self.acc.clip_grad_norm_(self.params[name], self.cfg.grad_clip)
                    opt.step()  # a no-op until the last micro-batch
                    opt.zero_grad(set_to_none=True)
                prefix = f"{name}_" if several else ""
                for k, v in out.items():
                    share = v.detach().float() / len(micro_batches)
                    metrics[prefix + k] = metrics.get(prefix + k, 0) + share
        for name, opt in self.opts.items():
            if not opt.step_was_skipped:  # fp16: the GradScaler skips overflowed steps
                self.scheds[name].step()
        self.bad_steps = 0
        if self.ema is not None:
            self.ema.update(self.model.trainable_state())
        return metrics | self._learning_rates()

    def _learning_rates(self) -> dict[str, torch.Tensor]:
        """The next step's learning rate: ``lr`` (the first update's first group), and
        ``lr_NAME`` for each named parameter group of the first update."""
        sched = next(iter(self.scheds.values()))
        lrs = sched.get_last_lr()
        out = {"lr": torch.tensor(lrs[0])}
        for group, lr in zip(sched.optimizer.param_groups, lrs, strict=True):
            if "name" in group:
                out[f"lr_{group['name']}"] = torch.tensor(lr)
        return out

    def _forward(self, name: str, batch: Batch) -> dict[str, torch.Tensor]:
        if self.sharding is None:  # a prepared module: DDP and autocast are in its forward
            return self.modules[name](batch)
        self.sharding.sync_gradients(self.acc.sync_gradients)
        with self.acc.autocast():
            return self.modules[name](batch)

    def _finite_everywhere(self, loss: torch.Tensor) -> Callable[[], bool]:
        """Whether the loss is finite on every process (the NaN guard; every rank skips
        together), as a function to call once the backward pass has run: the processes
        agree on it while the backward runs instead of waiting for each other before it.
        (A backward through a non-finite loss only writes gradients that are then dropped.)"""
        flag = torch.isfinite(loss.detach()).all().float().reshape(1)
        if self.world == 1:
            return lambda: bool(flag.item())
        work = torch.distributed.all_reduce(flag, torch.distributed.ReduceOp.MIN, async_op=True)

        def agreed() -> bool:
            work.wait()
            return bool(flag.item())

        return agreed

    def _snapshot(self) -> dict[str, Any]:
        """What the updates before the last change (their parameters, their optimizers'
        state, the buffers), copied into tensors kept from step to step, to roll back a
        step whose later update fails. The last update needs no copy: its loss is checked
        before its optimizer changes anything."""
        earlier = list(self.opts)[:-1]
        opts = [self.opts[n].optimizer for n in earlier]
        live = [p for n in earlier for p in self.params[n]]
        live += [b for b in self.model.net.buffers()]
        live += [t for o in opts for st in o.state.values() for t in st.values()]
        live = [t.detach() for t in live if torch.is_tensor(t)]
        saved = getattr(self, "_saved", [])
        if [t.shape for t in saved] != [t.shape for t in live]:  # first step, a new buffer
            saved = self._saved = [t.clone() for t in live]
        else:
            torch._foreach_copy_(saved, live)
        started = [set(o.state) for o in opts]  # Adam creates its state on the first step
        scaler = None if self.acc.scaler is None else self.acc.scaler.state_dict()
        return {"live": live, "saved": saved, "opts": opts, "started": started, "scaler": scaler}

    def _skip(self, before: dict[str, Any] | None) -> dict[str, torch.Tensor]:
        for opt in self.opts.values():
            opt.optimizer.zero_grad(set_to_none=True)
        if before is not None:
            torch._foreach_copy_(before["live"], before["saved"])
            for opt, started in zip(before["opts"], before["started"], strict=True):
                for p in set(opt.state) - started:
                    del opt.state[p]
            if before["scaler"] is not None:
                self.acc.scaler.load_state_dict(before["scaler"])
        self.bad_steps += 1
        if self.bad_steps >= self.cfg.max_bad_steps:
            raise GenlabError(
                f"The loss was not finite for {self.bad_steps} steps in a row (last at "
                f"step {self.step + 1}); training stopped. Lower the learning rate or "
                "check the data."
            )
        return {"loss": torch.tensor(float("nan")), "skipped": torch.tensor(1.0)}

    # --- files ------------------------------------------------------------------------------
    def _log(self, row: dict[str, float]) -> None:
        if self.run_dir is None or not self.main:
            return
        from ..runfiles import append_line

        append_line(self.run_dir / "metrics.jsonl", json.dumps(row))  # never through a link

    @staticmethod
    def _check_finite_weights(state: dict[str, torch.Tensor]) -> None:
        for name, t in state.items():
            if t.dtype.is_floating_point and not torch.isfinite(t).all():
                raise GenlabError(f"Weight {name} is not finite; refusing to save it.")

    def _gather_rng(self) -> list[dict]:
        """Every process's RNG state, in rank order."""
        mine = rng.get_state()
        if self.world == 1:
            return [mine]
        states: list = [None] * self.world
        torch.distributed.all_gather_object(states, mine)
        return states

    def save_checkpoint(self) -> Path | None:
        if self.run_dir is None:
            return None
        # Sharded tensors are gathered whole by every process (whole is a collective).
        weights = whole_state(self.model.trainable_state())
        self._check_finite_weights(weights)
        ema = None if self.ema is None else whole_state(self.ema.state())
        optimizers = {n: whole_optimizer_state(o.state_dict()) for n, o in self.opts.items()}
        states = self._gather_rng()
        path = None
        if self.main:
            tensors = {"model": weights}
            if ema is not None:
                tensors["ema"] = ema
            state = {
                "step": self.step,
                "bad_steps": self.bad_steps,
                "optimizer": optimizers,
                "scheduler": {n: s.state_dict() for n, s in self.scheds.items()},
                "scaler": None if self.acc.scaler is None else self.acc.scaler.state_dict(),
                "rng": states,
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
        try:
            # Whole tensors; each process takes its own slice of those that are sharded here.
            self.model.load_trainable_state(
                shard_state_like(tensors["model"], self.model.trainable_state())
            )
            if self.ema is not None and "ema" in tensors:
                self.ema.load(shard_state_like(tensors["ema"], self.ema.shadow))
            for name, opt in self.opts.items():
                opt.load_state_dict(optimizer_state_like(state["optimizer"][name], opt.optimizer))
                self.scheds[name].load_state_dict(state["scheduler"][name])
                # this run's schedule at the step reached: a schedule over the run's steps
                # (cosine, linear ...) follows a changed --steps from the first resumed step
                sched = self.scheds[name]
                for group, base, fn in zip(
                    opt.param_groups, sched.base_lrs, sched.lr_lambdas, strict=True
                ):
                    group["lr"] = base * fn(sched.last_epoch)
            if state.get("scaler") is not None and self.acc.scaler is not None:
                self.acc.scaler.load_state_dict(state["scaler"])
            states = state["rng"]
            rng.set_state(states[self.rank % len(states)])
            self.step, self.bad_steps = int(state["step"]), int(state["bad_steps"])
        except (
            KeyError,
            IndexError,
            TypeError,
            ValueError,
            RuntimeError,
            AttributeError,
            ZeroDivisionError,
        ) as e:
            reason = " ".join(str(e).split())[:160]
            raise GenlabError(
                f"Checkpoint {path} does not fit this model and its settings ({reason})."
            ) from None
        if self.step > self.cfg.steps:
            raise GenlabError(
                f"Checkpoint {path} is at step {self.step}, beyond --steps {self.cfg.steps}."
            )

    def _write_samples(self, final: bool = False) -> None:
        # A sharded model's forward is a collective: every process samples, rank 0 writes.
        if self.run_dir is None or not self.model.generative:
            return
        if not (self.main or self.sharding is not None):
            return
        from ..viz.plots import image_grid, save, scatter

        if getattr(self.model, "validation_prompts", None):  # a LoRA's validation prompts
            self._write_validation()
            if not final:
                return  # between steps only the prompts the user asked to watch
        images = len(self.model.data_shape) == 3
        n = self.model.preview_count if images else 1000
        x = self.model.sample(n, seed=0).detach().cpu().numpy()
        self.model.net.train()
        if not self.main:
            return
        path = self.run_dir / "samples" / f"step-{self.step}.png"
        if images:
            save(image_grid(x), path)
        elif x.shape[1] == 2:
            save(scatter(x, title=f"step {self.step}", reference=self.x.numpy()), path)

    def _write_validation(self) -> None:
        """samples/validation-STEP-I.png: the I-th validation prompt's image, same seed."""
        from PIL import Image

        with torch.random.fork_rng(devices=[]):  # drawing leaves the training's draws alone
            drawn = self.model.validation_images(seed=self.cfg.seed)
        self.model.net.train()
        if not self.main:
            return
        folder = self.run_dir / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        for i, (_, image) in enumerate(drawn):
            pixels = ((image[0].detach().cpu().float().clamp(-1, 1) + 1) * 127.5).round()
            array = pixels.byte().permute(1, 2, 0).numpy()
            Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(
                folder / f"validation-{self.step}-{i}.png"
            )

    def _finish(self) -> None:
        """Final checkpoint (raw weights), then the EMA weights become the model's."""
        from ..viz.plots import save_figures

        if self.run_dir is not None:
            self.save_checkpoint()
        model = self.model
        if self.sharding is not None:  # every process gets the whole, plain model back
            self.sharding.unshard()
            if self.ema is not None:
                self.ema.load(whole_state(self.ema.state()))
        if self.ema is not None:
            model.load_trainable_state(self.ema.averaged(model.trainable_state()))
        model.net.to("cpu")  # sampling draws its noise on the CPU
        model.after_training(self.x)
        model.net.eval()
        if self.run_dir is not None and self.main:
            self._check_finite_weights(model.trainable_state())
            self._write_samples(final=True)
            # samples of several shapes (buckets) are no one array to plot
            figures = model.run_plots(self.x.numpy()) if torch.is_tensor(self.x) else {}
            path = self.run_dir / "metrics.jsonl"
            if path.is_file():
                from ..viz.plots import training_curves

                rows = _metric_rows(path)
                if rows:
                    figures["training"] = training_curves(rows)
            save_figures(figures, self.run_dir / "plots")
            model.save(self.run_dir / "model")
        self.acc.wait_for_everyone()


def _metric_rows(path) -> list[dict]:
    """The rows of metrics.jsonl that are JSON objects: a resumed run appends to a log that
    a crash may have cut mid-line or a hand may have damaged; the curve is drawn from what
    is readable rather than lose the finished training to a plot."""
    rows = []
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows
