"""The lossy speed-ups of issue 29 against the plain built-in model, in one run: each case of
CASES (step caching today; token merging is meant to be one more row) is drawn on the same
prompts and seeds as the plain model ("off", the peer), and measured three ways:

1. speed: images per second of the back end call (prompt encoding, sampling and decoding
   timed; loading not), of wall time and of the process's CPU time (the steadier one on a
   loaded machine), the cases interleaved round by round so that a change in the machine's
   load falls on all of them; the median over rounds, and the ratio to "off";
2. the pictures: mean and largest absolute difference to the uncached picture of the same
   prompt and seed, in 8-bit levels (0-255), over every image the speed rounds drew;
3. adherence (``--eval N``): ``genlab eval-t2i``'s measure on N held-out and N seen prompts
   of one prompt set (``--eval-seed``, or one drawn fresh and printed), the same for every
   case, with 95% Wilson intervals: the adherence cost.

    python benchmarks/lossy_speedups.py                       # speed and pixels only
    python benchmarks/lossy_speedups.py --eval 200            # + adherence, a fresh set
    python benchmarks/lossy_speedups.py --cases off,deepcache-3 --batch 1 --repeats 5
    python benchmarks/lossy_speedups.py --repeats 0 --eval 200 --eval-seed 7   # adherence only
    python benchmarks/lossy_speedups.py --repeats 0 --flops    # the U-Net's arithmetic a draw
    python benchmarks/lossy_speedups.py --repeats 0 --grid docs/img/lossy_speedups.png

A case is a name and the GenerationRequest fields it sets (eval-t2i takes the same fields
as settings); the default model's own settings (dpmpp-2m, 20 steps, cfg 5) apply to all.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch
from fewstep_speed import PROMPTS  # this folder's: the same five prompts as the few-step benchmark

from genlab.backends import load_backend
from genlab.generation import GenerationRequest

#: case -> (what it is, the request fields it sets). "off" is the peer every ratio and
#: difference is taken against; add a lossy speed-up as one more row.
CASES: dict[str, tuple[str, dict]] = {
    "off": ("the plain model (no lossy speed-up)", {}),
    "deepcache-2": ("step caching, interval 2, branch 0", {"deepcache": 2}),
    "deepcache-3": ("step caching, interval 3, branch 0", {"deepcache": 3}),
    "deepcache-5": ("step caching, interval 5, branch 0", {"deepcache": 5}),
    "deepcache-3-b1": (
        "step caching, interval 3, branch 1",
        {"deepcache": 3, "deepcache_branch": 1},
    ),
    "deepcache-2-b1": (
        "step caching, interval 2, branch 1",
        {"deepcache": 2, "deepcache_branch": 1},
    ),
}


def draw_all(pipe, fields: dict, batch: int, round_: int) -> tuple[float, float, np.ndarray]:
    """(images per second of wall time and per second of this process's CPU time, drawing
    every prompt once, ``batch`` images each; the images (N, H, W, 3) as int16). On a loaded
    machine the CPU time is the steadier measure of the work: other processes' share of the
    cores does not enter it."""
    images = []
    t0, c0 = time.perf_counter(), time.process_time()
    for i, prompt in enumerate(PROMPTS):
        request = GenerationRequest(prompt, seed=1000 * round_ + i, batch_size=batch, **fields)
        images += pipe(request).images
    n = len(PROMPTS) * batch
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return n / wall, n / cpu, np.stack([np.asarray(im, dtype=np.int16) for im in images])


def speed(pipe, cases: list[str], batch: int, repeats: int) -> None:
    for name in cases:  # warm up: first calls allocate
        draw_all(pipe, CASES[name][1], batch, 99)
    rates: dict[str, list[float]] = {c: [] for c in cases}
    per_cpu: dict[str, list[float]] = {c: [] for c in cases}
    diffs: dict[str, list[np.ndarray]] = {c: [] for c in cases}
    for r in range(repeats):
        drawn = {}
        for name in cases if r % 2 == 0 else list(reversed(cases)):
            rate, cpu_rate, drawn[name] = draw_all(pipe, CASES[name][1], batch, r)
            rates[name].append(rate)
            per_cpu[name].append(cpu_rate)
        for name in cases:
            diffs[name].append(np.abs(drawn[name] - drawn["off"]))
    med = {c: statistics.median(v) for c, v in rates.items()}
    cpu = {c: statistics.median(v) for c, v in per_cpu.items()}
    for name in cases:
        d = np.concatenate(diffs[name])
        cells = ", ".join(f"{v:.2f}" for v in rates[name])
        print(f"| {batch} | {name} | {med[name]:.2f} ({cells}) | {med[name] / med['off']:.2f}x "
              f"| {cpu[name]:.2f} | {cpu[name] / cpu['off']:.2f}x | {d.mean():.2f} | {d.max()} "
              f"| {len(d)} |", flush=True)  # fmt: skip


def unet_flops(pipe, cases: list[str]) -> None:
    """The U-Net's floating-point operations of a 20-step draw under each case, counted by
    torch.utils.flop_counter (matrix products and convolutions) over the guided batch of
    two, relative to "off": what step caching saves in arithmetic, free of the load."""
    from torch.utils.flop_counter import FlopCounterMode

    from genlab.models.latent_sampling import draw_latents

    _, h, w = pipe.model.data_shape
    counted = {}
    for name in cases:
        fields = CASES[name][1]
        cache = {k: fields[k] for k in ("deepcache", "deepcache_branch") if k in fields}
        if len(cache) != len(fields):
            continue  # not step caching: no U-Net-only count here
        with FlopCounterMode(display=False) as counter:
            draw_latents(pipe.model, [PROMPTS[0]], [""], [0], width=w, height=h, **cache)
        counted[name] = counter.get_total_flops()
    print("\n| case | U-Net GFLOP a 20-step draw (guided batch of 2) | share of off |")
    print("|---|---|---|")
    for name, flops in counted.items():
        print(f"| {name} | {flops / 1e9:.3f} | {flops / counted['off']:.3f} |")


def grid(pipe, cases: list[str], path: str) -> None:
    """A picture for a person: one row a prompt (seed = its row), one column a case, each
    image 3x nearest-upscaled, written to ``path``."""
    from PIL import Image

    rows = []
    for i, prompt in enumerate(PROMPTS):
        row = []
        for name in cases:
            image = pipe(GenerationRequest(prompt, seed=i, **CASES[name][1])).images[0]
            row.append(np.asarray(image.resize((image.width * 3, image.height * 3), 0)))
        rows.append(np.concatenate(row, 1))
    Image.fromarray(np.concatenate(rows, 0)).save(path)
    print(f"# grid: {path} (columns {', '.join(cases)}; rows: the prompts, seed = row)")


def adherence(cases: list[str], n: int, seed: int) -> None:
    from genlab.evaluation.text_to_image import evaluate_text_to_image

    print(f"\nadherence: {n} held-out and {n} seen prompts, prompt set seed {seed}")
    print("| case | command | held-out overall [95%] | seen overall [95%] | FD | seconds |")
    print("|---|---|---|---|---|---|")
    for name in cases:
        fields = CASES[name][1]
        flags = "".join(f" --{k.replace('_', '-')} {v}" for k, v in fields.items())
        report = evaluate_text_to_image("builtin", n=n, seed=seed, references=False, **fields)
        cells = []
        for split in ("heldout", "seen"):
            acc, band = report[split]["accuracy"]["overall"], report[split]["interval"]["overall"]
            cells.append(f"{acc:.1%} [{band[0]:.1%}, {band[1]:.1%}]")
        command = f"`genlab eval-t2i builtin --n {n} --seed {seed}{flags}`"
        print(f"| {name} | {command} | {cells[0]} | {cells[1]} | {report['fd_pixels']:.3f} "
              f"| {report['seconds']:.0f} |", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated (default all)")
    ap.add_argument("--repeats", type=int, default=3, help="speed rounds per batch size")
    ap.add_argument("--batch", type=int, action="append", help="batch sizes (default 1, 8)")
    ap.add_argument("--eval", type=int, default=0, metavar="N",
                    help="also eval-t2i adherence, N prompts a split (default 0: no)")  # fmt: skip
    ap.add_argument("--eval-seed", type=int, help="the prompt set's seed (default: fresh)")
    ap.add_argument("--flops", action="store_true", help="also count the U-Net's FLOPs a draw")
    ap.add_argument("--grid", metavar="PNG", help="also write a picture of every case")
    args = ap.parse_args()
    cases = ["off", *[c for c in args.cases.split(",") if c != "off"]]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case {unknown[0]}; known: {', '.join(CASES)}")
    pipe = load_backend("builtin")
    load = os.getloadavg()
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; load average at start {load[0]:.2f}")  # fmt: skip
    for name in cases:
        print(f"# {name}: {CASES[name][0]}")
    if args.repeats:  # --repeats 0: the FLOPs or the adherence alone
        print("| batch | case | images/s, median (rounds) | ratio to off | images per CPU-s "
              "| ratio to off | mean abs diff (0-255) | max abs diff | images |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|")
    for batch in args.batch or [1, 8] if args.repeats else []:
        speed(pipe, cases, batch, args.repeats)
    if args.flops:
        unet_flops(pipe, cases)
    if args.grid:
        grid(pipe, cases, args.grid)
    if args.eval:
        from genlab.evaluation.text_to_image import fresh_seed

        seed = fresh_seed() if args.eval_seed is None else args.eval_seed
        adherence(cases, args.eval, seed)
    end = os.getloadavg()
    print(f"# load average at end {end[0]:.2f}")


if __name__ == "__main__":
    main()
