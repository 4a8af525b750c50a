"""Inception FID: genlab's FID network against torch-fidelity's (the network torchmetrics
uses by default) with the same weights, and the metric through torchmetrics.

torch-fidelity's package imports torchvision, which cannot be installed beside the pinned
torch, so `make test` installs it (without dependencies) into .venv/oracles and this test
imports only its network module, under a stand-in package.
"""

import importlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torchmetrics.image.fid import FrechetInceptionDistance  # noqa: F401  (before the stub)

import genlab
from genlab.cli import main
from genlab.evaluation.inception import FIDInception, inception_fid, load_fid_inception
from genlab.evaluation.metrics import frechet_distance

ORACLES = Path(__file__).resolve().parents[1] / ".venv" / "oracles"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random weights scaled so activations stay O(1) through the ~50 layers, as a
    torch state dict (with the fc head the real file has) and as safetensors."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, value in FIDInception().state_dict().items():
        if key.endswith("conv.weight"):
            fan_in = value[0].numel()
            value = torch.randn(value.shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif key.endswith("bn.weight"):
            value = 0.8 + 0.4 * torch.rand(value.shape, generator=g)
        elif key.endswith(("bn.bias", "running_mean")):
            value = 0.1 * torch.randn(value.shape, generator=g)
        elif key.endswith("running_var"):
            value = 0.8 + 0.4 * torch.rand(value.shape, generator=g)
        state[key] = value
    state["fc.weight"] = torch.randn(1008, 2048, generator=g) * 0.01
    state["fc.bias"] = torch.zeros(1008)
    folder = tmp_path_factory.mktemp("inception")
    save_file(state, str(folder / "fid_inception.safetensors"))
    torch.save(state, folder / "fid_inception.pth")
    return folder


@pytest.fixture(scope="module")
def oracle_class():
    if not (ORACLES / "torch_fidelity").is_dir():
        pytest.fail("the torch-fidelity oracle is missing: run `make test` (it installs it)")
    saved = {k: v for k, v in sys.modules.items() if k.startswith("torch_fidelity")}
    stub = types.ModuleType("torch_fidelity")
    stub.__path__ = [str(ORACLES / "torch_fidelity")]
    sys.modules["torch_fidelity"] = stub
    try:
        module = importlib.import_module("torch_fidelity.feature_extractor_inceptionv3")
        yield module.FeatureExtractorInceptionV3
    finally:
        for key in [k for k in sys.modules if k.startswith("torch_fidelity")]:
            del sys.modules[key]
        sys.modules.update(saved)


@pytest.mark.parametrize("size", [(16, 16), (32, 24), (299, 299)])
def test_features_match_torch_fidelity(weights, oracle_class, size):
    ours, digest = load_fid_inception(weights / "fid_inception.safetensors")
    theirs = oracle_class(
        "inception-v3-compat",
        ["2048"],
        feature_extractor_weights_path=str(weights / "fid_inception.pth"),
    )
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (3, 3, *size), generator=g, dtype=torch.uint8)
    with torch.no_grad():
        expected = theirs(images)[0]
        got = ours(images)
    assert got.shape == (3, 2048) and expected.std() > 0.05  # not a trivial all-zero map
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert len(digest) == 64


@pytest.mark.slow  # 37 s: `make test-all` runs it
def test_fid_through_torchmetrics_equals_the_frechet_distance_of_the_features(weights):
    g = torch.Generator().manual_seed(2)
    real = torch.rand(40, 1, 16, 16, generator=g)
    fake = (real[:40] + 0.3 * torch.rand(40, 1, 16, 16, generator=g)).clamp(0, 1)
    fid, _ = inception_fid(real, fake, weights / "fid_inception.safetensors", batch=16)
    net, _ = load_fid_inception(weights / "fid_inception.safetensors")
    from genlab.evaluation.inception import to_uint8_rgb

    with torch.no_grad():
        f_real = net(to_uint8_rgb(real, 0.0)).double().numpy()
        f_fake = net(to_uint8_rgb(fake, 0.0)).double().numpy()
    assert fid > 0
    np.testing.assert_allclose(fid, frechet_distance(f_real, f_fake), rtol=1e-3)


def test_weights_must_be_safetensors_of_the_right_network(weights, tmp_path):
    with pytest.raises(genlab.GenlabError, match="does not unpickle"):
        load_fid_inception(weights / "fid_inception.pth")
    save_file({"fc.weight": torch.zeros(2, 2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(genlab.GenlabError, match="does not hold the FID Inception weights"):
        load_fid_inception(tmp_path / "other.safetensors")


@pytest.mark.slow  # 12 s: `make test-all` runs it
def test_cli_eval_fid(weights, tmp_path, capsys):
    run = tmp_path / "vae"
    assert main(["train", "vae", "--data", "digits", "--steps", "2", "--out", str(run),
                 "--set", "progress=false"]) == 0  # fmt: skip
    args = ["eval", str(run), "--metrics", "fid", "--n", "20"]
    assert main(args) == 2
    assert "pass --inception" in capsys.readouterr().err
    assert main([*args, "--inception", str(weights / "fid_inception.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "inception_fid" in out and "inception_sha256" in out
