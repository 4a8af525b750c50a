"""Domain feature networks for FD / KID / precision-recall.

For digits: a small CNN classifier trained by ``scripts/train_digits_classifier.py`` and
shipped as safetensors with its sha256 and test accuracy in ``digits_classifier.json``.
Its 128-D penultimate activations are the features. Images of any size are resized to
16x16 first, and both real and generated images go through the same path.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenlabError

WEIGHTS = "digits_classifier.safetensors"
CARD = "digits_classifier.json"


class DigitsClassifier(nn.Module):
    """(N, 1, 16, 16) in [-1, 1] -> logits (N, 10); ``features`` gives the 128-D layer."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.SiLU(),
            nn.MaxPool2d(2),  # 8x8
            nn.Conv2d(32, 64, 3, padding=1),
            nn.SiLU(),
            nn.MaxPool2d(2),  # 4x4
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 128),
            nn.SiLU(),
        )
        self.head = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def to_classifier_input(images) -> torch.Tensor:
    """Images (N, 1, H, W) in [-1, 1] -> (N, 1, 16, 16) in [-1, 1]."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if x.ndim != 4 or x.shape[1] != 1:
        raise GenlabError(
            f"The digits feature network takes (N, 1, H, W) images, got {tuple(x.shape)}."
        )
    if x.shape[-2:] != (16, 16):
        x = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    return x.clamp(-1, 1)


@functools.cache
def digits_classifier() -> DigitsClassifier:
    """The shipped classifier, after checking its sha256 against its card."""
    from safetensors.torch import load

    assets = resources.files("genlab.assets")
    card = json.loads(assets.joinpath(CARD).read_text())
    blob = assets.joinpath(WEIGHTS).read_bytes()
    if hashlib.sha256(blob).hexdigest() != card["sha256"]:
        raise GenlabError(f"{WEIGHTS} does not match the sha256 in {CARD}; reinstall genlab.")
    net = DigitsClassifier()
    net.load_state_dict(load(blob))
    return net.eval()


def card() -> dict:
    return json.loads(resources.files("genlab.assets").joinpath(CARD).read_text())


@torch.no_grad()
def digits_features(images, batch: int = 512) -> np.ndarray:
    net = digits_classifier()
    x = to_classifier_input(images)
    return torch.cat([net.features(x[s : s + batch]) for s in range(0, len(x), batch)]).numpy()


@torch.no_grad()
def digits_predict(images, batch: int = 512) -> np.ndarray:
    net = digits_classifier()
    x = to_classifier_input(images)
    return torch.cat([net(x[s : s + batch]).argmax(1) for s in range(0, len(x), batch)]).numpy()
