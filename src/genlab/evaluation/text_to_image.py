"""Prompt adherence of a text-to-image model on the captioned scenes, GenEval-style: draw an
image for each caption of held-out compositions (never in training) and of seen ones, read
each image with the analytic scene detector, and score it on what the caption asks of the
scene it describes: object count, colour, shape, size (where a size word names it) and
position or relation; an unreadable reading is wrong; "overall" counts an image only when
every attribute it was scored on is right. Each accuracy comes with how many prompts asked
for the attribute and a 95% Wilson interval. The prompt set is drawn from a seed: a fresh
random one unless one is given (it is recorded, so a set can be drawn again). Also the
Frechet distance between generated and real scenes, on 8x8 average-pooled pixels (192
features: a coarse but independent statistic; the detector reads the fine detail). Two
reference rows say how far to trust the figures: the detector on the real scenes of the
same prompts, and on the autoencoder's reconstructions of them (what a perfect U-Net
would reach)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

SETTINGS = {"sampler": "dpmpp-2m", "steps": 20, "cfg": 5.0}
SPLIT_SEED = {"heldout": 1001, "seen": 1002}  # the training set used seed 0


def pooled(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W, 3) -> (N, 192) means over 8x8 cells, in [0, 1]."""
    n, h, w, c = images.shape
    cells = images.reshape(n, 8, h // 8, 8, w // 8, c).mean((2, 4)) / 255.0
    return cells.reshape(n, -1)


def _mean(values: list[bool]) -> float | None:
    """The share of True, or None when no image had the attribute (no single objects)."""
    return float(np.mean(values)) if values else None


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a binomial share k / n (95% for z = 1.96); (0, 1) when
    n is 0. Unlike the normal approximation it stays inside [0, 1] at 0% and 100%."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


KEYS = ("count", "colour", "shape", "size", "position", "overall")


def scored(scores: list[dict[str, bool]]) -> dict[str, Any]:
    """Per attribute: the accuracy, how many prompts asked for it, and its 95% interval."""
    out: dict[str, Any] = {"accuracy": {}, "asked": {}, "interval": {}}
    for k in KEYS:
        values = [s[k] for s in scores if k in s]
        out["accuracy"][k] = _mean(values)
        out["asked"][k] = len(values)
        out["interval"][k] = list(wilson(sum(values), len(values))) if values else None
    return out


def fresh_seed() -> int:
    """A seed no one chose: drawn from the operating system's entropy, in [0, 2^31)."""
    import secrets

    return secrets.randbelow(2**31)


def prompts_of(data: Any) -> list[str]:
    """One caption per scene, styles rotating: sentence, paraphrase, tags, short tags."""
    return [r["captions"][i % len(r["captions"])] for i, r in enumerate(data.records)]


def reconstructions(autoencoder: Any, data: Any) -> np.ndarray:
    """``autoencoder``'s reconstructions (encode, then decode) of the shapes scenes ``data``
    (pixels in [0, 1]), as uint8 images (N, H, W, 3)."""
    from ..generation.images import image_batch

    x = torch.from_numpy(data.x) * 2 - 1
    with torch.no_grad():
        return np.concatenate([
            image_batch(autoencoder.decode(autoencoder.encode(x[s : s + 256])))
            for s in range(0, len(x), 256)
        ])  # fmt: skip


def scene_pixels(data: Any) -> np.ndarray:
    """The shapes scenes ``data`` (pixels in [0, 1]) as uint8 images (N, H, W, 3)."""
    return (data.x.transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)


def judged(
    data: Any, images: np.ndarray, prompts: list[str] | None = None
) -> list[dict[str, bool]]:
    """The detector's verdicts on ``images`` (image i drawn for scene i of ``data``), against
    each scene's ground truth, on what prompt i asks (without prompts: all the scene holds)."""
    from .scene_detector import detect, judge

    asked = prompts if prompts is not None else [None] * len(images)
    return [
        judge(r["scene"], detect(im), p)
        for r, im, p in zip(data.records, images, asked, strict=True)
    ]


def request_of(opts: dict) -> Any:
    """eval-t2i's settings as a request, checked as any request is (steps >= 1, a finite
    CFG scale >= 0, a known sampler; step caching's interval and branch, where given)."""
    from ..generation.request import GenerationRequest

    cache = {k: opts[k] for k in ("deepcache", "deepcache_branch") if k in opts}
    return GenerationRequest(
        "", sampler=opts["sampler"], steps=opts["steps"], cfg_scale=opts["cfg"], **cache
    )


def draw_images(
    pipe: Any, prompts: list[str], seed: int, opts: dict, adapters: Any = (), batch: int = 50
) -> np.ndarray:
    """The images (uint8, (N, H, W, 3)) a genlab text-to-image back end draws for
    ``prompts``, image i from seed ``seed + i``, with eval-t2i's settings ``opts`` (sampler,
    steps, cfg; deepcache and deepcache_branch where given) and ``adapters`` (checked LoRAs)
    applied."""
    from ..generation.images import image_batch
    from ..models.latent_sampling import draw_latents

    asked = request_of(opts)
    _, h, w = pipe.model.data_shape
    images = []
    for s in range(0, len(prompts), batch):
        part = prompts[s : s + batch]
        seeds = list(range(seed + s, seed + s + len(part)))
        with torch.no_grad(), pipe.applied(adapters):
            latents, _ = draw_latents(
                pipe.model, part, [""] * len(part), seeds, sampler=asked.sampler,
                schedule=asked.schedule, steps=opts["steps"], cfg=opts["cfg"], width=w, height=h,
                deepcache=asked.deepcache, deepcache_branch=asked.deepcache_branch,
            )  # fmt: skip
            images.append(image_batch(pipe.model.decode(latents)))
    return np.concatenate(images)


def trained_split(model: str) -> str | None:
    """The held-out set whose "train" split ``model`` learnt from: "default" for the shipped
    models (their cards' recipes), a run's ``data_options.heldout`` (its meta.json, beside
    the folder given or one up from its ``model/``), None where it is not known or not a
    held-out set's name."""
    from ..backends import SHIPPED
    from ..data.shapes import HELDOUT_SETS

    if str(model) in SHIPPED:
        return "default"
    folder = Path(model)
    places = [folder / "meta.json"] + (
        [folder.parent / "meta.json"] if folder.name == "model" else []
    )
    for path in places:
        if not path.is_file():  # a FIFO or folder named meta.json is not a run's record
            continue
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError):
            return None
        if not isinstance(meta, dict) or meta.get("data") != "shapes":
            return None
        options = meta.get("data_options")
        if not isinstance(options, dict):
            return None
        heldout = options.get("heldout", "default")
        return heldout if isinstance(heldout, str) and heldout in HELDOUT_SETS else None
    return None


