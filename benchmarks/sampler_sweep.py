"""FD on digits against the number of network evaluations (NFE), for every sampler.

    python benchmarks/sampler_sweep.py RUN_DIR [--n 500]

RUN_DIR is a trained diffusion run (e.g. `genlab train ddpm --data digits --out RUN_DIR`).
Each sampler draws n class-balanced samples (labels 0-9 in turn, no guidance) from the same
seed at several step counts; FD uses the shipped digits features against the run's training
split. The 1000-step DDPM and DDIM runs are the reference. Writes sweep.json and sweep.png
into RUN_DIR and prints a table with the targets: DPM-Solver++(2M) within 10% of the best
1000-step FD at 20 NFE and within 25% at 10 NFE.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def main() -> None:
    from genlab.evaluation.features import digits_features
    from genlab.evaluation.metrics import frechet_distance
    from genlab.runs import open_run
    from genlab.viz.plots import save, subplots

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--spacing", default="trailing", help="trailing, leading, linspace, karras")
    args = parser.parse_args()
    run = Path(args.run_dir)
    _, model, train, _ = open_run(run)
    real = digits_features(train.x)
    labels = torch.arange(args.n) % 10 if model.conditional else None
    nfe_per_step = {"heun": 2}
    grid = {name: [5, 10, 20, 40] for name in ("euler", "ddim", "dpmpp-2m")}
    grid["heun"] = [5, 10, 20]
    grid["ddpm"] = [100]
    reference = {"ddpm": 1000, "ddim": 1000}
    rows = []
    for name, counts in list(grid.items()) + [(k, [v]) for k, v in reference.items()]:
        for steps in counts:
            t0 = time.perf_counter()
            x = model.sample(args.n, seed=0, sampler=name, steps=steps, cond=labels,
                             spacing=args.spacing)  # fmt: skip
            seconds = time.perf_counter() - t0
            nfe = steps * nfe_per_step.get(name, 1) - (1 if name == "heun" else 0)
            fd = frechet_distance(real, digits_features(x.numpy()))
            rows.append({"sampler": name, "steps": steps, "nfe": nfe, "fd": fd, "seconds": seconds})
            print(f"{name:9s} steps {steps:5d}  NFE {nfe:5d}  FD {fd:8.2f}  {seconds:6.1f} s",
                  flush=True)  # fmt: skip
    best = min(r["fd"] for r in rows if r["steps"] == 1000)
    dpm = {r["nfe"]: r["fd"] for r in rows if r["sampler"] == "dpmpp-2m"}
    print(f"best 1000-step FD {best:.2f}; DPM-Solver++(2M) at 20 NFE {dpm[20]:.2f} "
          f"({dpm[20] / best - 1:+.0%}, target within +10%), at 10 NFE {dpm[10]:.2f} "
          f"({dpm[10] / best - 1:+.0%}, target within +25%)")  # fmt: skip
    (run / "sweep.json").write_text(json.dumps(rows, indent=1))
    fig, ax = subplots(figsize=(6, 4))
    for name in grid:
        pts = sorted((r["nfe"], r["fd"]) for r in rows if r["sampler"] == name)
        ax.plot(*zip(*pts, strict=True), marker="o", label=name)
    ax.axhline(best, color="k", ls="--", lw=1, label="best 1000-step")
    ax.set(xscale="log", xlabel="network evaluations", ylabel="FD (digits features)")
    ax.legend()
    save(fig, run / "sweep.png")


if __name__ == "__main__":
    main()
