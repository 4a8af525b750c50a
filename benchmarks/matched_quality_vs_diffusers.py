"""Speed at matched quality: genlab's digits U-Net against diffusers' UNet2DModel, each
trained by the same recipe and genlab's Trainer for the same wall-clock time, then FD side
by side (images per second alone compares two architectures, not what they reach).

    python benchmarks/matched_quality_vs_diffusers.py [--seconds 240] [--n 500]

Both are unconditional eps-prediction DDPMs on the 16x16 digits recipes train on (part
"models", 1,150 images), with ddpm-digits' optimiser settings (AdamW, lr 2e-3, batch 128,
100 warm-up steps, cosine decay to the end, EMA 0.999). The diffusers network sits inside
genlab's DDPM in place of genlab's U-Net, so schedule, loss, Trainer and sampler are the
same code. A 25-step probe times each network; each then gets the number of steps it
takes in --seconds. FD: --n samples (DPM-Solver++(2M), 20 steps, seed 0) against the 288
held-out references, digits features; the interval is the bootstrap's 95%.
"""

from __future__ import annotations

import argparse
import os

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


def build(kind: str):
    from genlab.models.diffusion import DDPM

    torch.manual_seed(0)
    model = DDPM((1, 16, 16), channels=(16, 64, 80), num_classes=0)
    if kind == "diffusers":
        model.net.net = DiffusersNet()
    return model


def train(model, x, steps: int) -> float:
    from genlab.training.trainer import TrainConfig, Trainer

    cfg = dict(steps=steps, batch_size=128, lr=2e-3, warmup_steps=min(100, steps // 4),
               decay_steps=steps - min(100, steps // 4), ema_decay=0.999, progress=False,
               checkpoint_every=10**9, log_every=10**9, seed=0)  # fmt: skip
    return Trainer(model, x, TrainConfig.make(model, cfg)).train()["seconds"]


def main() -> None:
    import genlab.data as gd
    from genlab.evaluation.compare import FAMILIES_DIGITS
    from genlab.evaluation.compare_images import References, measure_images

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    train_set, test_set = gd.load("digits", size=16, scale="pm1", part="models").split(0.2, 0)
    refs = References(train_set, test_set, args.n)
    fast = next(f for f in FAMILIES_DIGITS if f.options.get("sampler") == "dpmpp-2m")
    threads = torch.get_num_threads()
    print(f"# {os.cpu_count()} cores, torch {torch.__version__}, {threads} threads; "
          f"{args.seconds:.0f} s of training each; FD floor {refs.fd_floor:.2f}")  # fmt: skip
    rows = {}
    for kind in ("genlab", "diffusers"):
        per_step = train(build(kind), train_set.x, 25) / 25
        steps = int(args.seconds / per_step)
        model = build(kind)
        seconds = train(model, train_set.x, steps)
        m = measure_images(fast, model, refs, args.n, seed=0, nll_n=0)
        params = sum(p.numel() for p in model.net.parameters())
        rows[kind] = (params, steps, seconds, m["fd"], m["fd_half"])
        print(f"{kind}: {params:,} parameters, {steps} steps in {seconds:.0f} s, "
              f"FD {m['fd']:.2f} ± {m['fd_half']:.2f}", flush=True)  # fmt: skip
    print("network | parameters | steps | train s | FD (20 steps, DPM++ 2M)")
    for kind, (params, steps, seconds, fd, half) in rows.items():
        print(f"{kind} | {params:,} | {steps} | {seconds:.0f} | {fd:.2f} ± {half:.2f}")
    g, d = rows["genlab"], rows["diffusers"]
    print(
        f"steps ratio genlab/diffusers {g[1] / d[1]:.2f}x; FD ratio diffusers/genlab "
        f"{d[3] / g[3]:.2f} (above 1: genlab's network is better at the same time)"
    )


if __name__ == "__main__":
    main()