def split_warning(trained: str | None, heldout: str) -> str | None:
    """What a held-out set other than the model's own means for its two figures."""
    if trained is None or trained == heldout:
        return None
    if heldout == "wide":  # the wide set holds out more than the model's training did
        return (
            f"the model trained on the {trained!r} split, which shows some of the {heldout!r} "
            "held-out compositions: its held-out figure is partly seen."
        )
    return (
        f"the model trained on the {trained!r} split, which lacks some compositions of the "
        f"{heldout!r} seen prompts: its seen figure is partly held out."
    )


def evaluate_text_to_image(
    model: str = "builtin", n: int = 200, out: str | Path | None = None,
    seed: int | None = None, batch: int = 50, loras: tuple[tuple[str, float], ...] = (),
    references: bool = True, heldout: str = "default", tome: float = 0.0,
    **settings: Any,
) -> dict[str, Any]:  # fmt: skip
    """Accuracy per attribute and overall on ``n`` held-out and ``n`` seen prompts (with
    ``loras`` applied: (folder, scale) pairs), with how many prompts asked for each and its
    95% interval. The prompts and the images' seeds come from ``seed``; None draws a fresh
    one (recorded in the report, with ``seed_drawn``). ``references=False`` skips the
    detector on the real scenes and their reconstructions. ``heldout`` names the held-out
    set of the shapes data ("default", or "wide": ``genlab.data.shapes.HELDOUT_SETS``): the
    held-out prompts show one of its compositions and the seen ones none of them, so a model
    trained on that set's "train" split has seen the seen ones. With ``out``, writes
    eval-t2i.json and a grid of each split there. ``tome``: the ratio of (lossy) token
    merging to draw with, 0 = off."""
    from ..backends import load_backend
    from ..data.shapes import HELDOUT_SETS, shapes
    from ..errors import GenlabError
    from ..generation.images import to_pil
    from ..generation.output import grid_of
    from ..lora.files import checked_loras
    from .metrics import frechet_distance

    if n < 1:
        raise GenlabError(f"--n must be at least 1, got {n}.")
    if heldout not in HELDOUT_SETS:
        raise GenlabError(f"--heldout must be {' or '.join(HELDOUT_SETS)}, got {heldout!r}.")
    drawn = seed is None
    if drawn:
        seed = fresh_seed()
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise GenlabError(f"--seed must be a whole number in [0, 2^32), got {seed!r}.")
    pipe = load_backend(str(model))
    if pipe.describe().kind != "genlab":
        raise GenlabError("eval-t2i judges genlab's own text-to-image models on shapes scenes.")
    pipe.use_token_merging(tome)  # always: the back end is kept between calls
    # the model's own sampling defaults (builtin-fast: lcm, 4 steps, cfg 1), then the given
    own = {"cfg" if k == "cfg_scale" else k: v for k, v in pipe.describe().sampling.items()}
    opts = SETTINGS | own | settings
    request_of(opts)  # the same checks as any request's
    h = pipe.model.data_shape[1]
    adapters = checked_loras(loras, pipe.name, pipe.model_hash)
    report: dict[str, Any] = {"model": str(model), "n": n, "seed": seed, "seed_drawn": drawn,
                              "heldout_set": heldout, "settings": opts}  # fmt: skip
    report["trained_split"] = trained_split(model)
    report["warning"] = split_warning(report["trained_split"], heldout)
    report["loras"] = [[str(p), float(s)] for p, s in loras]
    report["tome"] = float(tome)
    grids, fakes, reals = {}, [], []
    t0 = time.perf_counter()
    for split, data_split in (("heldout", "heldout"), ("seen", "train")):
        data = shapes(n, size=h, seed=SPLIT_SEED[split] + seed, split=data_split, scale="unit",
                      heldout=heldout)  # fmt: skip
        prompts = prompts_of(data)
        images = draw_images(pipe, prompts, seed, opts, adapters, batch)
        scores = judged(data, images, prompts)
        report[split] = {
            **scored(scores),
            "examples": [
                {"prompt": p, **{k: bool(v) for k, v in s.items()}}
                for p, s in list(zip(prompts, scores, strict=True))[:10]
            ],
        }
        real = scene_pixels(data)
        if references:
            # the detector on the real scenes of the same prompts: how far to trust it
            on_real = [s["overall"] for s in judged(data, real, prompts)]
            report[split]["detector_on_real_scenes"] = float(np.mean(on_real))
            # ... and on the autoencoder's reconstructions of them: the most adherence a
            # U-Net can reach through this autoencoder (detail it loses, no sampler restores)
            ceiling = judged(data, reconstructions(pipe.model, data), prompts)
            report[split]["detector_on_reconstructions"] = _mean([s["overall"] for s in ceiling])
        fakes.append(images)
        reals.append(real)
        grids[split] = grid_of(
            to_pil(torch.from_numpy(images[:64]).permute(0, 3, 1, 2) / 127.5 - 1)
        )
    report["fd_pixels"] = frechet_distance(
        pooled(np.concatenate(reals)), pooled(np.concatenate(fakes))
    )
    report["seconds"] = time.perf_counter() - t0
    report["detector"] = "genlab.evaluation.scene_detector (analytic)"
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "eval-t2i.json").write_text(json.dumps(report, indent=2))
        for split, grid in grids.items():
            grid.save(folder / f"{split}.png")
    return report
