"""Two judges of the built-in model's own images: the analytic scene detector (what
``genlab eval-t2i`` scores with) and the scene classifier (a small CNN trained on rendered
scenes, src/genlab/assets/scene_classifier.json), built another way. On the single-object
prompts of eval-t2i's two prompt sets (held-out compositions and seen ones) it prints, per
attribute, how often the two read the same, how often each reads what the prompt asked,
and the same on the real rendered scenes of those prompts (both should be near 100%), and
writes a grid of the images where they disagree, each labelled with the prompt and the two
readings (D: detector, C: classifier; "?" is unreadable), for a person to look at.

    python benchmarks/judge_agreement.py --seed 526605450 --out docs/img/judge_disagreements.png
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from genlab.backends import load_backend
from genlab.data.shapes import shapes
from genlab.evaluation.scene_classifier import HEADS, classify
from genlab.evaluation.scene_detector import detect, position_of
from genlab.evaluation.text_to_image import (
    SETTINGS,
    SPLIT_SEED,
    draw_images,
    fresh_seed,
    prompts_of,
    scene_pixels,
)

ATTRIBUTES = tuple(HEADS)  # colour, shape, position, size


def detector_reading(image: np.ndarray) -> dict[str, str | None]:
    """The detector's reading of a single-object image (all None unless it finds one)."""
    found = detect(image)
    if len(found) != 1:
        return dict.fromkeys(ATTRIBUTES)
    (d,) = found
    return {"colour": d.colour, "shape": d.shape, "position": position_of(d), "size": d.size}


def truth(scene: dict) -> dict[str, str]:
    (t,) = scene["things"]
    return {"colour": t["colour"], "shape": t["shape"], "position": scene["position"],
            "size": t["size"]}  # fmt: skip


def same(a: list[dict], b: list[dict]) -> float:
    """The share of readings that agree on all four attributes."""
    return float(np.mean([x == y for x, y in zip(a, b, strict=True)]))


def short(reading: dict) -> str:
    return " ".join(str(reading[k] or "?") for k in ATTRIBUTES)


def grid(items: list[tuple[np.ndarray, str, dict, dict]], columns: int = 4) -> Image.Image:
    """Each disagreement as a tile: the image at 4x, the prompt, the two readings."""
    tile_w, tile_h, scale = 260, 128 + 46, 4
    rows = max(1, -(-len(items) // columns))
    sheet = Image.new("RGB", (columns * tile_w, rows * tile_h), "white")
    pen = ImageDraw.Draw(sheet)
    for i, (image, prompt, det, cls) in enumerate(items):
        x, y = (i % columns) * tile_w, (i // columns) * tile_h
        big = Image.fromarray(image).resize((32 * scale, 32 * scale), Image.NEAREST)
        sheet.paste(big, (x + 2, y + 2))
        pen.text((x + 134, y + 4), "\n".join(_wrap(prompt, 20)), fill="black")
        pen.text((x + 4, y + 132), f"D: {short(det)}", fill=(0, 0, 160))
        pen.text((x + 4, y + 146), f"C: {short(cls)}", fill=(160, 0, 0))
    return sheet


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line][:8]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="prompts per split (about half single)")
    ap.add_argument("--seed", type=int, help="eval-t2i's prompt-set seed (default: fresh)")
    ap.add_argument("--out", default="judge_disagreements.png", help="the disagreements' grid")
    ap.add_argument("--max-shown", type=int, default=32)
    ap.add_argument("--images", help="an .npz of the drawn images: read if it exists, else "
                    "written (drawing is the slow part)")  # fmt: skip
    ap.add_argument("--draw-only", action="store_true", help="draw (and save) the images only")
    args = ap.parse_args()
    seed = fresh_seed() if args.seed is None else args.seed
    t0 = time.perf_counter()
    pipe = load_backend("builtin")
    rows, shown = [], []
    cache = Path(args.images) if args.images else None
    saved = dict(np.load(cache)) if cache is not None and cache.exists() else {}
    if saved and int(saved["seed"]) != seed:
        raise SystemExit(f"{cache} holds the images of seed {int(saved['seed'])}, not {seed}.")
    for split, data_split in (("heldout", "heldout"), ("seen", "train")):
        data = shapes(args.n, seed=SPLIT_SEED[split] + seed, split=data_split, scale="unit")
        prompts = prompts_of(data)
        # eval-t2i's images: image i from seed + i, so only the single-object ones are kept
        if split not in saved:
            saved[split] = draw_images(pipe, prompts, seed, SETTINGS)
            if cache is not None:
                np.savez_compressed(cache, seed=seed, **{k: saved[k] for k in saved if k != "seed"})
        if args.draw_only:
            continue
        images = saved[split]
        keep = [i for i, r in enumerate(data.records) if r["scene"]["relation"] is None]
        real = scene_pixels(data)
        gen_det = [detector_reading(images[i]) for i in keep]
        gen_cls = classify(images[keep])
        real_det = [detector_reading(real[i]) for i in keep]
        real_cls = classify(real[keep])
        asked = [truth(data.records[i]["scene"]) for i in keep]
        for k in ATTRIBUTES:
            agree = [d[k] == c[k] for d, c in zip(gen_det, gen_cls, strict=True)]
            det = [d[k] == t[k] for d, t in zip(gen_det, asked, strict=True)]
            cls = [c[k] == t[k] for c, t in zip(gen_cls, asked, strict=True)]
            on_real = [d[k] == c[k] for d, c in zip(real_det, real_cls, strict=True)]
            rows.append((split, k, len(keep), np.mean(agree), np.mean(det), np.mean(cls),
                         np.mean(on_real)))  # fmt: skip
        for j, i in enumerate(keep):
            if gen_det[j] != gen_cls[j]:
                shown.append((images[i], prompts[i], gen_det[j], gen_cls[j]))
        rows.append((split, "all four", len(keep), same(gen_det, gen_cls), same(gen_det, asked),
                     same(gen_cls, asked), same(real_det, real_cls)))  # fmt: skip
    if args.draw_only:
        return
    print(f"seed {seed}; the built-in model, {SETTINGS}; {time.perf_counter() - t0:.0f} s")
    print("| split | attribute | images | judges agree | detector = scene | "
          "classifier = scene | judges agree on the real scenes |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for split, k, n, agree, det, cls, real in rows:
        print(f"| {split} | {k} | {n} | {agree:.1%} | {det:.1%} | {cls:.1%} | {real:.1%} |")
    grid(shown[: args.max_shown]).save(args.out)
    print(f"{len(shown)} images where the judges disagree; the first "
          f"{min(len(shown), args.max_shown)} in {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
