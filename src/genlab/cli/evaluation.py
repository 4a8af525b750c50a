"""eval-t2i (prompt adherence of a text-to-image model) and compare (every family measured on
the same data, or the latent-variable models)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (
    command,
    deepcache_flags,
    lora_flags,
    loras,
    output_folder,
    sampler_flags,
    seed,
    tome_flag,
)

EXAMPLES = {
    "eval-t2i": """examples:
  genlab eval-t2i builtin                      # a fresh prompt set (its seed printed)
  genlab eval-t2i builtin --seed 12345         # the set of seed 12345 again
  genlab eval-t2i builtin-fast                 # the 4-step model, at its own settings
  genlab eval-t2i builtin --seed 7 --deepcache 3   # the adherence cost of step caching
  genlab eval-t2i runs/txt2img-wide --heldout wide   # a model of recipe txt2img-shapes-wide
  genlab eval-t2i builtin --seed 12345 --tome 0.5  # the cost of lossy token merging
  genlab eval-t2i runs/txt2img --n 200 --out report/t2i""",
    "compare": """examples:
  genlab compare                          # 8 Gaussians, 3 seeds, each recipe's steps
  genlab compare --steps 500 --seeds 2 --out report/quick
  genlab compare --data moons --families gmm,realnvp,ddpm --no-lr-sweep
  genlab compare --data digits --shipped --seeds 1 --n 500   # the shipped models, minutes
  genlab compare --data digits --out report/digits           # 3 seeds of every recipe, hours""",
}


def cmd_eval_t2i(args: argparse.Namespace) -> None:

    fresh = not Path(args.out).exists()
    output_folder(args.out)
    try:
        _eval_t2i(args)
    except BaseException:
        if fresh and Path(args.out).is_dir() and not any(Path(args.out).iterdir()):
            Path(args.out).rmdir()  # a refused evaluation leaves no empty folder behind
        raise


def _eval_t2i(args: argparse.Namespace) -> None:
    from ..evaluation.text_to_image import evaluate_text_to_image
    from ..generation.request import parse_sampler

    given = (("steps", args.steps), ("cfg", args.cfg), ("deepcache", args.deepcache),
             ("deepcache_branch", args.deepcache_branch))  # fmt: skip
    settings = {k: v for k, v in given if v is not None}
    if args.sampler is not None or args.schedule is not None:  # else: the model's own
        sampler, schedule = parse_sampler(args.sampler or "dpmpp-2m", args.schedule)
        settings["sampler"] = sampler if schedule == "default" else f"{sampler}-{schedule}"
    report = evaluate_text_to_image(
        args.model, n=args.n, out=args.out, seed=args.seed, heldout=args.heldout,
        loras=loras(args.lora, args.lora_scale), tome=args.tome or 0.0, **settings,
    )  # fmt: skip
    if report["warning"]:
        print(f"warning: {report['warning']}", file=sys.stderr)
    how = "drawn at random" if report["seed_drawn"] else "given"
    print(f"prompt set: seed {report['seed']} ({how}; --seed {report['seed']} draws it again), "
          f"held-out set {args.heldout}")  # fmt: skip
    for split in ("heldout", "seen"):
        acc, asked, band = (report[split][k] for k in ("accuracy", "asked", "interval"))
        shown = ", ".join(
            f"{k} {v:.1%} [{band[k][0]:.1%}, {band[k][1]:.1%}] of {asked[k]}"
            for k, v in acc.items()
            if v is not None
        )
        print(f"{split:<8} {shown}  (95% Wilson intervals; of: prompts that asked)")
        ceiling = report[split]["detector_on_reconstructions"]
        print(
            f"{'':<8} the autoencoder's reconstructions of the real scenes: {ceiling:.1%} overall"
        )
    print(f"FD (8x8 pixels) {report['fd_pixels']:.3g}; report in {args.out}")


def families(text: str | None) -> tuple[str, ...] | None:
    """--families as a tuple (None when not given); an empty name is refused, not read as all."""
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        from ..errors import GenlabError

        raise GenlabError(f"--families takes comma-separated names such as gmm,vae, got {text!r}.")
    return names


def cmd_compare(args: argparse.Namespace) -> None:
    from tqdm import tqdm  # on stderr (tqdm.auto also imports its notebook parts)

    from ..evaluation.compare import compare, families_for
    from ..evaluation.compare_report import table, write_report
    from ..runs import machine

    output_folder(args.out)
    if args.latent:
        return compare_latent(args)
    chosen = families(args.families)
    if args.seeds is None:
        args.seeds = 1 if args.shipped else 3
    total = sum(1 for f in families_for(args.data) if chosen is None or f.model in chosen)
    with tqdm(total=total * args.seeds, desc="compare", leave=False) as bar:

        def progress(what: str) -> None:
            bar.set_postfix_str(what)
            if "learning rate" not in what:
                bar.update(1)

        report = compare(args.data, args.seeds, args.steps, args.n, chosen,
                         not args.no_lr_sweep, progress, args.shipped, args.nll_n)  # fmt: skip
    path = write_report(report, args.out, "genlab " + " ".join(sys.argv[1:]), machine())
    rows = table(report)
    shown = [rows[0].index(k) for k in ("family", "held-out bits/dim", "held-out NLL (nats)",
                                        "FD", "SWD", "copy share", "stability", "fidelity",
                                        "samples/s") if k in rows[0]]  # fmt: skip
    for row in rows:
        print("  ".join(row[i] for i in shown))
    print(f"report written to {path} (and compare.html, compare.json)")


