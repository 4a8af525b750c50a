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
chains. Parts can run apart (each seed's reference with ``--samplers ""``, the samplers
with ``--reference-steps 0``) and be joined by ``--merge A/sweep.json B/sweep.json ...``.

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

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", help="a diffusion run (default: the shipped DDPM)")
    parser.add_argument("--n", type=int, default=500, help="samples per measurement")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds start here")
    parser.add_argument("--nfe", default="5,10,20", help="network evaluations, comma-separated")
    parser.add_argument("--samplers", default=",".join(s for s in SAMPLERS if s != "ddpm"))
    parser.add_argument("--reference-steps", type=int, default=1000,
                        help="the reference's steps (0: no reference, samplers only)")  # fmt: skip
    parser.add_argument(
        "--spacing",
        default=None,
        help="the samplers' noise levels (default: the model's own default)",
    )
    parser.add_argument("--reference-from", action="append", default=[],
                        help="an earlier sweep.json (repeatable)")  # fmt: skip
    parser.add_argument("--reference-from-card", action="store_true",
                        help="the shipped model: seed 0's reference from its card, which "
                        "measured it the same way (scripts/ship_digits.py)")  # fmt: skip
    parser.add_argument("--merge", nargs="+", metavar="SWEEP_JSON",
                        help="measure nothing: join these sweep.json files (parts run apart) "
                        "and print their table")  # fmt: skip
    parser.add_argument("--out", default=None, help="folder for sweep.json (default: RUN_DIR or .)")
    args = parser.parse_args()
    out = Path(args.out or args.run_dir or ".")
    out.mkdir(parents=True, exist_ok=True)
    if args.merge:
        result = merge([json.loads(Path(p).read_text()) for p in args.merge])
    else:
        result = measure_all(args, out)
    report(result, out)


def measure_all(args, out: Path) -> dict:
    """The reference and every (sampler, NFE, seed) measurement, written to sweep.json
    after each one."""
    from genlab.evaluation.features import digits_features
    from genlab.evaluation.metrics import frechet_distance

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
    result = {"run_dir": args.run_dir, "n": args.n, "reference_steps": args.reference_steps,
              "spacing": args.spacing, "samplers": names, "nfe": counts,
              "reference_fd": earlier_reference(args, seeds), "measured": []}  # fmt: skip
    reference = result["reference_fd"]
    if args.reference_from_card:
        reference |= card_reference(args, seeds, len(held_out.x))
        result["reference_source"] = "seed 0: the ddpm-digits card (scripts/ship_digits.py)"

    def write() -> None:
        (out / "sweep.json").write_text(json.dumps(result, indent=1))

    for seed in seeds if args.reference_steps else []:
        if seed in reference:
            print(f"reference seed {seed}: FD {reference[seed]:.2f} (given)")
            continue
        # every training level in turn, whatever the samplers' spacing
        reference[seed], seconds = measure("ddpm", args.reference_steps, seed, "trailing")
        print(f"reference ddpm {args.reference_steps} steps, seed {seed}: FD "
              f"{reference[seed]:.2f} ({seconds:.0f} s)", flush=True)  # fmt: skip
        write()
    for name in names:
        for want in counts:
            steps, nfe = steps_for(name, want)
            for seed in seeds:
                fd, seconds = measure(name, steps, seed)
                result["measured"].append({"sampler": name, "want": want, "nfe": nfe,
                                           "steps": steps, "seed": seed, "fd": fd,
                                           "seconds": seconds})  # fmt: skip
                write()
            fds = [m["fd"] for m in result["measured"] if (m["sampler"], m["nfe"]) == (name, nfe)]
            print(f"{name:13s} NFE {nfe:3d}  FD {np.mean(fds):8.2f} over seeds {seeds}", flush=True)
    write()
    return result


def merge(parts: list[dict]) -> dict:
    """One result from parts run apart (each seed's reference, the samplers' seeds): they
    must have measured the same model and n, and references of the same steps."""
    steps = {p["reference_steps"] for p in parts if p["reference_steps"]}
    if len({(p.get("run_dir"), p["n"]) for p in parts}) > 1 or len(steps) > 1:
        raise SystemExit("The parts measured other models, n or reference steps; join only "
                         "parts of one sweep.")  # fmt: skip
    result = {**parts[0], "reference_steps": min(steps, default=0), "reference_fd": {},
              "measured": [], "samplers": [], "nfe": []}  # fmt: skip
    for part in parts:
        result["reference_fd"] |= {int(k): v for k, v in part["reference_fd"].items()}
        result["measured"] += part.get("measured", [])
        result["samplers"] += [s for s in part.get("samplers", []) if s not in result["samplers"]]
        result["nfe"] += [k for k in part.get("nfe", []) if k not in result["nfe"]]
        if "reference_source" in part:
            result["reference_source"] = part["reference_source"]
    return result


