"""The Stable Diffusion back end's speed switches on a tiny pipeline: the default ones
(channels-last, VAE slicing) change no picture; bf16-mixed keeps the sampler in float32
and stays close to it; the CLI's flags reach the placement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.generation import GenerationRequest


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    from support.tiny_sd import write_tiny_sd

    return write_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny-sd")


def draw(backend) -> np.ndarray:
    request = GenerationRequest("a red circle", steps=3, seed=2, batch_size=2, width=16, height=16)
    images = backend(request).images
    return np.stack([np.asarray(im, dtype=np.int16) for im in images])


def test_default_speedups_change_no_picture(sd_folder):
    from genlab.interop.diffusers.backend import StableDiffusionBackend
    from genlab.interop.diffusers.speed import NONE

    fast = StableDiffusionBackend(sd_folder)
    plain = StableDiffusionBackend(sd_folder, speed=NONE)
    assert fast.pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert fast.pipe.vae.use_slicing and not plain.pipe.vae.use_slicing
    assert np.abs(draw(fast) - draw(plain)).max() <= 1


def test_bf16_mixed_runs_the_unet_in_bf16_and_returns_float32(sd_folder):
    from genlab.generation.placement import Placement
    from genlab.interop.diffusers.backend import StableDiffusionBackend

    mixed = StableDiffusionBackend(sd_folder, placement=Placement(dtype="bf16-mixed"))
    full = StableDiffusionBackend(sd_folder)
    unet = mixed.pipe.unet
    assert unet.conv_in.weight.dtype == torch.float32  # weights stay float32
    x, t = torch.randn(2, 4, 8, 8), torch.tensor(10)
    ctx = torch.randn(2, 77, unet.config.cross_attention_dim)
    seen = []
    hook = unet.conv_in.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    with torch.no_grad():
        got = unet(x, t, encoder_hidden_states=ctx).sample
        want = full.pipe.unet(x, t, encoder_hidden_states=ctx).sample
    hook.remove()
    assert seen == [torch.bfloat16] and got.dtype == torch.float32
    assert (got - want).norm() / want.norm() < 0.05  # bf16's 8 bits of mantissa, not garbage
    assert (got - want).abs().max() > 0  # it did run in another precision


def test_cli_flags_reach_the_placement():
    import argparse

    from genlab.cli.common import placement, placement_flags

    p = argparse.ArgumentParser()
    placement_flags(p)
    place = placement(p.parse_args(["--dtype", "bf16-mixed", "--vae-tiling"]))
    assert place.dtype == "bf16-mixed" and place.vae_tiling
    assert not placement(p.parse_args([])).vae_tiling
