"""Reading the images a user hands to img2img and inpainting: an RGB picture and a mask
(white: regenerate, black: keep), as files or PIL images, with one sentence when they
cannot be used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import GenlabError


def open_image(source: Any, mode: str, what: str) -> Any:
    """A PIL image in ``mode`` from a path or a PIL image."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, Image.Image):
        return source.convert(mode)
    path = Path(source)
    if not path.is_file():
        raise GenlabError(f"The {what} {path} does not exist or is not a file.")
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert(mode)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise GenlabError(f"The {what} {path} is not a readable image ({e}).") from None


def image_tensor(image: Any) -> torch.Tensor:
    """RGB image -> (1, 3, H, W) in [-1, 1]."""
    a = np.asarray(open_image(image, "RGB", "initial image"), dtype=np.float32) / 127.5 - 1
    return torch.from_numpy(a).permute(2, 0, 1)[None]


def mask_tensor(mask: Any) -> torch.Tensor:
    """Mask image -> (1, 1, H, W), 1 where the picture is to be regenerated (white)."""
    a = np.asarray(open_image(mask, "L", "mask"), dtype=np.float32)
    return torch.from_numpy((a > 127).astype(np.float32))[None, None]


def size_of(image: Any) -> tuple[int, int]:
    """(width, height) of an image given as a path or a PIL image."""
    return open_image(image, "RGB", "initial image").size


def image_batch(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] float images (N, C, H, W) -> uint8 (N, H, W, C)."""
    out = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return out.permute(0, 2, 3, 1).cpu().numpy()


def to_pil(images: torch.Tensor) -> list[Any]:
    """[-1, 1] images (N, C, H, W) -> PIL images."""
    from PIL import Image

    return [Image.fromarray(a.squeeze(-1) if a.shape[-1] == 1 else a) for a in image_batch(images)]
