"""Text-to-image: text encoders, cross-attention, latent diffusion, the pipeline, txt2img."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.conditioning import Condition
from genlab.data import load
from genlab.errors import GenlabError
from genlab.generation import GenerationRequest, parse_parameters, read_parameters
from genlab.models.kl_autoencoder import KLAutoencoder
from genlab.models.latent_diffusion import LatentDiffusion
from genlab.models.latent_sampling import conditions
from genlab.nn.unet import UNet
from genlab.pipelines.text_to_image import TextToImagePipeline
from genlab.text import text_encoder


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A latent diffusion model with the trainable encoder, trained a few steps."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("t2i")
    KLAutoencoder((3, 32, 32), widths=(8, 8, 8)).save(folder / "ae")
    model = LatentDiffusion(
        (3, 32, 32), autoencoder=str(folder / "ae"), text_encoder="tiny", channels=(16, 32),
        attention=False,
    )  # fmt: skip
    model.fit(load("shapes", n=64, captions_per_image=2), {"steps": 3, "batch_size": 16})
    model.save(folder / "ld")
    return model, folder


def test_tiny_encoder_hashes_words_and_truncates():
    enc = text_encoder("tiny", max_tokens=6)
    t = enc.tokenize(["Red circle, left", "a b c d e f g h"])
    assert t.ids.shape == (2, 6)
    assert t.mask[0].tolist() == [True] * 5 + [False]  # start, red, circle, ",", left
    assert t.truncated == (False, True)
    assert enc.tokenize(["red"]).ids[0, 1] == enc.tokenize(["RED circle"]).ids[0, 1]
    with pytest.warns(UserWarning, match="truncated"):
        emb, _, truncated = enc.encode(["a b c d e f g h"])
    assert emb.shape == (1, 6, enc.dim) and truncated == (True,)


def test_minilm_matches_transformers():
    """Oracle: transformers' own AutoModel on the package's files gives the same states."""
    from transformers import AutoModel

    enc = text_encoder("minilm")
    prompts = ["a red circle on the left", "green star, top"]
    emb, mask, _ = enc.encode(prompts)
    from genlab.text.minilm import model_folder

    ref = AutoModel.from_pretrained(model_folder(), local_files_only=True).eval()
    tokens = enc.tokenize(prompts)
    with torch.no_grad():
        want = ref(input_ids=tokens.ids, attention_mask=tokens.mask.long()).last_hidden_state
    assert emb.shape == want.shape and emb.shape[-1] == 384
    torch.testing.assert_close(emb[mask], want[mask], atol=1e-5, rtol=1e-5)
    assert not any(p.requires_grad for p in enc.parameters())


def test_minilm_words_are_minilms_input_embeddings_without_context():
    """The word "star" is one vector beside "green" and beside "red" (same position); the
    full encoder's differ. Oracle: transformers' BertModel embeddings on the package's files."""
    from transformers import AutoModel

    from genlab.text.minilm import model_folder

    words, full = text_encoder("minilm-words"), text_encoder("minilm")
    prompts = ["a green star", "a red star"]
    emb, _, _ = words.encode(prompts)
    star = words.tokenize(prompts).ids[:, 3]
    assert star[0] == star[1]  # [CLS] a green star: "star" is the fourth token in both
    torch.testing.assert_close(emb[0, 3], emb[1, 3])
    contextual, _, _ = full.encode(prompts)
    assert (contextual[0, 3] - contextual[1, 3]).abs().max() > 1e-2
    ref = AutoModel.from_pretrained(model_folder(), local_files_only=True).eval()
    with torch.no_grad():
        want = ref.embeddings(input_ids=words.tokenize(prompts).ids)
    torch.testing.assert_close(emb, want)


