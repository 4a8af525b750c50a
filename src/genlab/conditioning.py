"""Conditions travel as data: one ``Condition`` carries whatever a network is conditioned on
(class labels, token embeddings with their attention mask) and says explicitly which samples
are unconditional.

Like k-diffusion's ``extra_args``, a condition passes through samplers and guidance untouched;
only the network's condition embedding reads it. There is no sentinel label: a sample is
unconditional because ``null`` says so, and classifier-free guidance builds its unconditional
half with ``Condition.unconditional(n)`` (labels) or the encoded negative prompt (text).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

FIELDS = ("labels", "tokens", "mask", "ids", "time_ids")
SEQUENCES = ("tokens", "mask", "ids")  # padded to a common length when stacked


@dataclass(frozen=True)
class Condition:
    """What ``n`` samples are conditioned on.

    labels : (n,) int64 class indices
    tokens : (n, L, D) token embeddings (a text encoder's output)
    mask   : (n, L) bool, True where a token is real (not padding)
    ids    : (n, L) int64 token ids, for a text encoder trained with the network (which
             embeds them itself); a frozen encoder's output comes as ``tokens``
    null   : (n,) bool, True where a sample is unconditional; None means none is
    pooled : (n, D) a pooled text embedding (SDXL's second encoder joins it to the time ids)
    time_ids : (n, 6) SDXL's added time ids of each sample where they differ by sample
             (aspect-ratio buckets): original (height, width), crop (top, left), target
             (height, width)
    """

    labels: torch.Tensor | None = None
    tokens: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    null: torch.Tensor | None = None
    ids: torch.Tensor | None = None
    pooled: torch.Tensor | None = None
    time_ids: torch.Tensor | None = None

    def __post_init__(self) -> None:
        sizes = {len(t) for t in self._tensors().values()}
        if len(sizes) > 1:
            raise ValueError(f"A condition's fields disagree on the batch size: {sorted(sizes)}.")

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }

    def __len__(self) -> int:
        return len(next(iter(self._tensors().values()), ()))

    @classmethod
    def from_labels(cls, labels) -> Condition:
        return cls(labels=torch.as_tensor(labels).long())

    @classmethod
    def unconditional(cls, n: int, device: torch.device | str = "cpu") -> Condition:
        """``n`` samples with no condition at all (the "null" half of guidance)."""
        return cls(null=torch.ones(n, dtype=torch.bool, device=device))

    def null_mask(self, n: int | None = None, device=None) -> torch.Tensor:
        """(n,) bool: which samples are unconditional (all False when ``null`` is None)."""
        if self.null is not None:
            return self.null
        n = len(self) if n is None else n
        return torch.zeros(n, dtype=torch.bool, device=device)

    def drop(
        self, p: float, generator: torch.Generator | None = None, per: str = "sample"
    ) -> Condition:
        """Made unconditional with chance ``p`` (training for guidance): each sample on its
        own (``per="sample"``, as most libraries do), or the whole batch at once
        (``per="batch"``, as some textbooks' code does). Both teach the unconditional model
        on a fraction ``p`` of the samples; the batch version mixes no conditional and
        unconditional samples within one gradient step."""
        if per not in ("sample", "batch"):
            raise ValueError(f"per must be 'sample' or 'batch', got '{per}'.")
        n = len(self)
        device = next(iter(self._tensors().values())).device
        draws = 1 if per == "batch" else n
        dropped = (torch.rand(draws, generator=generator, device=device) < p).expand(n)
        return replace(self, null=self.null_mask(n, device) | dropped)

    def to(self, device) -> Condition:
        return replace(self, **{k: v.to(device) for k, v in self._tensors().items()})

    def __getitem__(self, index) -> Condition:
        return replace(self, **{k: v[index] for k, v in self._tensors().items()})

    @staticmethod
    def cat(parts: list[Condition]) -> Condition:
        """Stack conditions along the batch. A field one part lacks is filled with zeros, which
        is allowed only where that part's samples are all unconditional; token sequences of
        different lengths (a prompt and a negative prompt) are padded to the longest, the
        padding masked out."""
        out = {}
        for name in FIELDS:
            present = [getattr(c, name) for c in parts if getattr(c, name) is not None]
            if not present:
                continue
            like = present[0]
            pieces = []
            for c in parts:
                value = getattr(c, name)
                if value is None:
                    if not bool(c.null_mask(len(c), like.device).all()):
                        raise ValueError(f"Cannot stack a condition without {name} unless null.")
                    value = torch.zeros(
                        (len(c), *like.shape[1:]), dtype=like.dtype, device=like.device
                    )
                pieces.append(value)
            if name in SEQUENCES:
                length = max(p.shape[1] for p in pieces)
                pieces = [_pad(p, length) for p in pieces]
            out[name] = torch.cat(pieces)
        if any(c.null is not None for c in parts):
            out["null"] = torch.cat([c.null_mask(len(c), _device(c)) for c in parts])
        return Condition(**out)


def _device(c: Condition):
    tensors = c._tensors()
    return next(iter(tensors.values())).device if tensors else "cpu"


def _pad(t: torch.Tensor, length: int) -> torch.Tensor:
    """``t`` (n, L, ...) padded with zeros (False for a mask) to (n, length, ...)."""
    if t.shape[1] == length:
        return t
    pad = torch.zeros(
        (t.shape[0], length - t.shape[1], *t.shape[2:]), dtype=t.dtype, device=t.device
    )
    return torch.cat([t, pad], 1)
