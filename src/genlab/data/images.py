"""Image data: scikit-learn's digits, MNIST-style IDX files, image folders and .npz arrays.

Images come back as float32 ``(N, C, H, W)``; ``scale`` picks the range: "pm1" for [-1, 1]
(what image models train on) or "unit" for [0, 1].
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import os
import struct
import urllib.request
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import Dataset, check_array

log = logging.getLogger("genlab.data")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _rescale(x01: np.ndarray, scale: str) -> np.ndarray:
    if scale == "unit":
        return x01.astype(np.float32)
    if scale == "pm1":
        return (2.0 * x01 - 1.0).astype(np.float32)
    raise DataError(f"scale must be 'pm1' or 'unit', got '{scale}'.")


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of ``(N, C, H, W)`` float images to ``size`` x ``size``."""
    from PIL import Image

    n, c, h, w = images.shape
    if (h, w) == (size, size):
        return images
    out = np.empty((n, c, size, size), dtype=np.float32)
    for i in range(n):
        for j in range(c):
            img = Image.fromarray(np.ascontiguousarray(images[i, j], dtype=np.float32))
            out[i, j] = np.asarray(img.resize((size, size), Image.Resampling.BILINEAR))
    return out


# The digits are cut once, per class, for evaluation that can be trusted: the feature
# network behind FD / KID / precision-recall trains on "features" (20%, 360 images); the
# generators' recipes train on "models" (the other 1,437), whose run folders hold out 20%
# of it (287 images) as references that neither they nor the feature network have seen.
FEATURE_SHARE, FEATURE_SEED = 0.2, 2026
DIGITS_PARTS = ("all", "models", "features")


def digits_feature_index(labels: np.ndarray) -> np.ndarray:
    """Indices of the "features" part: a seeded 20% of each class."""
    rng = np.random.default_rng(FEATURE_SEED)
    chosen = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        chosen.append(members[: round(FEATURE_SHARE * len(members))])
    return np.sort(np.concatenate(chosen))


def digits(size: int = 8, scale: str = "unit", part: str = "all") -> Dataset:
    """scikit-learn's 1,797 handwritten digits (8x8, labels 0-9), optionally resized;
    ``part``: "all", "models" (what genlab's digit recipes train and evaluate on) or
    "features" (what the digits feature network trained on; disjoint from "models")."""
    from sklearn.datasets import load_digits

    if part not in DIGITS_PARTS:
        raise DataError(f"digits part must be one of {', '.join(DIGITS_PARTS)}, got '{part}'.")
    raw = load_digits()
    x = raw.images.astype(np.float32)[:, None] / 16.0
    if size != 8:
        x = np.clip(resize(x, size), 0.0, 1.0)
    y = raw.target.astype(np.int64)
    if part != "all":
        features = np.zeros(len(y), dtype=bool)
        features[digits_feature_index(y)] = True
        keep = features if part == "features" else ~features
        x, y = x[keep], y[keep]
    return Dataset(
        "digits",
        _rescale(x, scale),
        y,
        f"handwritten digits 0-9, {size}x{size} grayscale"
        + ("" if part == "all" else f", part {part}"),
        "UCI optical recognition of handwritten digits, as shipped by scikit-learn",
        "CC BY 4.0",
        info={"levels": 17},  # pixel values k/16 (resizing blurs them; bounds re-quantize)
    )


# --- MNIST-style IDX files ---------------------------------------------------------------
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MIRRORS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
MD5 = {  # of the .gz files published by each dataset's authors
    "mnist": {
        "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX array (optionally gzipped), checking its header against its size."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path} could not be read as an IDX file ({e}).") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number).")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated (incomplete header).")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    body = data[4 + 4 * ndim :]
    if len(body) != expected:
        raise DataError(f"{path} is truncated or padded: {len(body)} bytes for shape {shape}.")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (root / name).is_file():
            return root / name
    return None


def _download(kind: str, stem: str, root: Path) -> Path:
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("GENLAB_OFFLINE") == "1":
        raise DataError(f"{stem} is missing in {root} and downloads are off (offline mode).")
    root.mkdir(parents=True, exist_ok=True)
    target = root / (stem + ".gz")
    part = target.with_suffix(".gz.part")
    try:
        urllib.request.urlretrieve(MIRRORS[kind] + stem + ".gz", part)
    except OSError as e:
        raise DataError(f"Could not download {stem} for {kind} ({e}); copy it to {root}.") from e
    digest = hashlib.md5(part.read_bytes()).hexdigest()
    if digest != MD5[kind][stem]:
        part.unlink()
        raise DataError(f"Downloaded {stem} has checksum {digest}, expected {MD5[kind][stem]}.")
    part.rename(target)
    return target