def test_minilm_words_without_transformers_is_bit_for_bit_transformers():
    """The built-in model's encoder is built from ``tokenizers`` and safetensors alone (a
    cold txt2img need not import transformers): the same token ids, masks, character spans,
    truncation flags and, bit for bit, the same vectors as BertTokenizerFast + BertModel."""
    from transformers import AutoModel, BertTokenizerFast

    from genlab.text.minilm import model_folder

    enc = text_encoder("minilm-words", max_tokens=12)
    prompts = ["a red circle on the left", "Green STAR, top", "", "(blue:1.3) square, café 東京",
               "a b c d e f g h i j k l m n o p", "a  pink heart,,, above\tme!"]  # fmt: skip
    tok = BertTokenizerFast.from_pretrained(model_folder(), local_files_only=True)
    want = tok(prompts, padding=True, truncation=True, max_length=12, return_tensors="pt",
               return_offsets_mapping=True)  # fmt: skip
    got = enc.tokenize(prompts)
    assert torch.equal(got.ids, want["input_ids"])
    assert torch.equal(got.mask, want["attention_mask"].bool())
    assert got.spans == tuple(tuple(map(tuple, r.tolist())) for r in want["offset_mapping"])
    assert got.truncated == tuple(len(ids) > 12 for ids in tok(prompts)["input_ids"])
    assert got.truncated[:3] == (False, False, False) and got.truncated[4]  # 16 letters
    ref = AutoModel.from_pretrained(model_folder(), local_files_only=True).eval()
    emb, _, _ = enc.encode(prompts)
    with torch.no_grad():
        assert torch.equal(emb, ref.embeddings(input_ids=got.ids))
    assert not any(p.requires_grad for p in enc.parameters())


def test_cross_attention_reads_the_tokens_and_ignores_padding():
    torch.manual_seed(0)
    net = UNet(4, (16, 32), attention=False, context_dim=8)
    for m in net.modules():  # the out projections start at zero: make them act
        if hasattr(m, "kv"):
            torch.nn.init.normal_(m.out.weight, std=0.5)
    torch.nn.init.normal_(net.head[-1].weight, std=0.5)
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([10.0, 500.0])
    tokens, mask = torch.randn(2, 3, 8), torch.tensor([[True, True, False]] * 2)
    out = net(x, t, context=(tokens, mask))
    other = tokens.clone()
    other[:, 2] = 100.0  # a padded token changes nothing
    torch.testing.assert_close(net(x, t, context=(other, mask)), out)
    other[:, 0] = 5.0  # a real one does
    assert not torch.allclose(net(x, t, context=(other, mask)), out)


def test_condition_cat_pads_token_sequences():
    a = Condition(tokens=torch.ones(2, 3, 4), mask=torch.ones(2, 3, dtype=torch.bool))
    b = Condition(tokens=torch.ones(1, 5, 4), mask=torch.ones(1, 5, dtype=torch.bool))
    c = Condition.cat([a, b, Condition.unconditional(2)])
    assert c.tokens.shape == (5, 5, 4) and c.mask.shape == (5, 5)
    assert c.mask[:2, 3:].sum() == 0 and c.null.tolist() == [False] * 3 + [True] * 2


def test_training_pairs_each_image_with_each_caption(tiny_model):
    model, _ = tiny_model
    data = load("shapes", n=10, captions_per_image=3)
    z, cond = model.training_data(data)
    assert z.shape == (30, 4, 8, 8) and cond.ids.shape[0] == 30
    torch.testing.assert_close(z[0], z[2])  # one image, three captions
    with pytest.raises(GenlabError, match="captioned"):
        model.training_data(load("digits"))


def test_saved_model_loads_and_draws_the_same(tiny_model):
    import genlab

    model, folder = tiny_model
    again = genlab.load(folder / "ld")
    a = model.sample(2, seed=3, prompt="a red circle", steps=4)
    b = again.sample(2, seed=3, prompt="a red circle", steps=4)
    torch.testing.assert_close(a, b)


def test_minilm_model_saves_without_the_encoder(tmp_path):
    KLAutoencoder((3, 32, 32), widths=(8, 8, 8)).save(tmp_path / "ae")
    model = LatentDiffusion((3, 32, 32), autoencoder=str(tmp_path / "ae"), channels=(16, 32))
    keys = model.state_arrays()
    assert not any(k.startswith("text.") for k in keys)
    assert any(k.startswith("vae.") for k in keys)  # the frozen autoencoder travels along
    assert not any(k.startswith("vae.") for k in model.trainable_state())


@pytest.mark.parametrize("sampler", ["dpmpp-2m", "euler-a", "dpmpp-2m-karras"])
def test_image_i_of_a_batch_is_the_image_of_seed_plus_i(tiny_model, sampler):
    model, _ = tiny_model
    pipe = TextToImagePipeline(model)
    batch = pipe(GenerationRequest("a blue square", sampler=sampler, steps=4, seed=5, batch_size=3))
    one = pipe(GenerationRequest("a blue square", sampler=sampler, steps=4, seed=7))
    assert batch.seeds == [5, 6, 7]
    diff = np.abs(np.asarray(batch.images[2], float) - np.asarray(one.images[0], float))
    assert diff.max() <= 1  # batched convolutions may round one level differently
    assert "Seed: 7" in one.parameters[0]