def compare_latent(args: argparse.Namespace) -> None:
    from tqdm import tqdm  # on stderr (tqdm.auto also imports its notebook parts)

    from ..errors import GenlabError
    from ..evaluation.latent import MODELS, compare_latent
    from ..evaluation.latent_report import write_report
    from ..runs import machine

    given = [f for f, v in (("--data", args.data != "8gaussians"),
                            ("--seeds", args.seeds is not None),
                            ("--steps", args.steps is not None), ("--n", args.n != 2000),
                            ("--no-lr-sweep", args.no_lr_sweep), ("--shipped", args.shipped),
                            ("--nll-n", args.nll_n is not None)) if v]  # fmt: skip
    if given:
        raise GenlabError(f"{given[0]} does not apply to --latent, which fits every model on "
                          "digits and a synthetic set with each model's own settings.")  # fmt: skip
    models = families(args.families) or MODELS
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise GenlabError(f"Unknown latent model '{unknown[0]}'; known: {', '.join(MODELS)}.")
    if not 1 <= args.latent_dim <= 8:
        raise GenlabError(f"--latent-dim must lie in 1..8, got {args.latent_dim}.")
    with tqdm(desc="compare --latent", leave=False) as bar:

        def progress(what: str) -> None:
            bar.set_postfix_str(what)
            bar.update(1)

        results = compare_latent(args.latent_dim, models, progress=progress)
    path = write_report(results, args.out, "genlab " + " ".join(sys.argv[1:]), machine())
    for note in results.get("skipped", []):
        print(note)
    print(f"report written to {path} (and latent.html, latent.json, latent_*.png)")


def add(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "eval-t2i", cmd_eval_t2i, "prompt adherence and FD of a text-to-image model",
                EXAMPLES["eval-t2i"])  # fmt: skip
    p.add_argument("model", help="'builtin', 'builtin-fast' or a latent-diffusion run folder")
    p.add_argument("--n", type=int, default=200, help="prompts per split (default 200)")
    p.add_argument("--seed", type=seed, default=None,
                   help="the prompt set's seed (default: drawn fresh, recorded)")  # fmt: skip
    p.add_argument("--out", default="report/t2i", help="folder for eval-t2i.json and the grids")
    p.add_argument("--heldout", default="default",
                   help="the shapes data's held-out set: default (4 colour-shape pairs, 3 "
                   "relations) or wide (10 pairs, 8 relations, 3 placements; recipe "
                   "txt2img-shapes-wide)")  # fmt: skip
    sampler_flags(p, default=None)  # None: the model's own (dpmpp-2m; builtin-fast: lcm)
    p.add_argument("--steps", type=int, help="sampling steps (default 20; builtin-fast: 4)")
    p.add_argument("--cfg", type=float,
                   help="classifier-free guidance scale (default 5; builtin-fast: 1)")  # fmt: skip
    deepcache_flags(p)
    tome_flag(p)
    lora_flags(p)

    p = command(sub, "compare", cmd_compare,
                "train every family on the same data and measure them",
                EXAMPLES["compare"])  # fmt: skip
    p.add_argument("--data", default="8gaussians",
                   help="digits or a 2-D data set (default 8gaussians)")  # fmt: skip
    p.add_argument("--seeds", type=int, help="seeds per family (default 3; --shipped: 1)")
    p.add_argument("--shipped", action="store_true",
                   help="digits: measure the models shipped in genlab instead of training "
                   "(one seed; the mixture is fitted)")  # fmt: skip
    p.add_argument("--nll-n", type=int, help="score at most this many held-out images")
    p.add_argument("--steps", type=int, help="training steps for every family (default: recipe)")
    p.add_argument("--n", type=int, default=2000, help="samples per measurement")
    p.add_argument("--families", help="comma-separated: gmm,vae,hvae,gan,realnvp,ebm,ddpm")
    p.add_argument("--no-lr-sweep", action="store_true", help="skip the learning-rate sweep")
    p.add_argument("--out", default="report", help="folder for compare.md/.html/.json")
    p.add_argument(
        "--latent",
        action="store_true",
        help="compare latent-variable models instead (PCA, PPCA, linear AE and VAE, "
        "AE, VAE, GPLVM) on digits and a synthetic set",
    )
    p.add_argument("--latent-dim", type=int, default=2, help="--latent: the latent size")