def _idx_dataset(kind: str, path: str | Path, split: str, scale: str, download: bool) -> Dataset:
    if split not in IDX_FILES:
        raise DataError(f"split must be 'train' or 'test', got '{split}'.")
    root = Path(path)
    files = []
    for stem in IDX_FILES[split]:
        found = _find(root, stem)
        if found is None:
            if not download:
                raise DataError(
                    f"{stem}[.gz] not found in {root}; pass download=True or copy it there."
                )
            found = _download(kind, stem, root)
        files.append(found)
    images, labels = read_idx(files[0]), read_idx(files[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{files[0].name} and {files[1].name} do not match: images {images.shape}, "
            f"labels {labels.shape}."
        )
    x = images.astype(np.float32)[:, None] / 255.0
    return Dataset(
        kind,
        _rescale(x, scale),
        labels.astype(np.int64),
        f"{kind} {split} split, 28x28 grayscale, 10 classes",
        f"IDX files in {root}",
        "CC BY-SA 3.0" if kind == "mnist" else "MIT",
    )


def mnist(path: str | Path, split: str = "train", scale: str = "pm1", download: bool = False):
    """MNIST from IDX files in ``path`` (downloaded there with checksums if ``download``)."""
    return _idx_dataset("mnist", path, split, scale, download)


def fashion_mnist(
    path: str | Path, split: str = "train", scale: str = "pm1", download: bool = False
):
    """Fashion-MNIST from IDX files in ``path`` (same layout as MNIST)."""
    return _idx_dataset("fashion-mnist", path, split, scale, download)


# --- folders of images and .npz arrays --------------------------------------------------
def _to_mode(img, channels: int):
    from PIL import Image

    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels would otherwise show their hidden colour: put them on white.
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert("L" if channels == 1 else "RGB")  # also handles CMYK, I;16, P


def _eight_bit(img):
    """16-bit and 32-bit integer greyscale scaled to 8 bits (a plain convert would clip)."""
    from PIL import Image

    if img.mode not in ("I", "I;16", "I;16B", "I;16L"):
        return img
    a = np.asarray(img, dtype=np.float64)
    top = 65535.0 if a.max() > 255 else 255.0
    return Image.fromarray(np.clip(a / top * 255.0, 0, 255).round().astype(np.uint8), "L")


def read_image(file: Path, size: int, channels: int) -> np.ndarray:
    """One image file as a float array (channels, size, size) in [0, 1]: EXIF orientation
    applied, first frame of an animation, alpha on white, 16-bit scaled, any mode converted,
    the centre square cropped and resized.
    Raises ValueError with the reason when the file cannot be used."""
    from PIL import Image, ImageOps

    # the centre square, scaled: a photo keeps its proportions (not squashed)
    img = ImageOps.fit(_open_image(file, channels), (size, size), Image.Resampling.BICUBIC)
    return _array(img, channels)


def _open_image(file: Path, channels: int):
    """One image file as a loaded PIL image in mode L or RGB: EXIF orientation applied,
    first frame of an animation, alpha on white, 16-bit scaled, any mode converted.
    Raises ValueError with the reason when the file cannot be used."""
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as img:
                img.load()
                return _to_mode(ImageOps.exif_transpose(_eight_bit(img)), channels)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ValueError(
            f"too many pixels, refused as a possible decompression bomb ({e})"
        ) from None
    except UnidentifiedImageError:
        raise ValueError("not an image") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ValueError(f"unreadable ({e or type(e).__name__})") from None


def _array(img, channels: int) -> np.ndarray:
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def read_bucketed(file: Path, buckets, channels: int) -> tuple[np.ndarray, tuple, tuple]:
    """One image file in its aspect-ratio bucket (``buckets``: a ``data.buckets.Buckets``):
    (pixels (channels, h, w) in [0, 1], the file's (height, width), the crop's (top,
    left)), scaled to cover the bucket and cut at its centre (see data/buckets.py).
    Raises ValueError when the file cannot be used, DataError when it fits no bucket."""
    from PIL import Image

    from .buckets import cover_and_crop

    img = _open_image(file, channels)
    width, height = img.size
    bw, bh = buckets.assign(width, height, file.name)
    (sw, sh), (top, left) = cover_and_crop(width, height, (bw, bh))
    img = img.resize((sw, sh), Image.Resampling.BICUBIC).crop((left, top, left + bw, top + bh))
    return _array(img, channels), (height, width), (top, left)


def image_files(root: Path) -> list[Path]:
    """Files below ``root``, sorted; symlinked folders are not followed (no loops)."""
    import os

    found = []
    for top, _, names in os.walk(root, followlinks=False):
        found += [Path(top) / n for n in names if os.path.isfile(Path(top) / n)]
    return sorted(found)


def folder(
    path: str | Path, size: int = 32, channels: int = 3, scale: str = "pm1",
    captioned: bool = False, caption: str = "", repeats: int = 1, bucket: bool = False,
    min_bucket: int = 0, max_bucket: int = 0, bucket_step: int = 64,
    bucket_no_upscale: bool = False,
) -> Dataset:  # fmt: skip
    """Every usable image below ``path``, resized to ``size`` x ``size`` (``bucket``: each in
    its aspect-ratio bucket instead, see ``data.buckets``; ``x`` is then a BucketedImages).

    Unusable files (corrupt, truncated, empty, not images, decompression bombs) are skipped,
    each logged with its path and reason; ``info["skipped"]`` lists their paths and
    ``info["skip_reasons"]`` maps each to its reason. ``captioned``: each image's record
    holds its caption (for text-to-image training): the text of ``NAME.txt`` beside
    ``NAME.png``, else its ``text`` in a ``metadata.jsonl`` (diffusers' imagefolder:
    ``{"file_name": ..., "text": ...}`` a line, names relative to that file's folder), else
    ``caption``. ``repeats``: each image is seen this many times an epoch, times the ``N`` of
    a kohya-style ``N_name`` folder it lies in (kohya's sd-scripts' repeats).
    ``min_bucket``, ``max_bucket`` (0: half and twice ``size``), ``bucket_step`` and
    ``bucket_no_upscale``: kohya's ``--min_bucket_reso``, ``--max_bucket_reso``,
    ``--bucket_reso_steps`` and ``--bucket_no_upscale``.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"Image folder {root} does not exist.")
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels}.")
    if repeats < 1:
        raise DataError(f"repeats must be at least 1, got {repeats}.")
    read = partial(read_image, size=size, channels=channels)
    if bucket:
        from .buckets import Buckets

        buckets = Buckets(size, min_bucket, max_bucket, bucket_step, not bucket_no_upscale)
        read = partial(read_bucketed, buckets=buckets, channels=channels)
    arrays, reasons, texts, counts = [], {}, [], []
    metadata = _metadata_captions(root) if captioned else {}
    for file in image_files(root):
        if captioned and (file.suffix.lower() == ".txt" or file.name == METADATA):
            continue  # a caption, read with its image
        try:
            arrays.append(read(file))
        except DataError:
            raise  # a usable image that fits no bucket: the user decides, not a skip
        except ValueError as e:
            log.warning("skipped %s: %s", file, e)
            reasons[str(file)] = str(e)
            continue
        if captioned:
            texts.append(_caption(file, metadata.get(file.resolve(), caption)))
        counts.append(repeats * _folder_repeats(file, root))
    if not arrays:
        first = f"; {next(iter(reasons))}: {next(iter(reasons.values()))}" if reasons else ""
        raise DataError(f"No usable image in {root} ({len(reasons)} files skipped{first}).")
    index = np.repeat(np.arange(len(arrays)), counts)
    if bucket:
        x = bucketed_images(arrays, index, size, scale)
    else:
        x = np.clip(np.stack(arrays), 0.0, 1.0)
        x = _rescale(x if len(index) == len(arrays) else x[index], scale)
    if captioned:  # repeats: each image's rows, in order
        texts = [texts[i] for i in index]
    ds = Dataset(root.name, x, None, f"images from {root}", str(root), "the user's own")
    ds.info["skipped"] = list(reasons)
    ds.info["skip_reasons"] = reasons
    if captioned:
        ds.records = [{"captions": [text]} for text in texts]
    return ds


def bucketed_images(read: list[tuple], index: np.ndarray, size: int, scale: str):
    """The BucketedImages of ``read_bucketed``'s results, sample j being image ``index[j]``."""
    from .buckets import BucketedImages

    pixels = [_rescale(np.clip(p, 0.0, 1.0), scale) for p, _, _ in read]
    return BucketedImages(pixels, [o for _, o, _ in read], [c for _, _, c in read], size, index)


#: diffusers' imagefolder captions: one JSON object a line, ``file_name`` and ``text``
METADATA = "metadata.jsonl"


def _metadata_captions(root: Path) -> dict[Path, str]:
    """Captions of every ``metadata.jsonl`` below ``root``: resolved image path -> text."""
    import json

    out: dict[Path, str] = {}
    for meta in (f for f in image_files(root) if f.name == METADATA):
        try:
            lines = meta.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"Cannot read the captions {meta} ({e}).") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict) or not isinstance(row.get("file_name"), str):
                raise DataError(
                    f"{meta} line {number} is not a JSON object with a 'file_name' (diffusers' "
                    f'imagefolder: {{"file_name": "a.png", "text": "a caption"}} a line).'
                )
            text = " ".join(str(row.get("text") or "").split())
            if text:
                out[(meta.parent / row["file_name"]).resolve()] = text
    return out


