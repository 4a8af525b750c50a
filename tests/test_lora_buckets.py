"""Aspect-ratio bucketing for LoRA training (kohya's --enable_bucket): the buckets' sizes,
a wide image kept wide, batches that never mix buckets and draw each bucket by its size,
exact resume, SDXL's time ids from each image's original size and crop, and the refusals."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from support.lora_resume import assert_resumes_exactly

from genlab.data.buckets import Buckets, bucket_sizes, cover_and_crop, nearest_bucket

# the tiny pipelines draw 16-px images on a 4-px grid (a 2x autoencoder, one U-Net downsample)
TINY = ["--bucket", "--bucket-step", "4", "--min-bucket", "8", "--max-bucket", "32"]


def _picture(path, width: int, height: int) -> None:
    """A left-dark, right-bright picture of ``width x height`` (a flip or a turn shows)."""
    from PIL import Image

    a = np.zeros((height, width, 3), np.uint8)
    a[:, width // 2 :] = 230
    a[: height // 4, :, 0] = 120  # a red band at the top
    Image.fromarray(a).save(path)


def _folder(root, sizes: dict[str, tuple[int, int]]):
    root.mkdir(parents=True)
    for name, (w, h) in sizes.items():
        _picture(root / f"{name}.png", w, h)
    return root


@pytest.mark.parametrize(
    ("resolution", "lo", "hi", "step"),
    [(512, 256, 1024, 64), (1024, 512, 2048, 64), (768, 320, 1536, 64), (16, 8, 32, 4)],
)
def test_bucket_areas_stay_within_the_resolution_and_sides_on_the_grid(resolution, lo, hi, step):
    sizes = bucket_sizes(resolution, lo, hi, step)
    assert len(sizes) == len(set(sizes)) and (resolution // step * step,) * 2 in sizes
    for w, h in sizes:
        assert w * h <= resolution**2 and w % step == 0 and h % step == 0
        assert lo <= w <= hi and lo <= h <= hi and (h, w) in sizes
    # an independent search: each grid width's tallest grid height within the area and hi
    for w in range(lo, hi + 1, step):
        tallest = max((h for h in range(step, hi + 1, step) if w * h <= resolution**2), default=0)
        if tallest >= lo:
            assert (w, tallest) in sizes
    if resolution == 512:  # kohya's sd-scripts' list at 512 (256..1024, step 64)
        wide = {(w, h) for w, h in sizes if w > h}
        assert wide == {(576, 448), (640, 384), (704, 320), (768, 320), (832, 256),
                        (896, 256), (960, 256), (1024, 256)}  # fmt: skip


def test_nearest_bucket_on_a_log_scale_and_cover_crop_by_hand():
    sizes = bucket_sizes(16, 8, 32, 4)
    assert (24, 8) in sizes and (12, 20) in sizes
    assert nearest_bucket(48, 16, sizes) == (24, 8)  # 3:1 has a bucket of its own
    assert nearest_bucket(16, 48, sizes) == (8, 24)  # the transpose: the transposed bucket
    assert nearest_bucket(16, 40, sizes) == (8, 24)  # |ln(1/3) - ln .4| < |ln .6 - ln .4|
    assert nearest_bucket(30, 50, sizes) == (12, 20)
    for w, h in [(40, 16), (333, 97), (97, 333), (1000, 1000)]:
        bucket = nearest_bucket(w, h, sizes)
        best = min(abs(math.log(bw / bh) - math.log(w / h)) for bw, bh in sizes)
        assert abs(math.log(bucket[0] / bucket[1]) - math.log(w / h)) == best
    # 40x16 into 24x8: scale max(24/40, 8/16) = 0.6 -> 24x10, the centre's top at 1
    assert cover_and_crop(40, 16, (24, 8)) == ((24, 10), (1, 0))
    assert cover_and_crop(100, 10, (24, 8)) == ((80, 8), (0, 28))


def test_a_wide_image_lands_in_a_wide_bucket_and_stays_wide(tmp_path):
    from genlab.data import load

    root = _folder(tmp_path / "d", {"wide": (48, 16), "tall": (16, 40), "square": (20, 20)})
    ds = load("folder", path=root, size=16, bucket=True, bucket_step=4, scale="unit",
              captioned=True, caption="x", repeats=2)  # fmt: skip
    images = ds.x
    assert len(ds) == len(ds.records) == 6 and ds.shape == (3, 16, 16)
    by_name = dict(zip(["square", "tall", "wide"], range(3), strict=True))  # sorted file names
    wide = images.pixels[by_name["wide"]]
    assert wide.shape == (3, 8, 24) and images.original[by_name["wide"]] == (16, 48)
    assert images.pixels[by_name["tall"]].shape == (3, 24, 8)
    assert images.pixels[by_name["square"]].shape == (3, 16, 16)
    # still the same picture: dark left, bright right, the red band on top
    assert wide[1, :, :10].max() < 0.05 and wide[1, :, 14:].min() > 0.8
    assert wide[0, 0, :4].mean() > 0.3 and wide[0, -1, :4].mean() < 0.05
    # 16x40 into 8x24: scale max(8/16, 24/40) = 0.6 -> 10x24, the centre's left at 1
    assert images.crop[by_name["tall"]] == (0, 1) and images.original[by_name["tall"]] == (40, 16)
    mirrored = images.mirrored().pixels[by_name["wide"]]
    np.testing.assert_array_equal(mirrored, wide[..., ::-1])


def test_batches_never_mix_buckets_and_draw_each_by_its_size():
    from genlab.training.buckets import BucketBatches, Bucketed

    part = torch.tensor([0] * 2 + [1] * 6 + [2] * 12)  # 20 samples in buckets of 2, 6, 12
    draw = BucketBatches(part, batch_size=4, seed=3)
    steps = 3000
    batches = [draw(s) for s in range(steps)]
    chosen = np.array([int(part[b[0]]) for b in batches])
    for b in batches:
        assert len(b) == 4 and len(set(part[b].tolist())) == 1  # one bucket a batch
    for bucket, n in enumerate((2, 6, 12)):
        p = n / 20  # chance proportional to size; 5 binomial standard deviations
        assert abs((chosen == bucket).sum() - steps * p) < 5 * math.sqrt(steps * p * (1 - p))
    seen = np.bincount(torch.cat(batches).numpy(), minlength=20)
    for members in (range(0, 2), range(2, 8), range(8, 20)):  # within a bucket: all alike
        counts = seen[list(members)]
        assert counts.max() - counts.min() <= 1
    fresh = BucketBatches(part, batch_size=4, seed=3)  # a resumed run: the same from step k
    for s in (2999, 1500, 17):
        torch.testing.assert_close(fresh(s), batches[s])
    other = BucketBatches(part, batch_size=4, seed=4)
    assert any(not torch.equal(other(s), batches[s]) for s in range(10))  # the seed matters
    x = Bucketed([torch.zeros(2, 1, 2, 2), torch.zeros(6, 1, 2, 4), torch.zeros(12, 1, 4, 2)],
                 part, torch.cat([torch.arange(2), torch.arange(6), torch.arange(12)]))  # fmt: skip
    assert x[torch.tensor([3, 5])].shape == (2, 1, 2, 4)
    with pytest.raises(ValueError, match="mixes buckets"):
        x[torch.tensor([0, 3])]


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    from support.tiny_sd import write_tiny_sd

    return write_tiny_sd(tmp_path_factory.mktemp("sd") / "sd")


def test_bucketed_lora_trainer_batches_come_from_one_bucket(tmp_path, tiny_sd):
    """The Trainer over a LoRA of buckets: latents cached per bucket (wide ones wide), every
    batch of one bucket's shape, and several buckets drawn over the steps."""
    pytest.importorskip("peft")
    from genlab.finetune.train import lora_config
    from genlab.training.buckets import Bucketed
    from genlab.training.runfolder import build
    from genlab.training.trainer import Trainer

    root = _folder(tmp_path / "d", {"a": (48, 16), "b": (40, 16), "c": (16, 40), "d": (20, 20)})
    cfg = lora_config(str(tiny_sd), str(root), caption="a picture",
                      train={"steps": 1, "batch_size": 2, "progress": False},
                      buckets={"bucket": True, "bucket_step": 4})  # fmt: skip
    assert cfg.data_options["bucket"] and cfg.data_options["bucket_step"] == 4
    model, data, train = build(cfg)
    trainer = Trainer(model, data, train)
    assert isinstance(trainer.x, Bucketed)
    assert sorted(trainer.x.shapes) == [(8, 4, 12), (8, 8, 8), (8, 12, 4)]  # moments: 2 x 4
    shapes = set()
    for step in range(12):
        trainer.step = step
        (batch,) = trainer._micro_batches()
        assert len(batch) == 2 and tuple(batch.x.shape[1:]) in trainer.x.shapes
        shapes.add(tuple(batch.x.shape[1:]))
    assert len(shapes) >= 2


