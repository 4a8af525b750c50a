"""A second judge of single-object scenes, built another way than the analytic detector: a
small convolutional classifier trained on rendered scenes (genlab.data.shapes) with their
ground truth, by ``scripts/train_scene_classifier.py``, shipped in src/genlab/assets as
safetensors with a card (sha256, recipe, command, time, held-out accuracy).

It reads a 32x32 RGB image of one object and names its colour, shape, position and size
from four heads. ``benchmarks/judge_agreement.py`` measures how often it agrees with the
detector on the built-in model's own images, and draws the images where they disagree.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.shapes import COLOURS, POSITIONS, SHAPES
from ..errors import GenlabError

WEIGHTS = "scene_classifier.safetensors"
CARD = "scene_classifier.json"
HEADS = {
    "colour": tuple(COLOURS),
    "shape": SHAPES,
    "position": tuple(POSITIONS),
    "size": ("small", "large"),
}


class SceneClassifier(nn.Module):
    """(N, 3, 32, 32) in [-1, 1] -> one logit vector per head (colour, shape, position, size)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(w, w, 3, padding=1),
            nn.SiLU(),
            nn.MaxPool2d(2),  # 16x16
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.SiLU(),
            nn.MaxPool2d(2),  # 8x8
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.SiLU(),
            nn.MaxPool2d(2),  # 4x4: where the object is survives the flattening
            nn.Flatten(),
            nn.Linear(2 * w * 16, 128),
            nn.SiLU(),
        )
        self.heads = nn.ModuleDict({k: nn.Linear(128, len(v)) for k, v in HEADS.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.body(x)
        return {k: head(h) for k, head in self.heads.items()}


def to_input(images: Any) -> torch.Tensor:
    """uint8 images (N, H, W, 3) or (N, 3, H, W), 32x32 -> (N, 3, 32, 32) in [-1, 1]."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if x.ndim != 4:
        raise GenlabError(f"The scene classifier takes a batch of images, got {tuple(x.shape)}.")
    if x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.permute(0, 3, 1, 2)
    if tuple(x.shape[1:]) != (3, 32, 32):
        raise GenlabError(f"The scene classifier reads 32x32 RGB, got {tuple(x.shape[1:])}.")
    return x / 127.5 - 1


@functools.cache
def scene_classifier() -> SceneClassifier:
    """The shipped classifier, after checking its sha256 against its card."""
    from safetensors.torch import load

    assets = resources.files("genlab.assets")
    card_ = json.loads(assets.joinpath(CARD).read_text())
    blob = assets.joinpath(WEIGHTS).read_bytes()
    if hashlib.sha256(blob).hexdigest() != card_["sha256"]:
        raise GenlabError(f"{WEIGHTS} does not match the sha256 in {CARD}; reinstall genlab.")
    net = SceneClassifier(card_.get("width", 32))
    net.load_state_dict({k: v.float() for k, v in load(blob).items()})
    return net.eval()


def card() -> dict:
    return json.loads(resources.files("genlab.assets").joinpath(CARD).read_text())


@torch.no_grad()
def classify(images: Any, batch: int = 512, net: SceneClassifier | None = None) -> list[dict]:
    """Each image's reading: {"colour", "shape", "position", "size"} as names."""
    net = net or scene_classifier()
    x = to_input(images)
    picks = {k: [] for k in HEADS}
    for s in range(0, len(x), batch):
        for k, logits in net(x[s : s + batch]).items():
            picks[k].extend(logits.argmax(1).tolist())
    return [{k: HEADS[k][picks[k][i]] for k in HEADS} for i in range(len(x))]


def labels(scene: dict) -> dict[str, int]:
    """A single-object scene's ground truth as class indices per head."""
    (t,) = scene["things"]
    named = {"colour": t["colour"], "shape": t["shape"], "position": scene["position"],
             "size": t["size"]}  # fmt: skip
    return {k: HEADS[k].index(v) for k, v in named.items()}
