"""LoRA files both ways on a tiny Stable Diffusion pipeline (tests/support/tiny_sd.py): a
kohya file written by diffusers' own converter draws in genlab the image diffusers draws
with it; genlab's kohya and diffusers exports load in diffusers' ``load_lora_weights`` with
genlab's image and carry kohya's header; bad files are refused in one sentence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("peft", reason="LoRA needs the extra genlab[lora]")

from genlab.errors import GenlabError

TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
DRAW = {"steps": 3, "width": 16, "height": 16, "seed": 4, "cfg_scale": 5.0}


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    from support.tiny_sd import write_tiny_sd

    return write_tiny_sd(tmp_path_factory.mktemp("sdk") / "tiny-sd")


def diffusers_pipe(folder):
    from diffusers import StableDiffusionPipeline

    from genlab.interop.diffusers.schedulers import diffusers_scheduler

    pipe = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True)
    pipe.scheduler = diffusers_scheduler("dpmpp-2m", "default", pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def diffusers_image(pipe, prompt="a red square"):
    return pipe(
        prompt, num_inference_steps=DRAW["steps"], guidance_scale=DRAW["cfg_scale"],
        height=16, width=16, generator=torch.Generator().manual_seed(DRAW["seed"]),
        output_type="np",
    ).images[0]  # fmt: skip


def genlab_image(folder, loras, prompt="a red square"):
    from genlab.backends import resolve
    from genlab.generation import GenerationRequest

    result = resolve(str(folder))(GenerationRequest(prompt, loras=tuple(loras), **DRAW))
    return np.asarray(result.images[0], dtype=np.float64) / 255, result.parameters[0]


def kohya_file(folder, path, seed, alpha, te_prefix=""):
    """A random U-Net + text-encoder LoRA of the tiny pipeline, through peft, as diffusers'
    ``convert_state_dict_to_kohya`` writes it, with kohya's alpha set to ``alpha`` and the
    text encoder's keys renamed to ``te_prefix`` where given."""
    from diffusers.utils.state_dict_utils import convert_state_dict_to_kohya
    from safetensors.torch import save_file

    from genlab.lora.adapters import adapter_state, inject

    pipe = diffusers_pipe(folder)
    torch.manual_seed(seed)
    state = {}
    clip = ["q_proj", "k_proj", "v_proj", "out_proj"]
    for part, module, targets in (("unet", pipe.unet, TARGETS),
                                  ("text_encoder", pipe.text_encoder, clip)):  # fmt: skip
        inject(module, 4 if part == "unet" else 2, 1.0, targets)
        for name, param in module.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(param)  # peft starts B at zero: a LoRA that does nothing
        state |= {f"{part}.{k}": v for k, v in adapter_state(module).items()}
    kohya = convert_state_dict_to_kohya(state)
    kohya = {k: torch.tensor(float(alpha)) if k.endswith(".alpha") else v * 0.3
             for k, v in kohya.items()}  # fmt: skip
    if te_prefix:  # as sd-scripts and webui name them: with CLIP's text_model level
        kohya = {k.replace("lora_te1_", te_prefix): v for k, v in kohya.items()}
    save_file({k: v.contiguous() for k, v in kohya.items()}, str(path))
    return path


def test_kohya_files_from_diffusers_converter_give_diffusers_image(sd_folder, tmp_path):
    from genlab.generation import parse_parameters
    from genlab.lora.files import addnet_hash

    one = kohya_file(sd_folder, tmp_path / "one.safetensors", seed=1, alpha=2)
    two = kohya_file(sd_folder, tmp_path / "two.safetensors", 2, 4, "lora_te_text_model_")
    from safetensors.torch import load_file

    keys = load_file(one)
    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    assert f"{name}.lora_down.weight" in keys
    assert any(k.startswith("lora_te") for k in keys)

    ref = diffusers_pipe(sd_folder)
    base = diffusers_image(ref)
    ref.load_lora_weights(str(one), adapter_name="one")
    ref.load_lora_weights(str(two), adapter_name="two")
    ref.set_adapters(["one", "two"], [0.7, 0.5])
    want = diffusers_image(ref)
    got, params = genlab_image(sd_folder, [(str(one), 0.7), (str(two), 0.5)])
    assert np.abs(want - base).max() > 4 / 255  # the LoRAs change the image
    assert np.abs(got - want).max() <= 2 / 255
    parsed = parse_parameters(params)
    assert parsed["Lora hashes"] == f"one: {addnet_hash(one)[:12]}, two: {addnet_hash(two)[:12]}"
    assert parsed["Lora scales"] == "one: 0.7, two: 0.5"


@pytest.fixture(scope="module")
def trained(sd_folder, tmp_path_factory):
    """A genlab LoRA run of the tiny pipeline as ``genlab finetune lora`` lays it out (the
    run's config.yaml, the model folder), its adapters random rather than trained: training
    is tested in test_stable_diffusion.py, and here only the files matter."""
    import yaml

    from genlab.finetune.model import LoRA
    from genlab.finetune.train import lora_config
    from genlab.serialization import save_model

    run = tmp_path_factory.mktemp("sdk-run") / "run"
    model = LoRA((3, 16, 16), base=str(sd_folder), rank=4, alpha=2)
    torch.manual_seed(0)
    for name, param in model.net.denoiser.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    save_model(model, run / "model")
    cfg = lora_config(str(sd_folder), str(run), rank=4, alpha=2, train={"steps": 3})
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    return run


