"""Text-to-image speed, two ratios in one run, each pair alternating image by image:

1. Architecture and pipeline together: genlab's built-in model (its own U-Net, autoencoder
   and samplers) against diffusers' StableDiffusionPipeline built from a
   UNet2DConditionModel and an AutoencoderKL of matched parameter counts. This ratio
   compares two different networks of about the same size, not two pipelines.
2. Pipeline alone, the same network: genlab's Stable Diffusion back end
   (genlab.interop.diffusers, what ``--model FOLDER`` runs) against diffusers'
   StableDiffusionPipeline, both loading one diffusers folder written here (the matched
   UNet2DConditionModel and AutoencoderKL of 1., a small random CLIP text encoder over
   single characters). Same weights, same scheduler, so the ratio is the back end's
   overhead (request checks, scheduler built per request, PNG parameters) and nothing else.

Both pairs use the same prompts, steps (20), scheduler (DPM-Solver++(2M), trailing spacing,
the same linear betas) and CFG scale (5), at 32x32, one image at a time.

    python benchmarks/txt2img_speed.py                 # the built-in model
    python benchmarks/txt2img_speed.py --model runs/txt2img --images 20

Both sides encode each prompt with the model's own frozen text encoder (MiniLM, or its
input embeddings for minilm-words) inside the timed region (diffusers gets the embeddings as
prompt_embeds); model load is timed apart, in a fresh process, with
torch already imported. diffusers' networks keep their random initial weights: this is a
speed comparison, and the work per step does not depend on the weights. Prints seconds per
image for each side and the ratio of images per second (genlab / diffusers), per pair.
In pair 2 both sides encode the prompt with the folder's CLIP text encoder and return PIL
images.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

PROMPTS = [
    "a red circle to the left of a blue square",
    "a small green star at the top",
    "pink heart, centre, large",
    "a golden triangle below a violet disc",
    "white box, right, small",
]
LOAD = """
import time, torch
t = time.perf_counter()
from genlab.backends import load_backend
load_backend({model!r})
print(time.perf_counter() - t)
"""


def params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def matched_unet(target: int, context_dim: int):
    """A diffusers UNet2DConditionModel of two cross-attention levels, its width chosen
    (in steps of 8) to come closest to ``target`` parameters."""
    from diffusers import UNet2DConditionModel

    def build(w: int):
        return UNet2DConditionModel(
            sample_size=8, in_channels=4, out_channels=4, block_out_channels=(w, 2 * w),
            layers_per_block=1, down_block_types=("CrossAttnDownBlock2D",) * 2,
            up_block_types=("CrossAttnUpBlock2D",) * 2, cross_attention_dim=context_dim,
            attention_head_dim=8, norm_num_groups=8,
        )  # fmt: skip

    return min((build(w) for w in range(32, 129, 8)), key=lambda m: abs(params(m) - target))


def matched_vae(target: int):
    from diffusers import AutoencoderKL

    def build(w: int):
        return AutoencoderKL(
            in_channels=3, out_channels=3, block_out_channels=(w, 2 * w, 2 * w),
            down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
            latent_channels=4, layers_per_block=1, norm_num_groups=8,
        )  # fmt: skip

    return min((build(w) for w in range(8, 65, 8)), key=lambda m: abs(params(m) - target))


def write_folder(folder: Path, unet, vae, scheduler) -> Path:
    """A diffusers Stable Diffusion folder holding ``unet`` and ``vae`` (as given) and a
    small random CLIP text encoder of the U-Net's context width."""
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel

    # the character tokenizer the tests' tiny pipelines use (tests/support/tiny_sd.py)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from support.tiny_sd import _tokenizer

    tokenizer, start, end, size = _tokenizer(folder)
    width = unet.config.cross_attention_dim
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=size, hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=start,
        eos_token_id=end, pad_token_id=end,
    ))  # fmt: skip
    StableDiffusionPipeline(
        vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ).save_pretrained(folder, safe_serialization=True)  # fmt: skip
    return folder


