"""Package trained ddpm-digits and noisy-classifier-digits runs as genlab's shipped digit
models (src/genlab/assets/ddpm-digits, .../noisy-classifier-digits): weights in fp16
safetensors, the config, and a card with the sha256, the recipe and command, the training
time, the machine, and the metric the shipped (fp16) weights reach, measured here.

    genlab train ddpm-digits --out runs/ddpm-digits
    genlab train noisy-classifier-digits --out runs/noisy-classifier-digits
    python scripts/ship_digits.py --ddpm runs/ddpm-digits --classifier runs/noisy-classifier-digits
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

import genlab
from genlab.assets import folder, load_shipped, write_fp16
from genlab.data import load
from genlab.evaluation.features import digits_features, digits_predict
from genlab.evaluation.metrics import frechet_distance
from genlab.serialization import WEIGHTS
from genlab.training.checkpoint import sha256


def ship(run: Path, name: str, what: str) -> dict:
    """Write ``run``'s model in fp16 to the asset folder ``name``; the card's common part."""
    model = genlab.load(run)
    out = folder(name)
    write_fp16(model, out)
    meta = json.loads((run / "meta.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    return {
        "name": name,
        "what": what,
        "sha256": sha256(out / WEIGHTS),
        "size_bytes": (out / WEIGHTS).stat().st_size,
        "parameters": sum(p.numel() for p in model.net.parameters()),
        "recipe": name,
        "commands": [" ".join(["genlab", *meta["argv"][1:]])],
        "training_seconds": round(summary["seconds"], 1),
        "steps": summary["steps"],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
    }


def write_card(name: str, card: dict) -> None:
    (folder(name) / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ddpm", required=True, help="the ddpm-digits run")
    ap.add_argument("--classifier", required=True, help="the noisy-classifier-digits run")
    ap.add_argument("--n", type=int, default=50, help="samples per class for the metrics")
    args = ap.parse_args()
    shipped_by = f"python scripts/ship_digits.py --ddpm {args.ddpm} --classifier {args.classifier}"

    card = ship(Path(args.classifier), "noisy-classifier-digits",
                "noise-aware digit classifier (classifier guidance); weights in fp16")  # fmt: skip
    card["commands"].append(shipped_by)
    write_card("noisy-classifier-digits", card)  # the sha256 must be on file before loading
    digits = load("digits", size=16, scale="pm1")
    _, test = digits.split(0.2, seed=0)
    classifier = load_shipped("noisy-classifier-digits")
    card["held_out_accuracy"] = {
        f"sigma={s:g}": classifier.accuracy(test.x, test.y, s) for s in (0.0, 0.3, 1.0, 3.0)
    }
    write_card("noisy-classifier-digits", card)

    card = ship(Path(args.ddpm), "ddpm-digits",
                "class-conditional DDPM on 16x16 digits (labels dropped 10% of the time, for "
                "classifier-free guidance); weights in fp16")  # fmt: skip
    card["commands"].append(shipped_by)
    write_card("ddpm-digits", card)
    model = load_shipped("ddpm-digits")
    asked = np.repeat(np.arange(10), args.n)
    real = digits_features(digits.x)
    metrics = {}
    for cfg in (1.0, 3.0):
        x = torch.cat([model.sample(args.n, label=k, cfg=cfg, seed=k) for k in range(10)])
        metrics[f"cfg={cfg:g}"] = {
            "classified_as_asked": float(np.mean(digits_predict(x) == asked)),
            "fd_digits_features": frechet_distance(real, digits_features(x)),
        }
    card["eval"] = {
        "samples": f"{args.n} per class, dpmpp-2m, 20 steps, trailing spacing",
        "reference": "all 1,797 digits, genlab's digit-classifier features",
        **metrics,
    }
    write_card("ddpm-digits", card)


if __name__ == "__main__":
    main()
