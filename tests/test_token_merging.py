"""Token merging (ToMe, genlab.nn.token_merging): the algorithm against the reference code
(tomesd) where it is installed, its exact cases (r = 0, identical tokens), the token count
attention sees, and the switch in genlab's U-Net, diffusers' U-Net, both back ends and the
command line (off by default: the exact image)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genlab.errors import GenlabError
from genlab.nn.token_merging import (
    TokenMerging,
    bipartite_soft_matching,
    destinations,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors gain nothing from a second thread on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def attend(x: torch.Tensor) -> torch.Tensor:
    """Self-attention of tokens (B, N, C) on themselves: what ToMe puts between merge and
    unmerge (its output does not depend on the order of the tokens)."""
    return F.scaled_dot_product_attention(x[:, None], x[:, None], x[:, None])[:, 0]


# --- the algorithm ----------------------------------------------------------------------
@pytest.mark.parametrize(("h", "w"), [(8, 8), (5, 7), (1, 1)])
def test_merge_then_unmerge_of_r_zero_is_identity(h, w):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, h * w, 6, generator=g)
    plan = bipartite_soft_matching(x, h, w, 0, generator=g)
    merged = plan.merge(x)
    assert merged.shape == x.shape
    assert torch.equal(plan.unmerge(merged), x)
    # a permutation: the same tokens in another order
    assert torch.equal(merged.sort(1).values, x.sort(1).values)


@pytest.mark.parametrize(("h", "w", "r"), [(8, 8, 32), (8, 8, 48), (5, 7, 10), (6, 6, 99)])
def test_merge_averages_each_group_and_unmerge_copies_it_back(h, w, r):
    """Against a plain loop over the plan's groups: a destination's merged token is the mean
    of its group, each member gets the group's output back; r is capped at the sources."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, h * w, 4, generator=g)
    plan = bipartite_soft_matching(x, h, w, r, generator=g)
    sources = h * w - (h // 2) * (w // 2)
    assert plan.r == min(r, sources)
    merged = plan.merge(x)
    assert merged.shape == (2, h * w - plan.r, 4)
    back = plan.unmerge(merged)
    for b in range(2):
        group = {int(d): [int(d)] for d in plan.dst}
        for m, d in zip(plan.merged[b], plan.into[b], strict=True):
            group[int(plan.dst[d])].append(int(plan.src[m]))
        for members in group.values():
            mean = x[b, members].mean(0)
            for i in members:
                assert torch.allclose(back[b, i], mean, atol=1e-6)
        for k in plan.src[plan.kept[b]]:
            assert torch.equal(back[b, int(k)], x[b, int(k)])
    # and unmerging then merging gives the merged tokens again
    assert torch.allclose(plan.merge(plan.unmerge(merged)), merged, atol=1e-6)


def test_destinations_are_one_per_whole_cell_and_seeded():
    g = torch.Generator().manual_seed(3)
    dst = destinations(7, 9, (2, 2), g)
    assert len(dst) == 3 * 4
    rows, cols = dst // 9, dst % 9
    cells = sorted(zip((rows // 2).tolist(), (cols // 2).tolist(), strict=True))
    assert cells == [(i, j) for i in range(3) for j in range(4)]  # one in each, none in row 6
    again = destinations(7, 9, (2, 2), torch.Generator().manual_seed(3))
    assert torch.equal(dst, again)
    top_left = destinations(4, 4, (2, 2), None)
    assert top_left.tolist() == [0, 2, 8, 10]


def test_identical_tokens_merge_exactly():
    """A map of one token repeated: attention on the merged tokens, unmerged, is the
    attention on all of them (a group's mean is the token; equal keys share equal values)."""
    token = torch.randn(1, 1, 8, generator=torch.Generator().manual_seed(4))
    x = token.expand(2, 64, 8).contiguous()
    plan = bipartite_soft_matching(x, 8, 8, 48, generator=torch.Generator().manual_seed(0))
    assert plan.r == 48
    assert torch.allclose(plan.unmerge(attend(plan.merge(x))), attend(x), atol=1e-6)


def test_settings_refuse_a_ratio_outside_the_grid_in_one_sentence():
    for bad in (-0.1, 0.8, float("nan")):
        with pytest.raises(GenlabError, match="token merging ratio") as e:
            TokenMerging(bad)
        assert "\n" not in str(e.value)
    TokenMerging(0.75)  # every source merged: the most the 2x2 grid allows


@pytest.mark.parametrize("random", [False, True])
def test_matches_the_reference_code(random):
    """tomesd's bipartite_soft_matching_random2d (the paper's code) and genlab's plan give
    the same unmerge(attention(merge(x))), with and without the random destinations drawn
    from the same seeded generator."""
    tomesd = pytest.importorskip("tomesd.merge")
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 12 * 10, 16, generator=g)
    r = 60
    theirs_m, theirs_u = tomesd.bipartite_soft_matching_random2d(
        x, w=10, h=12, sx=2, sy=2, r=r, no_rand=not random,
        generator=torch.Generator().manual_seed(9),
    )  # fmt: skip
    ours = bipartite_soft_matching(
        x, 12, 10, r, generator=torch.Generator().manual_seed(9) if random else None
    )
    want = theirs_u(attend(theirs_m(x)))
    got = ours.unmerge(attend(ours.merge(x)))
    assert torch.allclose(got, want, atol=1e-5)


# --- genlab's U-Net ----------------------------------------------------------------------
def small_unet():
    from genlab.nn.unet import UNet

    torch.manual_seed(0)
    net = UNet(4, (16, 32), 1, True, 0, 12).eval()
    with torch.no_grad():  # random output projections: an untrained block is the identity
        for p in net.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape) * 0.1)
    return net


def context(n: int = 2, length: int = 5):
    g = torch.Generator().manual_seed(7)
    return torch.randn(n, length, 12, generator=g), torch.ones(n, length, dtype=torch.bool)


def test_unet_merges_only_at_its_highest_resolution_and_switches_off_exactly():
    net = small_unet()
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(8))
    t = torch.tensor([10.0, 500.0])
    with torch.no_grad():
        exact = net(x, t, context=context())
        merging = TokenMerging(0.5)
        net.use_token_merging(merging)
        on = {level for level, m in net.attention_levels() if m.merging is merging}
        assert on == {0}
        assert all(m.merging is None for level, m in net.attention_levels() if level > 0)
        merged = net(x, t, context=context())
        net.use_token_merging(None)
        again = net(x, t, context=context())
    assert torch.equal(again, exact)
    assert not torch.allclose(merged, exact, atol=1e-4)  # lossy: it does change the output
    assert (merged - exact).abs().max() < 0.5 * exact.abs().max()  # ... but not wholly


