"""Step caching (DeepCache, nn/deepcache.py): off, it is the plain network bit for bit; on
with interval N, a draw of S steps makes ceil(S / N) full U-Net calls and the others run
only the shallow path; a partial call fed the full call's own input gives the full call's
output exactly (the cached feature is wired where the deep path's was); cached pictures
differ from uncached ones, by a bounded amount. On genlab's U-Net and on diffusers'
UNet2DConditionModel (tiny, random weights)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.generation import GenerationRequest, parse_parameters
from genlab.nn.deepcache import deep_cache, unet_path
from genlab.nn.unet import UNet

PROMPT = "a red circle to the left of a blue square"


def randomized(module: nn.Module, seed: int = 0) -> nn.Module:
    """Every zero-initialized weight (the U-Net's head and the attentions' output
    projections) drawn small and random: an untrained U-Net then has outputs that depend
    on every block, which the caching can change."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return module


@pytest.fixture(scope="module")
def tiny_model():
    from genlab.models.kl_autoencoder import KLAutoencoder
    from genlab.models.latent_diffusion import LatentDiffusion

    torch.manual_seed(0)
    vae = KLAutoencoder((3, 32, 32), widths=(8, 8, 8))
    model = LatentDiffusion(
        (3, 32, 32), autoencoder_config=vae.get_config(), text_encoder="tiny",
        channels=(16, 32), attention=True,
    )  # fmt: skip
    randomized(model.net.denoiser)
    return model


def pixels(result) -> np.ndarray:
    return np.stack([np.asarray(im, dtype=np.int16) for im in result.images])


def calls_of(module: nn.Module, counter: list) -> torch.utils.hooks.RemovableHandle:
    return module.register_forward_hook(lambda *_: counter.append(1))


# --- genlab's U-Net -----------------------------------------------------------------------


def test_interval_one_is_the_uncached_image_exactly(tiny_model):
    from genlab.pipelines.text_to_image import TextToImagePipeline

    pipe = TextToImagePipeline(tiny_model)
    plain = pipe(GenerationRequest(PROMPT, steps=4, seed=3, batch_size=2))
    off = pipe(GenerationRequest(PROMPT, steps=4, seed=3, batch_size=2, deepcache=1))
    assert np.array_equal(pixels(plain), pixels(off))
    assert "DeepCache" not in off.parameters[0]


@pytest.mark.parametrize("interval, steps", [(2, 5), (3, 7), (5, 4)])
def test_full_unet_calls_are_ceil_steps_over_interval(tiny_model, interval, steps):
    from genlab.pipelines.text_to_image import TextToImagePipeline

    unet = tiny_model.net.denoiser.net.unet
    calls, deep, shallow = [], [], []
    hooks = [calls_of(unet, calls), calls_of(unet.mid1.conv1, deep), calls_of(unet.stem, shallow)]
    try:
        TextToImagePipeline(tiny_model)(
            GenerationRequest(PROMPT, steps=steps, seed=1, deepcache=interval)
        )
    finally:
        for h in hooks:
            h.remove()
    # dpmpp-2m: one guided (batched) U-Net call a step; the middle runs on full calls only
    assert len(calls) == len(shallow) == steps
    assert len(deep) == math.ceil(steps / interval)
    assert "forward" not in vars(unet.mid1)  # the leaves are given back after the draw


@pytest.mark.parametrize("branch", [0, 1, 2, 3])
def test_a_partial_call_on_the_full_calls_input_is_the_full_output(branch):
    torch.manual_seed(0)
    unet = randomized(UNet(4, (16, 32), blocks=1, attention=True, context_dim=8)).eval()
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([300.0, 700.0])
    ctx = (torch.randn(2, 3, 8), torch.ones(2, 3, dtype=torch.bool))
    with torch.no_grad():
        want = unet(x, t, context=ctx)
        deep: list = []
        hook = calls_of(unet.mid2.conv2, deep)
        with deep_cache(unet, unet_path(unet), 4, branch) as state:
            full = unet(x, t, context=ctx)
            again = unet(x, t, context=ctx)  # partial: the deep path replayed
            moved = unet(x + 0.5, t, context=ctx)  # partial, on another input
        hook.remove()
        fresh = unet(x + 0.5, t, context=ctx)
    assert state.full_calls == 1 and len(deep) == 1
    assert torch.equal(full, want) and torch.equal(again, want)
    # the shallow path did run on the new input: the output moved, and not to the full
    # network's output there (the deep features are the old input's)
    assert not torch.allclose(moved, want) and not torch.allclose(moved, fresh)


def test_branches_run_deeper_the_larger_they_are():
    unet = UNet(4, (16, 32), blocks=1, attention=True, context_dim=8)
    path = unet_path(unet)
    sizes = [len(path.deep(b)) for b in range(path.skips)]
    assert path.skips == len(unet.down) + 1 == 4
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 3  # deepest: the middle only
    with pytest.raises(GenlabError, match="branch must be a skip"):
        path.deep(path.skips)


