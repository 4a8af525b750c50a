"""LoRA training speed on a Stable Diffusion pipeline: genlab's ``finetune lora`` (its
Trainer) against a plain diffusers + peft loop written the way diffusers' own example
(train_text_to_image_lora.py) trains, on the same pipeline, images, captions and settings.

    python benchmarks/lora_train_speed.py [--steps 40] [--batch 4] [--rank 4] [--repeats 3]

The pipeline is Stable Diffusion 1.5's layout at about a tenth of its widths, written by
tests/support/tiny_sd.py with random weights: U-Net widths 32/64/128/128 (SD: 320/640/
1280/1280), autoencoder 16/32/64/64 (SD: 128/256/512/512), 2 layers a block, 128x128
images, so the parts weigh against each other roughly as in SD at 512x512, on networks
small enough for a laptop CPU. genlab runs each frozen encoder once per image and caption
before training; the example loop encodes the batch at every step, as diffusers' script
does. Settings for both: AdamW, lr 1e-4, rank/alpha equal,
adapters on to_q/to_k/to_v/to_out.0, gradient clipping at 1, fp32, batch --batch of 16
captioned images. Each side runs in its own process (peak memory is that process's
maximum resident set, or CUDA's peak allocation on a GPU), in turns, --repeats times.
Steps per second: over the steps after the first (warm-up), from each loop's own clock;
genlab's ends are its Trainer's step hook, so checkpoints and logging in between count.
Steps per second leave out what happens before the first step, which is where genlab
encodes every image and caption once, so each side also reports end-to-end times from the
start of its work (imports of torch, diffusers and genlab included): to the end of the last
step (loading, encoding, every step: the time to trained adapters), and the whole run
(genlab's also draws a 4-image preview grid and writes its checkpoint and LoRA files; the
example loop ends at its last step). Memory is in MiB (2^20 bytes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZE = 128  # pixels a side
# the tiny random Stable Diffusion writer lives with the tests' support code
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def setup(root: Path) -> tuple[Path, Path]:
    """The pipeline folder and a folder of 16 captioned images, written once."""
    import numpy as np
    from PIL import Image
    from support.tiny_sd import write_tiny_sd

    sd = write_tiny_sd(
        root / "sd", latent_size=SIZE // 8, widths=(32, 64, 128, 128), vae_widths=(16, 32, 64, 64),
        layers=2, text_width=64, seed=0,
    )  # fmt: skip
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        a = np.zeros((SIZE, SIZE, 3), np.uint8) + rng.integers(0, 255, 3, dtype=np.uint8)
        a[SIZE // 4 : SIZE // 2, SIZE // 4 : SIZE // 2] = rng.integers(0, 255, 3, dtype=np.uint8)
        Image.fromarray(a).save(images / f"{i}.png")
        (images / f"{i}.txt").write_text(f"a square number {i}")
    return sd, images


def peak_memory_mib() -> float:
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def timings(t0: float, ends: list[float]) -> dict:
    """Steps per second after the first step, and seconds from ``t0`` to the last step."""
    return {"steps_per_s": (len(ends) - 1) / (ends[-1] - ends[0]), "to_last_step_s": ends[-1] - t0,
            "wall_s": time.perf_counter() - t0}  # fmt: skip


def run_genlab(sd: Path, images: Path, args: argparse.Namespace, out: Path) -> dict:
    t0 = time.perf_counter()
    from genlab.finetune.train import finetune, lora_config

    ends: list[float] = []
    train = {"steps": args.steps, "batch_size": args.batch, "lr": 1e-4, "seed": 0,
             "checkpoint_every": args.steps, "log_every": 10, "progress": False}  # fmt: skip
    cfg = lora_config(str(sd), str(images), rank=args.rank, alpha=args.rank, train=train)
    finetune(cfg, out, on_step=lambda step, metrics: ends.append(time.perf_counter()))
    return timings(t0, ends)


def run_diffusers(sd: Path, images: Path, args: argparse.Namespace) -> dict:
    """diffusers' example loop: encode images and captions every step, as it does."""
    t0 = time.perf_counter()
    import numpy as np
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from peft import LoraConfig
    from PIL import Image
    from transformers import CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = CLIPTokenizer.from_pretrained(sd, subfolder="tokenizer")
    text = CLIPTextModel.from_pretrained(sd, subfolder="text_encoder").to(device)
    vae = AutoencoderKL.from_pretrained(sd, subfolder="vae").to(device)
    unet = UNet2DConditionModel.from_pretrained(sd, subfolder="unet").to(device)
    schedule = DDPMScheduler.from_pretrained(sd, subfolder="scheduler")
    for m in (text, vae, unet):
        m.requires_grad_(False)
    targets = ["to_k", "to_q", "to_v", "to_out.0"]
    unet.add_adapter(LoraConfig(r=args.rank, lora_alpha=args.rank, target_modules=targets,
                                init_lora_weights="gaussian"))  # fmt: skip
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    files = sorted(images.glob("*.png"))
    pixels = torch.stack([
        torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), np.float32) / 127.5 - 1)
        .permute(2, 0, 1) for f in files
    ])  # fmt: skip
    ids = tokenizer([f.with_suffix(".txt").read_text() for f in files], padding="max_length",
                    max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids  # fmt: skip
    g = torch.Generator().manual_seed(0)
    ends = []
    unet.train()
    for _ in range(args.steps):
        pick = torch.randperm(len(files), generator=g)[: args.batch]
        x, c = pixels[pick].to(device), ids[pick].to(device)
        latents = vae.encode(x).latent_dist.sample() * vae.config.scaling_factor
        noise = torch.randn_like(latents)
        t = torch.randint(0, schedule.config.num_train_timesteps, (len(x),), device=device)
        noisy = schedule.add_noise(latents, noise, t)
        hidden = text(c, return_dict=False)[0]
        pred = unet(noisy, t, hidden, return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        ends.append(time.perf_counter())
    return timings(t0, ends)


def child(args: argparse.Namespace) -> None:
    root = Path(args.root)
    sd, images = root / "sd", root / "images"
    if args.child == "genlab":
        out = run_genlab(sd, images, args, Path(tempfile.mkdtemp(dir=root)) / "run")
    else:
        out = run_diffusers(sd, images, args)
    print(json.dumps(out | {"peak_mib": peak_memory_mib()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", choices=["genlab", "diffusers"], help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from genlab.runs import machine

    with tempfile.TemporaryDirectory() as tmp:
        setup(Path(tmp))
        rows: dict[str, list[dict]] = {"genlab": [], "diffusers": []}
        for _ in range(args.repeats):
            for side in rows:
                cmd = [sys.executable, __file__, "--child", side, "--root", tmp,
                       "--steps", str(args.steps), "--batch", str(args.batch),
                       "--rank", str(args.rank)]  # fmt: skip
                done = subprocess.run(cmd, capture_output=True, text=True, check=True)
                rows[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"machine: {machine()}, torch {torch.__version__}, {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"{args.steps} steps, batch {args.batch}, rank {args.rank}, {SIZE}x{SIZE}, "
          f"{args.repeats} runs each (medians)")  # fmt: skip
    med = {s: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for s, rs in rows.items()}
    print("side       steps/s   to last step (s)   whole run (s)   peak memory (MiB)")
    for side, m in med.items():
        print(f"{side:10s} {m['steps_per_s']:7.2f}   {m['to_last_step_s']:16.1f}   "
              f"{m['wall_s']:13.1f}   {m['peak_mib']:17.0f}")  # fmt: skip
    g, d = med["genlab"], med["diffusers"]
    print(f"genlab / diffusers steps per second: {g['steps_per_s'] / d['steps_per_s']:.2f}x; "
          f"end to end (diffusers' time to the last step over genlab's): "
          f"{d['to_last_step_s'] / g['to_last_step_s']:.2f}x; whole run: "
          f"{d['wall_s'] / g['wall_s']:.2f}x; load average at the end "
          f"{os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
