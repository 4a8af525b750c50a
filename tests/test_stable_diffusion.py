"""Stable Diffusion folders through genlab's generation interface, on a tiny pipeline built
from configs (UNet2DConditionModel, AutoencoderKL, CLIPTextModel and a CLIPTokenizer whose
vocabulary files are written alongside; tests/support/tiny_sd.py), saved as a diffusers
folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.lora_resume import assert_resumes_exactly

from genlab.generation import parse_parameters, read_parameters


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    from support.tiny_sd import write_tiny_sd

    return write_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny-sd")


@pytest.mark.parametrize("sampler", ["dpmpp-2m-karras", "euler-a"])
def test_genlab_gives_the_image_diffusers_gives(sd_folder, tmp_path, sampler):
    from diffusers import StableDiffusionPipeline

    from genlab.cli import main
    from genlab.generation.request import parse_sampler
    from genlab.interop.diffusers.schedulers import diffusers_scheduler

    out = tmp_path / "g.png"
    args = ["txt2img", "a red circle", "--negative", "blue", "--model", str(sd_folder),
            "--sampler", sampler, "--steps", "4", "--cfg", "6", "--seed", "3",
            "--width", "16", "--height", "16", "--batch", "2", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    ref = StableDiffusionPipeline.from_pretrained(sd_folder, local_files_only=True)
    ref.scheduler = diffusers_scheduler(*parse_sampler(sampler), ref.scheduler.config)
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
    # webui's own layout: the sampler, and the schedule apart where it is not the default
    assert params["Sampler"] == {"dpmpp-2m-karras": "DPM++ 2M", "euler-a": "Euler a"}[sampler]
    assert params.get("Schedule type") == {"dpmpp-2m-karras": "Karras", "euler-a": None}[sampler]
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
    from genlab.interop.diffusers.schedulers import diffusers_scheduler

    init = Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), np.uint8))
    init.save(tmp_path / "init.png")
    mask = np.zeros((16, 16), np.uint8)
    mask[:8] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    base = StableDiffusionPipeline.from_pretrained(sd_folder, local_files_only=True)
    base.scheduler = diffusers_scheduler("dpmpp-2m", "default", base.scheduler.config)
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
    assert np.abs(got[:8] - want[:8]).max() <= 2 / 255  # the masked rows: diffusers' image
    assert np.array_equal(got[8:], np.asarray(init)[8:] / 255)  # the rest: kept exactly


def test_progress_callback_previews_stable_diffusion(sd_folder):
    from genlab.backends import load_backend
    from genlab.generation import GenerationRequest

    seen = []
    backend = load_backend(str(sd_folder))
    backend(GenerationRequest("a dog", steps=3, width=16, height=16), seen.append)
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
    from genlab.interop.diffusers.schedulers import diffusers_scheduler

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
    ref.scheduler = diffusers_scheduler("dpmpp-2m", "default", ref.scheduler.config)
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

    # one file in kohya's layout (webui, Forge, ComfyUI read it) draws the same image
    kohya = tmp_path / "teal.safetensors"
    assert main(["lora", "export", str(run), "--format", "kohya", "--out", str(kohya)]) == 0
    assert all(k.startswith("lora_unet_") for k in load_file(kohya))
    assert main(["txt2img", *common, "--lora", str(kohya), "--out", str(tmp_path / "k.png")]) == 0
    got = np.asarray(read_image(tmp_path / "k.png"), dtype=np.float64) / 255
    assert np.abs(got - lora).max() <= 2 / 255


def test_single_file_checkpoint_gives_the_folders_image(sd_folder, tmp_path, capsys):
    """One .safetensors in the original layout (as shared for stable-diffusion-webui), its
    configs and tokenizer from a diffusers folder that holds no weights at all."""
    import shutil

    from support.tiny_sd import write_single_file

    from genlab.cli import main
    from genlab.training.checkpoint import sha256

    file = write_single_file(sd_folder, tmp_path / "my-model.safetensors")
    configs = tmp_path / "configs"
    shutil.copytree(sd_folder, configs, ignore=shutil.ignore_patterns("*.safetensors"))
    common = ["a red circle", "--steps", "3", "--seed", "1", "--width", "16", "--height", "16"]
    assert main(["txt2img", *common, "--model", str(sd_folder),
                 "--out", str(tmp_path / "folder.png")]) == 0  # fmt: skip
    assert main(["txt2img", *common, "--model", str(file), "--model-config", str(configs),
                 "--out", str(tmp_path / "file.png")]) == 0  # fmt: skip
    want = np.asarray(read_image(tmp_path / "folder.png"), dtype=np.float64)
    got = np.asarray(read_image(tmp_path / "file.png"), dtype=np.float64)
    assert np.abs(got - want).max() <= 2
    params = parse_parameters(read_parameters(tmp_path / "file.png"))
    assert params["Model"] == "my-model" and params["Model hash"] == sha256(file)[:10]
    for name, model in (("folder", [str(sd_folder)]), ("file", [str(file), "--model-config",
                                                                  str(configs)])):  # fmt: skip
        assert main(["img2img", str(tmp_path / "folder.png"), "a cat", "--steps", "3",
                     "--strength", "0.5", "--model", *model,
                     "--out", str(tmp_path / f"i2i-{name}.png")]) == 0  # fmt: skip
    want = np.asarray(read_image(tmp_path / "i2i-folder.png"), dtype=np.float64)
    assert np.abs(np.asarray(read_image(tmp_path / "i2i-file.png"), np.float64) - want).max() <= 2

    capsys.readouterr()
    assert main(["txt2img", *common, "--model", str(file), "--out", str(tmp_path / "x.png")]) == 2
    assert "--model-config" in capsys.readouterr().err
    (tmp_path / "old.ckpt").write_bytes(b"not opened")
    assert main(["txt2img", *common, "--model", str(tmp_path / "old.ckpt"), "--model-config",
                 str(configs), "--out", str(tmp_path / "x.png")]) == 2  # fmt: skip
    assert "pickled" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_placement_flags_are_checked_in_one_sentence(sd_folder, tmp_path, capsys):
    from genlab.cli import main

    base = ["txt2img", "x", "--steps", "1", "--out", str(tmp_path / "p.png")]
    sd = ["--model", str(sd_folder), "--width", "16", "--height", "16"]
    assert main([*base, *sd, "--dtype", "bf16", "--attention-slicing"]) == 0  # a CPU runs bf16
    if not torch.cuda.is_available():
        assert main([*base, *sd, "--device", "cuda:0"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err
    assert main([*base, *sd, "--device", "cpu", "--cpu-offload"]) == 2
    assert "needs CUDA" in capsys.readouterr().err
    assert main([*base, "--dtype", "fp16"]) == 2  # the built-in model: full precision only
    assert "apply to Stable Diffusion" in capsys.readouterr().err


def test_prompt_emphasis_weights_clip_embeddings_as_webui_does(sd_folder, tmp_path):
    """'a (red:1.5) circle': the embeddings of the plain prompt with the three tokens of
    "red" times 1.5, rescaled to the plain mean (computed here from diffusers' own
    encode_prompt), give genlab's image; a weight of 1 gives the plain prompt's image."""
    from diffusers import StableDiffusionPipeline

    from genlab.cli import main
    from genlab.interop.diffusers.schedulers import diffusers_scheduler

    common = ["--model", str(sd_folder), "--steps", "3", "--seed", "2", "--cfg", "7",
              "--width", "16", "--height", "16"]  # fmt: skip
    for name, prompt in (("weighted", "a (red:1.5) circle"), ("one", "a (red:1) circle"),
                         ("plain", "a red circle")):  # fmt: skip
        assert main(["txt2img", prompt, *common, "--out", str(tmp_path / f"{name}.png")]) == 0
    weighted, one, plain = (
        np.asarray(read_image(tmp_path / f"{n}.png"), dtype=np.float64) / 255
        for n in ("weighted", "one", "plain")
    )
    assert np.array_equal(one, plain)
    assert np.abs(weighted - plain).max() > 2 / 255
    assert read_parameters(tmp_path / "weighted.png").startswith("a (red:1.5) circle")

    ref = StableDiffusionPipeline.from_pretrained(sd_folder, local_files_only=True)
    ref.scheduler = diffusers_scheduler("dpmpp-2m", "default", ref.scheduler.config)
    ref.set_progress_bar_config(disable=True)
    z, _ = ref.encode_prompt("a red circle", "cpu", 1, False)
    w = torch.ones(z.shape[1])
    w[2:5] = 1.5  # <start>, "a", then "r", "e", "d" (the tokenizer reads characters)
    zw = z * w[None, :, None]
    zw = zw * (z.mean() / zw.mean())
    want = ref(prompt_embeds=zw, num_inference_steps=3, guidance_scale=7.0, height=16,
               width=16, generator=torch.Generator().manual_seed(2),
               output_type="np").images[0]  # fmt: skip
    assert np.abs(weighted - want).max() <= 2 / 255


def test_single_file_base_for_lora_and_in_the_page_catalog(sd_folder, tmp_path):
    import shutil

    from support.tiny_sd import write_single_file

    from genlab.cli import main
    from genlab.generation.placement import CPU, Placement
    from genlab.webui.catalog import Catalog

    models = tmp_path / "models"
    models.mkdir()
    file = write_single_file(sd_folder, models / "one.safetensors")
    configs = tmp_path / "configs"
    shutil.copytree(sd_folder, configs, ignore=shutil.ignore_patterns("*.safetensors"))
    run = tmp_path / "lora"
    assert main(["finetune", "lora", "--model", str(file), "--model-config", str(configs),
                 "--data", str(_image_folder(tmp_path / "imgs")), "--caption", "a square",
                 "--steps", "2", "--out", str(run)]) == 0  # fmt: skip
    shutil.copy(run / "model" / "pytorch_lora_weights.safetensors", models / "a-lora.safetensors")
    cat = Catalog.scan(models, None, configs)
    assert "one.safetensors" in cat.text_to_image and "a-lora.safetensors" not in cat.text_to_image
    assert cat.model_spec("one.safetensors") == (str(file.resolve()), str(configs), CPU)
    on_gpu = Catalog.scan(models, None, configs, Placement(dtype="bf16"))
    assert on_gpu.model_spec("one.safetensors")[2].dtype == "bf16"
    assert on_gpu.model_spec("builtin") == ("builtin", None, CPU)  # genlab's own: the CPU
    args = ["txt2img", "a square", "--steps", "2", "--lora", str(run)]
    assert main([*args, "--model", str(file), "--model-config", str(configs),
                 "--out", str(tmp_path / "l.png")]) == 0  # fmt: skip
    # the same weights as a folder are another file: the LoRA's base hash does not match
    assert main([*args, "--model", str(sd_folder), "--out", str(tmp_path / "x.png")]) == 2


def test_lora_on_stable_diffusion_resumes_exactly(sd_folder, tmp_path):
    """3 steps, then 3 more by --resume latest: the adapters 6 straight steps give (the
    posterior draws, noise and timesteps come from the checkpointed RNG state)."""

    imgs = _image_folder(tmp_path / "imgs")
    common = ["finetune", "lora", "--model", str(sd_folder), "--data", str(imgs), "--caption",
              "a square", "--lr", "0.01", "--batch-size", "2"]  # fmt: skip
    assert_resumes_exactly(common, tmp_path, steps=6, split=3)