def test_a_new_input_shape_makes_the_next_call_full():
    unet = randomized(UNet(4, (16, 32), context_dim=8)).eval()
    ctx = lambda n: (torch.randn(n, 3, 8), torch.ones(n, 3, dtype=torch.bool))  # noqa: E731
    with torch.no_grad(), deep_cache(unet, unet_path(unet), 10) as state:
        unet(torch.randn(2, 4, 8, 8), torch.full((2,), 500.0), context=ctx(2))
        unet(torch.randn(4, 4, 8, 8), torch.full((4,), 400.0), context=ctx(4))
        unet(torch.randn(4, 4, 8, 8), torch.full((4,), 300.0), context=ctx(4))
    assert state.full_calls == 2


def test_cached_pictures_differ_from_uncached_by_a_bounded_amount(tiny_model):
    from genlab.pipelines.text_to_image import TextToImagePipeline

    pipe = TextToImagePipeline(tiny_model)
    ask = dict(steps=8, seed=5, batch_size=2)
    plain = pixels(pipe(GenerationRequest(PROMPT, **ask)))
    diffs = {}
    for interval in (2, 4):
        cached = pipe(GenerationRequest(PROMPT, **ask, deepcache=interval))
        diffs[interval] = np.abs(pixels(cached) - plain)
        assert "DeepCache: " + str(interval) in cached.parameters[0]
    # lossy, and the more so the rarer the full calls; bounded: a picture of the same draw
    # (mean difference under 8 of 255 levels on this random U-Net, whose uncached pictures
    # themselves span the whole range; 2.4 and 2.9 when written)
    assert 0 < diffs[2].mean() < diffs[4].mean() < 8.0
    assert diffs[4].max() <= 64


def test_parameters_record_step_caching_and_read_back():
    from genlab.generation.pnginfo import format_parameters, request_from_parameters

    request = GenerationRequest(PROMPT, deepcache=3, deepcache_branch=1, width=32, height=32)
    text = format_parameters(request, 0)
    assert parse_parameters(text)["DeepCache"] == "3"
    fields = request_from_parameters(text)
    assert fields["deepcache"] == 3 and fields["deepcache_branch"] == 1
    assert "DeepCache" not in format_parameters(GenerationRequest(PROMPT), 0)


@pytest.mark.parametrize(
    "fields, message",
    [({"deepcache": 0}, "deepcache must be a whole number from 1"),
     ({"deepcache": 2.5}, "deepcache must be"), ({"deepcache_branch": -1}, "deepcache_branch")],
)  # fmt: skip
def test_bad_intervals_and_branches_are_one_sentence(fields, message):
    with pytest.raises(GenlabError, match=message):
        GenerationRequest(PROMPT, **fields)


def test_cli_flag_draws_cached_and_refuses_bad_values(tiny_model, tmp_path, capsys):
    from genlab.cli import main

    tiny_model.save(tmp_path / "ld")
    args = ["txt2img", PROMPT, "--model", str(tmp_path / "ld"), "--steps", "4"]
    assert main([*args, "--deepcache", "2", "--out", str(tmp_path / "a.png")]) == 0
    from genlab.generation import read_parameters

    assert parse_parameters(read_parameters(tmp_path / "a.png"))["DeepCache"] == "2"
    assert main([*args, "--deepcache", "0", "--out", str(tmp_path / "b.png")]) == 2
    assert "deepcache must be a whole number from 1" in capsys.readouterr().err
    bad_branch = ["--deepcache", "2", "--deepcache-branch", "9", "--out", str(tmp_path / "c.png")]
    assert main([*args, *bad_branch]) == 2
    assert "branch must be a skip of this U-Net, 0 to 3" in capsys.readouterr().err
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "c.png").exists()


def test_help_labels_it_lossy(capsys):
    from genlab.cli import main

    for command in ("txt2img", "img2img", "eval-t2i"):
        assert main([command, "--help"]) == 0
        shown = " ".join(capsys.readouterr().out.split())
        assert "--deepcache N LOSSY speed-up, off by default" in shown


# --- diffusers' UNet2DConditionModel --------------------------------------------------------


