"""Aspect-ratio buckets, as kohya's sd-scripts makes them (``--enable_bucket``): images keep
their proportions in a few sizes instead of one centre square.

The math, with resolution ``R`` (the base's side), ``step`` s, sides between ``lo`` and ``hi``
(multiples of s, ``lo <= R <= hi``) and area budget ``A = R^2``:

- **The buckets** (``bucket_sizes``, kohya's ``make_bucket_resolutions``): the square
  ``(s floor(R / s))^2``, and for every width ``w = lo, lo + s, ..., hi`` the tallest height
  on the grid that keeps the area within ``A``,
  ``h(w) = min(hi, s floor(A / (w s)))``, kept where ``h(w) >= lo``, with its transpose
  ``(h, w)``. Every side is a multiple of s and every area is at most ``A``, so a batch of a
  bucket costs about what a batch of ``R x R`` squares does.
- **The bucket of an image** ``W x H`` (``nearest_bucket``): the one whose aspect ratio is
  nearest on a log scale, ``argmin_b |log(w_b / h_b) - log(W / H)|``. kohya compares
  ``w / h`` itself; the log makes a tall image and its wide transpose choose transposed
  buckets (2:1 and 1:2 are equally far from 1:1).
- **Without upscaling** (``no_upscale_bucket``, kohya's ``--bucket_no_upscale``): no fixed
  list; the image is scaled by ``k = min(1, sqrt(A / (W H)), hi / W, hi / H)`` (shrunk into
  the area budget and the longest side, never enlarged) and its bucket is that size rounded
  down to the grid, ``(s floor(k W / s), s floor(k H / s))``; a side under ``lo`` means the
  image is too small to train at this resolution without enlarging it.
- **Cover and crop** (``cover_and_crop``): the image is scaled by
  ``c = max(w_b / W, h_b / H)`` (the least scale at which it covers the bucket; at most 1
  without upscaling, since the bucket lies within ``k W x k H``), to ``round(c W) x round(c H)``,
  and the bucket's window is cut from its centre; the window's offset ``(top, left)`` in the
  scaled image is the crop that SDXL's added time ids record, as diffusers'
  ``train_text_to_image_sdxl.py`` computes it (kohya's ``get_crop_ltrb`` instead records the
  offset of a fit-inside letterbox), with the file's ``(height, width)`` as the original size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import DataError

__all__ = [
    "BucketedImages",
    "Buckets",
    "bucket_sizes",
    "cover_and_crop",
    "nearest_bucket",
    "no_upscale_bucket",
]


def bucket_sizes(resolution: int, lo: int, hi: int, step: int) -> list[tuple[int, int]]:
    """The (width, height) buckets of ``resolution``, sides in ``[lo, hi]`` on the ``step``
    grid, areas at most ``resolution ** 2``, sorted (see the module's math)."""
    area = resolution * resolution
    side = (resolution // step) * step
    sizes = {(side, side)}
    for width in range(lo, hi + 1, step):
        height = min(hi, (area // width // step) * step)
        if height >= lo:
            sizes |= {(width, height), (height, width)}
    return sorted(sizes)


def nearest_bucket(width: int, height: int, sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket of ``sizes`` whose aspect ratio is nearest ``width / height`` on a log
    scale (the first of ``sizes`` on a tie)."""
    ratio = math.log(width / height)
    errors = [abs(math.log(w / h) - ratio) for w, h in sizes]
    return sizes[int(np.argmin(errors))]


def no_upscale_bucket(
    width: int, height: int, resolution: int, hi: int, step: int
) -> tuple[int, int]:
    """The bucket of a ``width x height`` image that is never enlarged: shrunk (if need be)
    into the area ``resolution ** 2`` and sides of ``hi``, rounded down to the grid. A side
    may come out under the smallest bucket side (even 0); the caller refuses it."""
    k = min(1.0, math.sqrt(resolution * resolution / (width * height)), hi / width, hi / height)
    return (int(k * width) // step) * step, (int(k * height) // step) * step


def cover_and_crop(
    width: int, height: int, bucket: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """((scaled width, scaled height), (top, left)): the least scaling of a ``width x
    height`` image that covers ``bucket`` (width, height), and the offset of the bucket's
    centred window in it."""
    bw, bh = bucket
    c = max(bw / width, bh / height)
    sw, sh = max(bw, round(width * c)), max(bh, round(height * c))
    return (sw, sh), ((sh - bh) // 2, (sw - bw) // 2)


@dataclass(frozen=True)
class Buckets:
    """A bucketing: ``resolution`` (the base's side), the smallest and largest side ``lo``
    and ``hi`` (0: half and twice the resolution, kohya's 256 and 1024 at 512), the grid
    ``step`` and ``upscale`` (False: kohya's ``--bucket_no_upscale``). Checked when made;
    ``hi`` and ``lo`` as given are kept in config.yaml, the resolved ones here."""

    resolution: int
    lo: int = 0
    hi: int = 0
    step: int = 64
    upscale: bool = True

    def __post_init__(self) -> None:
        step, r = self.step, self.resolution
        if step < 1:
            raise DataError(f"--bucket-step must be a positive number of pixels, got {step}.")
        if r < step:
            raise DataError(f"--bucket-step {step} is larger than the resolution {r}.")
        lo = self.lo or max(step, (r // 2) // step * step)
        hi = self.hi or (2 * r) // step * step
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)
        for name, value in (("--min-bucket", lo), ("--max-bucket", hi)):
            if value % step:
                raise DataError(f"{name} {value} is not a multiple of --bucket-step {step}.")
        if not lo <= r <= hi:
            raise DataError(
                f"The buckets' sides must span the resolution: --min-bucket {lo} <= {r} <= "
                f"--max-bucket {hi}."
            )

    @property
    def sizes(self) -> list[tuple[int, int]]:
        return bucket_sizes(self.resolution, self.lo, self.hi, self.step)

    def assign(self, width: int, height: int, name: str = "an image") -> tuple[int, int]:
        """The (width, height) bucket of a ``width x height`` image called ``name``; one
        sentence when, without upscaling, it is too small for every bucket."""
        if self.upscale:
            return nearest_bucket(width, height, self.sizes)
        bucket = no_upscale_bucket(width, height, self.resolution, self.hi, self.step)
        if min(bucket) < self.lo:
            raise DataError(
                f"{name} is {width}x{height} px: without upscaling (--bucket-no-upscale) it "
                f"fills no bucket of at least {self.lo} px a side; enlarge, crop or remove it, "
                f"or drop --bucket-no-upscale."
            )
        return bucket


@dataclass
class BucketedImages:
    """A folder's images in their buckets, the ``x`` of a bucketed Dataset: ``pixels[i]``
    is image i at its bucket's size (C, height, width), ``original[i]`` the file's (height,
    width) and ``crop[i]`` the (top, left) of its window; sample j is image ``rows[j]``
    (repeats show an image more than once, reading it once). ``shape`` is the nominal
    (samples, C, R, R) of the resolution ``R`` whose area bounds every bucket, the shape
    the base model draws."""

    pixels: list[np.ndarray]
    original: list[tuple[int, int]]
    crop: list[tuple[int, int]]
    resolution: int
    rows: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.rows is None:
            self.rows = np.arange(len(self.pixels))

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        channels = self.pixels[0].shape[0] if self.pixels else 3
        return (len(self.rows), channels, self.resolution, self.resolution)

    def __getitem__(self, index) -> BucketedImages:
        """The samples ``index`` (as a Dataset's subset takes them), the images shared."""
        return replace(self, rows=np.asarray(self.rows)[index])

    def bucket(self, image: int) -> tuple[int, int]:
        """Image ``image``'s bucket, (height, width)."""
        return tuple(self.pixels[image].shape[1:])

    def mirrored(self) -> BucketedImages:
        """Each image mirrored left-right, in the same bucket with the same crop (as
        diffusers' SDXL script flips before it crops: a centred window is symmetric)."""
        pixels = [np.ascontiguousarray(p[..., ::-1]) for p in self.pixels]
        return replace(self, pixels=pixels)
