"""finetune lora (train a LoRA on your images), lora fuse (bake one into its base) and lora
export (write it as one .safetensors file in kohya's or diffusers' layout)."""

from __future__ import annotations

import argparse

from ..training.schedules import SCHEDULES
from .common import command, model_flags, seed

EXAMPLES = {
    "finetune": """examples:
  genlab finetune lora --model builtin --data my-images/ --out loras/mine   # NAME.txt captions
  genlab finetune lora --data photos/ --caption "a teal circle" --steps 300 --rank 8 \
      --out loras/teal
  genlab finetune lora --data photos/ --out loras/teal --steps 600 --resume latest
  genlab finetune lora --data photos/ --out loras/teal --flip --repeats 5 \
      --lr-scheduler cosine --lr-warmup-steps 20 --min-snr-gamma 5 --noise-offset 0.05 \
      --validation-prompt "a teal circle" --validation-every 100
  genlab finetune lora --model sd15/ --data photos/ --out loras/wide --bucket \
      --min-bucket 256 --max-bucket 1024 --bucket-step 64          # keep photos' proportions
  genlab finetune lora --model sd15/ --data photos/ --out loras/sd --train-text-encoder \
      --unet-lr 1e-4 --text-encoder-lr 5e-5 --format kohya
  genlab txt2img "a teal circle on the left" --lora loras/teal --lora-scale 0.8 --out t.png""",
    "lora": """examples:
  genlab lora fuse loras/teal --out models/shapes-teal          # the base with the LoRA baked in
  genlab lora fuse loras/teal --scale 0.8 --out models/shapes-teal
  genlab lora export loras/teal --format kohya --out teal.safetensors  # for webui, Forge ...""",
}


def cmd_finetune(args: argparse.Namespace) -> None:
    from pathlib import Path

    from ..errors import GenlabError
    from ..finetune.train import finetune, lora_config
    from ..runfiles import refuse_other_run
    from ..runlock import RunLock, prepare_run_folder
    from ..training.runconfig import RunConfig
    from ..training.runfolder import saved_config

    data, out = Path(args.data).resolve(), Path(args.out).resolve()
    if args.out.strip() and data.is_dir() and out.is_relative_to(data):
        # its samples and plots would be read as training images by the next run on --data
        raise GenlabError(f"--out {args.out} lies inside the image folder --data {args.data}: "
                          "give a run folder outside it.")  # fmt: skip
    prepare_run_folder(args.out)
    if args.resume is None:  # the rule of every command that writes a run (see train_run)
        refuse_other_run(args.out, args.overwrite, "pass --resume latest to continue it, or")
    if args.overwrite:
        if args.resume:
            raise GenlabError("Give --resume or --overwrite, not both.")
        from ..runfiles import clear_run

        with RunLock(args.out):
            clear_run(args.out)
    train = {"steps": args.steps, "lr": args.lr, "seed": args.seed, "batch_size": args.batch_size,
             "lr_scheduler": args.lr_scheduler, "warmup_steps": args.lr_warmup_steps,
             "lr_cycles": args.lr_cycles, "sample_every": args.validation_every}  # fmt: skip
    if args.resume and (Path(args.out) / "config.yaml").is_file():
        # the resume rule: only settings a resumed run may change (steps ...) are taken
        cfg = RunConfig.from_dict(saved_config(args.out), "config.yaml").merge(
            {k: v for k, v in train.items() if v is not None}
        )
    else:
        cfg = lora_config(
            args.model, args.data, caption=args.caption, rank=args.rank, alpha=args.alpha,
            train=train, model_config=args.model_config, repeats=args.repeats,
            settings={
                "flip": args.flip or None, "min_snr_gamma": args.min_snr_gamma,
                "noise_offset": args.noise_offset,
                "gradient_checkpointing": args.gradient_checkpointing or None,
                "validation_prompts": args.validation_prompt,
                "train_text_encoder": args.train_text_encoder or None,
                "unet_lr": args.unet_lr, "text_encoder_lr": args.text_encoder_lr,
            },
            buckets=bucket_flags(args),
        )  # fmt: skip
    summary = finetune(cfg, args.out, resume=args.resume)
    print(f"done: {summary['steps']} steps in {summary['seconds']:.1f} s; "
          f"final loss {summary.get('loss', float('nan')):.4g}")  # fmt: skip
    print(f"LoRA written to {args.out} (use: genlab txt2img PROMPT --lora {args.out})")
    if args.format:
        from ..finetune.export import export_lora

        name = Path(args.out).resolve().name
        out = export_lora(args.out, args.format, Path(args.out) / f"{name}.safetensors")
        print(f"wrote {out} ({args.format} layout)")


def bucket_flags(args: argparse.Namespace) -> dict:
    """The aspect-ratio bucketing flags, as ``lora_config``'s ``buckets``."""
    names = ("bucket", "min_bucket", "max_bucket", "bucket_step", "bucket_no_upscale")
    return {name: getattr(args, name) for name in names}


