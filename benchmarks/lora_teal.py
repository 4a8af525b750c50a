"""Additional training on a laptop CPU: teach the built-in model a colour word it never saw
("teal": the shapes data never draws it) from 40 generated example images, by LoRA.

    python benchmarks/lora_teal.py                  # 40 teal images + 200 prior, 400 steps
    python benchmarks/lora_teal.py --images 40 --steps 300 --rank 8 --keep runs/lora-teal

1. Writes 40 single-object teal scenes (random shape, size, position) with one caption each
   ("a small teal star on the left", paraphrases) into a folder, as a user would, and beside
   them ``--prior`` images the base model draws itself from prompts it already knows (prior
   preservation, as DreamBooth does it: without them the LoRA turns everything teal).
2. Measures the base model: on 100 new teal prompts (scenes not among the 40), the share of
   images whose object the detector names teal (its palette extended by teal), and the
   held-out adherence of ``genlab eval-t2i`` (200 prompts).
3. Trains the LoRA with ``genlab finetune lora`` (timed; target at most 5 minutes on 2 cores).
4. Measures both again with the LoRA applied. Targets: at least 80% teal, and held-out
   adherence down by at most 5 points.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

PROMPT_SEED = 12345


def teal_scenes(n: int, seed: int) -> list:
    """``n`` single-object scenes recoloured teal, with their captions."""
    from genlab.data.shapes import _any_scene, captions

    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        scene = _any_scene(rng)
        if scene.relation is not None:
            continue
        things = tuple(dataclasses.replace(t, colour="teal") for t in scene.things)
        scene = dataclasses.replace(scene, things=things)
        out.append((scene, captions(scene, rng, 4)))
    return out


def write_folder(folder: Path, scenes: list) -> None:
    from PIL import Image

    from genlab.data.shapes import draw

    folder.mkdir(parents=True, exist_ok=True)
    for i, (scene, texts) in enumerate(scenes):
        Image.fromarray(draw(scene).transpose(1, 2, 0)).save(folder / f"teal-{i:03d}.png")
        (folder / f"teal-{i:03d}.txt").write_text(texts[i % len(texts)])


def write_prior(folder: Path, n: int, seed: int = 7) -> None:
    """``n`` images the base model draws from captions of its own training distribution,
    each saved with its prompt: what the model should keep doing."""
    import torch

    from genlab.backends import load_backend
    from genlab.data.shapes import shapes
    from genlab.generation.images import to_pil
    from genlab.models.latent_sampling import draw_latents

    pipe = load_backend("builtin")
    records = shapes(n, seed=seed, split="train").records
    prompts = [r["captions"][i % len(r["captions"])] for i, r in enumerate(records)]
    for s in range(0, n, 50):
        part = prompts[s : s + 50]
        seeds = list(range(10_000 + s, 10_000 + s + len(part)))
        with torch.no_grad():
            latents, _ = draw_latents(
                pipe.model, part, [""] * len(part), seeds, width=32, height=32
            )
            images = to_pil(pipe.model.decode(latents))
        for i, (image, prompt) in enumerate(zip(images, part, strict=True)):
            image.save(folder / f"prior-{s + i:03d}.png")
            (folder / f"prior-{s + i:03d}.txt").write_text(prompt)


def teal_share(loras: tuple, n: int) -> float:
    """Share of ``n`` new teal prompts whose image the detector reads as teal."""
    import torch

    from genlab.backends import load_backend
    from genlab.data.shapes import COLOURS, NEW_COLOURS
    from genlab.evaluation.scene_detector import detect, judge
    from genlab.generation.images import image_batch
    from genlab.lora.files import checked_loras
    from genlab.models.latent_sampling import draw_latents

    pipe = load_backend("builtin")
    scenes = teal_scenes(n, PROMPT_SEED)
    prompts = [texts[0] for _, texts in scenes]
    palette = COLOURS | NEW_COLOURS
    with torch.no_grad(), pipe.applied(checked_loras(loras, pipe.name, pipe.model_hash)):
        latents, _ = draw_latents(
            pipe.model, prompts, [""] * n, list(range(n)), width=32, height=32
        )
        images = image_batch(pipe.model.decode(latents))
    right = [
        judge(dataclasses.asdict(scene), detect(im, palette))["colour"]
        for (scene, _), im in zip(scenes, images, strict=True)
    ]
    return float(np.mean(right))


def heldout(loras: tuple, n: int) -> float:
    from genlab.evaluation.text_to_image import evaluate_text_to_image

    report = evaluate_text_to_image("builtin", n=n, seed=0, loras=loras)  # one set for every run
    return report["heldout"]["accuracy"]["overall"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--prior", type=int, default=200, help="base-model images kept beside")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--scale", type=float, default=1.0, help="LoRA scale at generation")
    ap.add_argument("--prompts", type=int, default=100, help="new teal prompts to score")
    ap.add_argument("--heldout", type=int, default=200, help="old held-out prompts to score")
    ap.add_argument("--keep", help="folder to keep the LoRA run in")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from genlab.finetune.train import finetune, lora_config

    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "teal"
        write_folder(data, teal_scenes(args.images, seed=0))
        if args.prior:
            write_prior(data, args.prior)
        run = Path(args.keep or Path(tmp) / "lora")
        before = {"teal": teal_share((), args.prompts), "heldout": heldout((), args.heldout)}
        print(f"base model: teal {before['teal']:.1%} of {args.prompts} new teal prompts; "
              f"held-out adherence {before['heldout']:.1%} ({args.heldout} prompts)")  # fmt: skip
        cfg = lora_config(
            "builtin", str(data), rank=args.rank,
            train={"steps": args.steps, "lr": args.lr, "progress": False},
        )  # fmt: skip
        t = time.perf_counter()
        summary = finetune(cfg, run)
        seconds = time.perf_counter() - t
        loras = ((str(run), args.scale),)
        after = {"teal": teal_share(loras, args.prompts), "heldout": heldout(loras, args.heldout)}
        drop = (before["heldout"] - after["heldout"]) * 100
        print(
            f"LoRA rank {args.rank}, {args.steps} steps on {args.images} teal images and "
            f"{args.prior} prior images: "
            f"{seconds:.1f} s of training (target 300 s), final loss {summary['loss']:.4g}"
        )
        print(
            f"with the LoRA (scale {args.scale:g}): teal {after['teal']:.1%} (target 80%); "
            f"held-out adherence {after['heldout']:.1%}, down {drop:.1f} points (target <= 5)"
        )
        print(json.dumps({"before": before, "after": after, "train_seconds": seconds}))


if __name__ == "__main__":
    main()
