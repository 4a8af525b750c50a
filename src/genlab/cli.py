"""The ``genlab`` command line: parse, call the library, print.

Heavy imports happen inside the subcommands so that ``genlab --help`` is instant.
User errors print one sentence and exit with code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable

EXAMPLES = {
    "fit": """examples:
  genlab fit normal --data heights --out runs/heights
  genlab fit gmm --data faithful --components 2 --out runs/faithful
  genlab fit gmm --data csv:my.csv --components 3 --covariance-type diag --out runs/mine""",
    "train": """examples:
  genlab train vae --data digits --out runs/vae           # uses the recipe vae-digits
  genlab train vae-moons --out runs/vae-moons --steps 1000
  genlab train my-recipe.yaml --out runs/mine --set lr=3e-4 --set model.latent_dim=16
  genlab train vae --data digits --out runs/vae --steps 6000 --resume latest
  genlab train noisy-classifier --data digits --out runs/clf  # for classifier guidance
  genlab train ddpm --data digits --out runs/ddpm --batch-size 64 --grad-accum 2
  torchrun --nproc_per_node 2 -m genlab.cli train vae --data digits --out runs/ddp
  accelerate launch --multi_gpu --num_processes 4 -m genlab.cli train ddpm --data digits \\
      --out runs/ddpm --set mixed_precision=bf16
  torchrun --nproc_per_node 2 -m genlab.cli train ddpm --data digits --out runs/fsdp --fsdp""",
    "sample": """examples:
  genlab sample runs/heights --n 1000 --out heights.csv
  genlab sample runs/faithful --n 500 --seed 0 --out faithful.png
  genlab sample runs/ddpm --sampler dpmpp-2m --steps 20 --cfg 3 --label 7 --out grid.png
  genlab sample runs/ddpm --cfg 0 --classifier runs/clf --cg-scale 4 --label 7 --out g.png
  genlab sample runs/ddpm --sampler ddim --option eta=0.5 --option spacing=karras --out g.png
  genlab sample runs/vae --option noise=true --out noisy.png""",
    "eval": """examples:
  genlab eval runs/faithful                 # the held-out split of the run's data
  genlab eval runs/heights --data heights   # any dataset
  genlab eval runs/vae --metrics nll,fd,kid,pr --n 1000
  genlab eval runs/vae --metrics fid --inception pt_inception-2015-12-05.safetensors""",
    "prob": """examples:
  genlab prob runs/heights "x <= 160"
  genlab prob runs/heights "x > 180"
  genlab prob runs/heights "150 < x <= 170\"""",
    "png-info": "example:\n  genlab png-info out.png",
    "txt2img": """examples:
  genlab txt2img "a red circle to the left of a blue square" --seed 1 --out out.png
  genlab txt2img "green star, top, small" --negative "red" --cfg 7 --steps 30 --out star.png
  genlab txt2img "a pink heart above a white box" --batch 8 --out hearts.png  # + grid
  genlab txt2img "a blue triangle on the right" --model runs/txt2img --sampler euler-a""",
    "img2img": """examples:
  genlab img2img scene.png "a blue circle on the left" --strength 0.6 --out redrawn.png
  genlab img2img out.png "green star, top, small" --strength 0.3 --seed 2 --out near.png""",
    "inpaint": """examples:
  genlab inpaint scene.png mask.png "a yellow heart" --out painted.png
  genlab inpaint scene.png mask.png "a red square" --strength 0.8 --out painted.png""",
    "finetune": """examples:
  genlab finetune lora --model builtin --data my-images/ --out loras/mine   # NAME.txt captions
  genlab finetune lora --data photos/ --caption "a teal circle" --steps 300 --rank 8 \
      --out loras/teal
  genlab finetune lora --data photos/ --out loras/teal --steps 600 --resume latest
  genlab txt2img "a teal circle on the left" --lora loras/teal --lora-scale 0.8 --out t.png""",
    "lora": """examples:
  genlab lora fuse loras/teal --out models/shapes-teal          # the base with the LoRA baked in
  genlab lora fuse loras/teal --scale 0.8 --out models/shapes-teal""",
    "eval-t2i": """examples:
  genlab eval-t2i builtin
  genlab eval-t2i runs/txt2img --n 200 --out report/t2i""",
    "compare": """examples:
  genlab compare                          # 8 Gaussians, 3 seeds, each recipe's steps
  genlab compare --steps 500 --seeds 2 --out report/quick
  genlab compare --data moons --families gmm,realnvp,ddpm --no-lr-sweep
  genlab compare --data digits --shipped --seeds 1 --n 500   # the shipped models, minutes
  genlab compare --data digits --out report/digits           # 3 seeds of every recipe, hours""",
    "models": "example:\n  genlab models",
    "datasets": "example:\n  genlab datasets",
    "demo": "examples:\n  genlab demo\n  genlab demo --out my-report",
    "course": """examples:
  genlab course                               # list the steps
  genlab course 2                             # step 2 -> course/02-maximum-likelihood/index.html
  genlab course 5 --lang ja --out kouza       # the Japanese page
  genlab course 2 --data txt:height.txt       # your own numbers (a plain text file)
  genlab course 7 --elbo-reduction mean       # a variant other texts use
  genlab course --all                         # the whole course as one linked site""",
    "webui": """examples:
  genlab webui                                # http://127.0.0.1:7860, built-in model
  genlab webui --models-dir ~/models --runs-dir runs --out outputs
  genlab webui --port 8000 --listen           # other machines too (with a warning)
  genlab webui --datasets-dir ~/images        # the Train tab may train on folders there
  genlab webui --allowed-hosts box.lan        # answer to that name too (else refused)""",
}


