"""Write the student of a consistency-distillation checkpoint (its EMA weights, or its raw
ones with --raw) as a latent-diffusion model folder, so ``genlab eval-t2i`` can judge a run
while it trains (docs/results.md's development checkpoints were measured so).

    python scripts/checkpoint_student.py runs/lcm 100 /tmp/student-100
    genlab eval-t2i /tmp/student-100 --n 50 --seed 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from safetensors.torch import load_file

from genlab.models.consistency_distillation import LatentConsistencyDistillation
from genlab.serialization import save_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="a txt2img-shapes-lcm run folder")
    ap.add_argument("step", type=int, help="the checkpoint's step (checkpoints/step-N)")
    ap.add_argument("out", help="the model folder to write")
    ap.add_argument("--raw", action="store_true", help="the raw weights instead of the EMA")
    args = ap.parse_args()
    run = Path(args.run)
    doc = yaml.safe_load((run / "config.yaml").read_text())
    shape = (3, doc["data_options"]["size"], doc["data_options"]["size"])
    model = LatentConsistencyDistillation(shape, **(doc.get("model_config") or {}))
    name = "model.safetensors" if args.raw else "ema.safetensors"
    state = load_file(str(run / "checkpoints" / f"step-{args.step}" / name))
    state.pop("__updates__", None)
    model.load_trainable_state({k: v.float() for k, v in state.items()})
    save_model(model.student(), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