@pytest.fixture(scope="module")
def sd_backend(tmp_path_factory):
    pytest.importorskip("diffusers")
    from support.tiny_sd import write_tiny_sd

    from genlab.interop.diffusers.backend import StableDiffusionBackend

    return StableDiffusionBackend(write_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny-sd"))


def sd_ask(**extra) -> GenerationRequest:
    return GenerationRequest("a red circle", steps=7, seed=2, batch_size=2, width=16, height=16,
                             **extra)  # fmt: skip


def test_sd_interval_one_is_exact_and_interval_n_calls_the_unet_in_full_ceil_s_over_n(
    sd_backend,
):
    unet = sd_backend.pipe.unet
    plain = pixels(sd_backend(sd_ask()))
    assert np.array_equal(pixels(sd_backend(sd_ask(deepcache=1))), plain)
    calls, deep = [], []
    hooks = [calls_of(unet, calls), calls_of(unet.mid_block.resnets[0], deep)]
    try:
        cached = sd_backend(sd_ask(deepcache=3))
    finally:
        for h in hooks:
            h.remove()
    assert len(calls) == 7 and len(deep) == math.ceil(7 / 3)
    diff = np.abs(pixels(cached) - plain)
    assert 0 < diff.mean() < 8.0  # random weights: noise pictures, still the same draw (2.0)
    assert "forward" not in vars(unet.mid_block)


def test_sd_partial_call_on_the_full_calls_input_is_the_full_output(sd_backend):
    from genlab.interop.diffusers.deepcache import unet_path

    unet = sd_backend.pipe.unet
    path = unet_path(unet)
    x, t = torch.randn(2, 4, 8, 8), torch.tensor(500)
    ctx = torch.randn(2, 77, unet.config.cross_attention_dim)
    with torch.no_grad():
        want = unet(x, t, encoder_hidden_states=ctx).sample
        for branch in range(path.skips):
            with deep_cache(unet, path, 5, branch):
                full = unet(x, t, encoder_hidden_states=ctx).sample
                again = unet(x, t, encoder_hidden_states=ctx).sample
                moved = unet(x + 0.5, t, encoder_hidden_states=ctx).sample
            assert torch.equal(full, want) and torch.equal(again, want)
            assert not torch.allclose(moved, want)


def test_sd_branches_follow_deepcaches_own_block_and_layer_rule():
    """On Stable Diffusion 1.5's layout (4 levels of 2 layers), branch b = 3 * block + layer
    runs exactly what DeepCache's Stable Diffusion helper runs: the down layers before
    (block, layer) and the up layers up to it, counted from the outside."""
    pytest.importorskip("diffusers")
    from diffusers import UNet2DConditionModel

    from genlab.interop.diffusers.deepcache import unet_path

    unet = UNet2DConditionModel(
        sample_size=8, block_out_channels=(8, 8, 8, 8), layers_per_block=2,
        cross_attention_dim=8, attention_head_dim=2, norm_num_groups=4,
    )  # fmt: skip
    path = unet_path(unet)
    assert path.skips == 12
    for branch in range(12):
        cb, cl = divmod(branch, 3)
        want = set()
        for i, block in enumerate(unet.down_blocks):
            attentions = getattr(block, "attentions", None) or [None] * len(block.resnets)
            layers = [(r, a) for r, a in zip(block.resnets, attentions, strict=True)]
            layers += [(d, None) for d in block.downsamplers or []]
            for j, leaves in enumerate(layers):
                if not (i < cb or (i == cb and j < cl)):
                    want |= {id(m) for m in leaves if m is not None}
        want.add(id(unet.mid_block))
        n = len(unet.up_blocks)
        for k, block in enumerate(unet.up_blocks):
            i = n - 1 - k  # DeepCache counts the up blocks from the outside
            attentions = getattr(block, "attentions", None) or [None] * len(block.resnets)
            for r, (resnet, attn) in enumerate(zip(block.resnets, attentions, strict=True)):
                j = len(block.resnets) - 1 - r
                if not (i < cb or (i == cb and j <= cl)):
                    want |= {id(m) for m in (resnet, attn) if m is not None}
            if i > cb:
                want |= {id(m) for m in block.upsamplers or []}
        assert {id(m) for m in path.deep(branch)} == want, branch


def test_sd_refuses_caching_a_compiled_unet(sd_backend):
    from genlab.interop.diffusers.speed import Speed

    backend = type(sd_backend)(sd_backend.path, speed=Speed(compile=True))
    with pytest.raises(GenlabError, match="compiled U-Net"):
        backend._deep_cache(sd_ask(deepcache=2))


def test_the_http_apis_deepcache_fields_reach_the_request():
    pytest.importorskip("fastapi")
    from types import SimpleNamespace

    from genlab.webui import api_schema
    from genlab.webui.api import Refused, build_request

    api = SimpleNamespace(catalog=None)  # no <lora:...> tag: the catalog is not read
    body = api_schema.Txt2ImgRequest(prompt="x", seed=1, deepcache=3, deepcache_branch=1)
    request = build_request(api, body)
    assert (request.deepcache, request.deepcache_branch) == (3, 1)
    assert build_request(api, api_schema.Txt2ImgRequest(prompt="x", seed=1)).deepcache == 1
    with pytest.raises(Refused, match="deepcache must be a whole number from 1"):
        build_request(api, api_schema.Txt2ImgRequest(prompt="x", seed=1, deepcache=0))