SEED_MAX = 2**32  # seeds lie in [0, 2^32): what numpy and torch generators take alike


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


def _options(args: argparse.Namespace) -> dict:
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
            from .errors import GenlabError

            raise GenlabError(f"{', '.join(extra)} applies to gmm only, not {args.model}.")
        return {}
    opts = {
        "n_components": 1 if args.components is None else args.components,
        "covariance_type": args.covariance_type or "full",
        "max_iter": args.max_iter,
        "tol": args.tol,
        "n_init": args.n_init,
        "init_params": args.init,
        "seed": args.seed,
    }
    return opts


def cmd_fit(args: argparse.Namespace) -> None:
    from .runs import fit_run

    metrics = fit_run(
        args.model,
        args.data,
        args.out,
        options=_options(args),
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


def cmd_train(args: argparse.Namespace) -> None:
    from pathlib import Path

    from .runlock import prepare_run_folder
    from .training.runfolder import resolve, saved_config, train_run

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


def cmd_sample(args: argparse.Namespace) -> None:
    from .errors import GenlabError
    from .runs import sample_run

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
    from .registry import entry
    from .runs import eval_run, read_meta

    if entry(read_meta(args.run_dir)["model"]).kind == "classical" and not args.metrics:
        result = eval_run(args.run_dir, args.data)
    else:
        from .evaluation.evaluate import evaluate_run

        if args.data:
            from .errors import GenlabError

            raise GenlabError("--data applies to closed-form models; trained runs use their own.")
        names = tuple(m.strip() for m in args.metrics.split(",")) if args.metrics else None
        result = evaluate_run(args.run_dir, names, n=args.n, inception=args.inception)
    width = max(len(k) for k in result)
    for key, value in result.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")


def cmd_prob(args: argparse.Namespace) -> None:
    from .errors import GenlabError
    from .serialization import load

    model = load(args.run_dir)
    if not hasattr(model, "prob"):
        raise GenlabError("genlab prob answers for 1-D models (normal, or gmm on 1-D data).")
    print(f"P({args.event}) = {model.prob(args.event):.6f}")


def cmd_png_info(args: argparse.Namespace) -> None:
    from .generation import read_parameters

    print(read_parameters(args.file))


def sampler_flags(p: argparse.ArgumentParser) -> None:
    """The sampler and the schedule, in genlab's or stable-diffusion-webui's names."""
    p.add_argument("--sampler", default="dpmpp-2m",
                   help="ddpm, ddim, euler, euler-a, heun, dpmpp-2m, or webui's names "
                   "('DPM++ 2M Karras' sets the schedule too)")  # fmt: skip
    p.add_argument(
        "--schedule",
        default=None,
        help="default, karras, trailing, leading, linspace (webui: Automatic, Karras)",
    )


def placement_flags(p: argparse.ArgumentParser) -> None:
    """Where Stable Diffusion runs (generation.placement.Placement)."""
    p.add_argument("--device", help="Stable Diffusion: cpu (default), cuda, cuda:1, mps")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"],
                   help="Stable Diffusion: precision (fp16 on GPUs)")  # fmt: skip
    slicing = "Stable Diffusion: attention a slice at a time (less memory)"
    p.add_argument("--attention-slicing", action="store_true", help=slicing)
    offload = "Stable Diffusion on CUDA: each model on the GPU only while it runs"
    p.add_argument("--cpu-offload", action="store_true", help=offload)


