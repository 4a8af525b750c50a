"""Time every step of `genlab course` as a learner runs it (a fresh process each, full
settings, not --quick) against the issue's budget of 3 minutes per step on 2 CPU cores.
Prints a markdown table for docs/results.md; the wall time includes starting Python and
importing genlab.

    python benchmarks/course_times.py [--out build/course-bench] [--lang en] [--steps 1,2,...]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

from genlab.course import STEPS

BUDGET_S = 180.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="build/course-bench")
    ap.add_argument("--lang", default="en", choices=["en", "ja"])
    ap.add_argument("--steps", help="comma-separated step keys (default: all)")
    args = ap.parse_args()
    keys = args.steps.split(",") if args.steps else [s.key for s in STEPS]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"python {platform.python_version()}"
    )
    print("| step | wall time (s) | within 3 min |\n|---|---|---|")
    worst = 0.0
    for key in keys:
        start = time.perf_counter()
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "genlab.cli",
                "course",
                key,
                "--lang",
                args.lang,
                "--out",
                args.out,
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        if r.returncode != 0:
            sys.exit(f"step {key} failed: {r.stderr[-2000:]}")
        worst = max(worst, wall)
        name = next(s for s in STEPS if s.key == key).name("en")
        print(
            f"| {key}. {name} | {wall:.1f} | {'yes' if wall <= BUDGET_S else '**no**'} |",
            flush=True,
        )
    print(f"\nslowest step: {worst:.1f} s (budget {BUDGET_S:.0f} s)")


if __name__ == "__main__":
    main()
