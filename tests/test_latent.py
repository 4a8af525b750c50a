"""The latent-variable comparison: the formal links between PCA, probabilistic PCA, the linear
autoencoder, the linear-Gaussian VAE and the GPLVM, each checked against an oracle
(scikit-learn's PCA, principal angles, the exact PPCA likelihood)."""

import subprocess
import sys

import numpy as np
import pytest
from scipy.linalg import subspace_angles

from genlab.evaluation import latent


@pytest.fixture(scope="module")
def data():
    x, z = latent.synthetic(n=800, d=12, seed=1)
    return x, z


def test_ppca_closed_form_matches_sklearn(data):
    from sklearn.decomposition import PCA

    x, _ = data
    n = len(x)
    mean, w, s2 = latent.ppca_mle(x, 2)
    pca = PCA(2, svd_solver="full").fit(x)
    # scikit-learn divides by N - 1 where maximum likelihood divides by N
    assert s2 == pytest.approx(pca.noise_variance_ * (n - 1) / n, rel=1e-10)
    np.testing.assert_allclose(
        w @ w.T + s2 * np.eye(x.shape[1]), pca.get_covariance() * (n - 1) / n, atol=1e-10
    )
    # the maximum: any nudge of W lowers the likelihood
    best = latent.ppca_log_lik(x, mean, w, s2)
    rng = np.random.default_rng(0)
    for _ in range(5):
        assert latent.ppca_log_lik(x, mean, w + 0.05 * rng.standard_normal(w.shape), s2) < best


def test_linear_autoencoder_spans_the_pca_subspace(data):
    x, _ = data
    pca = latent.fit_pca(x, 2)
    ae = latent.fit_linear_ae(x, 2)
    angles = np.degrees(subspace_angles(pca.info["components"].T, ae.info["decoder"].T))
    assert angles.max() < 0.1


def test_linear_vae_elbo_reaches_the_ppca_likelihood(data):
    """The formal link: at its optimum the linear-Gaussian VAE's ELBO equals probabilistic
    PCA's exact log-likelihood (the bound is tight), and its decoder spans PCA's subspace."""
    x, _ = data
    mean, w, s2 = latent.ppca_mle(x, 2)
    exact = latent.ppca_log_lik(x, mean, w, s2)
    vae = latent.fit_linear_vae(x, 2)
    assert vae.info["train_elbo"] == pytest.approx(exact, abs=1e-3)
    assert vae.info["train_elbo"] <= exact + 1e-9  # a lower bound, never above
    assert vae.info["sigma2"] == pytest.approx(s2, rel=1e-3)
    pca = latent.fit_pca(x, 2)
    angles = np.degrees(subspace_angles(pca.info["components"].T, vae.info["decoder"].T))
    assert angles.max() < 0.5


def test_gplvm_with_a_linear_kernel_recovers_the_ppca_subspace(data):
    pytest.importorskip("gpytorch")
    x, _ = data
    gp = latent.fit_gplvm(x, 2, kernel="linear", steps=300)
    # its decoder is linear in the latent: read the map off at the unit vectors
    origin = gp.decode(np.zeros((1, 2)))
    columns = gp.decode(np.eye(2)) - origin
    pca = latent.fit_pca(x, 2)
    angles = np.degrees(subspace_angles(pca.info["components"].T, columns.T))
    assert angles.max() < 5


def test_measure_and_command_line(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "genlab.cli",
            "compare",
            "--latent",
            "--families",
            "pca,ppca,linear-ae",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    md = (tmp_path / "latent.md").read_text()
    assert "| ppca |" in md and "5-NN accuracy" in md and "R^2 of the true z" in md
    assert (tmp_path / "latent_digits.png").is_file()
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "genlab.cli",
            "compare",
            "--latent",
            "--families",
            "pca,evil",
            "--out",
            str(tmp_path / "b"),
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "Unknown latent model 'evil'" in bad.stderr