def _placement(args: argparse.Namespace):
    from .generation.placement import Placement

    return Placement(args.device, args.dtype, args.attention_slicing, args.cpu_offload)


IMAGE_ARGS = {"init": "initial image (PNG, JPEG ...)", "mask": "mask image: white is regenerated"}


def cmd_txt2img(args: argparse.Namespace) -> None:
    """txt2img, img2img and inpaint: one request, one pipeline, the images written."""
    from tqdm.auto import tqdm

    from .backends import load_backend
    from .generation import GenerationRequest
    from .generation.images import size_of
    from .generation.output import check_writable, save_result
    from .runfiles import check_file, disk_error

    init, mask = getattr(args, "init", None), getattr(args, "mask", None)
    width, height = args.width, args.height
    if init is not None:
        init_w, init_h = size_of(init)
        width, height = width or init_w, height or init_h
    request = GenerationRequest(
        args.prompt, args.negative, args.sampler, args.steps, args.cfg, args.seed, args.batch,
        width, height, init_image=init, strength=getattr(args, "strength", None), mask=mask,
        schedule=args.schedule or "default",
    )  # fmt: skip
    check_file(args.out)  # before any work: a folder that can be written, a name that fits
    check_writable(args.out)
    request = dataclasses.replace(request, loras=_loras(args.lora, args.lora_scale))
    pipe = load_backend(args.model, args.model_config, _placement(args))
    request = pipe.check(request)  # the model's own size where none is given (SD 1.x: 512)
    with tqdm(total=request.steps, desc=args.command, leave=False) as bar:
        result = pipe(request, lambda p: bar.update(p.step - bar.n) if p.step > bar.n else None)
    try:
        paths = save_result(result, args.out)
    except OSError as e:
        raise disk_error(e, e.filename or args.out) from None
    for path in paths:
        print(f"wrote {path}")


def _loras(paths: list[str] | None, scales: list[float] | None) -> tuple:
    """--lora DIR (repeatable) with --lora-scale S: one for all, or one per --lora."""
    from .errors import GenlabError

    paths, scales = paths or [], scales or [1.0]
    if len(scales) == 1:
        scales = scales * len(paths)
    if len(scales) != len(paths):
        raise GenlabError("Give one --lora-scale for all LoRAs, or one per --lora.")
    return tuple(zip(paths, scales, strict=True))


def cmd_finetune(args: argparse.Namespace) -> None:
    from pathlib import Path

    from .errors import GenlabError
    from .finetune.train import finetune, lora_config
    from .runfiles import refuse_other_run
    from .runlock import RunLock, prepare_run_folder
    from .training.runfolder import saved_config

    prepare_run_folder(args.out)
    if args.resume is None:  # the rule of every command that writes a run (see train_run)
        refuse_other_run(args.out, args.overwrite, "pass --resume latest to continue it, or")
    if args.overwrite:
        if args.resume:
            raise GenlabError("Give --resume or --overwrite, not both.")
        from .runfiles import clear_run

        with RunLock(args.out):
            clear_run(args.out)
    train = {"steps": args.steps, "lr": args.lr, "seed": args.seed, "batch_size": args.batch_size}
    if args.resume and (Path(args.out) / "config.yaml").is_file():
        cfg = saved_config(args.out)
        cfg["train"].update({k: v for k, v in train.items() if v is not None})
    else:
        cfg = lora_config(
            args.model, args.data, caption=args.caption, rank=args.rank, alpha=args.alpha,
            train=train, model_config=args.model_config,
        )  # fmt: skip
    summary = finetune(cfg, args.out, resume=args.resume)
    print(f"done: {summary['steps']} steps in {summary['seconds']:.1f} s; "
          f"final loss {summary.get('loss', float('nan')):.4g}")  # fmt: skip
    print(f"LoRA written to {args.out} (use: genlab txt2img PROMPT --lora {args.out})")


