"""What several course steps share: their image data, and a short training with its loss
curve."""

from __future__ import annotations

from typing import Any


def image_data(spec: str | None):
    """The step's images: 16x16 digits in [-1, 1] by default, or the learner's own
    (``mnist:PATH``, ``folder:PATH`` ...), as (train, held-out) splits."""
    from ..data import load_spec
    from ..errors import DataError

    if spec is None:
        data = load_spec("digits", size=16, scale="pm1")
    else:
        data = load_spec(spec)
        if data.x.ndim != 4:
            raise DataError(f"This step needs images; {spec} holds a table.")
    return data.split(0.15, seed=0)


def train_briefly(
    model: Any, data: Any, steps: int, lr: float, seed: int = 0, batch: int = 128
) -> list[float]:
    """Train ``model`` in memory for ``steps`` steps of ``batch`` images (no EMA), with a
    progress bar; the loss every 10 steps (when the Trainer reads it off the device)."""
    import torch

    from ..training.trainer import TrainConfig, Trainer

    losses: list[float] = []

    def record(step: int, metrics: dict[str, float]) -> None:
        if step % 10 == 0:
            losses.append(metrics["loss"])

    cfg = TrainConfig(steps=steps, batch_size=batch, lr=lr, ema_decay=0, seed=seed, log_every=10)
    torch.manual_seed(seed)
    Trainer(model, data, cfg, on_step=record).train()
    return losses


def quick_batch(options: Any) -> int:
    """The batch a step trains with: 32 for --quick (a rough model at a quarter of the
    work: the quick notebooks run in CI), 128 otherwise."""
    return 32 if options.quick else 128


def shown_batch(batch: int) -> str:
    """The page's code passes the batch only where it is not the default's 128."""
    return "" if batch == 128 else f", batch={batch}"


def loss_figure(losses: list[float], ylabel: str = "loss"):
    from ..viz.plots import subplots

    fig, ax = subplots(figsize=(5, 3.5))
    ax.plot(losses)
    ax.set(xlabel="step / 10", ylabel=ylabel)
    fig.tight_layout()
    return fig


def compare(what: str, ours: float, oracle: float, tol: float) -> bool:
    """One oracle check: print what was compared with what, and whether they agree
    (|ours - oracle| <= tol)."""
    ok = bool(abs(float(ours) - float(oracle)) <= tol)
    verdict = "ok  " if ok else "FAIL"
    print(f"{verdict} {what}: {float(ours):.10g} vs {float(oracle):.10g} (tolerance {tol:g})")
    return ok
