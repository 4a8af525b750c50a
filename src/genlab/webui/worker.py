"""One worker pattern for the page's long jobs (a draw, a LoRA training): the work runs in a
thread and reports typed events through a queue; the page's thread iterates them. Closing
the iterator before its end (Gradio closes a generator whose client left) sets the job's
stop event, which the work checks between its steps (a back end's ``cancel``, the trainer's
step callback), so an abandoned job stops at its next step."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Step:
    """Step ``step`` (1-based) of ``steps`` is done; ``metrics``: what training logged;
    ``elapsed``: seconds since the work started (a draw: since it got the lock)."""

    step: int
    steps: int
    metrics: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0


@dataclass(frozen=True)
class Preview:
    """The current estimate of the clean images, decoded (PIL), at ``step`` of ``steps``,
    ``elapsed`` seconds after the draw started."""

    step: int
    steps: int
    images: list[Any]
    elapsed: float = 0.0


@dataclass(frozen=True)
class Drawn:
    """A draw's end: the images written (one path each) and the back end's result."""

    paths: list[Path]
    result: Any


@dataclass(frozen=True)
class Trained:
    """A training's end: its summary (steps, seconds ...) and the run folder."""

    summary: dict[str, Any]
    folder: Path


@dataclass(frozen=True)
class Stopped:
    """A training cancelled after ``step``; its folder keeps a checkpoint to resume from."""

    step: int
    folder: Path


@dataclass(frozen=True)
class _Raised:
    error: BaseException


@dataclass(frozen=True)
class _End:
    event: Any


Emit = Callable[[Any], None]


def stream(work: Callable[[Emit, threading.Event], Any], stop: threading.Event | None = None
           ) -> Iterator[Any]:  # fmt: skip
    """Run ``work(emit, stop)`` in a thread and yield what it emits, then what it returns
    (its final event). An exception in the work is raised here, in the consumer's thread.
    ``stop`` is set when the iterator ends, early or not."""
    events: queue.Queue = queue.Queue()
    stop = stop if stop is not None else threading.Event()

    def run() -> None:
        try:
            events.put(_End(work(events.put, stop)))
        except BaseException as e:  # handed to the consumer's thread, which raises it there
            events.put(_Raised(e))

    threading.Thread(target=run, daemon=True).start()
    try:
        while True:
            event = events.get()
            if isinstance(event, _Raised):
                raise event.error
            if isinstance(event, _End):
                yield event.event
                return
            yield event
    finally:  # closed early (GeneratorExit) or failed: the work stops at its next step
        stop.set()