def test_cross_attention_sees_n_minus_r_queries_and_identical_tokens_are_exact():
    from genlab.nn.unet import CrossAttention

    torch.manual_seed(1)
    attn = CrossAttention(16, 12).eval()
    with torch.no_grad():
        attn.out.weight.normal_()
    seen = []
    attn.q.register_forward_hook(lambda m, a, out: seen.append(out.shape))
    tokens = context()
    flat = torch.randn(2, 16, 1, 1).expand(2, 16, 8, 8).contiguous()  # one token everywhere
    with torch.no_grad():
        exact = attn(flat, tokens)
        attn.merging = TokenMerging(0.5)
        merged = attn(flat, tokens)
    assert seen[0][2:] == (8, 8) and seen[1][2] * seen[1][3] == 64 - 32
    assert torch.allclose(merged, exact, atol=1e-5)


def test_self_attention_sees_n_minus_r_tokens():
    from genlab.nn.unet import Attention

    torch.manual_seed(2)
    attn = Attention(16).eval()
    seen = []
    attn.qkv.register_forward_hook(lambda m, a, out: seen.append(out.shape[2] * out.shape[3]))
    x = torch.randn(1, 16, 6, 6)
    with torch.no_grad():
        attn.merging = TokenMerging(0.25)
        attn(x)
    assert seen == [36 - 9]