def test_bucketed_lora_resumes_exactly(tmp_path, tiny_sd, monkeypatch):
    """With --bucket (and --flip, whose mirrors are cached per bucket too): 3 steps straight
    equal 1 step and --resume latest to 3, bit for bit; the kohya header says so."""
    pytest.importorskip("peft")
    from safetensors import safe_open

    from genlab.training.trainer import Trainer

    # the closing preview draws (20 steps, 4 images) change no weight: skipped for speed
    monkeypatch.setattr(Trainer, "_write_samples", lambda self, final=False: None)

    root = _folder(tmp_path / "d", {"a": (48, 16), "b": (40, 16), "c": (16, 40), "d": (20, 20)})
    common = ["finetune", "lora", "--model", str(tiny_sd), "--data", str(root), "--caption",
              "a picture", "--lr", "0.01", "--batch-size", "2", "--flip", *TINY]  # fmt: skip
    assert_resumes_exactly(common, tmp_path, steps=3, split=1, straight_extra=("--format", "kohya"))
    with safe_open(str(tmp_path / "straight" / "straight.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["ss_enable_bucket"] == "True" and meta["ss_bucket_no_upscale"] == "False"
    assert (meta["ss_min_bucket_reso"], meta["ss_max_bucket_reso"]) == ("8", "32")


def test_sdxl_time_ids_are_each_images_original_size_and_crop(tmp_path):
    """SDXL with buckets: each sample's added time ids are (original h, w, crop top, left,
    bucket h, w), worked out by hand, and the training step feeds them to the U-Net."""
    pytest.importorskip("peft")
    from support.tiny_sd import write_tiny_sdxl

    from genlab.data import load
    from genlab.finetune.model import LoRA
    from genlab.training.batch import Batch

    folder = write_tiny_sdxl(tmp_path / "xl")
    root = _folder(tmp_path / "d", {"a": (40, 16), "b": (16, 16)})
    data = load("folder", path=root, size=16, bucket=True, bucket_step=4, captioned=True,
                caption="a square")  # fmt: skip
    lora = LoRA(data.shape, base=str(folder))
    x, cond = lora.training_data(data)
    # 40x16 -> bucket 24x8, scaled by 0.6 to 24x10, cut 1 px from the top; 16x16 -> 16x16
    expected = torch.tensor([[16, 40, 1, 0, 8, 24], [16, 16, 0, 0, 16, 16]], dtype=torch.float32)
    torch.testing.assert_close(cond.time_ids, expected)
    lora.net.train()
    first = torch.tensor([0])
    losses = []
    for ids in (cond.time_ids, torch.zeros_like(cond.time_ids)):
        torch.manual_seed(0)
        batch = Batch(x[first], dataclasses.replace(cond[first], time_ids=ids[first]))
        losses.append(lora.training_step(batch)["loss"])
    assert torch.isfinite(losses[0]) and losses[0] != losses[1]


def test_refusals_are_one_sentence(tmp_path, tiny_sd, capsys):
    """Too small to bucket without upscaling, --bucket on the built-in model, a bucket flag
    without --bucket, a step off the model's grid: exit 2, one sentence, no model."""
    from genlab.cli import main

    root = _folder(tmp_path / "d", {"big": (40, 16), "small": (6, 6)})
    out = tmp_path / "run"
    base = ["finetune", "lora", "--model", str(tiny_sd), "--data", str(root), "--caption", "a",
            "--steps", "1", "--batch-size", "1", "--out", str(out)]  # fmt: skip
    capsys.readouterr()
    assert main([*base, *TINY, "--bucket-no-upscale"]) == 2
    err = capsys.readouterr().err
    (line,) = [t for t in err.splitlines() if "small.png" in t]
    assert "small.png is 6x6 px" in line and line.endswith("drop --bucket-no-upscale.")
    assert "Traceback" not in err
    assert main([*base, "--bucket", "--bucket-step", "6", "--min-bucket", "12",
                 "--max-bucket", "36"]) == 2  # fmt: skip
    assert "multiples of 4 px" in capsys.readouterr().err
    assert main([*base, "--min-bucket", "8"]) == 2
    assert "--min-bucket needs --bucket" in capsys.readouterr().err
    imgs = ["--data", str(root), "--caption", "a", "--steps", "1", "--out", str(out)]
    assert main(["finetune", "lora", *imgs, "--bucket"]) == 2
    assert "Stable Diffusion or SDXL base" in capsys.readouterr().err
    assert not (out / "model").exists()
    with pytest.raises(Exception, match="multiple of --bucket-step"):
        Buckets(16, 10, 32, 4)
    # with upscaling, the small image simply joins the square bucket
    assert Buckets(16, 8, 32, 4).assign(6, 6) == (16, 16)


def test_the_train_tabs_switch_reaches_the_run_config(tmp_path):
    """The page's "aspect-ratio buckets" switch goes to lora_config: on the built-in model
    it is refused in the same sentence as the CLI's, before any work."""
    from genlab.errors import GenlabError
    from genlab.webui import training
    from genlab.webui.catalog import Catalog
    from genlab.webui.handlers import Handlers
    from genlab.webui.server import prepare_out
    from genlab.webui.studio import Studio

    page = Handlers(Studio(Catalog(runs_dir=str(tmp_path / "runs")), prepare_out(tmp_path / "o")))
    with pytest.raises(GenlabError, match="Stable Diffusion or SDXL base"):
        next(page.train(None, training.EXAMPLE_DATASET, "", "wide", "builtin", 2, 2, 1e-3,
                        False, bucket=True))  # fmt: skip
    assert not (training.lora_root(page.catalog.runs_dir) / "wide" / "config.yaml").exists()
