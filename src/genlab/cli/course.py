"""course (the textbook road, step by step) and demo (the tour and its report)."""

from __future__ import annotations

import argparse

from .common import command, output_folder, seed

EXAMPLES = {
    "demo": "examples:\n  genlab demo\n  genlab demo --out my-report",
    "course": """examples:
  genlab course                               # list the steps
  genlab course 2                             # step 2 -> course/02-maximum-likelihood/index.html
  genlab course 5 --lang ja --out kouza       # the Japanese page
  genlab course 2 --data txt:height.txt       # your own numbers (a plain text file)
  genlab course 7 --elbo-reduction mean       # a variant other texts use
  genlab course --all                         # the whole course as one linked site
  genlab course 2 --notebook --quick          # also course/02-maximum-likelihood/*.ipynb
  genlab course --all --notebook --lang ja    # every step as a Japanese notebook too""",
}


def cmd_demo(args: argparse.Namespace) -> None:
    from ..demo import run_demo

    output_folder(args.out)
    index = run_demo(args.out, full=args.full)
    print(f"report written to {index}")


def cmd_course(args: argparse.Namespace) -> None:
    from ..course import STEPS, Options, run_all, run_step
    from ..errors import GenlabError
    from ..runfiles import check_folder, writing

    if args.step is None and not args.all:
        for step in STEPS:
            print(f"{step.key:>3}  {step.name(args.lang)}: {step.summary[args.lang == 'ja']}")
            if step.takes_data:
                print(f"       --data: {step.takes_data}")
        print("run one: genlab course N [--lang ja] [--notebook]; all: genlab course --all")
        return
    if args.step is not None and args.all:
        raise GenlabError("Give a step or --all, not both.")
    check_folder(args.out)  # before any work
    options = Options(
        data=args.data, quick=args.quick, seed=args.seed, cond_drop_per=args.cond_drop_per,
        t_base=args.t_base, elbo_reduction=args.elbo_reduction,
        reverse_variance=args.reverse_variance,
    )  # fmt: skip
    if args.all:

        def announce(step) -> None:
            print(f"step {step.key}: {step.name(args.lang)}", flush=True)

        results = writing(
            args.out, run_all, args.lang, args.out, options, progress=announce,
            notebook=args.notebook,
        )  # fmt: skip
        total = sum(r.seconds for r in results)
        print(f"course written to {args.out}/index.html ({total:.0f} s)")
        return
    result = writing(args.out, run_step, args.step, args.lang, args.out, options, args.notebook)
    print(f"step {result.step.key} written to {result.page} ({result.seconds:.1f} s)")
    if result.notebook:
        print(f"notebook written to {result.notebook}")


def add(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "demo", cmd_demo, "run the tour and write report/index.html",
                EXAMPLES["demo"])  # fmt: skip
    p.add_argument("--out", default="report", help="report folder (default: report)")
    p.add_argument("--full", action="store_true",
                   help="retrain every family with 3 seeds and run the longer comparisons "
                   "(hours on a laptop; default: sample the shipped models, minutes)")  # fmt: skip
    p = command(sub, "course", cmd_course,
                "the textbook road, step by step, as pages (en or ja)",
                EXAMPLES["course"])  # fmt: skip
    p.add_argument("step", nargs="?", help="the step to run: 1-10 or A (none: list them)")
    p.add_argument("--all", action="store_true", help="every step, and an index linking them")
    p.add_argument("--lang", choices=["en", "ja"], default="en")
    p.add_argument("--out", default="course", help="folder for the pages (default: course)")
    p.add_argument("--data", help="your own data for the steps that take it (see the list)")
    p.add_argument("--quick", action="store_true", help="fewer training steps, rougher numbers")
    p.add_argument("--notebook", action="store_true",
                   help="also write each step as a Jupyter notebook that recomputes it "
                   "(needs genlab[notebook])")  # fmt: skip
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
