"""Every registered model answers the same questions the same way."""

import numpy as np
import pytest
import torch

import genlab
import genlab.data as gd
from genlab.registry import MODELS, model_class

FAST_TRAIN = {"steps": 5, "batch_size": 32, "progress": False}
TINY = {"ddpm": {"channels": [8, 16]}, "kl-autoencoder": {"widths": [8, 8, 8]}}  # small nets


def fitted(name):
    cls = model_class(name)
    if name == "normal":
        data = gd.load("heights")
        return cls().fit(data), data
    if name in ("mvn", "gmm"):
        data = gd.load("faithful")
        return (cls(2, seed=0) if name == "gmm" else cls()).fit(data), data
    if name == "pixel-gmm":  # a mixture over the pixels of 8x8 digits
        data = gd.load("digits", scale="pm1")
        return cls(3, seed=0).fit(data), data
    if name in LATENT:  # latent-variable models of a table with a known 2-D latent
        if name == "gplvm":
            pytest.importorskip("gpytorch")
        data = latent_table()
        return cls(**LATENT[name]).fit(data), data
    if name == "latent-diffusion":  # text-to-image on captioned scenes, a tiny autoencoder
        return tiny_latent_diffusion()
    if name == "latent-consistency":  # a few-step student of that tiny teacher
        return tiny_consistency_student()
    if name == "lora":  # adapters of the built-in text-to-image model
        data = gd.load("shapes", n=32, captions_per_image=2)
        torch.manual_seed(0)
        return cls(data.shape, rank=2).fit(data, {**FAST_TRAIN, "lr": 0.01}), data
    data = gd.load("digits", size=8, scale="pm1")
    torch.manual_seed(0)
    model = cls(data.shape, **TINY.get(name, {"width": 8}))
    return model.fit(data, FAST_TRAIN), data


LATENT = {"ppca": {}, "linear-vae": {"iters": 50}, "gplvm": {"steps": 20, "inducing": 8}}


def latent_table():
    from genlab.data import Dataset
    from genlab.evaluation.latent import synthetic

    x, _ = synthetic(n=200, d=6, seed=0)
    return Dataset("synthetic", x)


def tiny_latent_diffusion():
    import tempfile

    from genlab.models.kl_autoencoder import KLAutoencoder
    from genlab.models.latent_diffusion import LatentDiffusion

    torch.manual_seed(0)
    data = gd.load("shapes", n=64, captions_per_image=2)
    with tempfile.TemporaryDirectory() as folder:
        KLAutoencoder(data.shape, widths=(8, 8, 8)).save(f"{folder}/ae")
        model = LatentDiffusion(
            data.shape, autoencoder=f"{folder}/ae", text_encoder="tiny", channels=(8, 16),
            attention=False,
        )  # fmt: skip
    return model.fit(data, FAST_TRAIN), data


_TEACHER: dict = {}


def tiny_consistency_student():
    import tempfile

    teacher, data = tiny_latent_diffusion()
    folder = _TEACHER.setdefault("dir", tempfile.mkdtemp())  # the student reads it on load
    teacher.save(f"{folder}/teacher")
    torch.manual_seed(0)
    model = model_class("latent-consistency")(data.shape, teacher=f"{folder}/teacher")
    return model.fit(data, FAST_TRAIN), data


PARTS = ["kl-autoencoder", "noisy-classifier"]  # trained parts of other models
GENERATIVE = [name for name in sorted(MODELS) if name not in PARTS]


def test_only_the_parts_of_other_models_are_not_generative():
    assert sorted(n for n in MODELS if not model_class(n).generative) == PARTS
    for name in PARTS:  # a part refuses to sample, with a sentence
        model = model_class(name)((1, 8, 8))
        with pytest.raises(NotImplementedError, match=r"\w+ \w+"):
            model.sample(2, seed=0)


@pytest.mark.parametrize("name", GENERATIVE)
def test_contract(name, tmp_path):
    model, data = fitted(name)
    s = model.sample(7, seed=3)
    s = s.detach().numpy() if hasattr(s, "detach") else s
    assert s.shape == (7, *data.shape) and np.isfinite(s).all()
    again = model.sample(7, seed=3)
    again = again.detach().numpy() if hasattr(again, "detach") else again
    np.testing.assert_array_equal(s, again)
    model.save(tmp_path / name)
    loaded = genlab.load(tmp_path / name)
    out = loaded.sample(7, seed=3)
    np.testing.assert_array_equal(s, out.detach().numpy() if hasattr(out, "detach") else out)
    x = data.x[:20]
    if model.has_log_prob:
        np.testing.assert_allclose(loaded.log_prob(x), model.log_prob(x))
    else:
        with pytest.raises(NotImplementedError, match="no exact log density"):
            model.log_prob(x)
    if model.has_elbo:
        torch.testing.assert_close(loaded.elbo(x), model.elbo(x))
    else:
        with pytest.raises(NotImplementedError):
            model.elbo(x)


@pytest.mark.parametrize(
    "name", ["ae", "vae", "hvae", "gan", "realnvp", "ebm", "ddpm", "kl-autoencoder"]
)
def test_wrong_image_size_is_a_clear_error(name):
    model = model_class(name)((1, 16, 16), **TINY.get(name, {"width": 8}))
    with pytest.raises(genlab.GenlabError, match=r"expects images of shape \(1, 16, 16\)"):
        model.fit(gd.load("digits", scale="pm1"), FAST_TRAIN)