# --- diffusers' U-Net --------------------------------------------------------------------
@pytest.fixture(scope="module")
def sd_unet():
    pytest.importorskip("diffusers")
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
        layers_per_block=1, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
        attention_head_dim=8, norm_num_groups=8,
    ).eval()  # fmt: skip


def unet_inputs():
    g = torch.Generator().manual_seed(3)
    return torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 5, 32, generator=g)


def test_diffusers_unet_self_attention_sees_n_minus_r_and_removal_is_exact(sd_unet):
    from genlab.interop.diffusers import token_merging

    x, text = unet_inputs()
    seen = []
    hooks = [
        block.attn1.to_q.register_forward_hook(lambda m, a, out: seen.append(out.shape[1]))
        for block in sd_unet.modules()
        if type(block).__name__ == "BasicTransformerBlock"
    ]
    with torch.no_grad():
        exact = sd_unet(x, 10, encoder_hidden_states=text).sample
        exact_seen = list(seen)
        patch = token_merging.apply(sd_unet, TokenMerging(0.5))
        seen.clear()
        merged = sd_unet(x, 10, encoder_hidden_states=text).sample
        merged_seen = list(seen)
        patch.remove()
        again = sd_unet(x, 10, encoder_hidden_states=text).sample
    for h in hooks:
        h.remove()
    # the transformers in forward order: down 8x8, middle 4x4, up 8x8 (two)
    assert exact_seen == [64, 16, 64, 64]
    assert merged_seen == [64 - 32, 16, 64 - 32, 64 - 32]  # only the 8x8 level merges
    assert torch.equal(again, exact)
    assert not torch.allclose(merged, exact, atol=1e-4)


def test_diffusers_unet_matches_the_reference_patch(sd_unet):
    """tomesd.apply_patch on the same U-Net (its own patched block class) and genlab's hooks
    give the same U-Net output for the same seeded destination draws."""
    tomesd = pytest.importorskip("tomesd")
    from genlab.interop.diffusers import token_merging

    x, text = unet_inputs()
    with torch.no_grad():
        patch = token_merging.apply(sd_unet, TokenMerging(0.5, seed=11))
        ours = sd_unet(x, 10, encoder_hidden_states=text).sample
        patch.remove()
        tomesd.apply_patch(sd_unet, ratio=0.5)
        sd_unet._tome_info["args"]["generator"] = torch.Generator().manual_seed(11)
        try:
            theirs = sd_unet(x, 10, encoder_hidden_states=text).sample
        finally:
            tomesd.remove_patch(sd_unet)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_diffusers_identical_tokens_are_exact(sd_unet):
    from genlab.interop.diffusers import token_merging

    transformer = sd_unet.down_blocks[0].attentions[0]
    flat = torch.randn(2, 32, 1, 1).expand(2, 32, 8, 8).contiguous()
    _, text = unet_inputs()
    with torch.no_grad():
        exact = transformer(flat, encoder_hidden_states=text, return_dict=False)[0]
        patch = token_merging.apply(sd_unet, TokenMerging(0.75, mlp=True))
        merged = transformer(flat, encoder_hidden_states=text, return_dict=False)[0]
        patch.remove()
    assert torch.allclose(merged, exact, atol=1e-5)


# --- the back ends and the command line ----------------------------------------------------
def pixels(result) -> np.ndarray:
    return np.stack([np.asarray(im, dtype=np.int16) for im in result.images])