def cmd_lora(args: argparse.Namespace) -> None:
    from ..errors import GenlabError

    if args.action == "fuse":
        from ..finetune.fuse import fuse_into_copy

        out = fuse_into_copy(args.lora, args.out, scale=args.scale)
        print(f"wrote {out} (use: genlab txt2img PROMPT --model {out})")
        return
    if args.scale != 1.0:
        raise GenlabError("--scale applies to lora fuse; an exported LoRA is scaled when used.")
    from ..finetune.export import export_lora

    out = export_lora(args.lora, args.format, args.out)
    print(f"wrote {out} ({args.format} layout; use: genlab txt2img PROMPT --lora {out})")


def add(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "finetune", cmd_finetune,
                "fine-tune a text-to-image model on your images (LoRA)",
                EXAMPLES["finetune"])  # fmt: skip
    p.add_argument("method", choices=["lora"])
    model_flags(p)
    p.add_argument("--data", required=True, help="image folder (captions: NAME.txt beside)")
    p.add_argument("--out", required=True, help="run folder for the LoRA")
    p.add_argument("--caption", default="", help="caption of images without a NAME.txt")
    p.add_argument("--steps", type=int, help="optimizer steps (default 400)")
    p.add_argument("--rank", type=int, default=4, help="rank r of the adapters (default 4)")
    p.add_argument("--alpha", type=float, help="adapter scale alpha (default: the rank)")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    p.add_argument("--batch-size", type=int, help="images per step (default 16)")
    p.add_argument("--seed", type=seed)
    g = p.add_argument_group("training options (as diffusers' and kohya's LoRA trainers)")
    g.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="times each image is seen an epoch (a kohya N_name folder: N more)",
    )
    g.add_argument("--flip", action="store_true", help="mirror images at random (chance 1/2)")
    g.add_argument(
        "--lr-scheduler",
        choices=SCHEDULES,
        help="learning-rate schedule, as diffusers' get_scheduler (default: genlab's "
        "warmup_steps + decay_steps: constant unless set)",
    )
    g.add_argument("--lr-warmup-steps", type=int, help="linear warm-up steps (default 0)")
    g.add_argument("--lr-cycles", type=int, help="cosine_with_restarts: cosines (default 1)")
    g.add_argument(
        "--min-snr-gamma", type=float, help="min-SNR loss weighting gamma (5 is usual; default off)"
    )
    g.add_argument("--noise-offset", type=float, help="noise offset (0.05-0.1; default 0)")
    g.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="Stable Diffusion: recompute the U-Net's activations (less memory)",
    )
    g.add_argument(
        "--train-text-encoder",
        action="store_true",
        help="Stable Diffusion: adapters on the CLIP text encoder's attention too (SDXL: both)",
    )
    g.add_argument("--unet-lr", type=float, help="the U-Net adapters' learning rate (default --lr)")
    g.add_argument(
        "--text-encoder-lr",
        type=float,
        help="the text-encoder adapters' learning rate (default --lr)",
    )
    g.add_argument(
        "--validation-prompt",
        action="append",
        metavar="PROMPT",
        help="draw this prompt into OUT/samples/validation-STEP-I.png (repeatable)",
    )
    g.add_argument(
        "--validation-every",
        type=int,
        metavar="N",
        help="draw the validation prompts every N steps (default: at the end)",
    )
    b = p.add_argument_group(
        "aspect-ratio buckets (kohya's --enable_bucket): images keep their proportions"
    )
    b.add_argument(
        "--bucket",
        action="store_true",
        help="train each image in the bucket nearest its aspect ratio (sides on a "
        "grid, area at most the base's size squared) instead of its centre square",
    )
    b.add_argument(
        "--min-bucket",
        type=int,
        metavar="PX",
        help="smallest bucket side (default: half the base's size)",
    )
    b.add_argument(
        "--max-bucket",
        type=int,
        metavar="PX",
        help="largest bucket side (default: twice the base's size)",
    )
    b.add_argument(
        "--bucket-step",
        type=int,
        metavar="PX",
        help="bucket sides are multiples of this (default 64)",
    )
    b.add_argument(
        "--bucket-no-upscale",
        action="store_true",
        help="never enlarge an image: each gets a bucket of its own size or less",
    )
    p.add_argument("--resume", choices=["latest"], help="continue the run in --out")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (default: refuse it)")  # fmt: skip
    p.add_argument("--format", choices=["kohya", "diffusers"],
                   help="also write the LoRA as OUT/NAME.safetensors in this layout")  # fmt: skip

    p = command(sub, "lora", cmd_lora,
                "LoRA tools: fuse a LoRA into a copy of its base, or export it as one file",
                EXAMPLES["lora"])  # fmt: skip
    p.add_argument("action", choices=["fuse", "export"])
    p.add_argument("lora", help="a LoRA folder made by genlab finetune lora")
    p.add_argument("--out", required=True,
                   help="fuse: folder for the fused model; export: FILE.safetensors")  # fmt: skip
    p.add_argument("--scale", type=float, default=1.0, help="fuse: the LoRA's strength")
    p.add_argument("--format", choices=["kohya", "diffusers"], default="kohya",
                   help="export: kohya's layout (webui, Forge, ComfyUI) or diffusers'")  # fmt: skip