def _folder_repeats(file: Path, root: Path) -> int:
    """kohya's repeats: the ``N`` of the nearest ``N_name`` folder between ``root`` and
    ``file`` (``10_mychar/`` shows its images ten times an epoch), else 1."""
    for part in reversed(file.relative_to(root).parts[:-1]):
        count, sep, rest = part.partition("_")
        if sep and rest and count.isdigit() and int(count) > 0:
            return int(count)
    return 1


def _caption(image: Path, default: str) -> str:
    """The caption of an image: its NAME.txt (UTF-8, a byte-order mark dropped, whitespace
    collapsed), else ``default``."""
    side = image.with_suffix(".txt")
    if side.is_file():
        try:
            text = " ".join(side.read_text(encoding="utf-8-sig").split())
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"Cannot read the caption {side} ({e}).") from None
        if text:
            return text
    if not default:
        raise DataError(
            f"{image} has no caption: write {side.name} beside it or give one caption for all."
        )
    return default


#: the most memory an .npz file's arrays may take once read (as the floats genlab holds), in
#: bytes: at most NPZ_MAX_RATIO times the file's size on disk (but always 64 MiB), and never
#: over 4 GiB. Real arrays compress a few times; a thousandfold is a decompression bomb.
NPZ_MAX_BYTES, NPZ_MAX_RATIO, NPZ_FLOOR = 4 << 30, 100, 64 << 20


