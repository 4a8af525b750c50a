"""Token merging for Stable Diffusion (ToMe; Bolya & Hoffman, 2023, "Token Merging for Fast
Stable Diffusion"): attention sees N - r tokens of an image's N, and every position still gets
an output. LOSSY: merged tokens share one output, so the image changes (docs/results.md has
the measured difference); off unless a ratio is given.

The algorithm, for the tokens x (B, N, C) of an h x w feature map and r = floor(ratio N):

1. Split (bipartite, on a 2-D grid). Cut the map into sy x sx cells (2 x 2). In every whole
   cell one token, drawn at random, is a *destination*; all other tokens (those of cells cut
   by the border included) are *sources*. A grid keeps destinations spread over the image,
   so no region loses all its tokens; drawing the destination within its cell (seeded, anew
   at every call) keeps the merges from always falling on the same pixels, which the paper
   found removes the grid artifacts of a fixed choice.
2. Score. Cosine similarity of every source to every destination, on a metric: the block's
   input tokens (before its normalization, as the reference code does).
3. Match (soft, greedy). Each source's most similar destination; the r sources with the
   highest similarity are merged into theirs, the rest are kept. Sources never merge into
   sources, so no chain of merges forms and one pass suffices.
4. Merge: [kept sources, destinations] (N - r tokens), a destination replaced by the mean of
   itself and the sources merged into it. Attention (and, optionally, the MLP) runs on these.
5. Unmerge: each output returns to its token's position; a merged source takes its
   destination's output.

Where the tokens of a merged group are equal, merging and unmerging change nothing: a group's
mean is each of them, and attention over a set with duplicate keys gives the same output when
the duplicates' values are equal too (a whole map of one token is exact). With r = 0 the plan
is a permutation and its inverse.

The random draw of step 1 is one per call, shared by the batch: classifier-free guidance's two
halves (one batch) then merge on the same grid, and image i of a batch merges as it does
alone. ``TokenMerging.reset`` restarts the draws, so a seed gives the same image every time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import GenlabError


@dataclass(frozen=True)
class MergePlan:
    """One call's matching. Index tensors: ``src`` (Ns,) and ``dst`` (Nd,) token positions;
    ``kept`` (B, Ns - r), ``merged`` (B, r): positions within ``src``; ``into`` (B, r): the
    destination (a position within ``dst``) each merged source joins."""

    n: int
    src: torch.Tensor
    dst: torch.Tensor
    kept: torch.Tensor
    merged: torch.Tensor
    into: torch.Tensor

    @property
    def r(self) -> int:
        return self.merged.shape[1]

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) -> (B, N - r, C): kept sources, then destinations (means of their groups)."""
        b, _, c = x.shape
        src, dst = x[:, self.src], x[:, self.dst]
        kept = src.gather(1, self.kept[..., None].expand(b, -1, c))
        moved = src.gather(1, self.merged[..., None].expand(b, -1, c))
        index = self.into[..., None].expand(b, -1, c)
        dst = dst.scatter_reduce(1, index, moved, reduce="mean", include_self=True)
        return torch.cat([kept, dst], 1)

    def unmerge(self, y: torch.Tensor) -> torch.Tensor:
        """(B, N - r, C) -> (B, N, C): every token the output of the group it was merged into."""
        b, _, c = y.shape
        k = self.kept.shape[1]
        kept, dst = y[:, :k], y[:, k:]
        out = y.new_empty(b, self.n, c)
        out[:, self.dst] = dst
        at_kept = self.src[self.kept]  # (B, Ns - r) positions in the image
        out.scatter_(1, at_kept[..., None].expand(b, -1, c), kept)
        at_merged = self.src[self.merged]  # (B, r)
        moved = dst.gather(1, self.into[..., None].expand(b, -1, c))
        out.scatter_(1, at_merged[..., None].expand(b, -1, c), moved)
        return out


def destinations(
    h: int, w: int, stride: tuple[int, int] = (2, 2), generator: torch.Generator | None = None
) -> torch.Tensor:
    """Positions (Nd,) in an h x w map, one per whole sy x sx cell: a random one of the cell
    drawn from ``generator``, or its top-left token without one."""
    sy, sx = stride
    hs, ws = h // sy, w // sx
    if generator is None:
        offset = torch.zeros(hs, ws, dtype=torch.long)
    else:
        offset = torch.randint(sy * sx, (hs, ws), generator=generator, device=generator.device)
        offset = offset.cpu()
    rows = torch.arange(hs)[:, None] * sy + offset // sx
    cols = torch.arange(ws)[None, :] * sx + offset % sx
    return (rows * w + cols).flatten()