def cmd_lora_fuse(args: argparse.Namespace) -> None:
    from .finetune.fuse import fuse_into_copy

    out = fuse_into_copy(args.lora, args.out, scale=args.scale)
    print(f"wrote {out} (use: genlab txt2img PROMPT --model {out})")


def cmd_eval_t2i(args: argparse.Namespace) -> None:
    from .evaluation.text_to_image import evaluate_text_to_image

    _report_folder(args.out)
    from .generation.request import parse_sampler

    sampler, schedule = parse_sampler(args.sampler, args.schedule)
    named = sampler if schedule == "default" else f"{sampler}-{schedule}"
    settings = {"sampler": named, "steps": args.steps, "cfg": args.cfg}
    loras = _loras(args.lora, args.lora_scale)
    report = evaluate_text_to_image(
        args.model, n=args.n, out=args.out, seed=args.seed, loras=loras, **settings
    )
    for split in ("heldout", "seen"):
        acc = report[split]["accuracy"]
        shown = ", ".join(f"{k} {v:.1%}" for k, v in acc.items() if v is not None)
        print(f"{split:<8} {shown}")
        ceiling = report[split]["detector_on_reconstructions"]
        print(
            f"{'':<8} the autoencoder's reconstructions of the real scenes: {ceiling:.1%} overall"
        )
    print(f"FD (8x8 pixels) {report['fd_pixels']:.3g}; report in {args.out}")


def _report_folder(out: str) -> None:
    """Make the output folder before any work, or refuse it in one sentence (a file, a path
    that cannot be created); an empty folder is all a later failure leaves."""
    from pathlib import Path

    from .errors import GenlabError
    from .runfiles import check_folder

    check_folder(out)
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        reason = e.strerror or str(e)
        raise GenlabError(f"Cannot write to the folder '{out}' ({reason}).") from None


def cmd_compare(args: argparse.Namespace) -> None:
    from tqdm.auto import tqdm

    from .evaluation.compare import compare, families_for
    from .evaluation.compare_report import table, write_report
    from .runs import machine

    _report_folder(args.out)
    if args.latent:
        return compare_latent_command(args)
    families = _families(args.families)
    if args.seeds is None:
        args.seeds = 1 if args.shipped else 3
    total = sum(1 for f in families_for(args.data) if families is None or f.model in families)
    with tqdm(total=total * args.seeds, desc="compare", leave=False) as bar:

        def progress(what: str) -> None:
            bar.set_postfix_str(what)
            if "learning rate" not in what:
                bar.update(1)

        report = compare(args.data, args.seeds, args.steps, args.n, families,
                         not args.no_lr_sweep, progress, args.shipped, args.nll_n)  # fmt: skip
    path = write_report(report, args.out, "genlab " + " ".join(sys.argv[1:]), machine())
    rows = table(report)
    shown = [rows[0].index(k) for k in ("family", "held-out bits/dim", "held-out NLL (nats)",
                                        "FD", "SWD", "copy share", "stability", "fidelity",
                                        "samples/s") if k in rows[0]]  # fmt: skip
    for row in rows:
        print("  ".join(row[i] for i in shown))
    print(f"report written to {path} (and compare.html, compare.json)")


def _families(text: str | None) -> tuple[str, ...] | None:
    """--families as a tuple (None when not given); an empty name is refused, not read as all."""
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        from .errors import GenlabError

        raise GenlabError(f"--families takes comma-separated names such as gmm,vae, got {text!r}.")
    return names


