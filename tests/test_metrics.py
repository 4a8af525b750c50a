"""Metrics against independent computations."""

import numpy as np
import pytest
import scipy.linalg
from scipy import stats

import genlab.data as gd
from genlab.evaluation import metrics as M


def exact_moments(rng, n, mean, cov):
    """Samples whose sample mean and (ddof=1) covariance are exactly ``mean`` and ``cov``."""
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    return mean + z @ np.linalg.cholesky(cov).T


def test_frechet_distance_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    b = rng.normal(size=(4, 4))
    cov_a, cov_b = a @ a.T + np.eye(4), b @ b.T + 0.5 * np.eye(4)
    mu_a, mu_b = np.zeros(4), np.array([1.0, -2.0, 0.5, 0.0])
    x, y = exact_moments(rng, 500, mu_a, cov_a), exact_moments(rng, 700, mu_b, cov_b)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    expect = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root)
    assert M.frechet_distance(x, y) == pytest.approx(expect, rel=1e-8)
    assert abs(M.frechet_distance(x, x)) < 1e-8


def test_kid_matches_brute_force():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(15, 3)), rng.normal(0.5, 1.0, size=(15, 3))

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    mean, std = M.kid(x, y, subsets=3, subset_size=15)  # whole sets: every subset is the same
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-10) and std < 1e-9


def test_precision_recall_extremes():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 2))
    assert M.precision_recall(x, x) == (1.0, 1.0)
    assert M.precision_recall(x, x + 100) == (0.0, 0.0)
    # Fakes covering only half the real mass: precision stays high, recall drops.
    half = x[x[:, 0] > 0]
    precision, recall = M.precision_recall(x, half)
    assert precision == 1.0 and recall < 0.7


def test_sliced_wasserstein_in_one_dimension_is_w1():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(400, 1)), rng.exponential(size=(400, 1))
    assert M.sliced_wasserstein(a, b, projections=4) == pytest.approx(
        stats.wasserstein_distance(a[:, 0], b[:, 0]), rel=1e-9
    )


def test_mmd_separates_distributions():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(400, 2)), rng.normal(size=(400, 2))
    assert abs(M.mmd_rbf(a, b)) < 0.01
    assert M.mmd_rbf(a, b + 1.5) > 0.1


def test_shipped_digits_classifier():
    from genlab.evaluation.features import card, digits_predict

    info = card()
    assert info["test_accuracy"] >= 0.97
    # its test set: the references, which neither it nor any generator trained on
    _, test = gd.load("digits", size=16, scale="pm1", part="models").split(0.2, seed=0)
    accuracy = (digits_predict(test.x) == test.y).mean()
    assert accuracy == pytest.approx(info["test_accuracy"], abs=1e-4)
    # 8x8 digits go through the same resize path and are still recognised.
    _, small = gd.load("digits", size=8, scale="pm1", part="models").split(0.2, seed=0)
    assert (digits_predict(small.x) == small.y).mean() > 0.9


def test_memorisation_tells_copies_from_new_samples():
    digits = gd.load("digits", size=16, scale="pm1", part="models")
    train, held_out = digits.split(0.2, seed=0)
    copies = M.memorisation(train.x, held_out.x, train.x[:200])
    assert copies["copy_share"] == 1.0 and copies["distance_ratio"] == 0.0
    other, new = held_out.split(0.5, seed=1)  # unseen digits: about 5% by construction
    fresh = M.memorisation(train.x, other.x, new.x)
    assert 0.0 <= fresh["copy_share"] <= 0.15 and 0.8 < fresh["distance_ratio"] < 1.25
    brute = np.sqrt(((new.x[:5, None] - train.x[None]) ** 2).sum((2, 3, 4))).min(1)
    np.testing.assert_allclose(M.nearest_distances(new.x[:5], train.x), brute, rtol=1e-6)
