"""fit, sample, eval, prob, and the lists (models, datasets): the commands of run folders."""

from __future__ import annotations

import argparse
import sys

from .common import RUN_HELP, command, seed

EXAMPLES = {
    "fit": """examples:
  genlab fit normal --data heights --out runs/heights
  genlab fit gmm --data faithful --components 2 --out runs/faithful
  genlab fit gmm --data csv:my.csv --components 3 --covariance-type diag --out runs/mine""",
    "sample": """examples:
  genlab sample runs/heights --n 1000 --out heights.csv
  genlab sample runs/faithful --n 500 --seed 0 --out faithful.png
  genlab sample ddpm-digits --steps 20 --label 3 --out g.png   # a shipped model, by name
  genlab sample runs/ddpm --sampler dpmpp-2m --steps 20 --cfg 3 --label 7 --out grid.png
  genlab sample runs/ddpm --cfg 0 --classifier runs/clf --cg-scale 4 --label 7 --out g.png
  genlab sample runs/ddpm --sampler ddim --option eta=0.5 --option spacing=karras --out g.png
  genlab sample runs/vae --option noise=true --out noisy.png""",
    "eval": """examples:
  genlab eval runs/faithful                 # the held-out split of the run's data
  genlab eval runs/heights --data heights   # any dataset
  genlab eval vae-digits --n 500            # a shipped model, by name
  genlab eval runs/vae --metrics nll,fd,kid,pr --n 1000
  genlab eval runs/vae --metrics fid --inception pt_inception-2015-12-05.safetensors""",
    "prob": """examples:
  genlab prob runs/heights "x <= 160"
  genlab prob runs/heights "x > 180"
  genlab prob runs/heights "150 < x <= 170\"""",
    "models": "example:\n  genlab models",
    "datasets": "example:\n  genlab datasets",
}


def fit_options(args: argparse.Namespace) -> dict:
    """The estimator's options from the gmm flags (which no other model takes)."""
    if args.model != "gmm":
        extra = [
            flag
            for flag, value in (
                ("--components", args.components),
                ("--covariance-type", args.covariance_type),
            )
            if value is not None
        ]
        if extra:
            from ..errors import GenlabError

            raise GenlabError(f"{', '.join(extra)} applies to gmm only, not {args.model}.")
        return {}
    return {
        "n_components": 1 if args.components is None else args.components,
        "covariance_type": args.covariance_type or "full",
        "max_iter": args.max_iter,
        "tol": args.tol,
        "n_init": args.n_init,
        "init_params": args.init,
        "seed": args.seed,
    }


def cmd_fit(args: argparse.Namespace) -> None:
    from ..runs import fit_run

    metrics = fit_run(
        args.model,
        args.data,
        args.out,
        options=fit_options(args),
        test_fraction=args.test_fraction,
        argv=sys.argv,
        overwrite=args.overwrite,
    )
    line = f"fitted {args.model} on {args.data}: "
    line += f"train avg log-lik {metrics['train_avg_loglik']:.4f}"
    if "test_avg_loglik" in metrics:
        line += f", held-out {metrics['test_avg_loglik']:.4f}"
    if "n_iter" in metrics:
        line += f", {metrics['n_iter']} EM iterations"
    print(line)
    print(f"run written to {args.out}")


def cmd_sample(args: argparse.Namespace) -> None:
    from ..errors import GenlabError
    from ..runs import sample_run

    options = {
        k: v
        for k, v in {
            "sampler": args.sampler,
            "steps": args.steps,
            "cfg": args.cfg,
            "label": args.label,
            "classifier": args.classifier,
            "cg_scale": args.cg_scale,
            "gif": args.gif,
        }.items()
        if v is not None
    }
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            raise GenlabError(f"--option takes KEY=VALUE, got '{item}'.")
        options[key.replace("-", "_")] = value
    path = sample_run(args.run_dir, args.n, args.out, seed=args.seed, **options)
    print(f"{args.n} samples written to {path}")


def cmd_eval(args: argparse.Namespace) -> None:
    from ..evaluation.evaluate import evaluate_folder

    names = tuple(m.strip() for m in args.metrics.split(",")) if args.metrics else None
    result = evaluate_folder(args.run_dir, args.data, names, n=args.n, inception=args.inception)
    width = max(len(k) for k in result)
    for key, value in result.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")


