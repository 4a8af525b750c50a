"""Train every default recipe of the given families, time it, evaluate it, print a table.

    python benchmarks/recipes.py                      # ae, vae, hvae on digits and moons
    python benchmarks/recipes.py vae-digits gmm       # a subset (names or prefixes)

Each recipe trains from scratch into bench-out/RECIPE with `genlab train RECIPE`, then
`genlab eval` measures it (1,000 generated samples). The table gives wall time, training
throughput and the metrics; docs/results.md records its output with the machine.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

DEFAULT = [
    *(f"{m}-digits" for m in ("ae", "vae", "hvae", "gan", "realnvp", "ebm")),
    *(f"{m}-moons" for m in ("ae", "vae", "hvae", "realnvp")),
    *(f"{m}-8gaussians" for m in ("gan", "realnvp", "ebm")),
]
OUT = Path("bench-out")


def run(recipe: str) -> dict:
    out = OUT / recipe
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "genlab.cli", "train", recipe, "--out", str(out),
         "--set", "progress=false"],
        check=True, env=env,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last = rows[-1]
    subprocess.run([sys.executable, "-m", "genlab.cli", "eval", str(out)], check=True, env=env,
                   capture_output=True)  # fmt: skip
    result = json.loads((out / "eval.json").read_text())
    losses = {k: v for k, v in last.items() if k.endswith("loss")}
    return {"recipe": recipe, "seconds": seconds, "samples_per_s": last["samples_per_s"],
            **losses, **result}  # fmt: skip


def main() -> None:
    wanted = sys.argv[1:] or DEFAULT
    print(f"# {platform.machine()}, {os.cpu_count()} cores")
    keys = ["seconds", "samples_per_s", "nll", "bits_per_dim", "fd", "kid", "precision",
            "recall", "swd", "mmd", "modes_hit", "high_quality"]  # fmt: skip
    print("| recipe | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for recipe in wanted:
        r = run(recipe)
        cells = [f"{r[k]:.4g}" if isinstance(r.get(k), int | float) else "-" for k in keys]
        print(f"| {recipe} | " + " | ".join(cells) + " |", flush=True)
        (OUT / recipe / "bench.json").write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