def test_exports_load_in_diffusers_with_genlabs_image(sd_folder, trained, tmp_path):
    from safetensors import safe_open

    from genlab.finetune.export import export_lora

    kohya = export_lora(trained, "kohya", tmp_path / "mine.safetensors")
    plain = export_lora(trained, "diffusers", tmp_path / "mine-diffusers.safetensors")
    with safe_open(str(kohya), "pt") as f:
        keys, meta = set(f.keys()), f.metadata()
    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    assert {f"{name}.lora_down.weight", f"{name}.lora_up.weight", f"{name}.alpha"} <= keys
    assert "lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn2_to_out_0.alpha" in keys
    assert all(k.startswith("lora_unet_") for k in keys)
    assert meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "2"
    assert meta["ss_base_model_version"] == "sd_v1" and meta["ss_resolution"] == "(16, 16)"
    assert meta["ss_steps"] == "3" and meta["ss_output_name"] == "mine"
    assert len(meta["sshs_model_hash"]) == 64 and meta["ss_new_sd_model_hash"]

    mine, _ = genlab_image(sd_folder, [(str(trained), 1.0)])
    for file in (kohya, plain):
        ref = diffusers_pipe(sd_folder)
        ref.load_lora_weights(str(file))
        assert np.abs(diffusers_image(ref) - mine).max() <= 2 / 255, file.name
        got, _ = genlab_image(sd_folder, [(str(file), 1.0)])
        assert np.abs(got - mine).max() <= 2 / 255, file.name
    base = diffusers_image(diffusers_pipe(sd_folder))
    assert np.abs(mine - base).max() > 2 / 255  # the LoRA does something
    with pytest.raises(GenlabError, match="already exists"):
        export_lora(trained, "kohya", kohya)
    with pytest.raises(GenlabError, match="Unknown LoRA format"):
        export_lora(trained, "lycoris", tmp_path / "x.safetensors")


def test_bad_lora_files_are_refused_in_one_sentence(sd_folder, tmp_path):
    from safetensors.torch import save_file

    from genlab.backends import resolve
    from genlab.generation import GenerationRequest

    backend = resolve(str(sd_folder))
    w = torch.zeros(2, 32)
    save_file({"model.weight": w}, str(tmp_path / "none.safetensors"))
    te2 = "lora_te2_text_model_encoder_layers_0_self_attn_q_proj"
    kohya = {f"{te2}.lora_down.weight": w, f"{te2}.lora_up.weight": w.T.contiguous()}
    save_file(kohya, str(tmp_path / "xl.safetensors"))
    unet = {k.replace(te2, "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_q"): v
            for k, v in kohya.items()}  # fmt: skip
    save_file(unet, str(tmp_path / "meta-xl.safetensors"),
              metadata={"ss_base_model_version": "sdxl_base_v1-0"})  # fmt: skip
    data = (tmp_path / "meta-xl.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) - 40])
    cases = {"none": "no LoRA weights genlab knows", "xl": "is for SDXL",
             "meta-xl": "is for SDXL", "cut": "not a readable safetensors"}  # fmt: skip
    for name, words in cases.items():
        request = GenerationRequest("x", loras=((str(tmp_path / f"{name}.safetensors"), 1.0),))
        with pytest.raises(GenlabError, match=words) as caught:
            backend.check(request)
        assert str(caught.value).count(". ") == 0 and "\n" not in str(caught.value)
    builtin = resolve("builtin")
    with pytest.raises(GenlabError, match="genlab's own models"):
        builtin.check(GenerationRequest("x", loras=((str(tmp_path / "meta-xl.safetensors"), 1),)))


def test_sdxl_kohya_export_uses_the_original_block_names_and_reads_back():
    """kohya's sd-scripts writes SDXL LoRAs on the original U-Net's block names
    (``lora_unet_input_blocks_4_1_...``), which webui and Forge read: genlab's export for an
    SDXL base does the same, and its reader maps them back to the same diffusers layers."""
    from safetensors.torch import load as load_bytes
    from safetensors.torch import save

    from genlab.lora.formats import (
        SDXL,
        original_block_path,
        parse_file_state,
        sdxl_block_path,
        to_kohya,
    )

    paths = [
        "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
        "down_blocks.2.attentions.1.transformer_blocks.3.attn2.to_k",
        "mid_block.attentions.0.transformer_blocks.0.attn1.to_v",
        "up_blocks.0.attentions.2.transformer_blocks.9.attn1.to_out.0",
        "up_blocks.1.attentions.0.transformer_blocks.1.attn2.to_q",
    ]
    expected = ["input_blocks.4.1", "input_blocks.8.1", "middle_block.1", "output_blocks.2.1",
                "output_blocks.3.1"]  # fmt: skip
    for path, block in zip(paths, expected, strict=True):
        assert original_block_path(path).startswith(block + ".")
        assert sdxl_block_path(original_block_path(path)) == path
    a, b = torch.randn(4, 8), torch.randn(8, 4)
    state = to_kohya({"unet": {p: (a.clone(), b.clone(), 0.5) for p in paths}}, SDXL)
    assert all(k.startswith(("lora_unet_input_blocks_", "lora_unet_middle_block_",
                             "lora_unet_output_blocks_")) for k in state)  # fmt: skip
    assert "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight" in state
    parsed = parse_file_state(load_bytes(save(state)), {}, "x.safetensors")
    underscored = sorted(q.replace(".", "_") for q in parsed.parts["unet"])  # kohya's paths
    assert parsed.base_version == SDXL and underscored == sorted(p.replace(".", "_") for p in paths)
    assert all(
        q.startswith(("down_blocks.", "mid_block.", "up_blocks.")) for q in parsed.parts["unet"]
    )
