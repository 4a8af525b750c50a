"""SDXL's refiner as diffusers runs it (an ensemble of expert denoisers): the base draws the
first 80% of the steps, a refiner-shaped tiny model (second encoder only, aesthetic score)
the rest; genlab's image through the CLI equals diffusers' two-pipeline image."""

from __future__ import annotations

import numpy as np
import torch


def test_refiner_gives_diffusers_ensemble_image(tmp_path, capsys):
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline
    from PIL import Image
    from support.tiny_sd import write_tiny_sd, write_tiny_sdxl, write_tiny_sdxl_refiner

    from genlab.cli import main
    from genlab.generation import parse_parameters, read_parameters
    from genlab.interop.diffusers.schedulers import diffusers_scheduler

    base = write_tiny_sdxl(tmp_path / "tiny-xl")
    refiner = write_tiny_sdxl_refiner(tmp_path / "tiny-refiner")
    out = tmp_path / "r.png"
    args = ["txt2img", "a red circle", "--negative", "blue", "--model", str(base),
            "--sampler", "euler", "--steps", "5", "--seed", "3", "--refiner", str(refiner),
            "--refiner-switch", "0.6"]  # fmt: skip
    assert main([*args, "--out", str(out)]) == 0
    pipe = StableDiffusionXLPipeline.from_pretrained(base, local_files_only=True)
    ref = StableDiffusionXLImg2ImgPipeline.from_pretrained(refiner, local_files_only=True)
    for p in (pipe, ref):
        p.scheduler = diffusers_scheduler("euler", "default", p.scheduler.config)
        p.set_progress_bar_config(disable=True)
    g = [torch.Generator().manual_seed(3)]
    run = {"negative_prompt": "blue", "num_inference_steps": 5, "guidance_scale": 5.0}
    latents = pipe("a red circle", height=16, width=16, denoising_end=0.6, output_type="latent",
                   generator=g, **run).images  # fmt: skip
    want = ref("a red circle", image=latents, denoising_start=0.6, generator=g,
               output_type="np", **run).images[0]  # fmt: skip
    got = np.asarray(Image.open(out).convert("RGB"), dtype=np.float64) / 255
    assert np.abs(got - want).max() <= 2 / 255
    params = parse_parameters(read_parameters(out))
    assert params["Refiner"] == "tiny-refiner" and params["Refiner switch at"] == "0.6"
    alone = pipe("a red circle", height=16, width=16, output_type="np",
                 generator=[torch.Generator().manual_seed(3)], **run).images[0]  # fmt: skip
    assert np.abs(alone - want).max() > 2 / 255  # the refiner drew the last steps
    capsys.readouterr()
    assert main([*args[:-2], "--refiner-switch", "1.5", "--out", str(tmp_path / "x.png")]) == 2
    assert "must lie in (0, 1)" in capsys.readouterr().err
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "init.png")
    i2i = ["img2img", str(tmp_path / "init.png"), *args[1:], "--out", str(tmp_path / "i.png")]
    assert main(i2i) == 2 and "applies to txt2img" in capsys.readouterr().err
    sd1 = write_tiny_sd(tmp_path / "tiny-sd")
    bad = ["txt2img", "x", "--model", str(sd1), "--refiner", str(refiner), "--out", str(out)]
    assert main(bad) == 2 and "applies to SDXL" in capsys.readouterr().err