def cmd_prob(args: argparse.Namespace) -> None:
    from ..errors import GenlabError
    from ..runs import model_path, run_folder
    from ..serialization import load

    model = load(model_path(run_folder(args.run_dir)))
    if not hasattr(model, "prob"):
        raise GenlabError("genlab prob answers for 1-D models (normal, or gmm on 1-D data).")
    print(f"P({args.event}) = {model.prob(args.event):.6f}")


def cmd_models(args: argparse.Namespace) -> None:
    from .. import assets
    from ..registry import MODELS
    from ..training.runfolder import recipe_names

    for name, e in MODELS.items():
        print(f"{name:<17} {e.kind:<10} {e.description}")
    print("\nrecipes (genlab train RECIPE): " + ", ".join(recipe_names()))
    print(
        "\nshipped (genlab sample / eval NAME; builtin is txt2img-shapes, builtin-fast "
        "txt2img-shapes-fast):"
    )
    for name in assets.names():
        what = assets.card(name).get("what", "").split(";")[0]
        print(f"  {name:<24} {what}")


def cmd_datasets(args: argparse.Namespace) -> None:
    from ..data import DATASETS

    for name, (_, description) in DATASETS.items():
        print(f"{name:<14} {description}")


def add(sub: argparse._SubParsersAction) -> None:
    from ..registry import names

    def new(name, func, help):
        return command(sub, name, func, help, EXAMPLES[name])

    p = new("fit", cmd_fit, "fit a model in closed form (normal, mvn) or by EM (gmm)")
    p.add_argument("model", choices=names("classical"))
    p.add_argument("--data", required=True, help="dataset NAME or NAME:PATH (see genlab datasets)")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (default: refuse it)")  # fmt: skip
    p.add_argument("--components", type=int, help="gmm: number of components K")
    p.add_argument("--covariance-type", choices=["full", "tied", "diag", "spherical"])
    p.add_argument("--max-iter", type=int, default=100, help="gmm: EM iterations (default 100)")
    p.add_argument("--tol", type=float, default=1e-3, help="gmm: convergence tolerance")
    p.add_argument("--n-init", type=int, default=1, help="gmm: restarts, best kept")
    p.add_argument(
        "--init", default="kmeans", choices=["kmeans", "k-means++", "random", "random_from_data"]
    )
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="share held out for evaluation (0: fit on all data; default 0.2)",
    )

    p = new("sample", cmd_sample, "draw samples from a fitted or trained model")
    p.add_argument("run_dir", help=RUN_HELP)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--out", required=True, help=".csv, .npy or .png")
    p.add_argument("--seed", type=seed)
    p.add_argument("--sampler", help="diffusion: ddpm, ddim, euler, heun, dpmpp-2m")
    p.add_argument("--steps", type=int, help="diffusion: sampling steps (default 20)")
    p.add_argument(
        "--cfg", type=float, help="diffusion: classifier-free guidance scale (0: unconditional)"
    )
    p.add_argument("--label", type=int, help="class-conditional models: the class to draw")
    p.add_argument("--classifier", help="diffusion: a noise-aware classifier run (or "
                   "noisy-classifier-digits), to guide by")  # fmt: skip
    p.add_argument("--cg-scale", type=float, help="diffusion: classifier guidance scale (1)")
    p.add_argument("--gif", help="diffusion: also write an animation of the denoising to this GIF")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other sampling option of the model (spacing=karras, eta=0.5, noise=false ...)",
    )

    p = new("eval", cmd_eval, "held-out average log-likelihood, BIC and AIC; writes eval.json")
    p.add_argument("run_dir", help=RUN_HELP + "; a shipped model's eval.json is not written")
    p.add_argument("--data", help="dataset NAME or NAME:PATH (default: the run's held-out split)")
    p.add_argument("--metrics", help="comma list: nll,fd,kid,pr,fid (images) or nll,swd,mmd (2-D)")
    p.add_argument("--inception", help="FID Inception weights (.safetensors) for --metrics fid")
    p.add_argument("--n", type=int, default=1000, help="generated samples (default 1000)")

    p = new("prob", cmd_prob, "probability of an event under a 1-D model")
    p.add_argument("run_dir")
    p.add_argument("event", help="e.g. 'x <= 160', 'x > 180', '150 < x <= 170'")

    new("models", cmd_models, "list the models, the packaged recipes and the shipped models")
    new("datasets", cmd_datasets, "list the datasets")