def _npz_checked(archive, path: Path, names: list[str]) -> None:
    """Refuse, before anything is inflated, arrays of ``names`` in the open zip ``archive``
    whose .npy headers promise more memory than the bounds allow (or Python objects)."""
    limit = min(NPZ_MAX_BYTES, max(NPZ_FLOOR, NPZ_MAX_RATIO * path.stat().st_size))
    total = 0
    for name in names:
        member = name + ".npy" if name + ".npy" in archive.namelist() else name
        if not member.endswith(".npy"):
            raise DataError(f"{path}[{name}] is not a .npy array.")
        with archive.open(member) as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else None
            shape, _, dtype = (read or np.lib.format.read_array_header_2_0)(f)
        if dtype.hasobject:
            raise DataError(f"{path}[{name}] holds Python objects, which genlab never unpickles.")
        total += math.prod(shape) * max(dtype.itemsize, 4 if dtype == np.float32 else 8)
        if total > limit:
            raise DataError(
                f"{path} would take {total / 2**20:,.0f} MiB once read from a "
                f"{path.stat().st_size / 2**10:,.0f} KiB file, over genlab's bound of "
                f"{limit / 2**20:,.0f} MiB for it ({NPZ_MAX_RATIO} times its size, at most "
                f"{NPZ_MAX_BYTES >> 30} GiB): a decompression bomb or an array too large."
            )


def npz(path: str | Path, key: str | None = None, labels: str | None = "y") -> Dataset:
    """Arrays from a ``.npz`` file (never unpickled): ``key`` or the first array; labels if any.
    The sizes its headers declare are bounded before any array is inflated; booleans become
    0/1 and a 1-D array one column."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist.")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not an .npz file (a zip archive of .npy arrays).")
    try:
        with np.load(path, allow_pickle=False) as f:
            names = list(f.files)
            if not names:
                raise DataError(f"{path} holds no arrays.")
            name = key or ("x" if "x" in names else names[0])
            if name not in names:
                raise DataError(f"{path} has no array {name!r}; it has {', '.join(names)}.")
            wanted = [name] + ([labels] if labels and labels in names and labels != name else [])
            _npz_checked(f.zip, path, wanted)
            x = f[name]
            y = f[wanted[1]] if len(wanted) > 1 else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path} is not a readable .npz file ({e}).") from e
    if x.dtype.kind == "c":
        raise DataError(f"{path}[{name}] holds complex numbers; genlab models real data.")
    if x.dtype == np.bool_:
        x = x.astype(np.float32)  # yes/no as 1/0
    x = check_array(x, f"{path}[{name}]", ndim=(1, 2, 3, 4))
    if x.ndim == 1:  # one value per sample: a table of one column
        x = x[:, None]
    if x.ndim == 3:  # (N, H, W) grayscale images
        x = x[:, None]
    if y is not None and y.dtype == np.bool_:
        y = y.astype(np.int64)
    if y is not None and (y.ndim != 1 or len(y) != len(x)):
        raise DataError(f"{path}: labels of shape {y.shape} for {len(x)} samples.")
    return Dataset(path.stem, x, y, f"arrays from {path.name}", str(path), "the user's own")