def test_builtin_ratio_zero_is_the_exact_image_and_a_ratio_is_seeded():
    from genlab.backends import resolve
    from genlab.generation import GenerationRequest

    pipe = resolve("builtin")  # a fresh one: the kept back end of other tests stays off
    request = GenerationRequest("a red circle left of a blue square", steps=3, seed=2,
                                batch_size=2)  # fmt: skip
    exact = pipe(request)
    pipe.use_token_merging(0.5)
    merged, merged_again = pipe(request), pipe(request)
    singles = [pipe(GenerationRequest(request.prompt, steps=3, seed=s)) for s in (2, 3)]
    pipe.use_token_merging(0)
    off = pipe(request)
    assert np.array_equal(pixels(off), pixels(exact))
    assert "Token merging" not in off.parameters[0]
    assert np.array_equal(pixels(merged), pixels(merged_again))  # the same seed, the same image
    # image i of a batch merges as it does alone (one grid draw a call, shared by the
    # batch), up to the rounding of batched convolutions (tests/test_backend_contract.py)
    diff = np.abs(pixels(merged) - np.concatenate([pixels(s) for s in singles]))
    assert diff.max() <= 2 and (diff > 0).mean() < 0.01, (diff.max(), (diff > 0).mean())
    assert "Token merging ratio: 0.5" in merged.parameters[0]
    assert not np.array_equal(pixels(merged), pixels(exact))


def test_stable_diffusion_ratio_zero_is_the_exact_image(tmp_path):
    pytest.importorskip("diffusers")
    from support.tiny_sd import write_tiny_sd

    from genlab.backends import resolve
    from genlab.generation import GenerationRequest

    pipe = resolve(str(write_tiny_sd(tmp_path / "tiny-sd")))
    request = GenerationRequest("a red circle", steps=2, seed=1)
    exact = pipe(request)
    pipe.use_token_merging(0.5)
    merged, merged_again = pipe(request), pipe(request)
    pipe.use_token_merging(0)
    off = pipe(request)
    assert np.array_equal(pixels(off), pixels(exact))
    assert np.array_equal(pixels(merged), pixels(merged_again))
    assert "Token merging ratio: 0.5" in merged.parameters[0]
    assert not np.array_equal(pixels(merged), pixels(exact))


def test_cli_tome_is_labelled_lossy_refuses_bad_ratios_and_redraws_from_png(tmp_path, capsys):
    from genlab.backends import load_backend
    from genlab.cli import main
    from genlab.generation import read_parameters

    for command in ("txt2img", "eval-t2i"):
        assert main([command, "--help"]) == 0
        assert "LOSSY speed-up" in capsys.readouterr().out
    out = tmp_path / "m.png"
    common = ["--steps", "2", "--seed", "4"]
    try:
        code = main(["txt2img", "a red circle", "--tome", "0.9", *common, "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and not out.exists()
        assert "token merging ratio" in err and err.count("\n") == 1
        assert main(["txt2img", "a red circle", "--tome", "0.5", *common, "--out", str(out)]) == 0
        assert "Token merging ratio: 0.5" in read_parameters(out)
        again = tmp_path / "again.png"
        assert main(["txt2img", "--from-png", str(out), "--out", str(again)]) == 0
        assert np.array_equal(np.asarray(_open(again)), np.asarray(_open(out)))
    finally:
        load_backend("builtin").use_token_merging(0)  # the kept back end, for other tests


def _open(path):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def test_sdxl_merges_at_its_finest_level_with_attention():
    """SDXL has no attention at its latents' resolution: the settings count from its finest
    level with attention (a tiny SDXL U-Net as tests/support/tiny_sd.py builds it: every
    transformer runs at 4x4 here, the middle included, as the levels rule gives)."""
    pytest.importorskip("diffusers")
    from diffusers import UNet2DConditionModel

    from genlab.interop.diffusers import token_merging

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
        layers_per_block=2, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=32 + 48,
        cross_attention_dim=64, norm_num_groups=8,
    ).eval()  # fmt: skip
    assert [d for d, _ in token_merging.levels(unet)][:1] == [2]
    seen = []
    for block in unet.modules():
        if type(block).__name__ == "BasicTransformerBlock":
            block.attn1.to_q.register_forward_hook(lambda m, a, out: seen.append(out.shape[1]))
    g = torch.Generator().manual_seed(0)
    x, text = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 5, 64, generator=g)
    added = {"text_embeds": torch.randn(2, 32, generator=g), "time_ids": torch.zeros(2, 6)}
    token_merging.apply(unet, TokenMerging(0.5))
    with torch.no_grad():
        unet(x, 10, encoder_hidden_states=text, added_cond_kwargs=added)
    assert seen and set(seen) == {16 - 8}
