"""The Inception-v3 network of the FID paper (Heusel et al., 2017), for Inception FID.

This is the TensorFlow graph "2015-12-05" that FID is defined on, written as PyTorch
modules whose parameter names are those of the widely used PyTorch port of its weights
(the file torch-fidelity and pytorch-fid load), so that state dict loads here unchanged
once converted to safetensors. genlab never downloads it and never unpickles it: the user
supplies the safetensors file by path, and its sha256 is recorded with every figure.

It differs from torchvision's Inception3 where TensorFlow did: average pools ignore the
padding, the last block pools by max, and images are resized the way TensorFlow 1 resized
them (bilinear, no half-pixel offset). Input: uint8 RGB images (N, 3, H, W) in [0, 255];
output: the 2,048 pooled features FID compares.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenlabError

SIZE = 299


def resize_like_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize with TensorFlow 1's coordinates: output pixel i reads input
    position i * (in / out), not the (i + 0.5) * (in / out) - 0.5 of align_corners=False."""
    for dim in (2, 3):
        n_in = x.shape[dim]
        pos = torch.arange(size, dtype=torch.float64) * (n_in / size)
        lo = pos.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        w = (pos - lo).to(x.dtype)
        shape = [1, 1, 1, 1]
        shape[dim] = size
        a, b = x.index_select(dim, lo), x.index_select(dim, hi)
        x = a + (b - a) * w.view(shape)
    return x


class BasicConv2d(nn.Module):
    """Convolution (no bias), batch norm (eps 1e-3, as in TensorFlow), ReLU."""

    def __init__(self, c_in: int, c_out: int, **conv) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, bias=False, **conv)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pool divides by the number of real (unpadded) inputs.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):  # 35x35: 1x1, 5x5, double 3x3, pool
    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg_pool(x)),
            ],
            1,
        )


class InceptionB(nn.Module):  # 35x35 -> 17x17
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, stride=2),
            ],
            1,
        )


class InceptionC(nn.Module):  # 17x17: factorized 7x7 convolutions
    def __init__(self, c_in: int, c7: int) -> None:
        super().__init__()
        row, col = (
            {"kernel_size": (1, 7), "padding": (0, 3)},
            {"kernel_size": (7, 1), "padding": (3, 0)},
        )
        self.branch1x1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, **row)
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        dbl = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4):
            dbl = conv(dbl)
        dbl = self.branch7x7dbl_5(dbl)
        return torch.cat([self.branch1x1(x), seven, dbl, self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):  # 17x17 -> 8x8
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7x3_1(x)
        for conv in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            seven = conv(seven)
        three = self.branch3x3_2(self.branch3x3_1(x))
        return torch.cat([three, seven, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):  # 8x8: expanded filter bank; ``pool``: "avg" or "max"
    def __init__(self, c_in: int, pool: str) -> None:
        super().__init__()
        row, col = (
            {"kernel_size": (1, 3), "padding": (0, 1)},
            {"kernel_size": (3, 1), "padding": (1, 0)},
        )
        self.pool = pool
        self.branch1x1 = BasicConv2d(c_in, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, **row)
        self.branch3x3_2b = BasicConv2d(384, 384, **col)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, **row)
        self.branch3x3dbl_3b = BasicConv2d(384, 384, **col)
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        three = self.branch3x3_1(x)
        dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        # The graph's last block max-pools where torchvision's averages (a known quirk).
        pooled = _avg_pool(x) if self.pool == "avg" else F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(three),
                self.branch3x3_2b(three),
                self.branch3x3dbl_3a(dbl),
                self.branch3x3dbl_3b(dbl),
                self.branch_pool(pooled),
            ],
            1,
        )


class FIDInception(nn.Module):
    """uint8 RGB images (N, 3, H, W) -> (N, 2048) pool features of the FID network."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, c7=128)
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FIDInception:
        return super().train(False)  # batch norm always uses the stored statistics

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise GenlabError("The FID network takes uint8 RGB images shaped (N, 3, H, W).")
        x = resize_like_tf1(images.float(), SIZE)
        x = (x - 128) / 128
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean((2, 3))


def load_fid_inception(path: str | Path) -> tuple[FIDInception, str]:
    """The FID network with weights from a safetensors file; returns it and the file's
    sha256. The classifier head (fc.*) the file may hold is not needed and is ignored."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..hashing import sha256

    path = Path(path)
    if not path.is_file():
        raise GenlabError(f"Inception weights not found: {path}.")
    if path.suffix != ".safetensors":
        raise GenlabError(
            f"{path} is not a .safetensors file; genlab does not unpickle weight files. "
            "Convert the FID Inception weights to safetensors first (see docs/metrics.md)."
        )
    try:
        state = load_file(str(path))
    except SafetensorError as e:
        raise GenlabError(f"{path} is not a readable safetensors file ({e}).") from None
    net = FIDInception()
    expected = net.state_dict()
    # Files converted from older PyTorch lack the batch-norm step counters; they are unused.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or wrong:
        example = (missing or wrong)[0]
        raise GenlabError(
            f"{path} does not hold the FID Inception weights ({len(missing)} tensors missing, "
            f"{len(wrong)} of the wrong shape, e.g. '{example}')."
        )
    net.load_state_dict({k: state[k] for k in expected if k in state}, strict=False)
    return net, sha256(path)


def to_uint8_rgb(x, low: float) -> torch.Tensor:
    """Images (N, C, H, W) with values in [low, 1] -> uint8 RGB (gray repeated 3 times)."""
    x = torch.as_tensor(x, dtype=torch.float32)
    x = ((x - low) / (1 - low)).clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def inception_fid(real, fake, weights: str | Path, *, low: float = 0.0, batch: int = 50):
    """Inception FID between two image sets (values in [low, 1]) through torchmetrics'
    FrechetInceptionDistance, fed by genlab's FID network with the user's weights.
    Returns (FID, sha256 of the weights file)."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError:
        raise GenlabError("Inception FID needs torchmetrics: pip install 'genlab[fid]'.") from None
    net, digest = load_fid_inception(weights)
    metric = FrechetInceptionDistance(feature=net)
    for images, is_real in ((real, True), (fake, False)):
        images = to_uint8_rgb(images, low)
        for i in range(0, len(images), batch):
            metric.update(images[i : i + batch], real=is_real)
    return float(metric.compute()), digest