def test_negative_prompt_takes_the_unconditional_branch(tiny_model):
    model, _ = tiny_model
    pipe = TextToImagePipeline(model)
    plain = pipe.latents(GenerationRequest("a red heart", steps=3, seed=1))[0]
    negative = pipe.latents(GenerationRequest("a red heart", "blue", steps=3, seed=1))[0]
    assert not torch.allclose(plain, negative)
    # cfg 1 uses the conditional branch alone: the negative prompt cannot matter
    a = pipe.latents(GenerationRequest("a red heart", steps=3, seed=1, cfg_scale=1.0))[0]
    b = pipe.latents(GenerationRequest("a red heart", "blue", steps=3, seed=1, cfg_scale=1.0))[0]
    torch.testing.assert_close(a, b)


def test_empty_prompt_is_unconditional(tiny_model):
    model, _ = tiny_model
    pipe = TextToImagePipeline(model)
    cond, uncond, _ = conditions(pipe.model, [""], [""])
    assert cond is None and bool(uncond.null.all())
    empty = pipe.latents(GenerationRequest("", steps=3, seed=2, cfg_scale=7.0))[0]
    uncond_only = pipe.latents(GenerationRequest("anything", steps=3, seed=2, cfg_scale=0.0))[0]
    torch.testing.assert_close(empty, uncond_only)


def test_progress_callback_previews(tiny_model):
    model, _ = tiny_model
    seen = []
    TextToImagePipeline(model)(GenerationRequest("a star", steps=3), lambda p: seen.append(p))
    assert [p.step for p in seen] == [1, 2, 3] and seen[-1].steps == 3
    assert seen[-1].preview()[0].size == (32, 32)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"steps": 0}, "steps"),
        ({"cfg_scale": float("nan")}, "CFG"),
        ({"cfg_scale": -1.0}, "CFG"),
        ({"batch_size": 0}, "batch_size"),
        ({"sampler": "plms"}, "dpmpp-2m"),
    ],
)
def test_bad_requests_are_one_sentence(fields, message):
    with pytest.raises(GenlabError, match=message):
        GenerationRequest("x", **fields)


def test_size_must_divide_by_the_autoencoder_factor(tiny_model):
    model, _ = tiny_model
    with pytest.raises(GenlabError, match="multiples of 4"):
        TextToImagePipeline(model)(GenerationRequest("x", width=30, height=32, steps=2))


