"""Where a Stable Diffusion pipeline runs and in what precision, with diffusers' two memory
savers. These paths matter on GPUs; on a CPU the default (float32, no savers) is right.

- ``device``: "cuda", "cuda:1", "mps", "cpu" (default: the CPU).
- ``dtype``: "fp32", "fp16" or "bf16" weights and activations; fp16 is for GPUs (many CPU
  kernels lack it), bf16 suits recent GPUs and CPUs. "bf16-mixed": float32 weights, the
  U-Net's matrix products and convolutions in bf16 under autocast (norms, softmax and the
  sampler stay float32): on a CPU with native bf16 (avx512_bf16, AMX) nearly twice the
  U-Net's speed, pixels a little different (measured in docs/results.md).
- ``vae_tiling``: the autoencoder decodes overlapping tiles (SDXL at 1024 in far less
  memory; seams are blended, so pixels differ slightly from an untiled decode).
- ``attention_slicing``: attention computed a slice at a time (less memory, a little slower).
- ``cpu_offload``: each model moved to the GPU only while it runs (diffusers' model CPU
  offload, through accelerate): only the running model takes GPU memory.

Noise is always drawn on the CPU from each image's seed, so a seed gives the same picture
on every device, up to the device's rounding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import GenlabError

DTYPES = ("fp32", "fp16", "bf16", "bf16-mixed")


@dataclass(frozen=True)
class Placement:
    device: str | None = None
    dtype: str = "fp32"
    attention_slicing: bool = False
    cpu_offload: bool = False
    vae_tiling: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise GenlabError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}.")
        if self.cpu_offload and self.target.split(":")[0] != "cuda":
            raise GenlabError("--cpu-offload moves models to a GPU as they run: it needs CUDA.")
        if self.device is None and not self.cpu_offload:
            return  # the CPU: nothing to check (and torch not imported for it)
        import torch

        try:
            torch.device(self.target)
        except RuntimeError:
            raise GenlabError(
                f"Unknown device '{self.target}' (cpu, cuda, cuda:1, mps ...)."
            ) from None
        if self.target.startswith("cuda") and not torch.cuda.is_available():
            raise GenlabError(
                f"The device {self.target} was asked for; this machine has no CUDA GPU torch "
                "can use."
            )

    @property
    def target(self) -> str:
        """The device: the one given, else the GPU for offloading and the CPU otherwise."""
        return self.device or ("cuda" if self.cpu_offload else "cpu")

    def apply(self, pipe: Any) -> None:
        """Move ``pipe`` where this placement says, in its precision."""
        import torch

        device = self.target
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.dtype, torch.float32)
        if dtype != torch.float32:
            pipe.to(dtype=dtype)
        if self.cpu_offload:
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        if self.attention_slicing:
            pipe.enable_attention_slicing()
        if self.vae_tiling:
            pipe.vae.enable_tiling()
        if self.dtype == "bf16-mixed":
            mixed_forward(pipe.unet, torch.bfloat16)


def mixed_forward(net: Any, dtype: Any) -> None:
    """``net``'s forward under autocast to ``dtype`` on its device, its output back in
    float32: the sampler's arithmetic (which accumulates over steps) stays in full precision."""
    import functools

    import torch

    forward = net.forward

    @functools.wraps(forward)
    def mixed(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(net.device.type, dtype=dtype):
            out = forward(*args, **kwargs)
        if isinstance(out, tuple):
            return tuple(o.float() if torch.is_tensor(o) else o for o in out)
        out.sample = out.sample.float()
        return out

    net.forward = mixed


CPU = Placement()
