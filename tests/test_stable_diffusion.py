"""Stable Diffusion folders through genlab's generation interface, on a tiny pipeline the
test builds from configs (UNet2DConditionModel, AutoencoderKL, CLIPTextModel and a
CLIPTokenizer whose vocabulary files the test writes), saved as a diffusers folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genlab.generation import parse_parameters, read_parameters


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("sd")
    vocab: dict[str, int] = {}
    for c in "abcdefghijklmnopqrstuvwxyz0123456789,.:()[]!?-'":
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    start, end = len(vocab), len(vocab) + 1
    vocab |= {"<|startoftext|>": start, "<|endoftext|>": end}
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")  # characters only: no merges
    tokenizer = CLIPTokenizer(
        str(root / "vocab.json"), str(root / "merges.txt"), model_max_length=77
    )
    torch.manual_seed(0)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=start,
        eos_token_id=end, pad_token_id=end,
    ))  # fmt: skip
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
        layers_per_block=1, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
        attention_head_dim=8, norm_num_groups=8,
    )  # fmt: skip
    vae = AutoencoderKL(
        block_out_channels=(16, 32), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8,
    )  # fmt: skip
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
        scheduler=PNDMScheduler(skip_prk_steps=True, steps_offset=1), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.save_pretrained(root / "tiny-sd", safe_serialization=True)
    return root / "tiny-sd"


@pytest.mark.parametrize("sampler", ["dpmpp-2m-karras", "euler-a"])
def test_genlab_gives_the_image_diffusers_gives(sd_folder, tmp_path, sampler):
    from diffusers import StableDiffusionPipeline

    from genlab.cli import main
    from genlab.generation.schedulers import diffusers_scheduler

    out = tmp_path / "g.png"
    args = ["txt2img", "a red circle", "--negative", "blue", "--model", str(sd_folder),
            "--sampler", sampler, "--steps", "4", "--cfg", "6", "--seed", "3",
            "--width", "16", "--height", "16", "--batch", "2", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    ref = StableDiffusionPipeline.from_pretrained(sd_folder, local_files_only=True)
    ref.scheduler = diffusers_scheduler(sampler, ref.scheduler.config)
    ref.set_progress_bar_config(disable=True)
    want = ref(
        "a red circle",
        negative_prompt="blue",
        num_inference_steps=4,
        guidance_scale=6.0,
        height=16,
        width=16,
        generator=torch.Generator().manual_seed(4),
        output_type="np",
    ).images[0]  # the batch's second image: seed 3 + 1
    got = np.asarray(read_image(tmp_path / "g-1.png"), dtype=np.float64) / 255
    assert np.abs(got - want).max() <= 2 / 255
    params = parse_parameters(read_parameters(tmp_path / "g-1.png"))
    assert params["Seed"] == "4" and params["Model"] == "tiny-sd"
    assert (
        params["Sampler"] == {"dpmpp-2m-karras": "DPM++ 2M Karras", "euler-a": "Euler a"}[sampler]
    )
    assert len(params["Model hash"]) == 10


def read_image(path):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def test_stable_diffusion_bad_input(sd_folder, tmp_path, capsys):
    from genlab.cli import main

    base = ["txt2img", "x", "--model", str(sd_folder), "--steps", "2"]
    assert main([*base, "--width", "12", "--out", str(tmp_path / "a.png")]) == 2
    assert "multiples of 8" in capsys.readouterr().err
    (tmp_path / "one.safetensors").write_bytes(b"")
    code = main(["txt2img", "x", "--model", str(tmp_path / "one.safetensors"), "--out",
                 str(tmp_path / "b.png")])  # fmt: skip
    assert code == 2 and "single-file" in capsys.readouterr().err
    assert not any(p.suffix == ".png" for p in tmp_path.iterdir())


def test_img2img_and_inpaint_give_diffusers_images(sd_folder, tmp_path):
    from diffusers import (
        StableDiffusionImg2ImgPipeline,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
    )
    from PIL import Image

    from genlab.cli import main
    from genlab.generation.schedulers import diffusers_scheduler

    init = Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), np.uint8))
    init.save(tmp_path / "init.png")
    mask = np.zeros((16, 16), np.uint8)
    mask[:8] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    base = StableDiffusionPipeline.from_pretrained(sd_folder, local_files_only=True)
    base.scheduler = diffusers_scheduler("dpmpp-2m", base.scheduler.config)
    common = ["--model", str(sd_folder), "--steps", "4", "--cfg", "6", "--seed", "2"]
    run = {"generator": torch.Generator().manual_seed(2), "num_inference_steps": 4,
           "guidance_scale": 6.0, "output_type": "np", "prompt": "a cat"}  # fmt: skip
    assert main(["img2img", str(tmp_path / "init.png"), "a cat", *common, "--strength", "0.5",
                 "--out", str(tmp_path / "i2i.png")]) == 0  # fmt: skip
    ref = StableDiffusionImg2ImgPipeline(**base.components)
    ref.set_progress_bar_config(disable=True)
    want = ref(image=init, strength=0.5, **run).images[0]
    got = np.asarray(read_image(tmp_path / "i2i.png"), dtype=np.float64) / 255
    assert np.abs(got - want).max() <= 2 / 255
    assert parse_parameters(read_parameters(tmp_path / "i2i.png"))["Denoising strength"] == "0.5"
    assert main(["inpaint", str(tmp_path / "init.png"), str(tmp_path / "mask.png"), "a cat",
                 *common, "--out", str(tmp_path / "inp.png")]) == 0  # fmt: skip
    ref = StableDiffusionInpaintPipeline(**base.components)
    ref.set_progress_bar_config(disable=True)
    run["generator"] = torch.Generator().manual_seed(2)
    want = ref(image=init, mask_image=Image.fromarray(mask), strength=1.0, height=16, width=16,
               **run).images[0]  # fmt: skip
    got = np.asarray(read_image(tmp_path / "inp.png"), dtype=np.float64) / 255
    assert np.abs(got - want).max() <= 2 / 255


def test_progress_callback_previews_stable_diffusion(sd_folder):
    from genlab.generation import GenerationRequest
    from genlab.generation.backend import load_pipeline

    seen = []
    backend = load_pipeline(str(sd_folder))
    backend(GenerationRequest("a dog", steps=3, width=16, height=16), callback=seen.append)
    assert [p.step for p in seen] == [1, 2, 3]
    assert seen[-1].preview()[0].size == (16, 16)


def _image_folder(root, n=4, size=16):
    from PIL import Image

    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        a = np.zeros((size, size, 3), np.uint8) + rng.integers(0, 255, 3, dtype=np.uint8)
        Image.fromarray(a).save(root / f"{i}.png")
    return root


def test_lora_on_stable_diffusion_trains_reloads_and_matches_diffusers(sd_folder, tmp_path):
    """A LoRA trained a few steps through genlab changes the image, gives the same image when
    read again, gives the image diffusers gives after load_lora_weights, and fuses into a
    diffusers folder that draws it without adapters."""
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import load_file

    from genlab.cli import main
    from genlab.generation.schedulers import diffusers_scheduler

    imgs = _image_folder(tmp_path / "imgs")
    run = tmp_path / "lora"
    assert main(["finetune", "lora", "--model", str(sd_folder), "--data", str(imgs),
                 "--caption", "a red square", "--steps", "8", "--lr", "0.02", "--rank", "4",
                 "--alpha", "2", "--out", str(run)]) == 0  # fmt: skip
    file = load_file(run / "model" / "pytorch_lora_weights.safetensors")
    assert file and all(k.startswith("unet.") and ".lora_" in k for k in file)
    assert any(".attn2.to_k.lora_A" in k for k in file)  # cross-attention is adapted

    common = ["a red square", "--model", str(sd_folder), "--steps", "3", "--seed", "5",
              "--width", "16", "--height", "16"]  # fmt: skip
    for name, extra in (("base", []), ("lora", ["--lora", str(run)]),
                        ("again", ["--lora", str(run)])):  # fmt: skip
        assert main(["txt2img", *common, *extra, "--out", str(tmp_path / f"{name}.png")]) == 0
    base, lora, again = (
        np.asarray(read_image(tmp_path / f"{n}.png"), dtype=np.float64) / 255
        for n in ("base", "lora", "again")
    )
    assert np.abs(lora - base).max() > 4 / 255  # the adapters change the image
    assert np.array_equal(lora, again)
    assert "Lora hashes" in parse_parameters(read_parameters(tmp_path / "lora.png"))

    ref = StableDiffusionPipeline.from_pretrained(sd_folder, local_files_only=True)
    ref.scheduler = diffusers_scheduler("dpmpp-2m", ref.scheduler.config)
    ref.set_progress_bar_config(disable=True)
    ref.load_lora_weights(run / "model")
    want = ref("a red square", num_inference_steps=3, guidance_scale=5.0, height=16, width=16,
               generator=torch.Generator().manual_seed(5), output_type="np").images[0]  # fmt: skip
    assert np.abs(lora - want).max() <= 2 / 255

    assert main(["lora", "fuse", str(run), "--out", str(tmp_path / "fused")]) == 0
    fused = [*common[:2], str(tmp_path / "fused"), *common[3:]]
    assert main(["txt2img", *fused, "--out", str(tmp_path / "fused.png")]) == 0
    got = np.asarray(read_image(tmp_path / "fused.png"), dtype=np.float64) / 255
    assert np.abs(got - lora).max() <= 2 / 255
