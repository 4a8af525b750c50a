import numpy as np
import pytest
from scipy import stats

import genlab
from genlab.errors import DataError, GenlabError
from genlab.models.events import parse_interval
from genlab.models.gaussian import MultivariateNormal, Normal


def test_normal_mle_and_density_match_scipy():
    x = genlab.data.load("heights").x
    model = Normal().fit(x)
    assert model.mean_ == pytest.approx(x.mean()) and model.std_ == pytest.approx(x.std())
    ref = stats.norm(model.mean_, model.std_)
    grid = np.linspace(140, 200, 13)
    np.testing.assert_allclose(model.log_prob(grid), ref.logpdf(grid), rtol=1e-12)
    assert model.prob("x <= 160") == pytest.approx(ref.cdf(160), rel=1e-12)
    assert model.prob("x > 180") == pytest.approx(ref.sf(180), rel=1e-9)
    assert model.prob("P(150 < x <= 170)") == pytest.approx(ref.cdf(170) - ref.cdf(150))


def test_normal_mle_maximizes_likelihood():
    x = np.random.default_rng(0).normal(3, 2, 500)
    model = Normal().fit(x)
    best = model.score(x)
    for dm, ds in [(0.05, 0), (-0.05, 0), (0, 0.05), (0, -0.05)]:
        other = Normal.from_params(model.mean_ + dm, model.std_ + ds)
        assert other.score(x) < best


def test_normal_sampling_is_seeded():
    model = Normal.from_params(170, 7)
    a, b = model.sample(20_000, seed=1), model.sample(20_000, seed=1)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (20_000, 1)
    assert abs(a.mean() - 170) < 0.2 and abs(a.std() - 7) < 0.15


def test_mvn_matches_scipy():
    x = genlab.data.load("faithful").x
    model = MultivariateNormal().fit(x)
    np.testing.assert_allclose(model.covariance_, np.cov(x.T, bias=True), rtol=1e-12)
    ref = stats.multivariate_normal(model.mean_, model.covariance_)
    np.testing.assert_allclose(model.log_prob(x), ref.logpdf(x), rtol=1e-10)
    s = model.sample(50_000, seed=0)
    np.testing.assert_allclose(np.cov(s.T), model.covariance_, rtol=0.05)


def test_mvn_singular_covariance_is_explained():
    x = np.random.default_rng(0).normal(size=(100, 1))
    with pytest.raises(DataError, match="reg_covar"):
        MultivariateNormal().fit(np.hstack([x, 2 * x]))
    regularized = MultivariateNormal(reg_covar=1e-6).fit(np.hstack([x, 2 * x]))
    assert np.isfinite(regularized.score(np.hstack([x, 2 * x])))


@pytest.mark.parametrize(
    "text,interval",
    [
        ("x <= 160", (-np.inf, 160)),
        ("x>180", (180, np.inf)),
        ("150 < x <= 170", (150, 170)),
        ("P(x < -1.5e1)", (-np.inf, -15)),
    ],
)
def test_parse_interval(text, interval):
    assert parse_interval(text) == interval


@pytest.mark.parametrize("text", ["x = 3", "y <= 2", "5 < x < 1", ""])
def test_parse_interval_rejects(text):
    with pytest.raises(GenlabError):
        parse_interval(text)


def test_unfitted_model_says_so():
    with pytest.raises(GenlabError, match="not fitted"):
        Normal().log_prob([1.0])


@pytest.mark.parametrize("cls", [Normal, MultivariateNormal])
def test_save_load_roundtrip(tmp_path, cls):
    x = genlab.data.load("faithful").x[:, :1] if cls is Normal else genlab.data.load("faithful").x
    model = cls().fit(x)
    model.save(tmp_path / "m")
    again = genlab.load(tmp_path / "m")
    np.testing.assert_array_equal(again.log_prob(x), model.log_prob(x))
    np.testing.assert_array_equal(again.sample(5, seed=3), model.sample(5, seed=3))
