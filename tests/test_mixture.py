import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkMixture

import genlab
from genlab.models.mixture import (
    COVARIANCE_TYPES,
    DegenerateComponentWarning,
    GaussianMixture,
    features,
    natural_weights,
)
from genlab.runs import cross_validate


def blobs(n=3000, d=3, seed=0, offset=100.0):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(size=(n, d)) * s + m for s, m in [(1.0, 0.0), (0.5, 4.0), (2.0, -3.0)]]
    return np.concatenate(parts) + offset  # far from the origin: centring must work


def sklearn_start(x, ct, k=3):
    sk = SkMixture(k, covariance_type=ct, random_state=0, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk.fit(x)
    return {
        "weights_init": sk.weights_,
        "means_init": sk.means_,
        "precisions_init": sk.precisions_,
    }


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_same_start_same_answer_as_sklearn(ct):
    x = blobs()
    start = sklearn_start(x, ct)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = SkMixture(3, covariance_type=ct, max_iter=25, tol=0, **start).fit(x)
        gl = GaussianMixture(3, covariance_type=ct, max_iter=25, tol=0, **start).fit(x)
    assert gl.n_iter_ == sk.n_iter_ == 25
    assert abs(gl.lower_bound_ - sk.lower_bound_) < 1e-6
    for ours, theirs in [
        (gl.weights_, sk.weights_),
        (gl.means_, sk.means_),
        (gl.covariances_, sk.covariances_),
    ]:
        np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(gl.log_prob(x), sk.score_samples(x), atol=1e-6)
    np.testing.assert_allclose(gl.predict_proba(x), sk.predict_proba(x), atol=1e-6)
    assert gl.bic(x) == pytest.approx(sk.bic(x), rel=1e-9)
    assert gl.aic(x) == pytest.approx(sk.aic(x), rel=1e-9)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random", "random_from_data"])
def test_history_never_decreases(ct, init):
    x = blobs(800, d=2, seed=1)
    model = GaussianMixture(4, covariance_type=ct, init_params=init, seed=0, tol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x)
    h = np.array(model.history_)
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[:-1]))
    assert model.lower_bound_ == h[-1] and model.n_iter_ == len(h)


def test_feature_map_reproduces_log_density():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    for ct in COVARIANCE_TYPES:
        sk = SkMixture(2, covariance_type=ct, random_state=0).fit(x)
        w = natural_weights(sk.weights_, sk.means_, sk.precisions_cholesky_, ct)
        joint = features(x.T, ct).T @ w  # log w_k + log N(x | k)
        np.testing.assert_allclose(joint, sk._estimate_weighted_log_prob(x), rtol=1e-10, atol=1e-10)


def test_old_faithful_book_weights():
    model = GaussianMixture(2, seed=0).fit(genlab.data.load("faithful"))
    np.testing.assert_allclose(sorted(model.weights_), [0.356, 0.644], atol=0.01)
    assert model.converged_


def test_mixture_beats_one_normal_on_held_out_heights():
    heights = genlab.data.load("heights")
    one = cross_validate("normal", heights)
    two = cross_validate("gmm", heights, {"n_components": 2, "n_init": 5, "tol": 1e-6})
    assert two.mean() > one.mean()


def test_degenerate_component_warns_not_nan():
    rng = np.random.default_rng(0)
    # Three distinct points repeated: a fourth component has nothing of its own to fit.
    x = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]]), 50, axis=0)
    x = np.vstack([x, rng.normal(size=(3, 2)) * 1e-9 + [0.0, 0.0]])
    with pytest.warns(DegenerateComponentWarning):
        model = GaussianMixture(4, reg_covar=0.0, seed=0, init_params="random_from_data")
        model.fit(x)
    assert np.all(np.isfinite(model.log_prob(x)))
    assert np.all(np.isfinite(model.means_)) and np.all(np.isfinite(model.weights_))


def test_sampling_matches_the_mixture():
    model = GaussianMixture(2, seed=0).fit(genlab.data.load("faithful"))
    s, z = model.sample(100_000, seed=0, return_labels=True)
    np.testing.assert_allclose(np.bincount(z) / len(z), model.weights_, atol=0.01)
    for k in range(2):
        np.testing.assert_allclose(s[z == k].mean(0), model.means_[k], rtol=0.01)
        np.testing.assert_allclose(np.cov(s[z == k].T), model.covariances_[k], rtol=0.05)
    np.testing.assert_array_equal(model.sample(5, seed=1), model.sample(5, seed=1))


def test_one_dimensional_mixture_cdf():
    from scipy import stats

    x = genlab.data.load("heights").x
    model = GaussianMixture(2, seed=0).fit(x)
    sd = np.sqrt(model.covariances_[:, 0, 0])
    expect = sum(
        w * stats.norm(m[0], s).cdf(160)
        for w, m, s in zip(model.weights_, model.means_, sd, strict=True)
    )
    assert model.prob("x <= 160") == pytest.approx(expect, rel=1e-10)


def test_float32_is_close_and_n_init_keeps_the_best():
    x = blobs(2000, d=2)
    a = GaussianMixture(3, seed=0, tol=1e-8, max_iter=300).fit(x)
    b = GaussianMixture(3, seed=0, tol=1e-8, max_iter=300, dtype="float32").fit(x)
    assert abs(a.lower_bound_ - b.lower_bound_) < 1e-3
    many = GaussianMixture(3, seed=0, n_init=4, init_params="random", tol=1e-8, max_iter=300)
    assert many.fit(x).lower_bound_ >= a.lower_bound_ - 1e-6


def test_save_load_roundtrip(tmp_path):
    x = blobs(300, d=2)
    model = GaussianMixture(3, covariance_type="diag", seed=0).fit(x)
    model.save(tmp_path / "gmm")
    again = genlab.load(tmp_path / "gmm")
    assert again.covariance_type == "diag" and again.history_ == model.history_
    np.testing.assert_array_equal(again.log_prob(x), model.log_prob(x))
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


def test_bad_parameters():
    with pytest.raises(genlab.GenlabError, match="covariance_type"):
        GaussianMixture(2, covariance_type="round")
    with pytest.raises(genlab.GenlabError, match="too few"):
        GaussianMixture(5).fit(np.ones((3, 2)))
