"""The diffusion model end to end through the CLI: train, sample with every option
(sampler, steps, label, classifier-free and classifier guidance, GIF), and the errors."""

import numpy as np
import pytest
from PIL import Image

import genlab
from genlab.cli import main

TINY_UNET = ["--set", "model.channels=[8,16]", "--set", "batch_size=32", "--steps", "3"]


def run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny class-conditional DDPM and a tiny noise-aware classifier on 8x8 digits."""
    root = tmp_path_factory.mktemp("runs")
    common = ["--data", "digits", "--set", "data.size=8", "--set", "data.scale=pm1"]
    assert main(["train", "ddpm", *common, "--out", str(root / "ddpm"), *TINY_UNET,
                 "--set", "model.num_classes=10", "--set", "progress=false"]) == 0  # fmt: skip
    assert main(["train", "noisy-classifier", *common, "--out", str(root / "clf"), *TINY_UNET,
                 "--set", "progress=false"]) == 0  # fmt: skip
    return root


def test_the_classifier_run_is_a_model_but_draws_no_samples(runs):
    clf = genlab.load(runs / "clf")
    assert clf.name == "noisy-classifier" and not (runs / "clf" / "samples").exists()
    with pytest.raises(NotImplementedError, match="guides a diffusion model"):
        clf.sample(4)


@pytest.mark.parametrize(
    "options",
    [
        ["--sampler", "ddim", "--steps", "5"],
        ["--sampler", "heun", "--steps", "4", "--label", "3", "--cfg", "2"],
        ["--label", "7", "--cfg", "0", "--classifier", "CLF", "--cg-scale", "3"],
        ["--label", "7", "--classifier", "CLF", "--gif", "GIF"],
    ],
)
def test_sample_options(runs, tmp_path, capsys, options):
    options = [
        str(runs / "clf") if o == "CLF" else str(tmp_path / "a.gif") if o == "GIF" else o
        for o in options
    ]
    out = tmp_path / "grid.png"
    code, _, err = run(["sample", str(runs / "ddpm"), "--n", "8", "--seed", "0",
                           "--out", str(out), *options], capsys)  # fmt: skip
    assert code == 0, err
    assert Image.open(out).size[0] > 8
    if "--gif" in options:
        assert Image.open(tmp_path / "a.gif").n_frames >= 2  # PIL merges identical frames


def test_classifier_guidance_changes_the_samples(runs):
    model, clf = genlab.load(runs / "ddpm"), genlab.load(runs / "clf")
    plain = model.sample(4, seed=0, label=2, cfg=0)
    guided = model.sample(4, seed=0, label=2, cfg=0, classifier=clf, cg_scale=5.0)
    off = model.sample(4, seed=0, label=2, cfg=0, classifier=clf, cg_scale=0.0)
    assert (plain - guided).abs().max() > 1e-4
    assert (plain - off).abs().max() == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--classifier", "CLF"], "needs the class to draw"),
        (["--label", "12"], r"Labels must lie in 0\.\.9"),
        (["--sampler", "rk4"], "Unknown sampler 'rk4'"),
        (["--label", "1", "--classifier", "DDPM"], "must be a noise-aware classifier"),
    ],
)
def test_sample_bad_input(runs, tmp_path, capsys, options, message):
    options = [str(runs / "clf") if o == "CLF" else str(runs / "ddpm") if o == "DDPM" else o
               for o in options]  # fmt: skip
    out = tmp_path / "grid.png"
    code, _, err = run(["sample", str(runs / "ddpm"), "--out", str(out), *options], capsys)
    assert code == 2 and err.count("\n") == 1 and pytest.importorskip("re").search(message, err)
    assert not out.exists()


def test_classifier_shape_must_match(runs, tmp_path, capsys):
    code, _, err = run(["train", "noisy-classifier", "--data", "digits", "--out",
                        str(tmp_path / "c16"), *TINY_UNET, "--set", "progress=false",
                        "--set", "data.scale=pm1"], capsys)  # fmt: skip
    assert code == 0
    args = ["--label", "1", "--classifier", str(tmp_path / "c16"), "--out", str(tmp_path / "g.png")]
    code, _, err = run(["sample", str(runs / "ddpm"), *args], capsys)
    assert code == 2 and "trained on shape (1, 16, 16)" in err


def test_classifier_needs_labels(tmp_path, capsys):
    code, _, err = run(["train", "noisy-classifier", "--data", "swissroll", "--steps", "2",
                        "--out", str(tmp_path / "c")], capsys)  # fmt: skip
    assert code == 2 and "needs labelled data" in err
    assert not (tmp_path / "c").exists()  # refused before anything was written
    code, _, err = run(["train", "ddpm", "--data", "digits", "--steps", "2", "--out",
                        str(tmp_path / "d"), "--set", "model.num_classes=5"], capsys)  # fmt: skip
    assert code == 2 and "classes 0..4" in err and not (tmp_path / "d").exists()


@pytest.mark.slow  # over 10 s on 2 cores: make test-all
def test_eval_nll_is_the_bound_on_images_and_the_ode_on_points(runs, tmp_path, capsys):
    import json

    code, _, err = run(["eval", str(runs / "ddpm"), "--metrics", "nll", "--n", "8"], capsys)
    result = json.loads((runs / "ddpm" / "eval.json").read_text())
    assert code == 0, err
    assert "variational bound" in result["nll_kind"] and "17 levels" in result["nll_kind"]
    assert result["n_nll"] == 100 and 0 < result["nll_bits_per_dim"] < 20
    moons = tmp_path / "moons"
    assert main(["train", "ddpm", "--data", "moons", "--steps", "3", "--out", str(moons),
                 "--set", "progress=false"]) == 0  # fmt: skip
    code, _, err = run(["eval", str(moons), "--metrics", "nll,swd", "--n", "50"], capsys)
    result = json.loads((moons / "eval.json").read_text())
    assert code == 0, err
    assert "probability-flow ODE" in result["nll_kind"] and np.isfinite(result["nll"])


@pytest.mark.parametrize("size", [8, 16, 28, 32])
def test_unet_and_classifier_take_any_image_size(size):
    import torch

    from genlab.conditioning import Condition
    from genlab.nn.unet import EncoderClassifier, UNet

    x, t = torch.randn(2, 3, size, size), torch.tensor([3.0, 700.0])
    net = UNet(3, channels=(8, 16, 16), num_classes=10)
    cond = Condition(labels=torch.tensor([1, 0]), null=torch.tensor([False, True]))
    out = net(x, t, cond)  # the second image unconditional
    assert out.shape == x.shape
    out.sum().backward()
    assert net.stem.weight.grad is not None
    assert EncoderClassifier(3, (8, 16, 16), num_classes=5)(x, t).shape == (2, 5)
