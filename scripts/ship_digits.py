"""Package trained digits runs as genlab's shipped digit models (src/genlab/assets/NAME):
weights in fp16 safetensors, the config, and a card with the sha256, the recipe and
command, the training time, the machine, and the metrics the shipped (fp16) weights reach,
measured here against the held-out references (see genlab.evaluation.compare_images).

    for r in ddpm vae hvae gan realnvp ebm noisy-classifier; do
        genlab train $r-digits --out runs/digits/$r-digits; done
    python scripts/ship_digits.py runs/digits
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
from genlab.evaluation.compare import FAMILIES_DIGITS
from genlab.evaluation.compare_images import References, measure_images
from genlab.evaluation.features import digits_predict
from genlab.serialization import WEIGHTS
from genlab.training.checkpoint import sha256

WHAT = {
    "ddpm-digits": "class-conditional DDPM on 16x16 digits (labels dropped 10% of the time, "
    "for classifier-free guidance)",
    "noisy-classifier-digits": "noise-aware digit classifier (classifier guidance)",
    "vae-digits": "VAE on 16x16 digits, Bernoulli pixels, 8-D latent",
    "hvae-digits": "two-level hierarchical VAE on 16x16 digits",
    "gan-digits": "DCGAN-style GAN on 16x16 digits",
    "realnvp-digits": "RealNVP flow on 16x16 digits, dequantized to 17 levels",
    "ebm-digits": "energy-based model on 16x16 digits, Langevin sampling",
}


def ship(run: Path, name: str, shipped_by: str) -> dict:
    """Write ``run``'s model in fp16 to the asset folder ``name``; the card's common part."""
    model = genlab.load(run)
    out = folder(name)
    write_fp16(model, out)
    meta = json.loads((run / "meta.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    card = {
        "name": name,
        "what": WHAT[name] + "; weights in fp16",
        "sha256": sha256(out / WEIGHTS),
        "size_bytes": (out / WEIGHTS).stat().st_size,
        "parameters": sum(p.numel() for p in model.net.parameters()),
        "recipe": name,
        "data": "digits part=models, split(0.2, seed=0) training part (1,150 images)",
        "commands": [" ".join(["genlab", *meta["argv"][1:]]), shipped_by],
        "training_seconds": round(summary["seconds"], 1),
        "steps": summary["steps"],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
    }
    write_card(name, card)  # the sha256 must be on file before loading
    return card


def write_card(name: str, card: dict) -> None:
    (folder(name) / "card.json").write_text(json.dumps(card, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", help="folder holding the run folders, named by recipe")
    ap.add_argument("--n", type=int, default=500, help="samples per measurement")
    args = ap.parse_args()
    runs = Path(args.runs)
    shipped_by = f"python scripts/ship_digits.py {args.runs}"
    train, test = load("digits", size=16, scale="pm1", part="models").split(0.2, seed=0)
    refs = References(train, test, args.n)

    card = ship(runs / "noisy-classifier-digits", "noisy-classifier-digits", shipped_by)
    classifier = load_shipped("noisy-classifier-digits")
    card["held_out_accuracy"] = {
        f"sigma={s:g}": classifier.accuracy(test.x, test.y, s) for s in (0.0, 0.3, 1.0, 3.0)
    }
    write_card("noisy-classifier-digits", card)

    for family in FAMILIES_DIGITS:
        if family.recipe is None or family.trains is not None:
            continue
        card = ship(runs / family.recipe, family.recipe, shipped_by)
        model = load_shipped(family.recipe)
        m = measure_images(family, model, refs, args.n, seed=0)
        card["eval"] = {
            "samples": f"{args.n}, seed 0, options {family.options or 'default'}",
            "reference": f"the {len(test)} held-out references, digits-feature FD "
            f"(floor {refs.fd_floor:.2f})",
            **{k: v for k, v in m.items() if not k.startswith("_") and k != "sample_seconds"},
        }
        if family.model == "ddpm":
            asked = np.repeat(np.arange(10), 50)
            for cfg in (1.0, 3.0):
                x = torch.cat([model.sample(50, label=k, cfg=cfg, seed=k) for k in range(10)])
                card["eval"][f"classified_as_asked_cfg{cfg:g}"] = float(
                    np.mean(digits_predict(x) == asked)
                )
        write_card(family.recipe, card)
        print(family.recipe, json.dumps(card["eval"]))


if __name__ == "__main__":
    main()
