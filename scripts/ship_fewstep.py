"""Package a consistency-distillation run (recipe txt2img-shapes-lcm) as genlab's few-step
built-in model (src/genlab/assets/txt2img-shapes-fast, ``--model builtin-fast``): the student
alone as a latent-diffusion model in fp16 safetensors, with its sampling defaults (lcm, 4
steps, cfg 1) in its config, and a card with the sha256, the recipe and commands, the
training time (every segment of the run: a pilot and its ``--resume``), the machine, and the
adherence the shipped fp16 weights reach at 4 steps (genlab eval-t2i, on a prompt set drawn
fresh unless --seed is given).

    genlab train txt2img-shapes-lcm --out runs/lcm
    python scripts/ship_fewstep.py --run runs/lcm
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ship_txt2img import evaluation_fields  # beside this script (scripts/ on sys.path)

import genlab
from genlab.assets import write_fp16
from genlab.backends import load_backend
from genlab.evaluation.text_to_image import evaluate_text_to_image
from genlab.pipelines.text_to_image import builtin_folder
from genlab.serialization import WEIGHTS
from genlab.training.checkpoint import sha256


def segments(run: Path) -> list[dict]:
    """The run's summary.json, after those of its earlier segments (summary-*.json, kept
    when a segment ended and the run was resumed)."""
    files = [*sorted(run.glob("summary-*.json")), run / "summary.json"]
    return [json.loads(f.read_text()) | {"file": f.name} for f in files]


def commands(run: Path) -> list[str]:
    """The command lines that trained ``run``, as meta.json and the segments recorded them."""
    out = []
    for f in [*sorted(run.glob("meta-*.json")), run / "meta.json"]:
        argv = json.loads(f.read_text())["argv"]
        out.append(" ".join(["genlab", *argv[1:]]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="the txt2img-shapes-lcm run")
    ap.add_argument("--eval-n", type=int, default=200, help="eval-t2i prompts per split")
    ap.add_argument("--seed", type=int, default=None, help="eval-t2i's prompt set (default: fresh)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="the torch threads the training ran with (OMP_NUM_THREADS), for the card",
    )
    args = ap.parse_args()
    run = Path(args.run)
    distilled = genlab.load(run)
    student = distilled.student()
    folder = builtin_folder("builtin-fast")
    write_fp16(student, folder)
    # the loader checks the weights against the card: a card with their sha256 first
    (folder / "card.json").write_text(json.dumps({"sha256": sha256(folder / WEIGHTS)}))
    load_backend.cache_clear()
    report = evaluate_text_to_image("builtin-fast", n=args.eval_n, seed=args.seed,
                                    out=Path("report/t2i-builtin-fast"))  # fmt: skip
    parts = segments(run)
    teacher = builtin_folder("builtin")
    shown = [{k: p[k] for k in ("file", "steps", "seconds", "loss")} for p in parts]
    card = {
        "name": "genlab-shapes-fast",
        "what": "genlab-shapes (the built-in model) distilled into a 4-step model by latent "
        "consistency distillation (Luo et al. 2023) with its classifier-free guidance at "
        f"scale {distilled.guidance:g} folded in; the same autoencoder, text encoder "
        "(minilm-words) and U-Net shape; samples with the lcm sampler, 4 steps, cfg 1 (one "
        "network call a step); weights stored in fp16",
        "sha256": sha256(folder / WEIGHTS),
        "size_bytes": (folder / WEIGHTS).stat().st_size,
        "teacher": {"name": "genlab-shapes", "sha256": sha256(teacher / WEIGHTS)},
        "distillation": distilled.get_config(),
        "sampling": student.sampling,
        "recipe": "txt2img-shapes-lcm",
        "commands": [*commands(run), f"python scripts/ship_fewstep.py --run {run}"],
        "training_seconds": round(sum(p["seconds"] for p in parts), 1),
        "training_segments": shown,
        "steps": parts[-1]["steps"],
        "training_threads": args.threads,
        **evaluation_fields(report, "builtin-fast", args.eval_n),
    }  # fmt: skip
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
