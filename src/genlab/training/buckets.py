"""Training samples of several shapes (latents of aspect-ratio buckets) and the batches
drawn from them: every batch from one bucket, each step's batch a function of (seed, step)
alone, so a resumed run draws what the uninterrupted one would have.

The draw of step ``s`` (``BucketBatches``), with buckets of ``n_b`` samples, ``N = sum n_b``
and batch size ``B``:

- the bucket ``b_s`` is drawn with chance ``n_b / N`` (in blocks of steps, each block by its
  own seeded generator, so no draw depends on the run's length);
- the batch is the next ``B`` samples of bucket ``b_s``'s stream: its seeded permutations,
  epoch after epoch, one after another (the ``k``-th visit to a bucket takes positions
  ``kB .. kB + B - 1``).

A sample of bucket b is then in a step's batch ``(n_b / N) (B / n_b) = B / N`` times on
average, the same for every sample whatever its bucket's size, as in one shuffled batch of
all; within a bucket every sample is seen once before any is seen again (a bucket smaller
than ``B``, or a batch across two of its epochs, may hold a sample twice).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["BucketBatches", "Bucketed"]

#: steps whose buckets one seeded generator draws
BLOCK = 1024


class Bucketed:
    """Samples of several shapes: ``parts[p]`` stacks the distinct entries of bucket p
    (an entry is read once, even when several samples share it: an image's captions and
    repeats); sample i is entry ``row[i]`` of part ``part[i]``. Indexing by the indices of
    one batch gives one tensor (the samples must share a part: a batch never mixes
    buckets)."""

    def __init__(self, parts: list[torch.Tensor], part: torch.Tensor, row: torch.Tensor) -> None:
        self.parts = list(parts)
        self.part, self.row = torch.as_tensor(part).long(), torch.as_tensor(row).long()

    def __len__(self) -> int:
        return len(self.part)

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        index = torch.as_tensor(index).long()
        parts = self.part[index].unique()
        if len(parts) != 1:
            raise ValueError(f"A batch mixes buckets {parts.tolist()}; draw it from one.")
        return self.parts[int(parts[0])][self.row[index]]

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(p.shape[1:]) for p in self.parts]

    def join_channels(self, other: Bucketed) -> Bucketed:
        """Each entry with ``other``'s (same parts and rows) stacked on the channel axis."""
        parts = [torch.cat([a, b], dim=1) for a, b in zip(self.parts, other.parts, strict=True)]
        return Bucketed(parts, self.part, self.row)


class BucketBatches:
    """``draw(step)``: the global indices of the batch of ``step`` (see the module's math);
    ``part``: each sample's bucket."""

    def __init__(self, part: torch.Tensor, batch_size: int, seed: int) -> None:
        part = torch.as_tensor(part).long().numpy()
        self.members = [np.flatnonzero(part == p) for p in range(int(part.max()) + 1)]
        sizes = np.array([len(m) for m in self.members], dtype=np.float64)
        self.chance = sizes / sizes.sum()
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.bucket = np.zeros(0, dtype=np.int64)  # the bucket of each step drawn so far
        self.visit = np.zeros(0, dtype=np.int64)  # how many earlier steps drew that bucket

    def _extend(self, steps: int) -> None:
        """Draw the buckets of the blocks that hold steps ``0 .. steps - 1``."""
        while len(self.bucket) < steps:
            block = len(self.bucket) // BLOCK
            rng = np.random.default_rng([self.seed, 0, block])
            drawn = rng.choice(len(self.chance), size=BLOCK, p=self.chance)
            seen = np.bincount(self.bucket, minlength=len(self.chance))
            visit = np.empty(BLOCK, dtype=np.int64)
            for i, b in enumerate(drawn):
                visit[i], seen[b] = seen[b], seen[b] + 1
            self.bucket = np.concatenate([self.bucket, drawn])
            self.visit = np.concatenate([self.visit, visit])

    def __call__(self, step: int) -> torch.Tensor:
        self._extend(step + 1)
        b, k = int(self.bucket[step]), int(self.visit[step])
        members = self.members[b]
        n = len(members)
        positions = np.arange(k * self.batch_size, (k + 1) * self.batch_size)
        epochs, offsets = np.divmod(positions, n)
        out = np.empty(self.batch_size, dtype=np.int64)
        for epoch in np.unique(epochs):  # one or a few: the permutations of those epochs
            order = np.random.default_rng([self.seed, 1, b, int(epoch)]).permutation(n)
            here = epochs == epoch
            out[here] = members[order[offsets[here]]]
        return torch.from_numpy(out)
