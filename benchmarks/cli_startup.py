"""Start-up time of ``genlab --help`` against a bare Python interpreter, in one run.

    python benchmarks/cli_startup.py

Target: under 1 second (imports are lazy; numpy, torch and matplotlib load only in the
subcommands that need them).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time


def best_of(cmd: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    bare = best_of([sys.executable, "-c", "pass"])
    genlab = best_of([sys.executable, "-m", "genlab.cli", "--help"])
    print(f"# {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print("command | median s")
    print(f"python -c pass | {bare:.3f}")
    print(f"genlab --help | {genlab:.3f}")
    print(
        f"ratio genlab / bare python: {genlab / bare:.1f}x; target < 1 s: "
        f"{'met' if genlab < 1 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
