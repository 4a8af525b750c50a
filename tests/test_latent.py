"""The latent-variable comparison: the formal links between PCA, probabilistic PCA, the linear
autoencoder, the linear-Gaussian VAE and the GPLVM, each checked against an oracle
(scikit-learn's PCA, principal angles, the exact PPCA likelihood)."""

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


def test_measure_report_and_command_line(tmp_path, capsys):
    from genlab.cli import main
    from genlab.evaluation.latent_report import write_report

    results = latent.compare_latent(2, ("pca", "ppca"), scaling=(300,))
    md = write_report(results, tmp_path, "test", "test machine").read_text()
    assert "| ppca |" in md and "5-NN accuracy" in md and "R^2 of the true z" in md
    assert (tmp_path / "latent_digits.png").is_file()
    digits = {r["model"]: r for r in results["data"]["digits"]}
    assert digits["ppca"]["log_lik_per_dim"] == pytest.approx(
        digits["pca"]["log_lik_per_dim"], abs=1e-4
    )  # scikit-learn's PCA score is the PPCA likelihood (up to N - 1 against N)
    assert main(["compare", "--latent", "--families", "pca,evil", "--out", str(tmp_path)]) == 2
    assert "Unknown latent model 'evil'" in capsys.readouterr().err
