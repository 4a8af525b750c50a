"""The real Stable Diffusion 1.5 architecture (its configs, random weights; the U-Net's
859,520,964 parameters) through ``genlab txt2img`` end to end, from a diffusers folder and
from the original-layout single file converted at full size: what users with real weights
meet has run here. Smaller than 512 only to keep the test to minutes on two cores;
benchmarks/sd_real_size.py runs 512x512 and SDXL at 1024."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow

SIDE = 256


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    from support.real_sd import write_real_sd
    from support.tiny_sd import write_single_file

    root = tmp_path_factory.mktemp("sd15")
    path = write_real_sd(root / "sd15")
    return path, write_single_file(path, root / "sd15.safetensors")


def test_real_size_sd15_draws_from_folder_and_single_file(sd15, tmp_path):
    from PIL import Image
    from safetensors import safe_open

    from genlab.backends import load_backend
    from genlab.cli import main
    from genlab.generation import parse_parameters, read_parameters

    path, single = sd15
    with safe_open(str(path / "unet" / "diffusion_pytorch_model.safetensors"), "pt") as f:
        assert sum(np.prod(f.get_slice(k).get_shape()) for k in f.keys()) == 859_520_964
    with safe_open(str(single), "pt") as f:  # the original layout, every part in one file
        prefixes = {k.split(".")[0] for k in f.keys()}
    assert prefixes == {"model", "first_stage_model", "cond_stage_model"}
    common = ["--steps", "2", "--seed", "5", "--width", str(SIDE), "--height", str(SIDE)]
    images = []
    models = {
        "folder": ["--model", str(path)],
        "single": ["--model", str(single), "--model-config", str(path)],
    }
    for name, model in models.items():
        out = tmp_path / f"{name}.png"
        prompt = "an astronaut riding a horse"
        assert main(["txt2img", prompt, *model, *common, "--out", str(out)]) == 0
        load_backend.cache_clear()  # one 4 GB pipeline in memory at a time
        images.append(np.asarray(Image.open(out).convert("RGB"), dtype=np.int16))
        assert images[-1].shape == (SIDE, SIDE, 3)
        assert parse_parameters(read_parameters(out))["Size"] == f"{SIDE}x{SIDE}"
    assert images[0].std() > 1  # a drawn image, not a blank one
    # the single file converted at full size holds the folder's weights: the same picture
    assert np.abs(images[0] - images[1]).max() <= 2
