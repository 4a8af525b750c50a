"""FD on digits against the number of network evaluations (NFE), for every sampler.

    python benchmarks/sampler_sweep.py [RUN_DIR] [--n 500] [--seeds 3] [--nfe 5,10,20]
        [--first-seed 0] [--reference-from OLD/sweep.json] [--out DIR]

Without RUN_DIR it measures the shipped digits DDPM (``load_shipped("ddpm-digits")``)
against the held-out references (the 20% of digits' "models" part that neither the model
nor the feature network trained on, as ``genlab compare`` and the model's card measure it);
with RUN_DIR, a trained diffusion run against its own held-out split the same way.
Each sampler draws n class-balanced samples (labels 0-9 in turn, cfg 1) at each NFE, for
each seed from --first-seed on; the reference is 1,000-step ancestral sampling (DDPM, every
training level in turn) with the same seeds. Per sampler and NFE it prints the FD (mean
over seeds, 95% t-interval) and its ratio to the reference's FD (each seed's ratio to the
same seed's reference, mean and interval), with issue 29's targets: within +25% at 5 NFE
and within +5% at 10 NFE. Writes sweep.json (and sweep.png) into --out, rewritten after
every measurement so a stopped run keeps what it measured. ``--reference-from`` reuses the
reference FDs of earlier sweep.json files of the same model, n, reference steps and seeds
(deterministic given those), so a rerun of the samplers does not redraw the 1,000-step
chains, and the references of several seeds can run apart (``--samplers ""``).

At full size (n 500, 3 seeds) the reference alone is 1,500 samples of 1,000 steps; on a
loaded 2-core machine use a small --n to check the script runs.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

# Targets: FD within this fraction above the 1,000-step reference at this NFE.
TARGETS = {5: 0.25, 10: 0.05}
NFE_PER_STEP = {"heun": 2}


def steps_for(name: str, nfe: int) -> tuple[int, int]:
    """(steps, actual NFE) of ``name`` at about ``nfe`` network evaluations (Heun's last
    step is one Euler call into sigma = 0, so k steps cost 2k - 1)."""
    if name == "heun":
        steps = max(1, (nfe + 1) // 2)
        return steps, 2 * steps - 1
    return nfe, nfe


def interval(values: list[float]) -> tuple[float, float]:
    """(mean, 95% t half-width) over seeds (0 for a single seed)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return float(v.mean()), 0.0
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(half)