def compare_latent_command(args: argparse.Namespace) -> None:
    from tqdm.auto import tqdm

    from .errors import GenlabError
    from .evaluation.latent import MODELS, compare_latent
    from .evaluation.latent_report import write_report
    from .runs import machine

    given = [f for f, v in (("--data", args.data != "8gaussians"),
                            ("--seeds", args.seeds is not None),
                            ("--steps", args.steps is not None), ("--n", args.n != 2000),
                            ("--no-lr-sweep", args.no_lr_sweep), ("--shipped", args.shipped),
                            ("--nll-n", args.nll_n is not None)) if v]  # fmt: skip
    if given:
        raise GenlabError(f"{given[0]} does not apply to --latent, which fits every model on "
                          "digits and a synthetic set with each model's own settings.")  # fmt: skip
    models = _families(args.families) or MODELS
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise GenlabError(f"Unknown latent model '{unknown[0]}'; known: {', '.join(MODELS)}.")
    if not 1 <= args.latent_dim <= 8:
        raise GenlabError(f"--latent-dim must lie in 1..8, got {args.latent_dim}.")
    with tqdm(desc="compare --latent", leave=False) as bar:

        def progress(what: str) -> None:
            bar.set_postfix_str(what)
            bar.update(1)

        results = compare_latent(args.latent_dim, models,
                                 progress=progress)  # fmt: skip
    path = write_report(results, args.out, "genlab " + " ".join(sys.argv[1:]), machine())
    for note in results.get("skipped", []):
        print(note)
    print(f"report written to {path} (and latent.html, latent.json, latent_*.png)")


def cmd_models(args: argparse.Namespace) -> None:
    from .registry import MODELS
    from .training.runfolder import recipe_names

    for name, e in MODELS.items():
        print(f"{name:<17} {e.kind:<10} {e.description}")
    print("\nrecipes (genlab train RECIPE): " + ", ".join(recipe_names()))


def cmd_datasets(args: argparse.Namespace) -> None:
    from .data import DATASETS

    for name, (_, description) in DATASETS.items():
        print(f"{name:<14} {description}")


def cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    _report_folder(args.out)
    index = run_demo(args.out, full=args.full)
    print(f"report written to {index}")


def cmd_course(args: argparse.Namespace) -> None:
    from .course import STEPS, Options, run_all, run_step
    from .errors import GenlabError

    if args.step is None and not args.all:
        for step in STEPS:
            print(f"{step.key:>3}  {step.name(args.lang)}: {step.summary[args.lang == 'ja']}")
            if step.takes_data:
                print(f"       --data: {step.takes_data}")
        print("run one: genlab course N [--lang ja]; all: genlab course --all")
        return
    if args.step is not None and args.all:
        raise GenlabError("Give a step or --all, not both.")
    from .runfiles import check_folder

    check_folder(args.out)  # before any work
    options = Options(
        data=args.data, quick=args.quick, seed=args.seed, cond_drop_per=args.cond_drop_per,
        t_base=args.t_base, elbo_reduction=args.elbo_reduction,
        reverse_variance=args.reverse_variance,
    )  # fmt: skip
    if args.all:

        def announce(step) -> None:
            print(f"step {step.key}: {step.name(args.lang)}", flush=True)

        results = _writing(args.out, run_all, args.lang, args.out, options, progress=announce)
        total = sum(r.seconds for r in results)
        print(f"course written to {args.out}/index.html ({total:.0f} s)")
        return
    result = _writing(args.out, run_step, args.step, args.lang, args.out, options)
    print(f"step {result.step.key} written to {result.page} ({result.seconds:.1f} s)")


def _writing(out: str, func: Callable, *args, **kwargs):
    """``func(*args, **kwargs)``, a full disk under ``out`` said in one sentence."""
    from .runfiles import disk_error, disk_full

    try:
        return func(*args, **kwargs)
    except OSError as e:
        if disk_full(e):
            raise disk_error(e, e.filename or out) from None
        raise


