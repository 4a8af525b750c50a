"""Where a Stable Diffusion pipeline runs and in what precision, with diffusers' two memory
savers. These paths matter on GPUs; on a CPU the default (float32, no savers) is right.

- ``device``: "cuda", "cuda:1", "mps", "cpu" (default: the CPU).
- ``dtype``: "fp32", "fp16" or "bf16" weights and activations; fp16 is for GPUs (many CPU
  kernels lack it), bf16 suits recent GPUs and CPUs.
- ``attention_slicing``: attention computed a slice at a time (less memory, a little slower).
- ``cpu_offload``: each model moved to the GPU only while it runs (diffusers' model CPU
  offload, through accelerate): only the running model takes GPU memory.

Noise is always drawn on the CPU from each image's seed, so a seed gives the same picture
on every device, up to the device's rounding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import GenlabError

DTYPES = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class Placement:
    device: str | None = None
    dtype: str = "fp32"
    attention_slicing: bool = False
    cpu_offload: bool = False

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
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.dtype]
        if dtype != torch.float32:
            pipe.to(dtype=dtype)
        if self.cpu_offload:
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        if self.attention_slicing:
            pipe.enable_attention_slicing()


CPU = Placement()
