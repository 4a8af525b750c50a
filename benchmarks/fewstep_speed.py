"""The few-step built-in model against the default one, in one run: images per second of
``builtin-fast`` at its own settings (lcm, 4 steps, cfg 1: one network call a step) and of
``builtin`` at its own (DPM-Solver++(2M), 20 steps, cfg 5: a conditional and an
unconditional half each step), on the same prompts and seeds, through the same back end call
(prompt encoding, sampling and decoding inside the timed region; loading outside it).

    python benchmarks/fewstep_speed.py                  # batches of 1 and 8
    python benchmarks/fewstep_speed.py --repeats 5 --batch 1

The two models alternate, each round drawing every prompt once, so a change in the
machine's load falls on both; the figure per model is the median over rounds of images per
second, and the ratio is fast / default. Target (issue 29): at least 3x.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from genlab.backends import load_backend
from genlab.generation import GenerationRequest

PROMPTS = [
    "a red circle to the left of a blue square",
    "a small green star at the top",
    "pink heart, centre, large",
    "a golden triangle below a violet disc",
    "white box, right, small",
]
MODELS = ("builtin", "builtin-fast")


def draw_all(pipe, batch: int, round_: int) -> float:
    """Images per second drawing every prompt once (``batch`` images each)."""
    t0 = time.perf_counter()
    for i, prompt in enumerate(PROMPTS):
        request = GenerationRequest(prompt, seed=1000 * round_ + i, batch_size=batch)
        own = pipe.describe().sampling  # the model's own sampler, steps and CFG scale
        pipe(GenerationRequest(**{**request.to_dict(), **own}))
    return len(PROMPTS) * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="rounds per batch size")
    ap.add_argument("--batch", type=int, action="append", help="batch sizes (default 1, 8)")
    args = ap.parse_args()
    pipes = {m: load_backend(m) for m in MODELS}
    load = os.getloadavg()
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; load average at start {load[0]:.2f}")  # fmt: skip
    print("| batch | model | settings | images/s (median) | rounds |")
    print("|---|---|---|---|---|")
    for batch in args.batch or [1, 8]:
        for pipe in pipes.values():  # warm up: first calls allocate
            draw_all(pipe, batch, 99)
        rates: dict[str, list[float]] = {m: [] for m in MODELS}
        for r in range(args.repeats):
            for m in MODELS if r % 2 == 0 else reversed(MODELS):
                rates[m].append(draw_all(pipes[m], batch, r))
        med = {m: statistics.median(v) for m, v in rates.items()}
        for m in MODELS:
            own = GenerationRequest("", **pipes[m].describe().sampling)
            settings = f"{own.sampler}, {own.steps} steps, cfg {own.cfg_scale:g}"
            cells = ", ".join(f"{v:.2f}" for v in rates[m])
            print(f"| {batch} | {m} | {settings} | {med[m]:.2f} | {cells} |")
        ratio = med["builtin-fast"] / med["builtin"]
        print(f"| {batch} | ratio fast / default | | {ratio:.2f}x | |", flush=True)
    end = os.getloadavg()
    print(f"# load average at end {end[0]:.2f}")


if __name__ == "__main__":
    main()