def cmd_webui(args: argparse.Namespace) -> None:
    try:
        from .webui import create, launch
    except ModuleNotFoundError as e:
        from .errors import GenlabError

        raise GenlabError(
            f"The web page needs Gradio ({e.name} is missing): pip install 'genlab[webui]'."
        ) from None
    from .errors import GenlabError

    if not 1 <= args.port <= 65535 or args.queue < 1:
        raise GenlabError(f"--port must lie in 1..65535 and --queue be at least 1, got "
                          f"{args.port} and {args.queue}.")  # fmt: skip
    from .interop.diffusers.files import config_folder

    if args.model_config:
        config_folder(args.model_config)  # checked before the page starts
    place = _placement(args)
    hosts = tuple(h.strip() for h in (args.allowed_hosts or "").split(",") if h.strip())
    origins = tuple(o.strip() for o in (args.cors_allow_origins or "").split(",") if o.strip())
    bad = [o for o in origins if not o.lower().startswith(("http://", "https://"))]
    if bad or any("/" in h or " " in h for h in hosts):
        raise GenlabError("--allowed-hosts takes names such as box.lan or box.lan:8000, and "
                          "--cors-allow-origins origins such as http://box.lan:3000.")  # fmt: skip
    from .webui.api import parse_auth

    api_auth, gradio_auth = parse_auth(args.api_auth), parse_auth(args.gradio_auth)
    flags = {"api": args.api or args.nowebui, "nowebui": args.nowebui, "listen": args.listen,
             "port": args.port, "queue": args.queue, "api_auth": bool(api_auth),
             "gradio_auth": bool(gradio_auth)}  # fmt: skip
    if args.nowebui:
        from .webui.api import serve_api
        from .webui.catalog import Catalog
        from .webui.server import configure, prepare_out
        from .webui.studio import Studio

        out = prepare_out(args.out)
        configure(out)
        studio = Studio(Catalog.scan(args.models_dir, args.runs_dir, args.model_config, place), out)
        print(f"genlab webui --nowebui: http://{'0.0.0.0' if args.listen else '127.0.0.1'}:"
              f"{args.port}/sdapi/v1 (Ctrl-C stops)")  # fmt: skip
        if args.listen and not api_auth:
            print("genlab: warning: --listen serves the API to every machine that can reach "
                  "this one; --api-auth asks for a password.", file=sys.stderr)  # fmt: skip
        try:
            serve_api(studio, port=args.port, listen=args.listen, auth=api_auth,
                      queue_size=args.queue, allowed_hosts=hosts, cors_allow_origins=origins,
                      flags=flags)  # fmt: skip
        except OSError as e:
            raise GenlabError(f"Cannot serve on port {args.port} ({e}).") from None
        return
    app, studio = create(args.out, args.models_dir, args.runs_dir, args.model_config, place,
                         datasets_dir=args.datasets_dir)  # fmt: skip
    print(f"genlab webui: http://{'0.0.0.0' if args.listen else '127.0.0.1'}:{args.port} "
          f"(images in {studio.out}; Ctrl-C stops)")  # fmt: skip
    try:
        launch(app, studio, port=args.port, listen=args.listen, queue_size=args.queue,
               allowed_hosts=hosts, cors_allow_origins=origins, api=args.api,
               api_auth=api_auth, gradio_auth=gradio_auth, flags=flags)  # fmt: skip
    except OSError as e:  # the port is taken, or not ours to bind
        raise GenlabError(f"Cannot serve on port {args.port} ({e}).") from None


