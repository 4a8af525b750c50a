"""Guidance sweep: accuracy of the requested label against recall, for classifier-free
guidance or for classifier guidance by a noise-aware classifier.

    python benchmarks/guidance_sweep.py RUN_DIR [--n 500]                  # --cfg scales
    python benchmarks/guidance_sweep.py RUN_DIR --classifier CLF_RUN       # --cg-scale
    python benchmarks/guidance_sweep.py ddpm-digits --classifier noisy-classifier-digits --out DIR

RUN_DIR is a trained class-conditional diffusion run or a shipped model's name. For each
guidance scale, draws n class-balanced samples (labels 0-9 in turn) with DPM-Solver++(2M),
20 steps, seed 0; the shipped digits classifier gives the share that shows the requested
label, and precision/recall (k=3) and FD compare them with the run's held-out split, the
references `genlab eval` and `genlab compare` use (for the digits recipes, the 288 digits
that neither the model nor the feature network trained on). Classifier guidance steers the
model's unconditional half (cfg 0), so scale 0 is the unconditional model. Higher guidance
should raise accuracy and lower recall (less diversity). Writes {cfg,cg}_sweep.json and
.png into --out (default: RUN_DIR; the current folder for a shipped model).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def references(run_dir: str):
    """(model, held-out split, whether it is shipped) of a run or a shipped model's name:
    the split `genlab eval` measures FD against."""
    from genlab.runs import is_shipped, open_run, run_folder

    folder = run_folder(run_dir)
    _, model, _, held_out = open_run(folder)
    if held_out is None:
        raise SystemExit(f"{run_dir} was trained without a held-out split to compare against.")
    return model, held_out, is_shipped(folder)


def main() -> None:
    import genlab
    from genlab.evaluation.features import digits_features, digits_predict
    from genlab.evaluation.metrics import frechet_distance, precision_recall
    from genlab.runs import run_folder
    from genlab.viz.plots import save, subplots

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--classifier", help="a noisy-classifier run: sweep classifier guidance")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--out", help="folder for the json and plot (default: RUN_DIR)")
    args = parser.parse_args()
    model, held_out, shipped = references(args.run_dir)
    run = Path(args.out or ("." if shipped else args.run_dir))
    run.mkdir(parents=True, exist_ok=True)
    real = digits_features(held_out.x)
    print(f"{len(held_out.x)} held-out references, n {args.n}", flush=True)
    labels = torch.arange(args.n) % 10
    if args.classifier:
        kind, scales = "cg", (0.0, 1.0, 2.0, 4.0, 8.0)
        clf = genlab.load(run_folder(args.classifier))
        options = lambda s: {"cfg": 0.0, "classifier": clf, "cg_scale": s}  # noqa: E731
    else:
        kind, scales = "cfg", (1.0, 1.5, 2.0, 3.0, 5.0)
        options = lambda s: {"cfg": s}  # noqa: E731
    rows = []
    print(f"{kind} | accuracy | precision | recall | FD")
    for scale in scales:
        x = model.sample(args.n, seed=0, steps=20, cond=labels, **options(scale)).numpy()
        accuracy = float((digits_predict(x) == labels.numpy()).mean())
        fake = digits_features(x)
        precision, recall = precision_recall(real, fake)
        fd = frechet_distance(real, fake)
        rows.append({"scale": scale, "accuracy": accuracy, "precision": precision,
                     "recall": recall, "fd": fd})  # fmt: skip
        print(f"{scale} | {accuracy:.3f} | {precision:.3f} | {recall:.3f} | {fd:.2f}", flush=True)
    (run / f"{kind}_sweep.json").write_text(json.dumps(rows, indent=1))
    fig, ax = subplots(figsize=(6, 4))
    for key in ("accuracy", "precision", "recall"):
        ax.plot([r["scale"] for r in rows], [r[key] for r in rows], marker="o", label=key)
    title = "classifier guidance" if args.classifier else "classifier-free guidance"
    ax.set(xlabel="guidance scale", ylabel="share", title=title)
    ax.legend()
    save(fig, run / f"{kind}_sweep.png")


if __name__ == "__main__":
    main()