def summarise(result: dict) -> list[dict]:
    """Per sampler and NFE asked for (``want``; Heun's actual NFE is one less): FD (mean,
    95% half-width over seeds) and its ratio to the same seed's reference (mean,
    half-width) over the seeds that have one."""
    reference = {int(k): v for k, v in result["reference_fd"].items()}
    rows = []
    for name in result["samplers"]:
        for want in sorted({m["want"] for m in result["measured"] if m["sampler"] == name}):
            got = {m["seed"]: m for m in result["measured"]
                   if (m["sampler"], m["want"]) == (name, want)}  # fmt: skip
            seeds = sorted(got)
            fd, fd_half = interval([got[s]["fd"] for s in seeds])
            ratios = [got[s]["fd"] / reference[s] for s in seeds if s in reference]
            ratio, ratio_half = interval(ratios) if ratios else (math.nan, math.nan)
            rows.append({"sampler": name, "want": want, "nfe": got[seeds[0]]["nfe"],
                         "steps": got[seeds[0]]["steps"],
                         "seeds": seeds, "fd": fd, "fd_half": fd_half, "ratio": ratio,
                         "ratio_half": ratio_half, "fds": [got[s]["fd"] for s in seeds],
                         "ratio_seeds": [s for s in seeds if s in reference],
                         "seconds": sum(got[s]["seconds"] for s in seeds)})  # fmt: skip
    return rows


def report(result: dict, out: Path) -> None:
    """The table, the targets' verdicts, sweep.json (with the summary) and sweep.png."""
    rows = summarise(result)
    reference = {int(k): v for k, v in result["reference_fd"].items()}
    ref_fd, ref_half = interval(list(reference.values())) if reference else (math.nan, 0.0)
    print()
    source = f"; {result['reference_source']}" if "reference_source" in result else ""
    print(f"reference: DDPM ancestral, {result['reference_steps']} steps: FD {ref_fd:.2f} "
          f"+- {ref_half:.2f} (95% over seeds {sorted(reference)}), n {result['n']}"
          f"{source}")  # fmt: skip
    counts = sorted({r["want"] for r in rows})
    print(f"{'sampler':13s}" + "".join(f" | NFE {k:>3d}: FD, vs reference" for k in counts))
    for name in result["samplers"]:
        cells = []
        for want in counts:
            r = next((r for r in rows if (r["sampler"], r["want"]) == (name, want)), None)
            actual = "" if r is None or r["nfe"] == want else f" ({r['nfe']})"
            spread = "" if r is None or len(r["ratio_seeds"]) < 2 else f"+-{r['ratio_half']:5.1%}"
            cells.append(" | " + (" " * 28 if r is None else (
                f"{r['fd']:6.2f}+-{r['fd_half']:5.2f} {r['ratio'] - 1:+6.1%}{spread}"
                f"{actual}")))  # fmt: skip
        print(f"{name:13s}" + "".join(cells))
    for nfe, within in TARGETS.items():  # at most this many evaluations
        at = [r for r in rows if r["want"] == nfe and math.isfinite(r["ratio"])]
        if not at:
            continue
        best = min(at, key=lambda r: r["ratio"])
        verdict = "met" if best["ratio"] - 1 <= within else "NOT met"
        seeds = best["ratio_seeds"]
        print(f"target at {nfe} NFE (within +{within:.0%}): best {best['sampler']} "
              f"{best['ratio'] - 1:+.1%} +- {best['ratio_half']:.1%} (seeds {seeds}): "
              f"{verdict}")  # fmt: skip
    (out / "sweep.json").write_text(json.dumps({**result, "summary": rows}, indent=1))
    plot(rows, result["samplers"], ref_fd, out / "sweep.png")


def card_reference(args, seeds: list[int], n_reference: int) -> dict[int, float]:
    """Seed 0's reference FD from the shipped model's card, where the card measured exactly
    this draw: n samples, seed 0, labels 0-9 in turn, ancestral DDPM of the reference's
    steps, FD against the same held-out references (``compare_images.measure_images``)."""
    from genlab.assets import card

    if args.run_dir is not None or 0 not in seeds:
        raise SystemExit("--reference-from-card: the shipped model's seed 0 only.")
    ev = card("ddpm-digits")["eval"]
    asked = f"{args.n}, seed 0, options {{'sampler': 'ddpm', 'steps': {args.reference_steps}}}"
    if ev["samples"] != asked or ev["n_reference"] != n_reference:
        raise SystemExit(f"The card measured {ev['samples']!r} against {ev['n_reference']} "
                         f"references, not {asked!r} against {n_reference}.")  # fmt: skip
    return {0: float(ev["fd"])}


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
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=name)
    if math.isfinite(ref_fd):
        ax.axhline(ref_fd, color="k", ls="--", lw=1, label="1000-step DDPM")
    ax.set(xscale="log", yscale="log", xlabel="network evaluations", ylabel="FD (digits features)")
    ax.legend(fontsize=7)
    save(fig, path)


if __name__ == "__main__":
    main()