def main() -> None:
    from genlab.diffusion.samplers import SAMPLERS
    from genlab.evaluation.features import digits_features
    from genlab.evaluation.metrics import frechet_distance

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", help="a diffusion run (default: the shipped DDPM)")
    parser.add_argument("--n", type=int, default=500, help="samples per measurement")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds start here")
    parser.add_argument("--nfe", default="5,10,20", help="network evaluations, comma-separated")
    parser.add_argument("--samplers", default=",".join(s for s in SAMPLERS if s != "ddpm"))
    parser.add_argument("--reference-steps", type=int, default=1000)
    parser.add_argument(
        "--spacing",
        default=None,
        help="the samplers' noise levels (default: the model's own default)",
    )
    parser.add_argument("--reference-from", action="append", default=[],
                        help="an earlier sweep.json (repeatable)")  # fmt: skip
    parser.add_argument("--out", default=None, help="folder for sweep.json (default: RUN_DIR or .)")
    args = parser.parse_args()
    model, held_out = load(args.run_dir)
    real = digits_features(held_out.x)
    labels = np.arange(args.n) % 10 if model.conditional else None
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    counts = [int(k) for k in args.nfe.split(",")]
    names = [s for s in args.samplers.split(",") if s]

    def measure(name: str, steps: int, seed: int, spacing=args.spacing) -> tuple[float, float]:
        given = {} if spacing is None else {"spacing": spacing}
        t0 = time.perf_counter()
        x = model.sample(args.n, seed=seed, sampler=name, steps=steps, cond=labels, **given)
        seconds = time.perf_counter() - t0
        return frechet_distance(real, digits_features(np.asarray(x))), seconds

    print(f"{len(held_out.x)} held-out references, n {args.n}, seeds {seeds}", flush=True)
    out = Path(args.out or args.run_dir or ".")
    out.mkdir(parents=True, exist_ok=True)
    reference = earlier_reference(args, seeds)
    rows: list[dict] = []

    def write() -> None:
        result = {"run_dir": args.run_dir, "n": args.n, "seeds": seeds,
                  "reference_steps": args.reference_steps, "spacing": args.spacing,
                  "reference_fd": reference, "rows": rows}  # fmt: skip
        (out / "sweep.json").write_text(json.dumps(result, indent=1))

    for seed in seeds:
        if seed in reference:
            print(f"reference seed {seed}: FD {reference[seed]:.2f} (from --reference-from)")
            continue
        # every training level in turn, whatever the samplers' spacing
        reference[seed], seconds = measure("ddpm", args.reference_steps, seed, "trailing")
        print(f"reference ddpm {args.reference_steps} steps, seed {seed}: FD "
              f"{reference[seed]:.2f} ({seconds:.0f} s)", flush=True)  # fmt: skip
        write()
    ref_fd, ref_half = interval(list(reference.values()))
    for name in names:
        for want in counts:
            steps, nfe = steps_for(name, want)
            fds, secs = zip(*(measure(name, steps, s) for s in seeds), strict=True)
            ratios = [fd / reference[s] for fd, s in zip(fds, seeds, strict=True)]
            fd, fd_half = interval(list(fds))
            ratio, ratio_half = interval(ratios)
            rows.append({"sampler": name, "nfe": nfe, "steps": steps, "fd": fd,
                         "fd_half": fd_half, "ratio": ratio, "ratio_half": ratio_half,
                         "fds": list(fds), "seconds": sum(secs)})  # fmt: skip
            write()
            print(f"{name:13s} NFE {nfe:3d}  FD {fd:8.2f} +- {fd_half:6.2f}  "
                  f"vs reference {ratio - 1:+7.1%} +- {ratio_half:6.1%}", flush=True)  # fmt: skip
    print()
    print(f"reference: DDPM ancestral, {args.reference_steps} steps: FD {ref_fd:.2f} "
          f"+- {ref_half:.2f} (95% over {len(seeds)} seeds)")  # fmt: skip
    header = f"{'sampler':13s}" + "".join(f" | NFE {k:>3d} (FD vs ref)    " for k in counts)
    print(header)
    for name in names:
        cells = []
        for want in counts:
            r = next(
                r for r in rows if r["sampler"] == name and r["nfe"] == steps_for(name, want)[1]
            )
            cells.append(f" | {r['fd']:6.2f} {r['ratio'] - 1:+6.1%}+-{r['ratio_half']:5.1%}")
        print(f"{name:13s}" + "".join(cells))
    for nfe, within in TARGETS.items():
        at = [r for r in rows if r["nfe"] == nfe]
        if not at:
            continue
        best = min(at, key=lambda r: r["ratio"])
        verdict = "met" if best["ratio"] - 1 <= within else "NOT met"
        print(f"target at {nfe} NFE (within +{within:.0%}): best {best['sampler']} "
              f"{best['ratio'] - 1:+.1%} +- {best['ratio_half']:.1%}: {verdict}")  # fmt: skip
    write()
    plot(rows, names, ref_fd, out / "sweep.png")


def earlier_reference(args, seeds: list[int]) -> dict[int, float]:
    """The reference FDs of the ``--reference-from`` files for these seeds, when they
    measured the same model, n and reference steps (else a clear stop: a reference of other
    settings would make every ratio wrong)."""
    found: dict[int, float] = {}
    for path in args.reference_from:
        old = json.loads(Path(path).read_text())
        same = (old.get("run_dir"), old["n"], old["reference_steps"])
        if same != (args.run_dir, args.n, args.reference_steps):
            raise SystemExit(f"{path} measured (run, n, steps) {same}, not "
                             f"{(args.run_dir, args.n, args.reference_steps)}.")  # fmt: skip
        found |= {int(k): v for k, v in old["reference_fd"].items() if int(k) in seeds}
    return found


def load(run_dir: str | None):
    """(model, held-out split): the shipped digits DDPM and digits' held-out 20%, or a run
    and its data's held-out split as the recipes cut it."""
    if run_dir is None:
        from genlab.assets import load_shipped
        from genlab.evaluation.compare import _load

        _, _, held_out = _load("digits")
        return load_shipped("ddpm-digits"), held_out
    from genlab.runs import open_run

    _, model, _, held_out = open_run(Path(run_dir))
    if held_out is None:
        raise SystemExit(f"{run_dir} was trained without a held-out split to compare against.")
    return model, held_out


def plot(rows: list[dict], names: list[str], ref_fd: float, path: Path) -> None:
    from genlab.viz.plots import save, subplots

    fig, ax = subplots(figsize=(6, 4))
    for name in names:
        pts = sorted((r["nfe"], r["fd"]) for r in rows if r["sampler"] == name)
        ax.plot(*zip(*pts, strict=True), marker="o", label=name)
    ax.axhline(ref_fd, color="k", ls="--", lw=1, label="1000-step DDPM")
    ax.set(xscale="log", yscale="log", xlabel="network evaluations", ylabel="FD (digits features)")
    ax.legend(fontsize=7)
    save(fig, path)


if __name__ == "__main__":
    main()
