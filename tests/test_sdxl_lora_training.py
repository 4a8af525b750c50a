"""LoRA training on SDXL (adapters on the U-Net's attention projections; both text
encoders frozen, their hidden states and the pooled embedding with the added time ids fed
as the pipeline feeds them): 2 steps + --resume latest to 4 equal 4 straight, and the
trained LoRA changes the image."""

from __future__ import annotations

import numpy as np
import pytest


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
    from safetensors.numpy import load_file
    from support.tiny_sd import write_tiny_sdxl

    from genlab.cli import main

    folder = write_tiny_sdxl(tmp_path / "tiny-xl")
    imgs = _image_folder(tmp_path / "imgs")
    common = ["finetune", "lora", "--model", str(folder), "--data", str(imgs), "--caption",
              "a square", "--lr", "0.01", "--batch-size", "2"]  # fmt: skip
    assert main([*common, "--steps", "4", "--out", str(tmp_path / "straight")]) == 0
    assert main([*common, "--steps", "2", "--out", str(tmp_path / "split")]) == 0
    assert main([*common, "--steps", "4", "--out", str(tmp_path / "split"),
                 "--resume", "latest"]) == 0  # fmt: skip
    name = "model/pytorch_lora_weights.safetensors"
    a, b = load_file(tmp_path / "straight" / name), load_file(tmp_path / "split" / name)
    assert a.keys() == b.keys() and any(np.abs(v).max() > 0 for v in a.values())
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    draw = ["txt2img", "a square", "--model", str(folder), "--steps", "2", "--seed", "1"]
    assert main([*draw, "--out", str(tmp_path / "plain.png")]) == 0
    assert main([*draw, "--lora", str(tmp_path / "straight"), "--lora-scale", "4",
                 "--out", str(tmp_path / "lora.png")]) == 0  # fmt: skip
    from PIL import Image

    p = np.asarray(Image.open(tmp_path / "plain.png"), dtype=np.float64)
    q = np.asarray(Image.open(tmp_path / "lora.png"), dtype=np.float64)
    assert np.abs(p - q).max() > 2
