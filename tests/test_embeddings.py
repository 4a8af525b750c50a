"""Textual-inversion embeddings (webui's .safetensors files) on tiny Stable Diffusion 1.x and
SDXL pipelines of random weights: genlab's image equals the one diffusers gives after its
own ``load_textual_inversion``; the API lists them in webui's schema; an embedding for
another encoder width is refused in one sentence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    from support.tiny_sd import write_tiny_sd

    return write_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny-sd")


@pytest.fixture(scope="module")
def xl_folder(tmp_path_factory):
    from support.tiny_sd import write_tiny_sdxl

    return write_tiny_sdxl(tmp_path_factory.mktemp("sdxl") / "tiny-xl")


def pixels(image):
    return np.asarray(image.convert("RGB"), dtype=np.float64) / 255


def reference(cls, folder):
    pipe = cls.from_pretrained(folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_sd1_embedding_gives_diffusers_image_and_is_listed(sd_folder, tmp_path):
    from diffusers import StableDiffusionPipeline

    from genlab.cli import main
    from genlab.interop.diffusers.embeddings import Embeddings, encoder_widths

    emb_dir = tmp_path / "embeddings"
    emb_dir.mkdir()
    torch.manual_seed(0)
    vectors = torch.randn(3, 32)
    save_file({"emb_params": vectors}, str(emb_dir / "mystyle.safetensors"))
    save_file({"emb_params": torch.randn(2, 48)}, str(emb_dir / "wide.safetensors"))
    out = tmp_path / "e.png"
    common = ["--model", str(sd_folder), "--sampler", "euler", "--steps", "3", "--seed", "1",
              "--width", "16", "--height", "16", "--embeddings-dir", str(emb_dir)]  # fmt: skip
    assert main(["txt2img", "a mystyle cat", *common, "--out", str(out)]) == 0
    ref = reference(StableDiffusionPipeline, sd_folder)
    from genlab.interop.diffusers.schedulers import diffusers_scheduler

    ref.scheduler = diffusers_scheduler("euler", "default", ref.scheduler.config)
    ref.load_textual_inversion(str(emb_dir / "mystyle.safetensors"), token="mystyle")
    run = {"num_inference_steps": 3, "guidance_scale": 5.0, "height": 16, "width": 16,
           "output_type": "np"}  # fmt: skip
    want = ref("a mystyle cat", generator=torch.Generator().manual_seed(1), **run).images[0]
    from PIL import Image

    got = pixels(Image.open(out))
    assert np.abs(got - want).max() <= 2 / 255
    # and the embedding changed the image: without it "mystyle" is spelled out in letters
    plain = reference(StableDiffusionPipeline, sd_folder)
    plain.scheduler = ref.scheduler
    other = plain("a mystyle cat", generator=torch.Generator().manual_seed(1), **run).images[0]
    assert np.abs(other - want).max() > 2 / 255

    listing = Embeddings.scan(emb_dir, encoder_widths(sd_folder)).webui_listing()
    assert listing["loaded"] == {"mystyle": {"step": None, "sd_checkpoint": None,
                                             "sd_checkpoint_name": None, "shape": 32,
                                             "vectors": 3}}  # fmt: skip
    assert list(listing["skipped"]) == ["wide"] and listing["skipped"]["wide"]["shape"] == 48


def test_wrong_width_embedding_is_one_sentence_exit_2(sd_folder, tmp_path, capsys):
    from genlab.cli import main

    emb_dir = tmp_path / "embeddings"
    emb_dir.mkdir()
    save_file({"emb_params": torch.randn(2, 48)}, str(emb_dir / "wide.safetensors"))
    (emb_dir / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    out = tmp_path / "w.png"
    common = ["--model", str(sd_folder), "--steps", "1", "--width", "16", "--height", "16",
              "--embeddings-dir", str(emb_dir), "--out", str(out)]  # fmt: skip
    assert main(["txt2img", "a wide cat", *common]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genlab: error: The embedding wide is for text encoders of width "
                          "clip_l 48; this model's are clip_l 32")  # fmt: skip
    assert len(err.splitlines()) == 1 and not out.exists()  # refused before the progress bar
    assert main(["txt2img", "a broken cat", *common]) == 2
    assert "not a readable safetensors embedding" in capsys.readouterr().err
    assert not out.exists()
    assert main(["txt2img", "a widely known cat", *common]) == 0  # not the name: no error


def test_sdxl_embedding_over_both_encoders_gives_diffusers_image(xl_folder, tmp_path):
    from diffusers import StableDiffusionXLPipeline

    from genlab.backends import resolve
    from genlab.generation import GenerationRequest
    from genlab.interop.diffusers.schedulers import diffusers_scheduler

    emb_dir = tmp_path / "embeddings"
    emb_dir.mkdir()
    torch.manual_seed(1)
    clip_l, clip_g = torch.randn(2, 32), torch.randn(2, 32)
    save_file({"clip_l": clip_l, "clip_g": clip_g}, str(emb_dir / "xlstyle.safetensors"))
    save_file({"emb_params": torch.randn(1, 32)}, str(emb_dir / "v1only.safetensors"))
    backend = resolve(str(xl_folder))
    backend.use_embeddings(emb_dir)
    assert list(backend.embeddings.loaded) == ["xlstyle"]
    assert backend.embeddings.webui_listing()["loaded"]["xlstyle"]["shape"] == 64
    request = GenerationRequest("a xlstyle dog", "xlstyle blur", "euler", steps=3, seed=2)
    got = pixels(backend(request).images[0])
    ref = reference(StableDiffusionXLPipeline, xl_folder)
    ref.scheduler = diffusers_scheduler("euler", "default", ref.scheduler.config)
    ref.load_textual_inversion(clip_l, token="xlstyle", text_encoder=ref.text_encoder,
                               tokenizer=ref.tokenizer)  # fmt: skip
    ref.load_textual_inversion(clip_g, token="xlstyle", text_encoder=ref.text_encoder_2,
                               tokenizer=ref.tokenizer_2)  # fmt: skip
    want = ref("a xlstyle dog", negative_prompt="xlstyle blur", num_inference_steps=3,
               guidance_scale=5.0, height=16, width=16,
               generator=torch.Generator().manual_seed(2), output_type="np").images[0]  # fmt: skip
    assert np.abs(got - want).max() <= 2 / 255
    from genlab.errors import GenlabError

    with pytest.raises(GenlabError, match="v1only is for text encoders of width clip_l 32;"):
        backend(GenerationRequest("a v1only dog", steps=1))


def test_api_lists_embeddings_of_the_models_dir(sd_folder, tmp_path):
    pytest.importorskip("fastapi")
    from genlab.webui.api import embeddings_listing

    models = tmp_path / "models"
    (models / "embeddings").mkdir(parents=True)
    save_file({"emb_params": torch.randn(4, 32)}, str(models / "embeddings" / "a.safetensors"))
    got = embeddings_listing(models, sd_folder)
    assert got["loaded"]["a"]["vectors"] == 4 and got["skipped"] == {}
    assert embeddings_listing(None, sd_folder) == {"loaded": {}, "skipped": {}}
