"""``genlab lora export RUN --format kohya|diffusers --out FILE.safetensors``: a Stable
Diffusion LoRA trained by genlab as one file the tools people already use read.

- kohya: ``lora_unet_PATH.lora_down.weight`` / ``.lora_up.weight`` / ``.alpha``, PATH the
  U-Net module's path in diffusers' names with ``_`` for ``.`` (as kohya's sd-scripts
  writes SD 1.x LoRAs and stable-diffusion-webui, Forge and ComfyUI read them); a trained
  text encoder's ``lora_te_text_model_...`` (SD 1.x) or ``lora_te1_`` / ``lora_te2_``
  (SDXL's two), and the
  header's metadata as kohya's trainer writes it (``ss_network_dim``, ``ss_network_alpha``,
  ``ss_base_model_version``, ``ss_resolution``, ``ss_steps``, ``ss_output_name``, the base's
  hash, and ``sshs_model_hash``: webui's hash of the tensors), which those UIs show.
- diffusers: the file ``load_lora_weights`` reads (``unet.`` peft keys, and
  ``text_encoder.`` / ``text_encoder_2.`` ones, alpha / rank folded
  into B, since diffusers takes alpha = rank where a file does not say)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..errors import GenlabError

FORMATS = ("kohya", "diffusers")
#: kohya's names for the bases (``ss_base_model_version``) and modelspec's architectures
KOHYA_VERSIONS = {"sd1": "sd_v1", "sdxl": "sdxl_base_v1-0"}
ARCHITECTURES = {"sd1": "stable-diffusion-v1/lora", "sdxl": "stable-diffusion-xl-v1-base/lora"}


def export_lora(run: str | Path, fmt: str, out: str | Path) -> Path:
    """Write the LoRA of the run (or model) folder ``run`` to ``out`` in ``fmt``; the file is
    written beside and renamed, so an interrupted export leaves no half file."""
    from safetensors.torch import save

    from ..lora.files import read_lora

    if fmt not in FORMATS:
        raise GenlabError(f"Unknown LoRA format '{fmt}'; choose {' or '.join(FORMATS)}.")
    out = Path(out)
    if out.suffix.lower() != ".safetensors":
        raise GenlabError(f"--out {out} must name a .safetensors file.")
    if out.exists() or out.is_symlink():
        raise GenlabError(f"{out} already exists; give a new file name.")
    if not out.parent.is_dir():
        raise GenlabError(f"The folder {out.parent} does not exist.")
    lora = read_lora(run)
    if lora.layout != "genlab":
        raise GenlabError(f"{run} is a LoRA file already; export takes a genlab LoRA run.")
    info = run_info(Path(run))
    if not info["stable_diffusion"]:
        raise GenlabError(
            f"{run} is a LoRA of one of genlab's own models; kohya and diffusers files are "
            "for Stable Diffusion bases."
        )
    if fmt == "kohya":
        from ..lora.formats import to_kohya

        tensors = to_kohya(lora.parts, info["version"])
    else:
        tensors = diffusers_tensors(lora.parts)
    metadata = kohya_metadata(lora, info, out.stem)
    blob = save(tensors, metadata={k: v for k, v in metadata.items() if k.startswith("ss_")})
    metadata |= tensor_hashes(blob)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    try:
        tmp.write_bytes(save(tensors, metadata=metadata))
        os.replace(tmp, out)
    except OSError as e:
        raise GenlabError(f"Could not write {out} ({e.strerror or e}).") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out


def diffusers_tensors(parts: dict) -> dict[str, Any]:
    """The layers as diffusers' ``load_lora_weights`` reads them: ``unet.PATH`` /
    ``text_encoder.PATH`` / ``text_encoder_2.PATH`` peft keys (CLIP's paths with their
    ``text_model`` level, which diffusers drops where the installed transformers has none),
    alpha / rank folded into B."""
    from ..lora.adapters import text_model_path

    tensors = {}
    for part, layers in parts.items():
        for path, (a, b, mult) in layers.items():
            path = path if part == "unet" else text_model_path(path)
            tensors[f"{part}.{path}.lora_A.weight"] = a.contiguous()
            tensors[f"{part}.{path}.lora_B.weight"] = (b * mult).contiguous()
    return tensors


def run_info(run: Path) -> dict[str, Any]:
    """What the header says of a run: its base (name, hash, version), size, steps and
    learning rate, read from the run's and the model's config."""
    import yaml

    from ..backends import kind, resolve
    from ..serialization import CONFIG, model_dir

    model = yaml.safe_load((model_dir(run) / CONFIG).read_text())["config"]
    base = str(model.get("base", ""))
    stable_diffusion = kind(base) == "stable-diffusion"
    version = resolve(base, model.get("base_config")).version if stable_diffusion else ""
    train: dict[str, Any] = {}
    data_options: dict[str, Any] = {}
    doc_data = ""
    run_config = run / CONFIG
    if run_config.is_file() and run_config.resolve() != (model_dir(run) / CONFIG).resolve():
        doc = yaml.safe_load(run_config.read_text()) or {}
        train = doc.get("train") or {}
        data_options = doc.get("data_options") or {}
        doc_data = str(doc.get("data") or "")
    steps = train.get("steps")
    summary = run / "summary.json"
    if summary.is_file():
        try:
            steps = json.loads(summary.read_text()).get("step", steps)
        except ValueError:
            pass
    shape = model.get("data_shape") or [3, 0, 0]
    return {
        "stable_diffusion": stable_diffusion,
        "version": version,
        "base": Path(base).stem if base else "",
        "base_sha256": str(model.get("base_sha256", "")),
        "resolution": (int(shape[-1]), int(shape[-2])),
        "steps": steps,
        "lr": train.get("lr"),
        "unet_lr": model.get("unet_lr"),
        "text_encoder_lr": model.get("text_encoder_lr"),
        "text_encoder": bool(model.get("train_text_encoder", False)),
        "options": training_options(model, train, data_options, doc_data),
    }


def training_options(model: dict, train: dict, data_options: dict, data: str) -> dict[str, str]:
    """The training options kohya's header has a field for, as its trainer writes them
    (``ss_dataset_dirs``: the image folder's own name, never its path, and its repeats)."""
    import json

    scheduler = train.get("lr_scheduler", "default")
    out = {
        "ss_flip_aug": str(bool(model.get("flip", False))),
        "ss_min_snr_gamma": str(model.get("min_snr_gamma") or None),  # kohya writes None
        "ss_noise_offset": str(model.get("noise_offset") or None),
        "ss_gradient_checkpointing": str(bool(model.get("gradient_checkpointing", False))),
        "ss_lr_warmup_steps": str(train.get("warmup_steps", 0)),
    }
    if data.startswith("folder:"):
        name = Path(data.partition(":")[2]).name
        out["ss_dataset_dirs"] = json.dumps({name: {"n_repeats": data_options.get("repeats", 1)}})
        out |= bucket_fields(data_options)
    if scheduler != "default":  # genlab's own schedule has no kohya name
        out["ss_lr_scheduler"] = scheduler
        if scheduler == "cosine_with_restarts":
            out["ss_lr_scheduler_num_cycles"] = str(train.get("lr_cycles", 1))
    return out


def kohya_metadata(lora: Any, info: dict[str, Any], name: str) -> dict[str, str]:
    """The header kohya's ``train_network.py`` writes (every value a string), the parts of it
    genlab knows."""
    from datetime import datetime, timezone

    steps = "" if info["steps"] is None else str(info["steps"])
    width, height = info["resolution"]
    meta = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(lora.rank),
        "ss_network_alpha": f"{lora.alpha:g}",
        "ss_base_model_version": KOHYA_VERSIONS.get(info["version"], info["version"]),
        "ss_v2": "False",
        "ss_resolution": f"({width}, {height})",
        "ss_steps": steps,
        "ss_max_train_steps": steps,
        "ss_output_name": name,
        "ss_sd_model_name": info["base"],
        "ss_new_sd_model_hash": info["base_sha256"],
        "ss_network_train_unet_only": str(not info.get("text_encoder", False)),
        "ss_training_comment": "trained by genlab finetune lora",
        "ss_training_finished_at": str(datetime.now(timezone.utc).timestamp()),
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": ARCHITECTURES.get(info["version"], ""),
        "modelspec.implementation": "diffusers",
        "modelspec.title": name,
        "modelspec.resolution": f"{width}x{height}",
    }
    meta |= learning_rates(info)
    meta |= info.get("options", {})
    return meta


