"""Time to matched quality: does genlab's digits U-Net reach the held-out FD that diffusers'
UNet2DModel reaches in a training budget, in at most --fraction (2/3) of that budget?

    python benchmarks/matched_quality_vs_diffusers.py [--budget 240] [--fraction 0.667]
        [--lrs 1e-3,2e-3,4e-3] [--seeds 0,1,2] [--dev-seed 100] [--n 500]

Both are unconditional eps-prediction DDPMs on the 16x16 digits recipes train on (part
"models", 1,150 images), with ddpm-digits' other optimiser settings (AdamW, batch 128,
warm-up over a quarter of the steps up to 100, cosine decay to the end, EMA 0.999). The
diffusers network sits inside genlab's DDPM in place of genlab's U-Net, so schedule, loss,
Trainer and sampler are the same code: only the network differs.

Time is counted in steps, so machine load during the long runs cannot move the result: an
alternating probe (--probe-rounds rounds of --probe steps each, the median round's seconds
per step after the first step) gives each network's seconds per step; diffusers then trains
for --budget seconds' worth of steps (or --steps steps), genlab for --fraction of that
time. Each network gets its own learning rate: every value of --lrs is tried on --dev-seed
at that network's own budget, and the lowest FD wins (a single --lrs value is taken as
already chosen: no search, so a search can be split over runs, each rate given to
--seeds with the dev seed). The comparison then runs on --seeds,
fresh seeds (initial weights, batches and sampling), at the chosen rates. FD: --n samples
(DPM-Solver++(2M), 20 steps) against the 288 held-out references, digits features. Target
met when genlab's mean FD over the seeds is at most diffusers' mean FD.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from torch import nn


class DiffusersNet(nn.Module):
    """diffusers' UNet2DModel behind genlab's network interface F(x, t, cond)."""

    def __init__(self) -> None:
        super().__init__()
        from diffusion_train_vs_diffusers import diffusers_unet  # this folder's benchmark

        self.unet = diffusers_unet()

    def forward(self, x, t, cond=None):
        return self.unet(x, t).sample


def build(kind: str, seed: int):
    from genlab.models.diffusion import DDPM

    torch.manual_seed(seed)
    model = DDPM((1, 16, 16), channels=(16, 64, 80), num_classes=0)
    if kind == "diffusers":
        model.net.net = DiffusersNet()
    return model


def train(model, x, steps: int, lr: float, seed: int, on_step=None) -> float:
    """Train ``steps`` steps; returns the Trainer's seconds."""
    from genlab.training.trainer import TrainConfig, Trainer

    warmup = min(100, steps // 4)
    cfg = dict(steps=steps, batch_size=128, lr=lr, warmup_steps=warmup,
               decay_steps=steps - warmup, ema_decay=0.999, progress=False,
               checkpoint_every=10**9, log_every=10**9, seed=seed)  # fmt: skip
    return Trainer(model, x, TrainConfig.make(model, cfg), on_step=on_step).train()["seconds"]


def probe(kind: str, x, steps: int) -> float:
    """Seconds per step over the steps after the first (the first builds the optimizer)."""
    ends: list[float] = []
    train(build(kind, 0), x, steps, 2e-3, 0, on_step=lambda s, m: ends.append(time.perf_counter()))
    return (ends[-1] - ends[0]) / (len(ends) - 1)


def mean_interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (0 for one value)."""
    from scipy import stats

    m = float(np.mean(values))
    if len(values) < 2:
        return m, 0.0
    half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values))
    return m, float(half)


def main() -> None:
    import genlab.data as gd
    from genlab.evaluation.compare import FAMILIES_DIGITS
    from genlab.evaluation.compare_images import References, measure_images

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=240.0,
                        help="diffusers' budget, seconds at the probe's speed")  # fmt: skip
    parser.add_argument("--steps", type=int, default=0,
                        help="diffusers' budget in steps instead (0: from --budget)")  # fmt: skip
    parser.add_argument("--fraction", type=float, default=2 / 3,
                        help="genlab's budget as a fraction of diffusers'")  # fmt: skip
    parser.add_argument("--lrs", default="1e-3,2e-3,4e-3", help="learning rates searched")
    parser.add_argument("--seeds", default="0,1,2", help="fresh seeds of the comparison")
    parser.add_argument("--dev-seed", type=int, default=100, help="seed of the rate search")
    parser.add_argument("--n", type=int, default=500, help="samples per FD")
    parser.add_argument("--probe", type=int, default=25, help="steps of each probe round")
    parser.add_argument("--probe-rounds", type=int, default=3)
    parser.add_argument("--per-step", default="",
                        help="genlab,diffusers s/step of an earlier probe (skips it)")  # fmt: skip
    parser.add_argument("--kinds", default="genlab,diffusers",
                        help="networks to train (one each in two processes halves the wall time "
                        "on a loaded machine; the verdict needs both)")  # fmt: skip
    args = parser.parse_args()
    lrs = [float(v) for v in args.lrs.split(",")]
    seeds = [int(v) for v in args.seeds.split(",")]
    train_set, test_set = gd.load("digits", size=16, scale="pm1", part="models").split(0.2, 0)
    refs = References(train_set, test_set, args.n)
    fast = next(f for f in FAMILIES_DIGITS if f.options.get("sampler") == "dpmpp-2m")
    kinds = ("genlab", "diffusers")
    run_kinds = tuple(k for k in kinds if k in args.kinds.split(","))
    print(f"# {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; FD floor {refs.fd_floor:.2f}",
          flush=True)  # fmt: skip

    rounds: dict[str, list[float]] = {k: [] for k in kinds}
    if args.per_step:
        for kind, v in zip(kinds, args.per_step.split(","), strict=True):
            rounds[kind].append(float(v))
    for _ in range(0 if args.per_step else args.probe_rounds):  # alternate: the same load
        for kind in kinds:
            rounds[kind].append(probe(kind, train_set.x, args.probe))
    per_step = {k: statistics.median(v) for k, v in rounds.items()}
    if args.steps:  # a budget in steps, turned into seconds at the probe's speed
        args.budget = args.steps * per_step["diffusers"]
    budget = {"diffusers": args.budget, "genlab": args.fraction * args.budget}
    steps = {k: max(4, int(budget[k] / per_step[k])) for k in kinds}
    for k in kinds:
        print(f"{k}: {per_step[k] * 1000:.0f} ms/step (rounds "
              f"{', '.join(f'{v * 1000:.0f}' for v in rounds[k])}); budget {budget[k]:.0f} s "
              f"-> {steps[k]} steps", flush=True)  # fmt: skip

    def fd(kind: str, lr: float, seed: int) -> tuple[float, float, float]:
        model = build(kind, seed)
        seconds = train(model, train_set.x, steps[kind], lr, seed)
        m = measure_images(fast, model, refs, args.n, seed=seed, nll_n=0)
        print(f"  {kind} lr {lr:g} seed {seed}: {steps[kind]} steps in {seconds:.0f} s "
              f"(load {os.getloadavg()[0]:.2f}), FD {m['fd']:.2f} ± {m['fd_half']:.2f}",
              flush=True)  # fmt: skip
        return m["fd"], m["fd_half"], seconds

    best = dict.fromkeys(run_kinds, lrs[0])  # one rate: already chosen, no search
    if len(lrs) > 1:
        print(f"learning-rate search, seed {args.dev_seed}:", flush=True)
        for kind in run_kinds:
            scores = {lr: fd(kind, lr, args.dev_seed)[0] for lr in lrs}
            best[kind] = min(scores, key=scores.get)
            print(f"{kind}: lr {best[kind]:g} "
                  f"(FD {', '.join(f'{v:.1f}' for v in scores.values())})")  # fmt: skip
    print(f"fresh seeds {seeds}:", flush=True)
    rows: dict[str, list[tuple[float, float, float]]] = {k: [] for k in run_kinds}
    for seed in seeds:
        for kind in run_kinds:
            rows[kind].append(fd(kind, best[kind], seed))

    print("network | parameters | lr | steps | budget s | train s (median) | FD per seed | "
          "mean FD (95% t-interval over seeds)")  # fmt: skip
    means = {}
    for kind in run_kinds:
        params = sum(p.numel() for p in build(kind, 0).net.parameters())
        fds = [r[0] for r in rows[kind]]
        means[kind] = mean_interval(fds)
        print(f"{kind} | {params:,} | {best[kind]:g} | {steps[kind]} | {budget[kind]:.0f} | "
              f"{statistics.median(r[2] for r in rows[kind]):.0f} | "
              f"{', '.join(f'{r[0]:.1f} ± {r[1]:.1f}' for r in rows[kind])} | "
              f"{means[kind][0]:.2f} ± {means[kind][1]:.2f}")  # fmt: skip
    if len(run_kinds) < 2:
        return
    diffs = [g[0] - d[0] for g, d in zip(rows["genlab"], rows["diffusers"], strict=True)]
    dm, dh = mean_interval(diffs)
    g, d = means["genlab"][0], means["diffusers"][0]
    verdict = "met" if g <= d else f"not met: genlab's FD is {100 * (g / d - 1):.0f}% higher"
    print(f"genlab at {args.fraction:.2f} of diffusers' time: FD genlab - diffusers per seed "
          f"{dm:+.2f} ± {dh:.2f}; target (genlab's mean FD <= diffusers') {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
