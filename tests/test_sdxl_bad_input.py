"""Issue 28's bad input through the command line: a kohya LoRA for another base (SDXL on
1.x, 1.x on SDXL), a LoRA with no known keys, a truncated LoRA file, an SDXL single file
without --model-config. Each: one sentence, exit code 2, no image written."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from support.tiny_sd import write_tiny_sd, write_tiny_sdxl

    root = tmp_path_factory.mktemp("bad")
    return {"sd1": write_tiny_sd(root / "tiny-sd"), "sdxl": write_tiny_sdxl(root / "tiny-xl")}


def refused(main, capsys, args, out, words):
    """The command exits 2 with one line on stderr holding ``words``, writing nothing."""
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert err.startswith("genlab: error: ") and err.endswith(".")
    assert not out.exists() and not list(out.parent.glob(f"{out.stem}*.png"))


def test_bad_loras_on_the_command_line(folders, tmp_path, capsys):
    from genlab.cli import main

    w = torch.zeros(2, 32)
    te2 = "lora_te2_text_model_encoder_layers_0_self_attn_q_proj"
    save_file({f"{te2}.lora_down.weight": w, f"{te2}.lora_up.weight": w.T.contiguous()},
              str(tmp_path / "xl.safetensors"))  # fmt: skip
    unet = "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_q"
    v1 = {f"{unet}.lora_down.weight": w, f"{unet}.lora_up.weight": w.T.contiguous()}
    save_file(v1, str(tmp_path / "v1.safetensors"), metadata={"ss_base_model_version": "sd_v1"})
    save_file({"model.weight": w}, str(tmp_path / "none.safetensors"))
    data = (tmp_path / "v1.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) - 40])
    out = tmp_path / "o.png"
    cases = [("sd1", "xl", "is for SDXL"), ("sdxl", "v1", "is for Stable Diffusion 1.x"),
             ("sd1", "none", "no LoRA weights genlab knows"),
             ("sd1", "cut", "is not a readable safetensors LoRA file")]  # fmt: skip
    for model, lora, words in cases:
        args = ["txt2img", "a cat", "--model", str(folders[model]), "--steps", "1",
                "--lora", str(tmp_path / f"{lora}.safetensors"), "--out", str(out)]  # fmt: skip
        refused(main, capsys, args, out, words)


def test_sdxl_single_file_without_model_config(folders, tmp_path, capsys):
    from genlab.cli import main

    single = tmp_path / "xl-model.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)}, str(single))
    out = tmp_path / "s.png"
    args = ["txt2img", "a cat", "--model", str(single), "--steps", "1", "--out", str(out)]
    refused(main, capsys, args, out, "give --model-config DIR")
    bad = [*args[:-2], "--model-config", str(tmp_path), "--out", str(out)]
    refused(main, capsys, bad, out, "is not a diffusers folder")