def learning_rates(info: dict[str, Any]) -> dict[str, str]:
    """kohya's ``ss_learning_rate``, ``ss_unet_lr`` and ``ss_text_encoder_lr``: each part's
    own rate, or the run's ``--lr`` where it has none; "None" for the text encoder where it
    did not train (as kohya writes an unset rate). A run's default --lr (not in its
    config) is the LoRA's default."""
    from .model import LoRA

    lr = info.get("lr")
    lr = LoRA.train_defaults["lr"] if lr is None else lr
    unet = info.get("unet_lr")
    text = info.get("text_encoder_lr")
    return {
        "ss_learning_rate": str(lr),
        "ss_unet_lr": str(lr if unet is None else unet),
        "ss_text_encoder_lr": str(lr if text is None else text)
        if info.get("text_encoder")
        else "None",
    }


def tensor_hashes(blob: bytes) -> dict[str, str]:
    """kohya's ``sshs_model_hash`` (sha256 of the tensors' bytes, after the header: webui's
    LoRA hash) and ``sshs_legacy_hash`` (sha256 of the 64 kB at offset 1 MB, 8 digits)."""
    n = int.from_bytes(blob[:8], "little")
    legacy = hashlib.sha256(blob[0x100000:0x110000]).hexdigest()[:8]
    tensors = hashlib.sha256(blob[8 + n :]).hexdigest()
    return {"sshs_model_hash": tensors, "sshs_legacy_hash": legacy}


def bucket_fields(data_options: dict) -> dict[str, str]:
    """kohya's header fields of aspect-ratio bucketing: ``ss_enable_bucket``, and with it on
    the resolved smallest and largest side and ``ss_bucket_no_upscale``."""
    if not data_options.get("bucket"):
        return {"ss_enable_bucket": "False"}
    from ..data.buckets import Buckets

    buckets = Buckets(int(data_options.get("size", 32)), int(data_options.get("min_bucket", 0)),
                      int(data_options.get("max_bucket", 0)),
                      int(data_options.get("bucket_step", 64)))  # fmt: skip
    return {
        "ss_enable_bucket": "True",
        "ss_min_bucket_reso": str(buckets.lo),
        "ss_max_bucket_reso": str(buckets.hi),
        "ss_bucket_no_upscale": str(bool(data_options.get("bucket_no_upscale", False))),
    }
