"""Training steps per second with two CPU processes on gloo: this Trainer (networks and
optimizers through accelerate.prepare, DDP's bucketed all-reduce) against the Trainer of a
baseline commit (one flat all-reduce after the backward pass), on the default digits recipes.

    python benchmarks/ddp_overhead.py                    # baseline: commit b6b6e80
    python benchmarks/ddp_overhead.py --baseline REF --repeats 3 --steps 60

The baseline is checked out into a temporary git worktree and run from its source folder
with this environment's packages. Runs alternate (new, old, new, old ...) so both see the
same machine load; each figure is the median steps/s of the training loop (start-up excluded:
each run reports its loop time). Prints a table and the ratio new/old.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# steps a run: each lasts 10 s or more on a fast 2-core machine (the loop time is printed
# to 0.1 s)
RECIPES = {"vae-digits": 600, "gan-digits": 400, "ddpm-digits": 60}
DONE = re.compile(r"done: (\d+) steps in ([\d.]+) s")


def train(src: Path, recipe: str, steps: int, out: Path, *flags: str) -> float:
    """Steps per second of one two-process run of ``recipe`` from the code in ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "genlab.cli", "train", recipe, "--out", str(out), "--steps", str(steps),
        "--set", "progress=false", "--set", "checkpoint_every=100000", *flags,
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    n, seconds = DONE.search(done.stdout).groups()
    return int(n) / float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="b6b6e80", help="git ref of the old Trainer")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, help="steps per run (default: per recipe)")
    parser.add_argument("recipes", nargs="*", default=list(RECIPES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.baseline],
            check=True, capture_output=True,
        )  # fmt: skip
        try:
            print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                  f"2 processes (gloo), OMP_NUM_THREADS=1, baseline {args.baseline}")  # fmt: skip
            print("recipe | steps | new steps/s | old steps/s | new/old")
            for recipe in args.recipes:
                steps = args.steps or RECIPES.get(recipe, 50)
                rates: dict[str, list[float]] = {"new": [], "old": []}
                for i in range(args.repeats):
                    for label, src in (("new", ROOT / "src"), ("old", old / "src")):
                        out = Path(tmp) / f"{recipe}-{label}-{i}"
                        rates[label].append(train(src, recipe, steps, out))
                new, base = statistics.median(rates["new"]), statistics.median(rates["old"])
                print(f"{recipe} | {steps} | {new:.2f} | {base:.2f} | {new / base:.2f}x",
                      flush=True)  # fmt: skip
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           check=False)  # fmt: skip


if __name__ == "__main__":
    main()