def bipartite_soft_matching(
    metric: torch.Tensor, h: int, w: int, r: int, stride: tuple[int, int] = (2, 2),
    generator: torch.Generator | None = None,
) -> MergePlan:  # fmt: skip
    """The plan merging r of the h * w tokens whose features are ``metric`` (B, N, C) (steps
    1-3 of the module's docstring); r is capped at the number of sources."""
    n = metric.shape[1]
    if n != h * w:
        raise ValueError(f"{n} tokens are not an {h}x{w} map")
    device = metric.device
    with torch.no_grad():
        dst = destinations(h, w, stride, generator).to(device)
        is_dst = torch.zeros(n, dtype=torch.bool, device=device)
        is_dst[dst] = True
        src = torch.arange(n, device=device)[~is_dst]
        if len(dst) == 0:  # a map smaller than one cell: nothing to merge into
            kept = torch.arange(n, device=device).expand(metric.shape[0], n)
            none = kept[:, :0]
            return MergePlan(n, src, dst, kept, none, none)
        unit = metric / metric.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        scores = unit[:, src] @ unit[:, dst].transpose(1, 2)  # (B, Ns, Nd) cosine
        best, into = scores.max(dim=-1)  # each source's most similar destination
        # stable: equal scores (a map of equal tokens) give the same plan on every machine
        order = best.argsort(dim=-1, descending=True, stable=True)
        r = max(0, min(r, len(src)))
        merged, kept = order[:, :r], order[:, r:]
        into = into.gather(1, merged)
    return MergePlan(n, src, dst, kept, merged, into)


class TokenMerging:
    """The settings of ToMe for a U-Net, and its seeded draws. ``ratio``: the share of a
    map's tokens merged, in [0, 1 - 1/(sy sx)] (0.75 for the 2 x 2 grid: at most all the
    sources); ``max_downsample``: merged only in attention over maps at most this many times
    smaller than the finest map that has attention (1: that one only, the reference code's
    default, where attention is quadratic in the most tokens; SD 1.x's latents, SDXL's
    2x smaller level, which is its finest with attention); ``mlp``: also merge before the
    transformer block's MLP (the reference code advises against it: more loss);
    ``random``: draw each cell's destination (else its top-left token); ``seed``."""

    def __init__(
        self, ratio: float, *, max_downsample: int = 1, stride: tuple[int, int] = (2, 2),
        mlp: bool = False, random: bool = True, seed: int = 0,
    ) -> None:  # fmt: skip
        sy, sx = stride
        most = 1.0 - 1.0 / (sy * sx)
        if not 0.0 <= ratio <= most:
            raise GenlabError(
                f"The token merging ratio must lie in [0, {most:g}] (the share of tokens "
                f"merged; 0 is off), got {ratio:g}."
            )
        if max_downsample < 1:
            raise GenlabError(f"max_downsample must be at least 1, got {max_downsample}.")
        self.ratio, self.max_downsample, self.stride = float(ratio), int(max_downsample), stride
        self.mlp, self.random, self.seed = mlp, random, seed
        self.generator = torch.Generator().manual_seed(seed)

    def __repr__(self) -> str:
        return f"TokenMerging(ratio={self.ratio:g}, max_downsample={self.max_downsample})"

    def reset(self) -> None:
        """Restart the destination draws (before each image: the same seed, the same image)."""
        self.generator.manual_seed(self.seed)

    def applies(self, downsample: int) -> bool:
        """Whether attention over a map ``downsample`` times smaller than the finest map with
        attention merges."""
        return downsample <= self.max_downsample

    def plan(self, metric: torch.Tensor, h: int, w: int) -> MergePlan:
        """This call's plan for an h x w map of tokens ``metric`` (B, h * w, C)."""
        r = int(self.ratio * h * w)
        return bipartite_soft_matching(
            metric, h, w, r, self.stride, self.generator if self.random else None
        )
