"""The KL autoencoder, latent diffusion's first stage: reconstruction, KL, the latent scale
factor estimated from data, and a run that genlab eval reports on."""

import json

import pytest
import torch

import genlab
import genlab.data as gd
from genlab.cli import main
from genlab.errors import DataError
from genlab.models.kl_autoencoder import KLAutoencoder


@pytest.fixture(scope="module")
def trained():
    data = gd.load("shapes", n=256, seed=0)
    torch.manual_seed(0)
    model = KLAutoencoder(data.shape, widths=[16, 16, 32])
    before = model.held_out_metrics(data)
    model.fit(data, {"steps": 60, "batch_size": 32, "lr": 2e-3, "progress": False})
    return model, data, before


def test_training_improves_reconstruction(trained):
    model, data, before = trained
    after = model.held_out_metrics(data)
    assert after["psnr_db"] > before["psnr_db"] + 5 and after["psnr_db"] > 18
    assert after["kl_nats_per_image"] > 0


def test_latents_have_the_stable_diffusion_shape_and_unit_scale(trained):
    model, data, _ = trained
    z = model.encode(data.x)
    assert z.shape == (256, 4, 8, 8) and model.latent_shape == (4, 8, 8)
    # the scale factor was estimated from the training latents: their std is now 1
    assert z.std().item() == pytest.approx(1.0, rel=1e-3)
    x_hat = model.decode(z)
    assert x_hat.shape == data.x.shape and x_hat.min() >= -1 and x_hat.max() <= 1
    mse = (x_hat - torch.as_tensor(data.x)).pow(2).mean().item()
    assert 10 * torch.log10(torch.tensor(4.0 / mse)) > 18


def test_bad_shapes_are_refused():
    with pytest.raises(DataError, match="divisible by 4"):
        KLAutoencoder((3, 30, 30))
    with pytest.raises(DataError, match="divisible by 4"):
        KLAutoencoder((2,))


def test_train_and_eval_a_run(tmp_path, capsys):
    run = tmp_path / "ae"
    args = ["train", "kl-autoencoder", "--data", "shapes", "--out", str(run), "--steps", "3",
            "--batch-size", "16", "--set", "data.n=80", "--set", "model.widths=[8,8,8]",
            "--set", "progress=false"]  # fmt: skip
    assert main(args) == 0
    assert main(["eval", str(run)]) == 0
    result = json.loads((run / "eval.json").read_text())
    assert result["n"] == 16 and result["psnr_db"] > 0 and result["scale_factor"] > 0
    loaded = genlab.load(run)
    assert loaded.net.scale_factor.item() == pytest.approx(result["scale_factor"])
    capsys.readouterr()
    assert main(["sample", str(run), "--n", "2", "--out", str(tmp_path / "s.png")]) == 2
    assert "samples nothing" in capsys.readouterr().err
