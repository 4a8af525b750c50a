"""LoRA training on SDXL (adapters on the U-Net's attention projections; both text
encoders frozen, their hidden states and the pooled embedding with the added time ids fed
as the pipeline feeds them): 2 steps + --resume latest to 4 equal 4 straight, and the
trained LoRA changes the image."""

from __future__ import annotations

import numpy as np
import pytest
from support.lora_resume import assert_resumes_exactly


def _image_folder(root, n=4, size=16):
    from PIL import Image

    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        a = np.zeros((size, size, 3), np.uint8) + rng.integers(0, 255, 3, dtype=np.uint8)
        Image.fromarray(a).save(root / f"{i}.png")
    return root


def test_sdxl_lora_trains_and_resumes_exactly(tmp_path):
    pytest.importorskip("peft")
    from support.tiny_sd import write_tiny_sdxl

    from genlab.cli import main

    folder = write_tiny_sdxl(tmp_path / "tiny-xl")
    imgs = _image_folder(tmp_path / "imgs")
    common = ["finetune", "lora", "--model", str(folder), "--data", str(imgs), "--caption",
              "a square", "--lr", "0.01", "--batch-size", "2"]  # fmt: skip
    assert_resumes_exactly(common, tmp_path, steps=4, split=2)
    draw = ["txt2img", "a square", "--model", str(folder), "--steps", "2", "--seed", "1"]
    assert main([*draw, "--out", str(tmp_path / "plain.png")]) == 0
    assert main([*draw, "--lora", str(tmp_path / "straight"), "--lora-scale", "4",
                 "--out", str(tmp_path / "lora.png")]) == 0  # fmt: skip
    from PIL import Image

    p = np.asarray(Image.open(tmp_path / "plain.png"), dtype=np.float64)
    q = np.asarray(Image.open(tmp_path / "lora.png"), dtype=np.float64)
    assert np.abs(p - q).max() > 2
