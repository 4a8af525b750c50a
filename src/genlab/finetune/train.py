"""``genlab finetune lora``: a folder of the user's images (captions in NAME.txt beside each,
or one for all) -> a LoRA run folder, trained by the Trainer on every image."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import GenlabError
from ..training.runconfig import RunConfig


def base_shape(base: str, model_config: str | None = None) -> tuple[int, ...]:
    """The image shape a base model draws, as its back end describes it."""
    from ..backends import SHIPPED, kind, resolve

    if kind(base) == "genlab" and base not in SHIPPED:  # say what a wrong folder holds
        _check_text_to_image(base)
    width, height = resolve(base, model_config).describe().default_size
    return (3, height, width)


def _check_text_to_image(base: str) -> None:
    import yaml

    from ..serialization import CONFIG, model_dir

    path = Path(base)
    if not path.exists():
        return  # resolve says what it accepts
    doc = yaml.safe_load((model_dir(path) / CONFIG).read_text())
    if doc.get("model") != "latent-diffusion":
        raise GenlabError(
            f"LoRA fine-tunes a text-to-image model ('builtin', a latent-diffusion run or a "
            f"Stable Diffusion folder); {base} holds a {doc.get('model')} model."
        )


def lora_config(
    base: str, data: str, *, caption: str = "", rank: int = 4, alpha: float | None = None,
    train: dict[str, Any] | None = None, model_config: str | None = None, repeats: int = 1,
    settings: dict[str, Any] | None = None, buckets: dict[str, Any] | None = None,
) -> RunConfig:  # fmt: skip
    """The run config of a LoRA on ``base`` from ``data``: an image folder, or a captioned
    data set spec (such as ``shapes``); ``model_config``: a single-file base's diffusers
    folder; ``repeats``: times each image of a folder is seen an epoch; ``settings``: the
    LoRA's training options (``flip``, ``min_snr_gamma``, ``noise_offset``,
    ``gradient_checkpointing``, ``validation_prompts``, ``train_text_encoder``,
    ``unet_lr``, ``text_encoder_lr``; see LoRA.config_schema);
    ``buckets``: aspect-ratio bucketing of the folder (see ``bucket_options``). Typed and
    checked (``train`` values too) before anything is trained; the config still reads as
    the dict it used to be (``cfg["train"]["steps"]``)."""
    from ..data.images import METADATA, image_files
    from .model import LoRA

    alpha = float(rank if alpha is None else alpha)
    if not math.isfinite(alpha) or alpha <= 0:
        raise GenlabError(f"--alpha must be a positive number, got {alpha}.")
    from ..backends import SHIPPED

    if base not in SHIPPED:  # a shipped model's name stays a name
        base = str(Path(base).resolve())
    if model_config is not None:
        model_config = str(Path(model_config).resolve())
    shape = base_shape(base, model_config)
    train = {k: v for k, v in (train or {}).items() if v is not None}
    if Path(data).is_dir():
        spec, options = f"folder:{Path(data).resolve()}", {
            "size": shape[1], "channels": shape[0], "captioned": True, "caption": caption,
        }  # fmt: skip
        if repeats != 1:
            options["repeats"] = repeats
        options |= bucket_options(base, buckets)
        if "batch_size" not in train:  # a handful of images: each step sees them all
            files = [f for f in image_files(Path(data))
                     if f.suffix.lower() != ".txt" and f.name != METADATA]  # fmt: skip
            n = len(files) * max(1, int(repeats))
            train["batch_size"] = max(1, min(LoRA.train_defaults["batch_size"], n))
    elif caption or repeats != 1 or bucket_options(base, buckets):
        raise GenlabError(
            "--caption, --repeats and --bucket apply to an image folder given as --data."
        )
    else:
        spec, options = data, {}
    extra = {"base_config": model_config} if model_config else {}
    extra |= {k: v for k, v in (settings or {}).items() if v is not None}
    return RunConfig("lora", spec, options, {"base": base, "rank": rank, "alpha": alpha} | extra,
                     train)  # fmt: skip


def bucket_options(base: str, buckets: dict[str, Any] | None) -> dict[str, Any]:
    """The image folder's settings of aspect-ratio bucketing (kohya's ``--enable_bucket``)
    from ``buckets`` (``bucket``, ``min_bucket``, ``max_bucket``, ``bucket_step``,
    ``bucket_no_upscale``; None values left at the folder's defaults): none unless
    ``bucket`` is on, and only for a Stable Diffusion or SDXL base."""
    given = {k: v for k, v in (buckets or {}).items() if v is not None and v is not False}
    if not given.pop("bucket", False):
        if given:
            raise GenlabError(f"--{next(iter(given)).replace('_', '-')} needs --bucket.")
        return {}
    from ..backends import kind

    if kind(base) != "stable-diffusion":
        raise GenlabError(
            "--bucket applies to a Stable Diffusion or SDXL base (the built-in model trains "
            "on squares)."
        )
    return {"bucket": True, **given}


def finetune(
    cfg: dict[str, Any] | RunConfig, out: str | Path, resume: str | None = None, on_step=None
) -> dict[str, Any]:
    """Train the LoRA of ``cfg`` (see lora_config) on all its images into ``out``."""
    from ..training.runfolder import train_run

    return train_run(cfg, out, resume=resume, held_out=0.0, on_step=on_step)
