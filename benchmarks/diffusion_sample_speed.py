"""Sampling time of a trained diffusion run: 64 images at 20 steps (DPM-Solver++(2M)),
plain, with classifier-free guidance, and with classifier guidance when a classifier run
is given.

    python benchmarks/diffusion_sample_speed.py RUN_DIR [--classifier CLF_RUN]

Prints the median of 5 timed runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch


def main() -> None:
    import genlab

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--classifier")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    model = genlab.load(args.run_dir)
    labels = torch.arange(args.n) % 10
    cases = {"plain": {}}
    if model.conditional:
        cases["label, cfg 3"] = {"label": labels, "cfg": 3.0}
    if args.classifier:
        clf = genlab.load(args.classifier)
        cases["label, classifier guidance 2 (cfg 0)"] = {
            "label": labels, "cfg": 0.0, "classifier": clf, "cg_scale": 2.0
        }  # fmt: skip
    print(f"# {os.cpu_count()} cores, torch {torch.__version__}; {args.n} images, "
          f"{args.steps} steps, dpmpp-2m")  # fmt: skip
    for name, options in cases.items():
        model.sample(args.n, seed=0, steps=args.steps, **options)  # warm-up
        times = []
        for i in range(5):
            t0 = time.perf_counter()
            model.sample(args.n, seed=i, steps=args.steps, **options)
            times.append(time.perf_counter() - t0)
        print(f"{name}: {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()
