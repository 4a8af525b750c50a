"""What sharding costs: training steps per second with two CPU processes on gloo, DDP
against ``--fsdp`` (FSDP2: each process keeps half of the weights, gradients and Adam
state, and gathers each block's weights for its forward and backward), on the default
diffusion recipe.

    python benchmarks/fsdp_cost.py
    python benchmarks/fsdp_cost.py --repeats 5 --steps 60 ddpm-digits

Runs alternate (DDP, FSDP, DDP, FSDP ...) so both see the same machine load; each figure is
the median steps/s of the training loop (start-up excluded). Prints a table and the ratio
FSDP/DDP. FSDP is for models that do not fit one device; this ratio is its price where
they do.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
from pathlib import Path

from ddp_overhead import ROOT, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("recipes", nargs="*", default=["ddpm-digits"])
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          "2 processes (gloo), OMP_NUM_THREADS=1")  # fmt: skip
    print("recipe | steps | DDP steps/s | FSDP steps/s | FSDP/DDP")
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes:
            rates: dict[str, list[float]] = {"ddp": [], "fsdp": []}
            for i in range(args.repeats):
                for label, flags in (("ddp", ()), ("fsdp", ("--fsdp",))):
                    out = Path(tmp) / f"{recipe}-{label}-{i}"
                    rates[label].append(train(ROOT / "src", recipe, args.steps, out, *flags))
            ddp, fsdp = statistics.median(rates["ddp"]), statistics.median(rates["fsdp"])
            print(f"{recipe} | {args.steps} | {ddp:.2f} | {fsdp:.2f} | {fsdp / ddp:.2f}x",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