def test_txt2img_cli_writes_images_grid_and_parameters(tiny_model, tmp_path, capsys):
    from genlab.cli import main

    _, folder = tiny_model
    out = tmp_path / "img.png"
    args = ["txt2img", "a red circle", "--model", str(folder / "ld"), "--steps", "3", "--seed", "4"]
    assert main([*args, "--out", str(out)]) == 0
    first = out.read_bytes()
    assert main([*args, "--out", str(out)]) == 0
    assert out.read_bytes() == first  # same seed, same bytes
    params = parse_parameters(read_parameters(out))
    assert params["Prompt"] == "a red circle" and params["Seed"] == "4"
    assert params["Steps"] == "3" and params["Sampler"] == "DPM++ 2M"
    assert main([*args, "--batch", "3", "--out", str(tmp_path / "b.png")]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["b-0.png", "b-1.png", "b-2.png", "b-grid.png", "img.png"]
    assert parse_parameters(read_parameters(tmp_path / "b-2.png"))["Seed"] == "6"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--steps", "0"], "steps"),
        (["--cfg", "nan"], "CFG"),
        (["--batch", "-1"], "batch_size"),
        (["--width", "30"], "multiples"),
        (["--width", "64", "--height", "64"], "trained at"),
        (["--model", "no/such/run"], "Unknown model"),
    ],
)
def test_txt2img_cli_bad_input(tiny_model, tmp_path, capsys, extra, message):
    from genlab.cli import main

    _, folder = tiny_model
    model = ["--model", str(folder / "ld")] if "--model" not in extra else []
    code = main(["txt2img", "x", *model, "--steps", "2", *extra, "--out", str(tmp_path / "o.png")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing written


def test_unknown_sampler_lists_the_valid_ones(capsys):
    from genlab.cli import main

    assert main(["txt2img", "x", "--sampler", "plms", "--out", "never.png"]) == 2
    err = capsys.readouterr().err
    assert "Unknown sampler 'plms'" in err and "dpmpp-2m" in err and "DPM++ 2M" in err
    assert len(err.splitlines()) == 1 and not Path("never.png").exists()


def test_eval_t2i_reports_every_attribute_and_writes_grids(tiny_model, tmp_path, capsys):
    from genlab.cli import main

    _, folder = tiny_model
    out = tmp_path / "t2i"
    code = main(["eval-t2i", str(folder / "ld"), "--n", "4", "--out", str(out)])
    assert code == 0
    import json

    report = json.loads((out / "eval-t2i.json").read_text())
    for split in ("heldout", "seen"):
        acc = report[split]["accuracy"]
        assert set(acc) == {"count", "colour", "shape", "size", "position", "overall"}
        assert all(v is None or 0.0 <= v <= 1.0 for v in acc.values())
        for k, v in acc.items():  # each accuracy with its count and 95% interval
            asked, band = report[split]["asked"][k], report[split]["interval"][k]
            assert (v is None) == (asked == 0) == (band is None)
            assert band is None or band[0] <= v <= band[1]
        assert report[split]["asked"]["count"] == 4
        assert (out / f"{split}.png").is_file()
        assert report[split]["detector_on_real_scenes"] == 1.0  # the detector reads the data
        assert 0.0 <= report[split]["detector_on_reconstructions"] <= 1.0
    assert np.isfinite(report["fd_pixels"])
    printed = capsys.readouterr().out
    assert "heldout" in printed and "[" in printed
    # no --seed: a fresh set, its seed drawn, recorded and printed; --seed draws it again
    assert report["seed_drawn"] and f"seed {report['seed']} (drawn at random" in printed
    again = tmp_path / "again"
    argv = ["eval-t2i", str(folder / "ld"), "--n", "4", "--seed", str(report["seed"])]
    assert main([*argv, "--out", str(again)]) == 0
    repeat = json.loads((again / "eval-t2i.json").read_text())
    assert (
        not repeat["seed_drawn"] and repeat["heldout"]["examples"] == report["heldout"]["examples"]
    )


def test_eval_t2i_on_the_wide_heldout_set_and_a_bad_set_is_one_sentence(
    tiny_model, tmp_path, capsys
):
    import json

    from genlab.cli import main

    _, folder = tiny_model
    argv = ["eval-t2i", str(folder / "ld"), "--n", "4", "--seed", "7"]
    assert main([*argv, "--heldout", "wide", "--out", str(tmp_path / "w")]) == 0
    wide = json.loads((tmp_path / "w" / "eval-t2i.json").read_text())
    assert wide["heldout_set"] == "wide" and "held-out set wide" in capsys.readouterr().out
    assert main([*argv, "--out", str(tmp_path / "d")]) == 0
    default = json.loads((tmp_path / "d" / "eval-t2i.json").read_text())
    assert default["heldout_set"] == "default"
    assert wide["heldout"]["examples"] != default["heldout"]["examples"]  # other scenes
    assert main([*argv, "--heldout", "narrow", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--heldout must be default or wide" in err and len(err.splitlines()) == 1


def test_a_held_out_set_other_than_the_models_own_is_warned_about(tmp_path):
    import json
    import os

    from genlab.evaluation.text_to_image import split_warning, trained_split

    assert trained_split("builtin") == trained_split("builtin-fast") == "default"
    run = tmp_path / "run"
    run.mkdir()
    assert trained_split(str(run)) is None  # no meta.json: not known, no warning
    (run / "meta.json").write_text(json.dumps({"data": "shapes", "data_options": {"n": 8}}))
    assert trained_split(str(run)) == "default"
    (run / "meta.json").write_text(
        json.dumps({"data": "shapes", "data_options": {"heldout": "wide"}})
    )
    assert trained_split(str(run)) == "wide"
    (run / "model").mkdir()
    assert trained_split(str(run / "model")) == "wide"  # the run's model/ folder, given
    for hostile in ("{not json", "[" * 100_000, "[1]", '{"data": "shapes", "data_options": "wide"}',
                    '{"data": "shapes", "data_options": {"heldout": 7}}',
                    '{"data": "shapes", "data_options": {"heldout": "bogus"}}'):  # fmt: skip
        (run / "meta.json").write_text(hostile)
        assert trained_split(str(run)) is None, hostile  # not known: no warning, no traceback
    (run / "meta.json").unlink()
    os.mkfifo(run / "meta.json")  # would block a read
    assert trained_split(str(run)) is None
    assert split_warning("default", "default") is None and split_warning(None, "wide") is None
    assert "held-out figure is partly seen" in split_warning("default", "wide")
    assert "seen figure is partly held out" in split_warning("wide", "default")


def test_a_new_unet_reuses_the_shipped_autoencoder():
    """autoencoder="builtin" (recipe txt2img-shapes-wide): the shipped model's first stage,
    weights and latent scale included, with no autoencoder trained again."""
    from genlab.assets import load_shipped

    shipped = load_shipped("txt2img-shapes")._vae
    model = LatentDiffusion(
        (3, 32, 32), autoencoder="builtin", text_encoder="tiny", channels=(16, 32),
        attention=False,
    )  # fmt: skip
    theirs = shipped.net.state_dict()
    mine = model._vae.net.state_dict()
    assert set(mine) == set(theirs) and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert float(mine["scale_factor"]) != 1.0  # the trained scale, not a fresh one
    assert model.autoencoder is None and model.autoencoder_config == shipped.get_config()
    with pytest.raises(GenlabError, match="does not exist"):
        LatentDiffusion((3, 32, 32), autoencoder="no/such/run", text_encoder="tiny")


def test_the_wide_recipe_is_the_shipped_one_on_the_wide_split():
    """txt2img-shapes-wide differs from txt2img-shapes only in its split and its autoencoder
    (the shipped one), and trains: two steps on 16 wide-split scenes, a narrow U-Net."""
    from genlab.data import load as load_data
    from genlab.training.runfolder import load_recipe
    from genlab.training.trainer import TrainConfig, Trainer

    wide, shipped = load_recipe("txt2img-shapes-wide"), load_recipe("txt2img-shapes")
    assert wide["data_options"] == {**shipped["data_options"], "heldout": "wide"}
    assert wide["model_config"] == {**shipped["model_config"], "autoencoder": "builtin"}
    assert wide["train"] == shipped["train"] and wide["model"] == shipped["model"]
    data = load_data("shapes", **{**wide["data_options"], "n": 16, "captions_per_image": 1})
    assert data.info["heldout"] == "wide"
    model = LatentDiffusion((3, 32, 32), **{**wide["model_config"], "channels": (16, 32)})
    config = TrainConfig.make(model, {**wide["train"], "steps": 2, "batch_size": 8,
                                      "progress": False})  # fmt: skip
    assert np.isfinite(Trainer(model, data, config).train()["loss"])


def test_wilson_interval():
    from genlab.evaluation.text_to_image import wilson

    low, high = wilson(190, 200)
    assert abs(low - 0.9105) < 1e-3 and abs(high - 0.9726) < 1e-3  # 95% of 200
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0 and wilson(10, 10)[0] > 0.69
    assert wilson(0, 0) == (0.0, 1.0)


def _scene_png(path):
    from PIL import Image

    from genlab.data.shapes import Scene, Thing, draw

    pixels = draw(Scene((Thing("square", "red", "large", 0.5, 0.5),), 128, position="centre"))
    Image.fromarray(pixels.transpose(1, 2, 0)).save(path)
    return path


def test_img2img_runs_the_strength_share_of_the_steps(tiny_model, tmp_path):
    model, _ = tiny_model
    init = _scene_png(tmp_path / "init.png")
    steps = []
    pipe = TextToImagePipeline(model)
    req = GenerationRequest("a blue circle", steps=10, strength=0.3, init_image=str(init))
    result = pipe(req, lambda p: steps.append(p.step))
    assert steps == [1, 2, 3]
    assert "Denoising strength: 0.3" in result.parameters[0]
    again = pipe(req)
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(result.images[0]))


def test_inpainting_keeps_every_pixel_outside_the_mask(tiny_model, tmp_path):
    from PIL import Image

    model, _ = tiny_model
    init = _scene_png(tmp_path / "init.png")
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 4:16] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    req = GenerationRequest(
        "a yellow heart", steps=4, init_image=str(init), mask=str(tmp_path / "mask.png")
    )
    out = np.asarray(TextToImagePipeline(model)(req).images[0])
    original = np.asarray(Image.open(init))
    keep = mask == 0
    assert np.array_equal(out[keep], original[keep])
    assert not np.array_equal(out[~keep], original[~keep])


def test_img2img_and_inpaint_cli(tiny_model, tmp_path, capsys):
    from PIL import Image

    from genlab.cli import main

    _, folder = tiny_model
    init = _scene_png(tmp_path / "init.png")
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(tmp_path / "mask.png")
    model = ["--model", str(folder / "ld"), "--steps", "3"]
    assert (
        main(["img2img", str(init), "a red square", *model, "--out", str(tmp_path / "a.png")]) == 0
    )
    params = parse_parameters(read_parameters(tmp_path / "a.png"))
    assert params["Denoising strength"] == "0.6" and params["Size"] == "32x32"
    mask = str(tmp_path / "mask.png")
    assert main(["inpaint", str(init), mask, "x", *model, "--out", str(tmp_path / "b.png")]) == 0
    bad = main(
        ["img2img", str(tmp_path / "none.png"), "x", *model, "--out", str(tmp_path / "c.png")]
    )
    assert bad == 2 and "does not exist" in capsys.readouterr().err
    (tmp_path / "junk.png").write_bytes(b"not an image")
    bad = main(
        ["img2img", str(tmp_path / "junk.png"), "x", *model, "--out", str(tmp_path / "c.png")]
    )
    assert bad == 2 and "not a readable image" in capsys.readouterr().err
    bad = main(
        ["img2img", str(init), "x", *model, "--strength", "1.5", "--out", str(tmp_path / "c.png")]
    )
    assert bad == 2 and "strength" in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()


@pytest.mark.parametrize(
    "name, cls, karras",
    [
        ("ddim", "DDIMScheduler", None),
        ("euler", "EulerDiscreteScheduler", False),
        ("euler-a", "EulerAncestralDiscreteScheduler", None),
        ("heun", "HeunDiscreteScheduler", False),
        ("dpmpp-2m", "DPMSolverMultistepScheduler", False),
        ("dpmpp-2m-karras", "DPMSolverMultistepScheduler", True),
        ("ddpm", "DDPMScheduler", None),
        ("DPM++ 3M", "DPMSolverMultistepScheduler", None),
        ("DPM++ 2M SDE", "DPMSolverMultistepScheduler", None),
        ("DPM++ 3M SDE Karras", "DPMSolverMultistepScheduler", True),
        ("UniPC", "UniPCMultistepScheduler", None),
        ("LCM", "LCMScheduler", None),
    ],
)
def test_sampler_names_map_to_diffusers_schedulers(name, cls, karras):
    from diffusers import PNDMScheduler

    from genlab.generation.request import WEBUI_SAMPLERS, parse_sampler
    from genlab.interop.diffusers.schedulers import (
        DIFFUSERS_SCHEDULERS,
        NOT_IN_DIFFUSERS,
        diffusers_scheduler,
    )

    # every menu entry has a scheduler, except the ones diffusers lacks (refused by name)
    assert set(DIFFUSERS_SCHEDULERS) | NOT_IN_DIFFUSERS == set(WEBUI_SAMPLERS)
    assert not set(DIFFUSERS_SCHEDULERS) & NOT_IN_DIFFUSERS
    base = PNDMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    s = diffusers_scheduler(*parse_sampler(name), base.config)  # SD ships a PNDM config
    assert type(s).__name__ == cls
    assert s.config.beta_start == 0.00085 and s.config.beta_schedule == "scaled_linear"
    if karras is not None:
        assert s.config.use_karras_sigmas is karras
    sampler = parse_sampler(name)[0]
    if cls == "DPMSolverMultistepScheduler":
        sde = "sde-dpmsolver++" if sampler.endswith("-sde") else "dpmsolver++"
        assert s.config.algorithm_type == sde
        assert s.config.solver_order == (3 if sampler.startswith("dpmpp-3m") else 2)
    if cls == "UniPCMultistepScheduler":
        assert s.config.solver_type == "bh2" and s.config.predict_x0


def test_ipndm_is_refused_on_stable_diffusion_in_one_sentence():
    from diffusers import PNDMScheduler

    from genlab.errors import GenlabError
    from genlab.interop.diffusers.schedulers import diffusers_scheduler

    base = PNDMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    with pytest.raises(GenlabError, match=r"ipndm sampler has no diffusers scheduler.*unipc"):
        diffusers_scheduler("ipndm", "default", base.config)
