"""Start-up time of ``genlab --help`` and of one cold ``genlab txt2img`` against a bare
Python interpreter, in one run.

    python benchmarks/cli_startup.py [--runs 7] [--src OTHER/src]

Targets: ``genlab --help`` under 1 second (imports are lazy; numpy, torch and matplotlib
load only in the subcommands that need them); one built-in 32x32 image (20 steps) from a
cold command at most 3 seconds. Each figure is the median of ``--runs`` fresh processes.
``--src`` times another checkout's code (``PYTHONPATH``), so a before and an after can be
measured on the same machine in one sitting; the load average is printed with the figures,
since on a shared machine it moves them more than any change does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def median_of(cmd: list[str], runs: int, env: dict | None = None) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--src", help="time this source folder's genlab instead")
    args = parser.parse_args()
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if args.src:
        env["PYTHONPATH"] = os.path.abspath(args.src)
    load = os.getloadavg()[0]
    bare = median_of([sys.executable, "-c", "pass"], args.runs, env)
    genlab = median_of([sys.executable, "-m", "genlab.cli", "--help"], args.runs, env)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "a.png")
        cmd = [sys.executable, "-m", "genlab.cli", "txt2img", "a red circle", "--out", out]
        txt2img = median_of(cmd, args.runs, env)
    load = max(load, os.getloadavg()[0])
    print(f"# {os.cpu_count()} cores, Python {sys.version.split()[0]}, load average {load:.1f}")
    print("command | median s")
    print(f"python -c pass | {bare:.3f}")
    print(f"genlab --help | {genlab:.3f}")
    print(f'genlab txt2img "a red circle" (built-in, 32x32, 20 steps) | {txt2img:.3f}')
    print(
        f"ratio genlab / bare python: {genlab / bare:.1f}x; target < 1 s: "
        f"{'met' if genlab < 1 else 'NOT met'}; txt2img target <= 3 s: "
        f"{'met' if txt2img <= 3 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
