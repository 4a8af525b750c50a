"""Training throughput: genlab's digits U-Net against diffusers' UNet2DModel, in one run.

Both networks have about the same number of parameters (within 10%), see the same 16x16
digits, batch size and threads, and take the same kind of step: eps-prediction MSE at a
uniformly drawn timestep, backward, AdamW. Prints images/s for each and the ratio.

    python benchmarks/diffusion_train_vs_diffusers.py [--steps 30] [--batch-size 128]

Each network runs 3 rounds of --steps timed steps, alternating with the other; the table
gives the median round.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F


def throughput(step, steps: int, batch: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - t0)


def interleaved(steps_a, steps_b, steps: int, batch: int, rounds: int = 3):
    """Median images/s of each over ``rounds`` alternating runs (after 3 warm-up steps),
    so that a slow spell of the machine hits both."""
    for _ in range(3):
        steps_a(), steps_b()
    a, b = [], []
    for _ in range(rounds):
        a.append(throughput(steps_a, steps, batch))
        b.append(throughput(steps_b, steps, batch))
    return sorted(a)[rounds // 2], sorted(b)[rounds // 2]


def diffusers_unet():
    """diffusers' UNet2DModel for 16x16 digits, within 2% of genlab's parameter count."""
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=16, in_channels=1, out_channels=1, layers_per_block=1,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    )  # fmt: skip


def main() -> None:
    import genlab.data as gd
    from genlab.conditioning import Condition
    from genlab.models.diffusion import DDPM
    from genlab.models.neural import Batch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--channels", default="16,64,80", help="genlab U-Net widths")
    args = parser.parse_args()
    torch.manual_seed(0)
    x_all = torch.as_tensor(gd.load("digits", size=16, scale="pm1").x)
    y_all = torch.as_tensor(gd.load("digits").y)
    b = args.batch_size

    theirs = diffusers_unet()
    ours = DDPM((1, 16, 16), channels=[int(c) for c in args.channels.split(",")], num_classes=10)
    n_theirs = sum(p.numel() for p in theirs.parameters())
    n_ours = sum(p.numel() for p in ours.net.parameters())
    alpha_bar = ours.net.alpha_bar
    opt_theirs = torch.optim.AdamW(theirs.parameters(), lr=1e-4)
    opt_ours = torch.optim.AdamW(ours.net.parameters(), lr=1e-4)

    def batch():
        idx = torch.randint(0, len(x_all), (b,))
        return x_all[idx], y_all[idx]

    def step_theirs():
        x0, _ = batch()
        t = torch.randint(0, 1000, (b,))
        ab = alpha_bar[t].view(-1, 1, 1, 1)
        eps = torch.randn_like(x0)
        pred = theirs(ab.sqrt() * x0 + (1 - ab).sqrt() * eps, t).sample
        loss = F.mse_loss(pred, eps)
        opt_theirs.zero_grad()
        loss.backward()
        opt_theirs.step()

    def step_ours():
        x0, y = batch()
        loss = ours.training_step(Batch(x0, Condition.from_labels(y)))["loss"]
        opt_ours.zero_grad()
        loss.backward()
        opt_ours.step()

    print(f"# {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, 16x16 digits, batch {b}")  # fmt: skip
    rate_theirs, rate_ours = interleaved(step_theirs, step_ours, args.steps, b)
    print("model | parameters | images/s")
    print(f"diffusers UNet2DModel | {n_theirs:,} | {rate_theirs:.0f}")
    print(f"genlab U-Net {args.channels} | {n_ours:,} | {rate_ours:.0f}")
    print(f"parameter ratio {n_ours / n_theirs:.2f}; speed ratio genlab/diffusers "
          f"{rate_ours / rate_theirs:.2f}x (target >= 1.5x)")  # fmt: skip


if __name__ == "__main__":
    main()
