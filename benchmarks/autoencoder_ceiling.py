"""How much prompt adherence an autoencoder leaves a text-to-image U-Net: the scene detector
on its reconstructions of real scenes (held-out compositions and seen ones, the prompts
``genlab eval-t2i`` uses), overall and per colour-shape pair of the held-out split. A U-Net
whose latents decode through this autoencoder cannot draw what it cannot reconstruct.
Also the FD (eval-t2i's, on 8x8-pooled pixels) of the reconstructions from the real scenes,
beside that of a second draw of real scenes (the floor at this sample size).

    python benchmarks/autoencoder_ceiling.py runs/kl-ae [more kl-autoencoder runs ...]
    python benchmarks/autoencoder_ceiling.py builtin     # the built-in model's autoencoder
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from genlab.data.shapes import HELDOUT_PAIRS, shapes
from genlab.evaluation.metrics import frechet_distance
from genlab.evaluation.text_to_image import (
    SPLIT_SEED,
    judged,
    pooled,
    reconstructions,
    scene_pixels,
)

SPLITS = (("heldout", "heldout"), ("seen", "train"))


def autoencoder(source: str):
    if source == "builtin":
        from genlab.backends import load_backend

        return load_backend("builtin").model
    import genlab

    return genlab.load(source)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="kl-autoencoder runs or model folders, or builtin")
    ap.add_argument("--n", type=int, default=400, help="scenes per split")
    args = ap.parse_args()
    splits = {s: shapes(args.n, size=32, seed=SPLIT_SEED[s], split=d, scale="unit")
              for s, d in SPLITS}  # fmt: skip
    real = pooled(np.concatenate([scene_pixels(d) for d in splits.values()]))
    again = [scene_pixels(shapes(args.n, size=32, seed=SPLIT_SEED[s] + 7, split=d, scale="unit"))
             for s, d in SPLITS]  # fmt: skip
    floor = frechet_distance(real, pooled(np.concatenate(again)))
    print(f"FD of a second draw of real scenes: {floor:.4f}")
    for source in args.models:
        model = autoencoder(source)
        cells, rebuilt = [], []
        for split, data in splits.items():
            rebuilt.append(reconstructions(model, data))
            scores = judged(data, rebuilt[-1])
            shape = np.mean([s["shape"] for s in scores])
            cells.append(f"{split} overall {np.mean([s['overall'] for s in scores]):.1%} "
                         f"(shape {shape:.1%})")  # fmt: skip
            if split == "heldout":
                by_pair = defaultdict(list)  # scenes showing each held-out pair
                for record, s in zip(data.records, scores, strict=True):
                    for t in record["scene"]["things"]:
                        if (t["colour"], t["shape"]) in HELDOUT_PAIRS:
                            by_pair[f"{t['colour']} {t['shape']}"].append(s["shape"])
                pairs = ", ".join(f"{p} {np.mean(v):.0%}" for p, v in sorted(by_pair.items()))
        fd = frechet_distance(real, pooled(np.concatenate(rebuilt)))
        print(f"{source}: {'; '.join(cells)}; shape right in scenes with {pairs}; "
              f"FD of the reconstructions {fd:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
