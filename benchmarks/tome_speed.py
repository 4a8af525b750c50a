"""Token merging (ToMe, lossy) against the exact U-Net, in one run, interleaved.

    python benchmarks/tome_speed.py builtin          # the built-in model: images/s, pixels
    python benchmarks/tome_speed.py sd15             # SD 1.5's U-Net at 512 (random weights)
    python benchmarks/tome_speed.py sd15-blocks      # ... only its 64x64 level's transformers
    python benchmarks/tome_speed.py builtin --ratios 0.3 0.5 --repeats 5

``builtin``: genlab's built-in text-to-image model through its back end (prompt encoding,
sampling at its defaults, DPM-Solver++(2M) 20 steps cfg 5, and decoding inside the timed
region), drawing the same prompts and seeds with and without merging, the cases alternating
in rounds so that a change in the machine's load falls on all of them; the figure per case is
the median over rounds. The image difference is against the unmerged image of the same seed
(0-255). One U-Net call (batch 2 x ``--batch``, its 8x8 latents) is timed in three cases as
well: exact, merged, and with the attention of the 8x8 level removed (not a model anyone
should draw with: the most any merging there could save).

``sd15``: seconds per U-Net call of the SD 1.5 architecture (859.5 M parameters, configs in
tests/support/configs/sd15, random weights: image quality says nothing here, so only time is
measured) at 512x512 with guidance (batch 2, 64x64 latents, 77 tokens), exact and merged, in
rounds, as genlab's Stable Diffusion back end lays it out (channels-last, float32); the
median and the fastest round are both given: on a shared machine the fastest is the one least
disturbed. ``sd15-blocks`` times only the five transformers that merge (the 64x64 level), each
on the input it gets in a real call: a shorter measurement, repeated more often.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # sd_real_size's loaders
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def heading() -> None:
    print(f"# {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), load {load()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)  # fmt: skip


# --- the built-in model ----------------------------------------------------------------------
def prompts(n: int) -> list[str]:
    """Captions of held-out scenes (seed 77), as eval-t2i words them."""
    from genlab.data.shapes import shapes
    from genlab.evaluation.text_to_image import prompts_of

    return prompts_of(shapes(n, size=32, seed=77, split="heldout", scale="unit"))


def draw(pipe, texts: list[str], batch: int) -> np.ndarray:
    """Every prompt once, ``batch`` images each (seeds 0, 1, ...): uint8 (N, H, W, 3)."""
    from genlab.generation import GenerationRequest

    out = []
    for i, text in enumerate(texts):
        result = pipe(GenerationRequest(text, seed=i * batch, batch_size=batch))
        out += [np.asarray(im.convert("RGB")) for im in result.images]
    return np.stack(out)


def unet_calls(pipe, batch: int, ratio: float, repeats: int) -> dict[str, float]:
    """Median seconds of one U-Net call (guidance: batch 2 x ``batch``) exact, merged, and
    with the attention of the latents' level removed."""
    from genlab.nn.token_merging import TokenMerging

    model = pipe.model
    unet = model.net.denoiser.net.unet
    c, h, w = model.latent_shape
    x = torch.randn(2 * batch, c, h, w, generator=torch.Generator().manual_seed(0))
    cond, _ = model.encode_text(["a red circle left of a blue square"] * (2 * batch))
    net = model.net.denoiser.net
    ctx = net.context(cond, 2 * batch)
    t = torch.full((2 * batch,), 500.0)
    level0 = [m for level, m in unet.attention_levels() if level == 0]

    def case(name: str):
        unet.use_token_merging(TokenMerging(ratio) if name == "merged" else None)
        hooks = []
        if name == "no attention at 8x8":  # each module returns its input: x + 0
            hooks = [m.register_forward_hook(lambda m, a, out: a[0]) for m in level0]
        with torch.no_grad():
            s = timed(lambda: unet(x, t, context=ctx))
        for hook in hooks:
            hook.remove()
        return s

    names = ("exact", "merged", "no attention at 8x8")
    for name in names:  # warm up
        case(name)
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(repeats * 5):
        for name in names:
            times[name].append(case(name))
    unet.use_token_merging(None)
    return {n: statistics.median(v) for n, v in times.items()}


