"""An SDXL checkpoint as one original-layout .safetensors file (as SDXL models are shared
for stable-diffusion-webui), its configs and tokenizers from --model-config: genlab's image
from the file equals diffusers' StableDiffusionXLPipeline image from the folder it was
written from (within 2/255), so every weight went to its place."""

from __future__ import annotations

import shutil

import numpy as np
import torch


def test_sdxl_single_file_gives_the_folders_image(tmp_path):
    from diffusers import StableDiffusionXLPipeline
    from PIL import Image
    from support.tiny_sd import write_single_file_xl, write_tiny_sdxl

    from genlab.cli import main
    from genlab.generation import parse_parameters, read_parameters
    from genlab.interop.diffusers.schedulers import diffusers_scheduler

    # two text widths, as SDXL's 768 and 1280: diffusers tells the encoders apart by width
    folder = write_tiny_sdxl(tmp_path / "tiny-xl", text_width_2=48)
    single = write_single_file_xl(folder, tmp_path / "xl-model.safetensors")
    config = tmp_path / "xl-config"  # the configs and tokenizers alone: no weights
    shutil.copytree(folder, config, ignore=shutil.ignore_patterns("*.safetensors"))
    out = tmp_path / "s.png"
    args = ["txt2img", "a red circle", "--negative", "blue", "--model", str(single),
            "--model-config", str(config), "--sampler", "euler-a", "--steps", "3",
            "--cfg", "6", "--seed", "7", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    ref = StableDiffusionXLPipeline.from_pretrained(folder, local_files_only=True)
    ref.scheduler = diffusers_scheduler("euler-a", "default", ref.scheduler.config)
    ref.set_progress_bar_config(disable=True)
    want = ref("a red circle", negative_prompt="blue", num_inference_steps=3, guidance_scale=6.0,
               height=16, width=16, generator=torch.Generator().manual_seed(7),
               output_type="np").images[0]  # fmt: skip
    got = np.asarray(Image.open(out).convert("RGB"), dtype=np.float64) / 255
    assert got.shape == (16, 16, 3)  # the model's own size, from the config folder
    assert np.abs(got - want).max() <= 2 / 255
    params = parse_parameters(read_parameters(out))
    assert params["Model"] == "xl-model" and len(params["Model hash"]) == 10
