"""Stable Diffusion at its real size on this CPU: the SD 1.5 architecture (U-Net 859.5 M
parameters, configs in tests/support/configs/sd15, random weights, nothing downloaded) and
SDXL base 1.0 (tests/support/configs/sdxl).

    python benchmarks/sd_real_size.py unet      # U-Net calls: each speed-up alone, FLOPs, peak
    python benchmarks/sd_real_size.py e2e       # genlab txt2img at 512: folder and single file
    python benchmarks/sd_real_size.py sdxl      # genlab txt2img at 1024 with VAE tiling

``unet``: one U-Net call at 512x512 with guidance (batch 2: latents 2x4x64x64, 77 tokens),
in rounds, every case once a round (A/B/C/D, then again), so that a shared machine's load
falls on every case alike; one call before the rounds warms up and counts the FLOPs
(``torch.utils.flop_counter.FlopCounterMode``; PyTorch's CPU flash attention is counted by
the same formula as its GPU kernels); the autoencoder's decode (float32 in every case) is
timed once per memory layout, in the first round (its FLOPs counted on the timed call). Each
round also times a large float32 and bf16 matrix product: the fraction of peak is the
U-Net's FLOP/s over that round's matmul FLOP/s. Cases: diffusers as ``from_pretrained``
loads it (its default attention, ``AttnProcessor2_0``, is already PyTorch's fused
``scaled_dot_product_attention``), then genlab's switches alone and together: channels-last,
bf16-mixed (autocast), optionally ``torch.compile``. The same weights serve every case
(switched on and off in place). A per-image time at 20 steps is built from the measured
parts: text encoding + 20 U-Net calls + the autoencoder's decode, each timed in the same
run. The image difference of bf16-mixed against float32 (same seed) is measured on one
4-step 256x256 image by default (``--diff-steps``, ``--diff-side``: 512 costs four times as
much).

``e2e`` and ``sdxl`` run ``genlab txt2img`` in a child process each (its peak resident
memory is that process's ru_maxrss) and time its steps by the progress callback.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the real-size writer lives with the tests' support
sys.path.insert(0, str(ROOT / "src"))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def folder(root: Path, kind: str) -> Path:
    """The real-size folder of ``kind``, written once (random weights)."""
    from support.real_sd import write_real_sd

    path = root / kind
    if not (path / "unet" / "diffusion_pytorch_model.safetensors").exists() and not any(
        (path / "unet").glob("*.safetensors.index.json")
    ):
        t = time.perf_counter()
        write_real_sd(path, kind)
        print(f"wrote {path} in {time.perf_counter() - t:.0f} s", flush=True)
    return path


# --- U-Net calls -----------------------------------------------------------------------
def matmul_peak(dtype, n: int = 2048, repeats: int = 2) -> float:
    """FLOP/s of the best of ``repeats`` n x n products (after one warm-up)."""
    import torch

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def count_flops(net, call) -> int:
    """FLOPs of ``call(twin)``, ``twin`` a copy of ``net`` on the meta device (shapes only, no
    work: on a loaded machine a real call costs minutes). There attention takes the math
    path (two batched products), whose FLOPs are those of the fused kernel's formula."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        twin = type(net).from_config(net.config)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        call(twin)
    return counter.get_total_flops()


def set_case(pipe, channels_last: bool, bf16: bool) -> None:
    """Put the U-Net and the autoencoder in a case's state, in place (same weights)."""
    import torch

    from genlab.generation.placement import mixed_forward

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    pipe.unet.to(memory_format=fmt)
    pipe.vae.to(memory_format=fmt)
    pipe.unet.__dict__.pop("forward", None)  # back to the class's forward
    if bf16:
        mixed_forward(pipe.unet, torch.bfloat16)


CASES = {  # name -> (channels-last, bf16-mixed); the main pair first
    "diffusers default": (False, False),
    "genlab: channels-last + bf16-mixed": (True, True),
    "channels-last": (True, False),
    "bf16-mixed": (False, True),
}


