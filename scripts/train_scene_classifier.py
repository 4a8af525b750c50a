"""Train the scene classifier shipped in src/genlab/assets (the second judge of eval-t2i's
single-object scenes; run once by a maintainer, a few minutes on a CPU).

    python scripts/train_scene_classifier.py

The recipe: single-object scenes drawn by ``genlab.data.shapes`` (split "any", so every
colour-shape pair is seen; seed 0), with their ground truth as labels (colour, shape,
position, size), and augmentations that make rendered scenes look less perfect than a
renderer's (Gaussian pixel noise, a light blur, a small brightness shift, a shift of up to
one pixel); AdamW with a one-cycle schedule. It reports the accuracy per head on a held-out
rendered set (another seed, never trained on) and writes the weights (fp16) with a card
holding their sha256, the recipe, this command, the training time and the accuracy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from genlab.data.shapes import draw, random_scene
from genlab.evaluation.scene_classifier import CARD, HEADS, WEIGHTS, SceneClassifier, labels

ASSETS = Path(__file__).resolve().parents[1] / "src" / "genlab" / "assets"


def singles(n: int, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``n`` single-object scenes of shapes' split "any" in [-1, 1], with their labels."""
    rng = np.random.default_rng(seed)
    scenes = []
    while len(scenes) < n:
        scene = random_scene(rng, "any")
        if scene.relation is None:
            scenes.append(scene)
    x = np.stack([draw(s) for s in scenes]).astype(np.float32) / 127.5 - 1
    ys = [labels(asdict(s)) for s in scenes]
    return torch.as_tensor(x), {k: torch.tensor([y[k] for y in ys]) for k in HEADS}


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n = len(x)
    blur = torch.tensor([0.25, 0.5, 0.25])
    kernel = (blur[:, None] * blur[None, :]).expand(3, 1, 3, 3)
    soft = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)
    amount = torch.rand(n, 1, 1, 1, generator=g) * 0.6
    x = x + amount * (soft - x)
    x = x + 0.1 * (torch.rand(n, 1, 1, 1, generator=g) - 0.5)
    x = x + torch.randn(x.shape, generator=g) * 0.04 * torch.rand(n, 1, 1, 1, generator=g)
    dx, dy = torch.randint(-1, 2, (2,), generator=g).tolist()
    return torch.roll(x, (dy, dx), (2, 3)).clamp(-1, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=5000, help="training scenes (single objects)")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--width", type=int, default=16, help="channels of the first convolutions")
    ap.add_argument("--test-n", type=int, default=1000)
    args = ap.parse_args()
    torch.manual_seed(0)
    t0 = time.perf_counter()
    x, y = singles(args.n, seed=0)
    test_x, test_y = singles(args.test_n, seed=777)
    print(f"{len(x)} training and {len(test_x)} test scenes drawn", flush=True)
    net = SceneClassifier(args.width)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.steps)
    g = torch.Generator().manual_seed(0)
    for step in range(args.steps):
        idx = torch.randint(0, len(x), (128,), generator=g)
        out = net(augment(x[idx], g))
        loss = sum(F.cross_entropy(out[k], y[k][idx]) for k in HEADS)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0:
            print(f"step {step} loss {float(loss.detach()):.4f}", flush=True)
    seconds = time.perf_counter() - t0
    net.eval()
    half = {k: v.half().contiguous() for k, v in net.state_dict().items()}
    net.load_state_dict({k: v.float() for k, v in half.items()})  # measure what ships
    with torch.no_grad():
        out = net(test_x)
    accuracy = {k: round(float((out[k].argmax(1) == test_y[k]).float().mean()), 4) for k in HEADS}
    ASSETS.mkdir(parents=True, exist_ok=True)
    save_file(half, ASSETS / WEIGHTS)
    digest = hashlib.sha256((ASSETS / WEIGHTS).read_bytes()).hexdigest()
    card = {
        "name": "scene_classifier",
        "input": "(N, 3, 32, 32) in [-1, 1]: one object of genlab's shapes scenes",
        "heads": {k: list(v) for k, v in HEADS.items()},
        "width": args.width,
        "parameters": sum(p.numel() for p in net.parameters()),
        "recipe": f"single-object scenes of shapes' split 'any' (random_scene, seed 0; "
        f"{len(x)}), labels from "
        f"their ground truth; {args.steps} AdamW steps of batch 128 (one-cycle, max lr 3e-3), "
        "summed cross-entropy of the four heads; augmentations: blur (up to 0.6 of a 3x3 "
        "binomial), brightness +-0.05, Gaussian noise (sd up to 0.04), 1-pixel shifts; "
        "stored in fp16",
        "test": f"single-object scenes of split 'any', seed 777 ({len(test_x)}), never trained on",
        "test_accuracy": accuracy,
        "n_test": len(test_x),
        "training_seconds": round(seconds, 1),
        "sha256": digest,
        "command": "python scripts/train_scene_classifier.py",
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    (ASSETS / CARD).write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