def bench_builtin(ratios: list[float], repeats: int, n_prompts: int, batch: int) -> None:
    from genlab.backends import resolve

    pipe = resolve("builtin")
    texts = prompts(n_prompts)
    cases = [0.0, *ratios]
    draw(pipe, texts[:1], 1)  # warm up: first calls allocate
    rates: dict[float, list[float]] = {r: [] for r in cases}
    images: dict[float, np.ndarray] = {}
    for round_ in range(repeats):
        for r in cases:
            pipe.use_token_merging(r)
            t0 = time.perf_counter()
            images[r] = draw(pipe, texts, batch)
            rates[r].append(len(images[r]) / (time.perf_counter() - t0))
        print(f"round {round_ + 1}: " + ", ".join(f"tome {r:g} {rates[r][-1]:.2f} images/s"
                                                  for r in cases) + f"; load {load()}",
              flush=True)  # fmt: skip
    pipe.use_token_merging(0)
    n = len(images[0.0])
    print(f"\nbuilt-in model ({pipe.name}), {n} images a case and round ({n_prompts} held-out "
          f"prompts x batch {batch}, seeds 0..{n - 1}), dpmpp-2m 20 steps cfg 5, 32x32 "
          f"(latents {'x'.join(map(str, pipe.model.latent_shape))}); {repeats} rounds")  # fmt: skip
    print("| tome ratio | images/s (median) | rounds | x exact | mean pixel diff | max "
          "| share of pixels > 8 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    base = statistics.median(rates[0.0])
    for r in cases:
        rate = statistics.median(rates[r])
        d = np.abs(images[r].astype(np.int16) - images[0.0].astype(np.int16))
        runs = ", ".join(f"{v:.2f}" for v in rates[r])
        print(f"| {r:g} | {rate:.2f} | {runs} | {rate / base:.3f} | {d.mean():.2f} | "
              f"{d.max()} | {(d > 8).mean():.3f} |")  # fmt: skip
    calls = unet_calls(pipe, batch, ratios[-1], repeats)
    print(f"\none U-Net call, batch {2 * batch} (guidance), median of {repeats * 5}: "
          + ", ".join(f"{k} {v * 1e3:.2f} ms ({calls['exact'] / v:.3f}x)" for k, v in calls.items())
          + f"; tome ratio {ratios[-1]:g}; load {load()}")  # fmt: skip


# --- SD 1.5 at real size ---------------------------------------------------------------------
def bench_sd15(root: Path, ratios: list[float], repeats: int, blocks: bool = False) -> None:
    from sd_real_size import folder

    from genlab.interop.diffusers import token_merging
    from genlab.interop.diffusers.backend import load_diffusers
    from genlab.nn.token_merging import TokenMerging

    pipe = load_diffusers(folder(root, "sd15"), None)
    unet = pipe.unet.to(memory_format=torch.channels_last)  # as genlab's back end has it
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 64, 64, generator=g)
    ctx = torch.randn(2, 77, 768, generator=g)
    t = torch.tensor(500)

    def call(r: float) -> float:
        patch = token_merging.apply(unet, TokenMerging(r) if r else None)
        with torch.no_grad():
            s = timed(lambda: unet(x, t, encoder_hidden_states=ctx))
        if patch is not None:
            patch.remove()
        return s

    cases = [0.0, *ratios]
    if blocks:  # the five transformers of the 64x64 level alone, each on its own input
        finest = [t for d, t in token_merging.levels(unet) if d == 1]
        inputs = {}

        def note(module, args, kwargs):
            inputs[module] = (args, kwargs)

        hooks = [t.register_forward_pre_hook(note, with_kwargs=True) for t in finest]
        with torch.no_grad():
            unet(x, t, encoder_hidden_states=ctx)  # their inputs in a real call
        for hook in hooks:
            hook.remove()

        def call(r: float) -> float:  # the blocks. time, not the U-Net.s
            patch = token_merging.apply(unet, TokenMerging(r) if r else None)
            with torch.no_grad():
                s = sum(timed(lambda m=m: m(*inputs[m][0], **inputs[m][1])) for m in finest)
            if patch is not None:
                patch.remove()
            return s

    what = f"the {len(finest)} transformers of the 64x64 level" if blocks else "U-Net call"
    print(f"warm-up {what} {call(0.0):.1f} s, load {load()}", flush=True)
    times: dict[float, list[float]] = {r: [] for r in cases}
    for round_ in range(repeats):
        for r in cases:
            times[r].append(call(r))
            print(f"round {round_ + 1}: tome {r:g}: {what} {times[r][-1]:.1f} s, load "
                  f"{load()}", flush=True)  # fmt: skip
    base, fastest = statistics.median(times[0.0]), min(times[0.0])
    print(f"\nSD 1.5 U-Net (random weights), 512x512 with guidance: batch 2, 64x64 latents, "
          f"77 tokens; channels-last float32; merged: self-attention of the 64x64 level "
          f"(5 of 16 transformer blocks); timed: {what}")  # fmt: skip
    print("| tome ratio | s (median) | x exact | s (fastest) | x exact | rounds |")
    print("|---|---|---|---|---|---|")
    for r in cases:
        s, low = statistics.median(times[r]), min(times[r])
        runs = ", ".join(f"{v:.2f}" for v in times[r])
        print(f"| {r:g} | {s:.2f} | {base / s:.3f} | {low:.2f} | {fastest / low:.3f} | {runs} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["builtin", "sd15", "sd15-blocks"])
    p.add_argument("--ratios", type=float, nargs="+", default=[0.5], help="merged cases")
    p.add_argument("--repeats", type=int, default=3, help="rounds")
    p.add_argument("--prompts", type=int, default=8, help="builtin: prompts a round")
    p.add_argument("--batch", type=int, default=8, help="builtin: images a prompt")
    p.add_argument("--root", default="/tmp/genlab-sd-real-size", help="sd15: its folder")
    a = p.parse_args()
    heading()
    if a.part == "builtin":
        bench_builtin(a.ratios, a.repeats, a.prompts, a.batch)
    else:
        bench_sd15(Path(a.root), a.ratios, a.repeats, blocks=a.part == "sd15-blocks")


if __name__ == "__main__":
    main()
