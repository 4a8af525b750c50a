"""Train the digits feature network shipped in src/genlab/assets (run once by a maintainer).

    python scripts/train_digits_classifier.py

Trains on the "features" part of ``digits`` (16x16, [-1, 1]; 359 images, a seeded 20% of
each class that genlab's digit recipes never train on) with random 1-pixel shifts, reports
accuracy on the references (the held-out 20% of the "models" part, which no generator
trains on either), and writes the weights with a card holding their sha256, the accuracy
and this command. Deterministic on CPU for a given torch version.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import genlab.data as gd
from genlab.evaluation.features import CARD, WEIGHTS, DigitsClassifier

ASSETS = Path(__file__).resolve().parents[1] / "src" / "genlab" / "assets"


def shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random translations by up to one pixel (padding with the background value -1)."""
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    dx, dy = torch.randint(0, 3, (2,), generator=g).tolist()
    return padded[:, :, dy : dy + 16, dx : dx + 16]


def main() -> None:
    torch.manual_seed(0)
    train = gd.load("digits", size=16, scale="pm1", part="features")
    _, test = gd.load("digits", size=16, scale="pm1", part="models").split(0.2, seed=0)
    x, y = torch.as_tensor(train.x), torch.as_tensor(train.y)
    net = DigitsClassifier()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    steps = 1500
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (128,), generator=g)
        loss = F.cross_entropy(net(shift(x[idx], g)), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        acc = (net(torch.as_tensor(test.x)).argmax(1) == torch.as_tensor(test.y)).float().mean()
    ASSETS.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, ASSETS / WEIGHTS)
    digest = hashlib.sha256((ASSETS / WEIGHTS).read_bytes()).hexdigest()
    card = {
        "name": "digits_classifier",
        "input": "(N, 1, 16, 16) in [-1, 1]",
        "features": "128-D penultimate layer",
        "train": "digits part=features (359 images), 1500 AdamW steps, 1-px shifts",
        "test": "digits part=models split(0.2, seed=0) held-out part (the references)",
        "test_accuracy": round(float(acc), 4),
        "n_test": len(test),
        "sha256": digest,
        "command": "python scripts/train_digits_classifier.py",
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    (ASSETS / CARD).write_text(json.dumps(card, indent=2) + "\n")
    print(f"test accuracy {float(acc):.4f} on {len(test)} held-out digits; sha256 {digest}")


if __name__ == "__main__":
    main()
