"""train (and resume) a neural model or a recipe with the Trainer."""

from __future__ import annotations

import argparse

from .common import command, seed

EXAMPLES = """examples:
  genlab train vae --data digits --out runs/vae           # uses the recipe vae-digits
  genlab train vae-moons --out runs/vae-moons --steps 1000
  genlab train my-recipe.yaml --out runs/mine --set lr=3e-4 --set model.latent_dim=16
  genlab train vae --data digits --out runs/vae --steps 6000 --resume latest
  genlab train noisy-classifier --data digits --out runs/clf  # for classifier guidance
  genlab train ddpm --data digits --out runs/ddpm --batch-size 64 --grad-accum 2
  torchrun --nproc_per_node 2 -m genlab.cli train vae --data digits --out runs/ddp
  accelerate launch --multi_gpu --num_processes 4 -m genlab.cli train ddpm --data digits \\
      --out runs/ddpm --set mixed_precision=bf16
  torchrun --nproc_per_node 2 -m genlab.cli train ddpm --data digits --out runs/fsdp --fsdp"""


def cmd_train(args: argparse.Namespace) -> None:
    from pathlib import Path

    from ..runlock import prepare_run_folder
    from ..training.runfolder import resolve, saved_config, train_run

    prepare_run_folder(args.out)  # before the saved config is read
    base = None
    if args.resume and (Path(args.out) / "config.yaml").is_file():
        base = saved_config(args.out)
    flags = {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "grad_accum": args.grad_accum,
        "fsdp": True if args.fsdp else None,
    }
    cfg = resolve(args.target, args.data, sets=args.set, flags=flags, base=base)
    summary = train_run(cfg, args.out, resume=args.resume, overwrite=args.overwrite)
    if summary["rank"] != 0:
        return
    losses = ", ".join(f"{k} {v:.4g}" for k, v in summary.items() if k.endswith("loss"))
    print(
        f"done: {summary['steps']} steps in {summary['seconds']:.1f} s, "
        f"{summary['samples_per_s']:.0f} samples/s; final {losses}"
    )
    print(f"run written to {args.out}")


def add(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "train", cmd_train, "train a neural model (or recipe) with the Trainer",
                EXAMPLES)  # fmt: skip
    p.add_argument("target", nargs="?", help="model name (see genlab models) or RECIPE.yaml")
    p.add_argument("--data", help="dataset NAME or NAME:PATH")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--steps", type=int, help="total optimizer steps of the run")
    p.add_argument("--batch-size", type=int, help="global batch size of one forward pass")
    p.add_argument(
        "--grad-accum",
        type=int,
        help="forward passes per optimizer step (effective batch = batch size x this)",
    )
    p.add_argument(
        "--fsdp",
        action="store_true",
        help="shard weights, gradients and optimizer state over the processes (diffusion "
        "models; launch with torchrun or accelerate)",
    )
    p.add_argument("--seed", type=seed)
    p.add_argument("--resume", help="'latest' or a checkpoint folder")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (default: refuse it)")  # fmt: skip
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a training setting (lr=3e-4), model.KEY or data.KEY",
    )