def build_parser() -> argparse.ArgumentParser:
    from .registry import names

    parser = argparse.ArgumentParser(
        prog="genlab",
        description="genlab: fit, train, sample and compare generative models.",
        epilog="Run 'genlab COMMAND --help' for a command's options and examples.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help,
            description=help,
            epilog=EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=func)
        return p

    p = add("fit", cmd_fit, "fit a model in closed form (normal, mvn) or by EM (gmm)")
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

    p = add("train", cmd_train, "train a neural model (or recipe) with the Trainer")
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

    p = add("sample", cmd_sample, "draw samples from a fitted or trained model")
    p.add_argument("run_dir")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--out", required=True, help=".csv, .npy or .png")
    p.add_argument("--seed", type=seed)
    p.add_argument("--sampler", help="diffusion: ddpm, ddim, euler, heun, dpmpp-2m")
    p.add_argument("--steps", type=int, help="diffusion: sampling steps (default 20)")
    p.add_argument(
        "--cfg", type=float, help="diffusion: classifier-free guidance scale (0: unconditional)"
    )
    p.add_argument("--label", type=int, help="class-conditional models: the class to draw")
    p.add_argument("--classifier", help="diffusion: a noise-aware classifier run, to guide by")
    p.add_argument("--cg-scale", type=float, help="diffusion: classifier guidance scale (1)")
    p.add_argument("--gif", help="diffusion: also write an animation of the denoising to this GIF")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other sampling option of the model (spacing=karras, eta=0.5, noise=false ...)",
    )

    p = add("eval", cmd_eval, "held-out average log-likelihood, BIC and AIC; writes eval.json")
    p.add_argument("run_dir")
    p.add_argument("--data", help="dataset NAME or NAME:PATH (default: the run's held-out split)")
    p.add_argument("--metrics", help="comma list: nll,fd,kid,pr,fid (images) or nll,swd,mmd (2-D)")
    p.add_argument("--inception", help="FID Inception weights (.safetensors) for --metrics fid")
    p.add_argument("--n", type=int, default=1000, help="generated samples (default 1000)")

    p = add("prob", cmd_prob, "probability of an event under a 1-D model")
    p.add_argument("run_dir")
    p.add_argument("event", help="e.g. 'x <= 160', 'x > 180', '150 < x <= 170'")

    p = add("png-info", cmd_png_info, "print the generation parameters stored in a PNG")
    p.add_argument("file")

    def generation(name: str, help: str, images: tuple[str, ...]) -> argparse.ArgumentParser:
        p = add(name, cmd_txt2img, help)
        for image in images:
            p.add_argument(image, help=IMAGE_ARGS[image])
        p.add_argument("prompt", help="what to draw (empty: an unconditional sample)")
        p.add_argument("--negative", default="", help="negative prompt: what to steer away from")
        p.add_argument(
            "--model",
            default="builtin",
            help="'builtin', a latent-diffusion run, a Stable Diffusion folder or .safetensors",
        )
        p.add_argument(
            "--model-config", help="for a single .safetensors file: a diffusers folder of the "
            "same architecture to take configs and tokenizer from",
        )  # fmt: skip
        placement_flags(p)
        sampler_flags(p)
        p.add_argument("--steps", type=int, default=20)
        p.add_argument("--cfg", type=float, default=5.0, help="classifier-free guidance scale")
        p.add_argument("--seed", type=seed, default=0, help="image i of a batch uses seed + i")
        p.add_argument("--batch", type=int, default=1, help="images to draw (also writes a grid)")
        size = "pixels (default: the model's, or the initial image's)"
        p.add_argument("--width", type=int, help=size)
        p.add_argument("--height", type=int, help=size)
        p.add_argument("--out", default=f"{name}.png", help="PNG file (a batch: FILE-0.png ...)")
        p.add_argument("--lora", action="append", help="a LoRA folder (repeat for several)")
        p.add_argument(
            "--lora-scale", type=float, action="append",
            help="LoRA strength (default 1; one for all, or one per --lora)",
        )  # fmt: skip
        return p

    generation("txt2img", "draw images from a text prompt (built-in model by default)", ())
    p = generation("img2img", "redraw an image after a text prompt", ("init",))
    p.add_argument("--strength", type=float, default=0.6, help="how much to change: (0, 1]")
    p = generation("inpaint", "regenerate the masked region of an image", ("init", "mask"))
    p.add_argument("--strength", type=float, default=1.0, help="how much to change: (0, 1]")

    p = add("finetune", cmd_finetune, "fine-tune a text-to-image model on your images (LoRA)")
    p.add_argument("method", choices=["lora"])
    p.add_argument(
        "--model",
        default="builtin",
        help="'builtin', a latent-diffusion run, a Stable Diffusion folder or .safetensors",
    )
    p.add_argument("--model-config", help="for a .safetensors file: its diffusers config folder")
    p.add_argument("--data", required=True, help="image folder (captions: NAME.txt beside)")
    p.add_argument("--out", required=True, help="run folder for the LoRA")
    p.add_argument("--caption", default="", help="caption of images without a NAME.txt")
    p.add_argument("--steps", type=int, help="optimizer steps (default 400)")
    p.add_argument("--rank", type=int, default=4, help="rank r of the adapters (default 4)")
    p.add_argument("--alpha", type=float, help="adapter scale alpha (default: the rank)")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    p.add_argument("--batch-size", type=int, help="images per step (default 16)")
    p.add_argument("--seed", type=seed)
    p.add_argument("--resume", choices=["latest"], help="continue the run in --out")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (default: refuse it)")  # fmt: skip

    p = add("lora", cmd_lora_fuse, "LoRA tools: fuse a LoRA into a copy of its base model")
    p.add_argument("action", choices=["fuse"])
    p.add_argument("lora", help="a LoRA folder made by genlab finetune lora")
    p.add_argument("--out", required=True, help="folder for the fused model")
    p.add_argument("--scale", type=float, default=1.0)

    p = add("eval-t2i", cmd_eval_t2i, "prompt adherence and FD of a text-to-image model")
    p.add_argument("model", help="'builtin' or a latent-diffusion run folder")
    p.add_argument("--n", type=int, default=200, help="prompts per split (default 200)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--out", default="report/t2i", help="folder for eval-t2i.json and the grids")
    sampler_flags(p)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=5.0, help="classifier-free guidance scale")
    p.add_argument("--lora", action="append", help="a LoRA folder (repeat for several)")
    p.add_argument("--lora-scale", type=float, action="append", help="LoRA strength")

    add("models", cmd_models, "list the models and the packaged recipes")
    add("datasets", cmd_datasets, "list the datasets")
    p = add("compare", cmd_compare, "train every family on the same data and measure them")
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

    p = add("demo", cmd_demo, "run the tour and write report/index.html")
    p.add_argument("--out", default="report", help="report folder (default: report)")
    p.add_argument("--full", action="store_true",
                   help="retrain every family with 3 seeds and run the longer comparisons "
                   "(hours on a laptop; default: sample the shipped models, minutes)")  # fmt: skip
    p = add("course", cmd_course, "the textbook road, step by step, as pages (en or ja)")
    p.add_argument("step", nargs="?", help="the step to run: 1-10 or A (none: list them)")
    p.add_argument("--all", action="store_true", help="every step, and an index linking them")
    p.add_argument("--lang", choices=["en", "ja"], default="en")
    p.add_argument("--out", default="course", help="folder for the pages (default: course)")
    p.add_argument("--data", help="your own data for the steps that take it (see the list)")
    p.add_argument("--quick", action="store_true", help="fewer training steps, rougher numbers")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument(
        "--cond-drop-per",
        choices=["sample", "batch"],
        default="sample",
        help="step 10: drop labels per sample or per batch",
    )
    p.add_argument(
        "--t-base",
        type=int,
        choices=[0, 1],
        default=1,
        help="steps 8-9: number time steps 1..T (1) or 0..T-1 (0)",
    )
    p.add_argument(
        "--elbo-reduction",
        choices=["sum", "mean"],
        default="sum",
        help="step 7: the VAE loss sums (the ELBO) or averages its terms",
    )
    p.add_argument(
        "--reverse-variance",
        choices=["posterior", "beta"],
        default="posterior",
        help="step 9: DDPM's reverse-step variance, beta_tilde_t or beta_t",
    )
    p = add("webui", cmd_webui, "start the web page on this machine (needs genlab[webui])")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--listen", action="store_true", help="serve other machines too (0.0.0.0)")
    models = "text-to-image runs, Stable Diffusion folders and .safetensors files"
    p.add_argument("--models-dir", help=models)
    configs = "diffusers folder the .safetensors checkpoints take configs from"
    p.add_argument("--model-config", help=configs)
    placement_flags(p)
    p.add_argument("--runs-dir", default="runs", help="trained runs for the model lab")
    p.add_argument("--out", default="outputs", help="output folder: the only one served")
    p.add_argument("--queue", type=int, default=16, help="requests that may wait (then refused)")
    p.add_argument("--datasets-dir", help="folders the Train tab may train on (else uploads only)")
    hosts = "more names the page answers to, comma-separated (besides localhost, 127.0.0.1)"
    p.add_argument("--allowed-hosts", help=hosts)
    p.add_argument("--cors-allow-origins", help="origins other sites may read the page from")
    p.add_argument("--api", action="store_true", help="also serve webui's HTTP API, /sdapi/v1")
    p.add_argument("--nowebui", action="store_true", help="serve the HTTP API alone, no page")
    p.add_argument("--api-auth", help="user:pass[,user2:pass2]: HTTP Basic for the API")
    p.add_argument("--gradio-auth", help="user:pass[,user2:pass2]: the page's log-in")
    return parser


def _exit_at_next_interrupt() -> None:
    """After a Ctrl-C has been handled the process is on its way out; another one ends it at
    once (the default action) instead of raising in an exit handler with a traceback."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    if any("\x00" in a for a in (sys.argv[1:] if argv is None else argv)):
        print("genlab: error: an argument contains a NUL character.", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    from .errors import GenlabError

    try:
        args.func(args)
    except GenlabError as e:
        print(f"genlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _exit_at_next_interrupt()
        print("genlab: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
