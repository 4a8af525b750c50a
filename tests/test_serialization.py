import os
import pickle

import numpy as np
import pytest

import genlab
from genlab.errors import GenlabError
from genlab.models.gaussian import MultivariateNormal


class _Exploit:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_files_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    for name in ("model.pt", "model.ckpt", "model.pkl"):
        (tmp_path / name).write_bytes(pickle.dumps(_Exploit(marker)))
        with pytest.raises(GenlabError, match="refuses to unpickle"):
            genlab.load(tmp_path / name)
    # A pickle hiding under the safetensors name is rejected by the safetensors parser.
    folder = tmp_path / "fake"
    folder.mkdir()
    (folder / "config.yaml").write_text("model: mvn\nconfig: {}\n")
    (folder / "model.safetensors").write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(GenlabError, match="safetensors"):
        genlab.load(folder)
    assert not marker.exists()


def test_yaml_config_cannot_build_objects(tmp_path):
    MultivariateNormal().fit(np.random.default_rng(0).normal(size=(20, 2))).save(tmp_path / "m")
    (tmp_path / "m" / "config.yaml").write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(GenlabError, match=r"config\.yaml is not valid YAML"):
        genlab.load(tmp_path / "m")


def test_interrupted_save_keeps_previous_model(tmp_path, monkeypatch):
    import safetensors.numpy

    x = np.random.default_rng(0).normal(size=(50, 2))
    first = MultivariateNormal().fit(x)
    first.save(tmp_path / "m")

    def crash(arrays, filename, *a, **k):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.numpy, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        MultivariateNormal().fit(x + 10).save(tmp_path / "m")
    np.testing.assert_array_equal(genlab.load(tmp_path / "m").mean_, first.mean_)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(GenlabError, match="does not exist"):
        genlab.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenlabError, match="holds no genlab model"):
        genlab.load(tmp_path / "empty")


def _vae_and_gmm(tmp_path):
    from genlab.data import load
    from genlab.models.mixture import GaussianMixture
    from genlab.models.vae import VAE

    VAE((2,), latent_dim=2, hidden=(8,)).save(tmp_path / "vae")
    GaussianMixture(2, seed=0).fit(load("faithful").x).save(tmp_path / "gmm")


@pytest.mark.parametrize(
    "model,old,new,message",
    [
        ("vae", "config:", "config:\n  bogus: 1", "sets 'bogus', which a vae model does not have"),
        ("vae", "latent_dim: 2", "latent_dim: abc", "takes int values there"),
        ("vae", "latent_dim: 2", "latent_dim: 2.5", "takes int values there"),
        ("vae", "latent_dim: 2", "latent_dim: -3", "does not describe a valid vae model"),
        ("vae", "latent_dim: 2", "latent_dim: 3", "does not fit the model"),
        ("vae", "likelihood: gaussian", "likelihood: evil", "likelihood must be"),
        ("vae", "model: vae", "model: evil", "names a model genlab does not know"),
        ("gmm", "n_components: 2", "n_components: [1]", "takes int values there"),
        ("gmm", "config:", "config:\n  evil: 1", "sets 'evil'"),
    ],
)
def test_tampered_configs_are_refused_naming_the_file(tmp_path, model, old, new, message):
    """A config with extra keys, wrong types or values, or one that does not fit its weights
    is one sentence naming the file, never a traceback (issue 15: loading what others made)."""
    _vae_and_gmm(tmp_path)
    config = tmp_path / model / "config.yaml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new, 1))
    with pytest.raises(GenlabError, match=message) as e:
        genlab.load(tmp_path / model)
    assert str(config) in str(e.value) or "config.yaml" in str(e.value)