def bench_unet(
    root: Path, repeats: int, steps: int, side: int, compile_: bool, decodes: bool = True
) -> dict:
    import torch

    from genlab.interop.diffusers.backend import load_diffusers

    path = folder(root, "sd15")
    pipe = load_diffusers(path, None)  # diffusers' from_pretrained, as genlab loads it
    unet, vae = pipe.unet, pipe.vae
    attention = sorted({type(p).__name__ for p in unet.attn_processors.values()})
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 64, 64, generator=g)
    t = torch.tensor(500)
    ctx = torch.randn(2, 77, 768, generator=g)
    z = torch.randn(1, 4, 64, 64, generator=g)
    ids = pipe.tokenizer(
        ["a photograph of an astronaut riding a horse", ""], padding="max_length",
        max_length=77, return_tensors="pt",
    ).input_ids  # fmt: skip

    def call():
        with torch.no_grad():
            return unet(x, t, encoder_hidden_states=ctx).sample

    def decode():
        with torch.no_grad():
            return vae.decode(z / vae.config.scaling_factor).sample

    def encode():
        with torch.no_grad():
            return pipe.text_encoder(ids)[0]

    flops = {
        "unet": count_flops(
            unet, lambda m: m(x.to("meta"), t, encoder_hidden_states=ctx.to("meta"))
        ),
        "vae": count_flops(vae, lambda m: m.decode(z.to("meta"))),
    }
    print(f"FLOPs: U-Net call {flops['unet'] / 1e12:.3f} T, decode {flops['vae'] / 1e12:.3f} T")
    times: dict[str, dict[str, list[float]]] = {c: {"unet": [], "vae": []} for c in CASES}
    peaks: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for r in range(repeats):
        peaks["fp32"].append(matmul_peak(torch.float32))
        peaks["bf16"].append(matmul_peak(torch.bfloat16))
        print(f"round {r + 1}: matmul fp32 {peaks['fp32'][-1] / 1e9:.1f}, bf16 "
              f"{peaks['bf16'][-1] / 1e9:.1f} GFLOP/s, load {load()}", flush=True)  # fmt: skip
        for name, (cl, bf16) in CASES.items():
            set_case(pipe, cl, bf16)
            times[name]["unet"].append(_timed(call))
            print(f"round {r + 1}: {name}: U-Net call {times[name]['unet'][-1]:.1f} s, load "
                  f"{load()}", flush=True)  # fmt: skip
            if r == 0 and name == "diffusers default" and decodes:
                times[name]["vae"].append(_timed(decode))  # float32 in every case
                print(f"decode {times[name]['vae'][-1]:.1f} s, load {load()}", flush=True)
    set_case(pipe, False, False)
    text_s = min(_timed(encode) for _ in range(2))

    compiled = None
    if compile_:
        set_case(pipe, True, False)
        t0 = time.perf_counter()
        unet.compile()
        call()
        first = time.perf_counter() - t0
        again = [_timed(call) for _ in range(repeats)]
        unet._compiled_call_impl = None  # eager again
        compiled = {"first_call_s": first, "unet_s": again}

    peak32, peak16 = statistics.median(peaks["fp32"]), statistics.median(peaks["bf16"])
    out = {
        "attention": attention, "flops_unet": flops["unet"], "flops_vae_decode": flops["vae"],
        "peak_fp32": peaks["fp32"], "peak_bf16": peaks["bf16"], "text_encode_s": text_s,
        "times": times, "compiled": compiled, "load": load(),
    }  # fmt: skip
    print(f"\nU-Net {sum(p.numel() for p in unet.parameters()) / 1e6:.1f} M parameters, "
          f"{flops['unet'] / 1e12:.3f} TFLOP per call (batch 2, 64x64 latents), VAE decode "
          f"{flops['vae'] / 1e12:.3f} TFLOP; attention: {', '.join(attention)}")  # fmt: skip
    print(f"matmul peak (2048^3, median of rounds): fp32 {peak32 / 1e9:.1f} GFLOP/s, "
          f"bf16 {peak16 / 1e9:.1f} GFLOP/s")  # fmt: skip
    base_unet = statistics.median(times["diffusers default"]["unet"])
    base_vae = statistics.median(times["diffusers default"]["vae"])
    base_image = text_s + 20 * base_unet + base_vae
    print("\n| case | U-Net s/call (runs) | x diffusers | of fp32 peak | of bf16 peak "
          "| s/image at 20 steps | x diffusers |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, tm in times.items():
        u = statistics.median(tm["unet"])
        v = base_vae  # the decode is float32 in every case, timed once
        image = text_s + 20 * u + v
        rate = flops["unet"] / u
        runs = ", ".join(f"{s:.1f}" for s in tm["unet"])
        print(f"| {name} | {u:.2f} ({runs}) | {base_unet / u:.2f} | {rate / peak32:.0%} | "
              f"{rate / peak16:.0%} | {image:.0f} | {base_image / image:.2f} |")  # fmt: skip
    if compiled:
        print(f"torch.compile (channels-last): first call {compiled['first_call_s']:.0f} s, "
              f"then {', '.join(f'{s:.1f}' for s in compiled['unet_s'])} s")  # fmt: skip
    if steps > 0:
        sys.stdout.flush()
        out["bf16_image_difference"] = diff = image_difference(pipe, steps, side)
        print(f"bf16-mixed against float32, {steps}-step {side}x{side} image (0-255): {diff}")
    print(json.dumps(out), flush=True)
    return out


def image_difference(pipe, steps: int, side: int) -> dict:
    """One image, float32 and bf16-mixed U-Net, same seed: pixel differences in 0-255."""
    import numpy as np
    import torch

    images = []
    for bf16 in (False, True):
        set_case(pipe, True, bf16)
        out = pipe(
            "a photograph of an astronaut riding a horse", num_inference_steps=steps,
            height=side, width=side, generator=torch.Generator().manual_seed(0), output_type="np",
        )  # fmt: skip
        images.append(out.images[0] * 255.0)
    set_case(pipe, False, False)
    d = np.abs(images[0] - images[1])
    return {"mean": round(float(d.mean()), 3), "max": round(float(d.max()), 1),
            "share_over_2": round(float((d > 2).mean()), 4)}  # fmt: skip


# --- genlab txt2img in a child process -------------------------------------------------
CHILD = """
import json, resource, sys, time
import genlab.backends as backends
from genlab.cli import main
stamps = []
real = backends.load_backend
def timed_backend(*a, **k):
    pipe = real(*a, **k)
    call = type(pipe).__call__
    def wrapped(self, request, progress=None, cancel=None):
        def tick(p):
            stamps.append(time.perf_counter())
            if progress is not None:
                progress(p)
        stamps.append(time.perf_counter())
        return call(self, request, tick, cancel)
    type(pipe).__call__ = wrapped
    return pipe
backends.load_backend = timed_backend  # the CLI imports it when it runs
t = time.perf_counter()
code = main(sys.argv[1:])
total = time.perf_counter() - t
steps = [b - a for a, b in zip(stamps, stamps[1:])]
print("RESULT " + json.dumps({"code": code, "total_s": total, "step_s": steps,
      "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def txt2img(args: list[str]) -> dict:
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, "txt2img", *args], env=env, capture_output=True, text=True
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise SystemExit(f"genlab txt2img failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(lines[-1][7:])
    out["load"] = load()
    return out


def report(name: str, r: dict) -> None:
    steps = r["step_s"]
    print(f"| {name} | {r['total_s']:.0f} | {', '.join(f'{s:.1f}' for s in steps)} | "
          f"{r['maxrss_mib'] / 1024:.1f} | {r['load']} |", flush=True)  # fmt: skip


def bench_e2e(root: Path, steps: int, dtype: str, only: str | None = None) -> None:
    from support.tiny_sd import write_single_file

    path = folder(root, "sd15")
    single = root / "sd15.safetensors"
    if not single.exists():
        t = time.perf_counter()
        write_single_file(path, single)
        print(f"wrote {single} in {time.perf_counter() - t:.0f} s", flush=True)
    common = ["--steps", str(steps), "--width", "512", "--height", "512", "--dtype", dtype]
    print("| genlab txt2img 512x512 | total s (load included) | s per step | peak RSS GiB "
          "| load |\n|---|---|---|---|---|")  # fmt: skip
    out = root / "out"
    out.mkdir(exist_ok=True)
    if only in (None, "folder"):
        r = txt2img(["a photo", "--model", str(path), "--out", str(out / "folder.png"), *common])
        report(f"folder, {dtype}", r)
    if only == "folder":
        return
    r = txt2img([
        "a photo", "--model", str(single), "--model-config", str(path), "--out",
        str(out / "single.png"), *common,
    ])  # fmt: skip
    report(f"single file, {dtype}", r)


def bench_sdxl(root: Path, steps: int, dtype: str) -> None:
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    available = _available_gib()
    print(f"memory available: {available:.1f} GiB (free {free:.1f})", flush=True)
    if available < 16:
        raise SystemExit("less than 16 GiB available: SDXL not run (the machine is shared).")
    path = folder(root, "sdxl")
    out = root / "out"
    out.mkdir(exist_ok=True)
    r = txt2img([
        "a photo", "--model", str(path), "--steps", str(steps), "--width", "1024", "--height",
        "1024", "--vae-tiling", "--dtype", dtype, "--out", str(out / "sdxl.png"),
    ])  # fmt: skip
    print("| genlab txt2img | total s (load included) | s per step | peak RSS GiB | load |")
    print("|---|---|---|---|---|")
    report(f"SDXL 1024x1024, VAE tiling, {dtype}", r)


def _available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["unet", "e2e", "sdxl"])
    p.add_argument("--root", default="/tmp/genlab-sd-real-size", help="where folders are written")
    p.add_argument("--repeats", type=int, default=2, help="unet: timed rounds")
    p.add_argument("--steps", type=int, default=2, help="e2e/sdxl: steps")
    p.add_argument("--diff-steps", type=int, default=4, help="unet: bf16 image difference")
    p.add_argument("--diff-side", type=int, default=256, help="unet: its image side")
    p.add_argument("--dtype", default="fp32", help="e2e/sdxl: genlab's --dtype")
    p.add_argument("--compile", action="store_true", help="unet: also torch.compile")
    p.add_argument("--only", choices=["folder", "single"], help="e2e: one of the two")
    a = p.parse_args()
    import torch

    print(f"{platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), load {load()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)  # fmt: skip
    root = Path(a.root)
    root.mkdir(parents=True, exist_ok=True)
    if a.part == "unet":
        bench_unet(root, a.repeats, a.diff_steps, a.diff_side, a.compile)
    elif a.part == "e2e":
        bench_e2e(root, a.steps, a.dtype, a.only)
    else:
        bench_sdxl(root, a.steps, a.dtype)


if __name__ == "__main__":
    main()