def alternate(sides: dict, images: int) -> dict[str, list[float]]:
    """Seconds per image of each side, after one warm-up image each, the sides taking
    turns image by image so both see the same machine load."""
    for side in sides.values():
        side(0)
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(images):
        for name, side in sides.items():
            t = time.perf_counter()
            side(i)
            times[name].append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--images", type=int, default=10, help="images per side (default 10)")
    ap.add_argument("--loads", type=int, default=3, help="fresh-process model loads (default 3)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)

    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    from genlab.backends import load_backend
    from genlab.generation import GenerationRequest

    loads = [
        float(subprocess.run([sys.executable, "-c", LOAD.format(model=args.model)],
                             capture_output=True, text=True, check=True).stdout.split()[-1])
        for _ in range(args.loads)
    ]  # fmt: skip
    pipe = load_backend(args.model)
    model = pipe.model
    denoiser = model.net.denoiser
    unet = matched_unet(params(denoiser), model.text_encoder_module.dim)
    vae = matched_vae(params(model.net.vae))
    betas = torch.linspace(1e-4, 0.02, 1000)  # genlab's linear schedule
    scheduler = DPMSolverMultistepScheduler(
        num_train_timesteps=1000, trained_betas=betas.numpy(), algorithm_type="dpmsolver++",
        solver_order=2, timestep_spacing="trailing", final_sigmas_type="zero",
    )  # fmt: skip
    sd = StableDiffusionPipeline(
        vae=vae, text_encoder=None, tokenizer=None, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    sd.set_progress_bar_config(disable=True)
    encoder = model.text_encoder_module

    def genlab_image(i: int) -> None:
        pipe(GenerationRequest(PROMPTS[i % len(PROMPTS)], steps=20, cfg_scale=5.0, seed=i))

    def diffusers_image(i: int) -> None:
        emb, _, _ = encoder.encode([PROMPTS[i % len(PROMPTS)], ""])
        sd(
            prompt_embeds=emb[:1], negative_prompt_embeds=emb[1:], num_inference_steps=20,
            guidance_scale=5.0, height=32, width=32, output_type="np",
            generator=torch.Generator().manual_seed(i),
        )  # fmt: skip

    times = alternate({"genlab": genlab_image, "diffusers": diffusers_image}, args.images)
    g, d = statistics.median(times["genlab"]), statistics.median(times["diffusers"])

    # pair 2: the same folder through genlab's Stable Diffusion back end and through diffusers
    tmp = tempfile.TemporaryDirectory()
    # steps_offset is unused by trailing spacing; 1 only quiets diffusers' warning on loading
    same_scheduler = DPMSolverMultistepScheduler.from_config(scheduler.config, steps_offset=1)
    folder = write_folder(Path(tmp.name) / "sd", unet, vae, same_scheduler)
    sd_backend = load_backend(str(folder))
    sd_plain = StableDiffusionPipeline.from_pretrained(
        folder, local_files_only=True, use_safetensors=True, safety_checker=None,
        requires_safety_checker=False,
    )  # fmt: skip
    sd_plain.set_progress_bar_config(disable=True)

    def backend_image(i: int) -> None:
        sd_backend(GenerationRequest(PROMPTS[i % len(PROMPTS)], sampler="dpmpp-2m", steps=20,
                                     cfg_scale=5.0, seed=i, width=32, height=32))  # fmt: skip

    def plain_image(i: int) -> None:
        sd_plain(
            prompt=PROMPTS[i % len(PROMPTS)], num_inference_steps=20, guidance_scale=5.0,
            height=32, width=32, generator=[torch.Generator().manual_seed(i)], output_type="pil",
        )  # fmt: skip

    same = alternate({"genlab": backend_image, "diffusers": plain_image}, args.images)
    gs, ds = statistics.median(same["genlab"]), statistics.median(same["diffusers"])
    tmp.cleanup()

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"parameters: genlab U-Net {params(denoiser) / 1e6:.2f} M, diffusers U-Net "
          f"{params(unet) / 1e6:.2f} M; genlab autoencoder {params(model.net.vae) / 1e6:.2f} M, "
          f"diffusers AutoencoderKL {params(vae) / 1e6:.2f} M")  # fmt: skip
    print(f"model load (fresh process, MiniLM included): median {statistics.median(loads):.2f} s "
          f"of {', '.join(f'{x:.2f}' for x in loads)}")  # fmt: skip
    print("1. different networks of about the same size (architecture + pipeline):")
    print(f"   genlab built-in {g:.3f} s/image (median of {args.images}; 20 steps, CFG 5, "
          "text encoding in)")  # fmt: skip
    print(f"   diffusers       {d:.3f} s/image")
    print(f"   ratio (genlab images/s over diffusers'): {d / g:.2f}x")
    print("2. the same network (diffusers' UNet2DConditionModel and AutoencoderKL above), "
          "pipeline overhead alone:")  # fmt: skip
    print(f"   genlab's Stable Diffusion back end {gs:.3f} s/image (median of {args.images})")
    print(f"   diffusers' pipeline                {ds:.3f} s/image")
    print(f"   ratio (genlab images/s over diffusers'): {ds / gs:.2f}x")


if __name__ == "__main__":
    main()
