"""Classifier-free guidance sweep: accuracy of the requested label against recall.

    python benchmarks/cfg_sweep.py RUN_DIR [--n 500]

For each guidance scale, draws n class-balanced samples (labels 0-9 in turn) with
DPM-Solver++(2M), 20 steps, seed 0; the shipped digits classifier gives the share that
shows the requested label, and precision/recall (k=3) compare them with the training
split. Higher guidance should raise accuracy and lower recall (less diversity). Writes
cfg_sweep.json and cfg_sweep.png into RUN_DIR.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def main() -> None:
    from genlab.evaluation.features import digits_features, digits_predict
    from genlab.evaluation.metrics import frechet_distance, precision_recall
    from genlab.runs import open_run
    from genlab.viz.plots import _pyplot, _save

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    run = Path(args.run_dir)
    _, model, train, _ = open_run(run)
    real = digits_features(train.x)
    labels = torch.arange(args.n) % 10
    rows = []
    print("cfg | accuracy | precision | recall | FD")
    for scale in (1.0, 1.5, 2.0, 3.0, 5.0):
        x = model.sample(args.n, seed=0, steps=20, label=labels, cfg=scale).numpy()
        accuracy = float((digits_predict(x) == labels.numpy()).mean())
        fake = digits_features(x)
        precision, recall = precision_recall(real, fake)
        fd = frechet_distance(real, fake)
        rows.append({"cfg": scale, "accuracy": accuracy, "precision": precision,
                     "recall": recall, "fd": fd})  # fmt: skip
        print(f"{scale} | {accuracy:.3f} | {precision:.3f} | {recall:.3f} | {fd:.2f}", flush=True)
    (run / "cfg_sweep.json").write_text(json.dumps(rows, indent=1))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("accuracy", "precision", "recall"):
        ax.plot([r["cfg"] for r in rows], [r[key] for r in rows], marker="o", label=key)
    ax.set(xlabel="guidance scale", ylabel="share", title="classifier-free guidance")
    ax.legend()
    _save(fig, run / "cfg_sweep.png")


if __name__ == "__main__":
    main()
