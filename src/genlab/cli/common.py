"""The options every command group takes, defined once: the seed type, the subcommand with its
examples, the model spec with --model-config, where Stable Diffusion runs, the sampler and
schedule, and --lora with --lora-scale.

Nothing here imports numpy, torch or any other heavy package at module level: ``genlab --help``
builds every parser."""

from __future__ import annotations

import argparse
from collections.abc import Callable

SEED_MAX = 2**32  # seeds lie in [0, 2^32): what numpy and torch generators take alike

#: --model's help wherever a text-to-image model is named
MODEL_HELP = "'builtin', a latent-diffusion run, a Stable Diffusion folder or .safetensors"
#: a run folder's help wherever one is taken (a shipped model's name works too)
RUN_HELP = "a run folder, or a model shipped in genlab by name (see genlab models)"


def seed(text: str) -> int:
    """argparse type of every --seed: a whole number in [0, 2^32), else one sentence."""
    try:
        value = int(text, 10)
    except ValueError:
        value = None
    if value is None or not 0 <= value < SEED_MAX:
        raise argparse.ArgumentTypeError(
            f"a seed is a whole number from 0 to {SEED_MAX - 1}, got '{text}'"
        )
    return value


def command(
    sub: argparse._SubParsersAction, name: str, func: Callable, help: str, examples: str
) -> argparse.ArgumentParser:
    """A subcommand ``name`` that runs ``func(args)``, its examples shown by --help."""
    p = sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=func)
    return p


def model_flags(p: argparse.ArgumentParser, default: str | None = "builtin") -> None:
    """--model (a text-to-image model spec) and --model-config (a single file's configs)."""
    p.add_argument("--model", default=default, help=MODEL_HELP)
    p.add_argument(
        "--model-config", help="for a single .safetensors file: a diffusers folder of the "
        "same architecture to take configs and tokenizer from",
    )  # fmt: skip


def sampler_flags(p: argparse.ArgumentParser, default: str | None = "dpmpp-2m") -> None:
    """The sampler and the schedule, in genlab's or stable-diffusion-webui's names."""
    p.add_argument("--sampler", default=default,
                   help="ddpm, ddim, euler, euler-a, heun, dpmpp-2m (default), or webui's names "
                   "('DPM++ 2M Karras' sets the schedule too)")  # fmt: skip
    p.add_argument(
        "--schedule",
        default=None,
        help="default, karras, trailing, leading, linspace (webui: Automatic, Karras)",
    )


def placement_flags(p: argparse.ArgumentParser) -> None:
    """Where Stable Diffusion runs (generation.placement.Placement)."""
    p.add_argument("--device", help="Stable Diffusion: cpu (default), cuda, cuda:1, mps")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16", "bf16-mixed"],
                   help="Stable Diffusion: precision (fp16 on GPUs; bf16-mixed: fp32 weights, "
                   "the U-Net in bf16 autocast, for CPUs with native bf16)")  # fmt: skip
    slicing = "Stable Diffusion: attention a slice at a time (less memory)"
    p.add_argument("--attention-slicing", action="store_true", help=slicing)
    offload = "Stable Diffusion on CUDA: each model on the GPU only while it runs"
    p.add_argument("--cpu-offload", action="store_true", help=offload)
    tiling = "Stable Diffusion: decode in tiles (large images in less memory)"
    p.add_argument("--vae-tiling", action="store_true", help=tiling)


def placement(args: argparse.Namespace):
    """The Placement the placement flags ask for."""
    from ..generation.placement import Placement

    return Placement(
        args.device, args.dtype, args.attention_slicing, args.cpu_offload, args.vae_tiling
    )


def lora_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lora", action="append", help="a LoRA folder (repeat for several)")
    p.add_argument(
        "--lora-scale", type=float, action="append",
        help="LoRA strength (default 1; one for all, or one per --lora)",
    )  # fmt: skip


def loras(paths: list[str] | None, scales: list[float] | None) -> tuple:
    """--lora DIR (repeatable) with --lora-scale S: one for all, or one per --lora."""
    from ..errors import GenlabError

    paths, scales = paths or [], scales or [1.0]
    if len(scales) == 1:
        scales = scales * len(paths)
    if len(scales) != len(paths):
        raise GenlabError("Give one --lora-scale for all LoRAs, or one per --lora.")
    return tuple(zip(paths, scales, strict=True))


def output_folder(out: str) -> None:
    """Make a report's folder before any work, or refuse it in one sentence."""
    from ..runfiles import make_folder

    make_folder(out)


def output_file(out: str, flag: str = "--out") -> None:
    """Judge an output file's path before any work (a folder that can be written, a name
    that fits); creates nothing."""
    from ..runfiles import check_file

    check_file(out, flag)


def deepcache_flags(p: argparse.ArgumentParser) -> None:
    """Step caching's two flags (txt2img, img2img, inpaint and eval-t2i)."""
    p.add_argument("--deepcache", type=int, metavar="N", help="LOSSY speed-up, off by default "
                   "(1): step caching (DeepCache), the full U-Net every N steps and only its "
                   "shallow blocks between, reusing the deep features; faster, and the "
                   "picture changes (docs/results.md, 'Lossy speed-ups')")  # fmt: skip
    p.add_argument("--deepcache-branch", type=int, metavar="B", help="with --deepcache: the "
                   "U-Net skip the shallow path runs up to (default 0: the shallowest and "
                   "fastest; larger: slower, closer to the uncached picture)")  # fmt: skip


#: --tome's help, the same on every command that takes it
TOME_HELP = (
    "LOSSY speed-up, off by default: token merging (ToMe) merges this share of the tokens "
    "(0-0.75) before the attention at the latents' resolution and unmerges after; the "
    "image changes (figures in docs/results.md, 'Token merging'); default 0 = off (with "
    "--from-png: the PNG's)"
)


def tome_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tome", type=float, metavar="RATIO", help=TOME_HELP)
