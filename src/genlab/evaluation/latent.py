"""The latent-variable comparison (``genlab compare --latent``): PCA, probabilistic PCA, a
linear autoencoder, a linear-Gaussian VAE, genlab's nonlinear AE and VAE, and a Bayesian
GPLVM (GPyTorch, inducing points) fitted to the same data with the same latent size, and
measured the same way. PPCA, the linear-Gaussian VAE and the GPLVM are registered models
(``genlab.models.latent``, ``genlab.models.gplvm``) with the same contract as every other;
this module fits them and wraps each as a ``Fitted`` (encode, decode, log-likelihood).

The links the comparison shows, each checked by a test:
  PCA = the linear autoencoder's subspace (it minimises the same squared error);
  PPCA = PCA with a noise model: its maximum-likelihood W spans the PCA subspace, and its
         exact log-likelihood is what the linear-Gaussian VAE's ELBO reaches at its optimum
         (the bound is tight there: the posterior of PPCA is Gaussian);
  GPLVM = PPCA's dual (Lawrence 2005): a Gaussian process from latents to data, which with
          a linear kernel recovers the PPCA subspace and with an RBF kernel bends it;
  VAE   = the linear-Gaussian VAE with neural encoder and decoder.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..models.latent import lbfgs, ppca_mle
from ..registry import model_class

__all__ = ["ppca_mle"]  # re-exported: the closed form lives with the model (models.latent)

MODELS = ("pca", "ppca", "linear-ae", "linear-vae", "ae", "vae", "gplvm")


@dataclass
class Fitted:
    """A fitted latent-variable model, as the comparison uses it."""

    name: str
    encode: Callable[[np.ndarray], np.ndarray]  # points -> latent means (N, q)
    decode: Callable[[np.ndarray], np.ndarray]  # latents -> reconstructions (N, D)
    fit_seconds: float
    log_lik: Callable[[np.ndarray], float] | None = None  # average per point, nats
    likelihood: str = "none"  # "exact", "ELBO" or "none"
    info: dict[str, Any] = field(default_factory=dict)


def _timed(fit: Callable[[], Fitted]) -> Fitted:
    start = time.perf_counter()
    fitted = fit()
    fitted.fit_seconds = time.perf_counter() - start
    return fitted


# --- PCA and probabilistic PCA, in closed form --------------------------------------------
def fit_pca(x: np.ndarray, q: int) -> Fitted:
    """scikit-learn's PCA; its ``score`` is the PPCA log-likelihood of its own fit."""
    from sklearn.decomposition import PCA

    def fit() -> Fitted:
        pca = PCA(q, svd_solver="full").fit(x)
        return Fitted(
            "pca",
            pca.transform,
            pca.inverse_transform,
            0.0,
            lambda y: float(pca.score(y)),
            "exact",
            {"components": pca.components_},
        )

    return _timed(fit)


def ppca_log_lik(x: np.ndarray, mean: np.ndarray, w: np.ndarray, s2: float) -> float:
    """Average exact log-likelihood under N(mean, W W^T + s2 I)."""
    from scipy.stats import multivariate_normal

    cov = w @ w.T + s2 * np.eye(len(mean))
    return float(multivariate_normal(mean, cov).logpdf(x).mean())


def fit_ppca(x: np.ndarray, q: int) -> Fitted:
    """The registered PPCA model (closed form), as the comparison uses it."""

    def fit() -> Fitted:
        model = model_class("ppca")(n_components=q).fit(x)
        info = {"W": model.components_, "sigma2": model.sigma2_, "mean": model.mean_}
        return Fitted("ppca", model.encode, model.decode, 0.0, model.score, "exact", info)

    return _timed(fit)


# --- linear models trained by gradient: the autoencoder and the linear-Gaussian VAE -------
def fit_linear_ae(x: np.ndarray, q: int, iters: int = 300, seed: int = 0) -> Fitted:
    """x -> A (x - b) -> W z + b, trained on the squared error (float64, L-BFGS)."""
    import torch

    def fit() -> Fitted:
        g = torch.Generator().manual_seed(seed)
        t = torch.as_tensor(x, dtype=torch.float64)
        d = t.shape[1]
        enc = (0.1 * torch.randn(d, q, generator=g, dtype=torch.float64)).requires_grad_()
        dec = (0.1 * torch.randn(q, d, generator=g, dtype=torch.float64)).requires_grad_()
        b = t.mean(0).clone().requires_grad_()
        lbfgs([enc, dec, b], lambda: (((t - b) @ enc @ dec + b - t) ** 2).sum(1).mean(), iters)
        e, w, c = (v.detach().numpy() for v in (enc, dec, b))
        return Fitted(
            "linear-ae", lambda y: (y - c) @ e, lambda z: z @ w + c, 0.0, info={"decoder": w}
        )

    return _timed(fit)


def fit_linear_vae(x: np.ndarray, q: int, iters: int = 500, seed: int = 0) -> Fitted:
    """The registered linear-Gaussian VAE (closed-form ELBO, L-BFGS in float64)."""

    def fit() -> Fitted:
        model = model_class("linear-vae")(n_components=q, iters=iters, seed=seed).fit(x)

        def elbo(y):
            return float(model.elbo(y).mean())

        info = {
            "train_elbo": elbo(x),
            "decoder": model.params_["dec"].numpy(),
            "sigma2": model.sigma2,
        }
        return Fitted("linear-vae", model.encode, model.decode, 0.0, elbo, "ELBO", info)

    return _timed(fit)


# --- genlab's nonlinear AE and VAE --------------------------------------------------------
def _train(model: Any, x: np.ndarray, steps: int, seed: int) -> None:
    import torch

    from ..training.trainer import TrainConfig, Trainer

    torch.manual_seed(seed)
    cfg = TrainConfig(
        steps=steps,
        batch_size=128,
        lr=2e-3,
        ema_decay=0,
        seed=seed,
        progress=False,
        decay_steps=steps,
    )
    Trainer(model, x.astype(np.float32), cfg).train()


def _decoder(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """A trained genlab AE's or VAE's decoder network as latents -> reconstructions."""
    import torch

    def decode(z):
        with torch.no_grad():
            return model.net.dec(torch.as_tensor(z, dtype=torch.float32)).numpy()

    return decode


def fit_ae(x: np.ndarray, q: int, steps: int = 3000, seed: int = 0) -> Fitted:
    from ..models.autoencoder import AE

    def fit() -> Fitted:
        model = AE((x.shape[1],), latent_dim=q, hidden=(128, 128))
        _train(model, x, steps, seed)
        model.net.eval()
        return Fitted("ae", lambda y: model.encode(y.astype(np.float32)).numpy(),
                      _decoder(model), 0.0)  # fmt: skip

    return _timed(fit)


def fit_vae(x: np.ndarray, q: int, steps: int = 3000, seed: int = 0) -> Fitted:
    import torch

    from ..models.vae import VAE

    def fit() -> Fitted:
        model = VAE((x.shape[1],), latent_dim=q, hidden=(128, 128))
        _train(model, x, steps, seed)
        model.net.eval()

        def encode(y):
            with torch.no_grad():
                return model.encode(torch.as_tensor(y, dtype=torch.float32))[0].numpy()

        def elbo(y):
            return float(model.elbo(y.astype(np.float32)).mean())

        return Fitted("vae", encode, _decoder(model), 0.0, elbo, "ELBO")

    return _timed(fit)


# --- the Bayesian GPLVM (GPyTorch) ---------------------------------------------------------
def fit_gplvm(
    x: np.ndarray,
    q: int,
    kernel: str = "rbf",
    inducing: int = 32,
    steps: int = 1500,
    batch_size: int = 200,
    seed: int = 0,
) -> Fitted:
    """The registered Bayesian GPLVM on centred data, started at the PCA latents, trained on
    GPyTorch's variational ELBO with Adam; new points are embedded by optimising their
    latent position under the fitted model."""

    def fit() -> Fitted:
        model = model_class("gplvm")(
            n_components=q, kernel=kernel, inducing=inducing, steps=steps,
            batch_size=batch_size, seed=seed,
        ).fit(x)  # fmt: skip
        return Fitted(
            f"gplvm-{kernel}" if kernel != "rbf" else "gplvm",
            model.encode,
            model.decode,
            0.0,
            info={"train_codes": model.train_codes, "final_loss": model.final_loss_},
        )

    return _timed(fit)


# --- measuring ---------------------------------------------------------------------------
def synthetic(n: int = 1500, d: int = 20, q: int = 2, noise: float = 0.3, seed: int = 0):
    """Data with a known 2-D latent: x = W z + mean + noise, z ~ N(0, I): (x, z)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, q))
    w = rng.standard_normal((q, d))
    return z @ w + rng.standard_normal(d) + noise * rng.standard_normal((n, d)), z


def separation(train_codes, train_y, test_codes, test_y, k: int = 5) -> float:
    """Held-out accuracy of a k-nearest-neighbour classifier in the latent space (labels)."""
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(k).fit(train_codes, train_y).score(test_codes, test_y))


def latent_r2(codes: np.ndarray, truth: np.ndarray) -> float:
    """How much of the true latent a linear map of the codes explains (R^2)."""
    from sklearn.linear_model import LinearRegression

    return float(LinearRegression().fit(codes, truth).score(codes, truth))


def measure(fitted: Fitted, train, test) -> dict[str, Any]:
    """Held-out reconstruction error per dimension, log-likelihood (or its bound) per
    dimension, latent quality (class separation or R^2 of the true latent), fit time, and
    the time to embed one new point."""
    (x, y), (xt, yt) = train, test
    start = time.perf_counter()
    codes_t = fitted.encode(xt)
    embed_ms = 1000 * (time.perf_counter() - start) / len(xt)
    codes = fitted.info.get("train_codes")
    codes = fitted.encode(x) if codes is None else codes
    d = x.shape[1]
    row = {
        "model": fitted.name,
        "recon_mse": float(((fitted.decode(codes_t) - xt) ** 2).mean()),
        "log_lik_per_dim": fitted.log_lik(xt) / d if fitted.log_lik else None,
        "likelihood": fitted.likelihood,
        "fit_seconds": fitted.fit_seconds,
        "embed_ms_per_point": embed_ms,
        "codes": codes_t,
    }
    if y.ndim == 1:
        row["separation"] = separation(codes, y, codes_t, yt)
    else:
        row["latent_r2"] = latent_r2(codes_t, yt)
    return row


FITTERS: dict[str, Callable[..., Fitted]] = {
    "pca": fit_pca,
    "ppca": fit_ppca,
    "linear-ae": fit_linear_ae,
    "linear-vae": fit_linear_vae,
    "ae": fit_ae,
    "vae": fit_vae,
    "gplvm": fit_gplvm,
}


def datasets(seed: int = 0) -> dict[str, tuple]:
    """(train, test) pairs: digits (8x8 pixels in [0, 1], labels) and the synthetic set
    (true latents as the 'labels')."""
    from ..data import load

    digits = load("digits")
    x = digits.x.reshape(len(digits.x), -1).astype(np.float64)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    tr, te = order[:cut], order[cut:]
    sx, sz = synthetic(seed=seed)
    return {
        "digits": ((x[tr], digits.y[tr]), (x[te], digits.y[te])),
        "synthetic": ((sx[:1200], sz[:1200]), (sx[1200:], sz[1200:])),
    }


#: ``quick``: shortened fits for the demo's tour (and no fit time against N)
QUICK = {
    "linear-ae": {"iters": 100},
    "linear-vae": {"iters": 200},
    "ae": {"steps": 400},
    "vae": {"steps": 400},
    "gplvm": {"steps": 150},
}


def compare_latent(
    q: int = 2,
    models=MODELS,
    scaling=(300, 600, 1200),
    progress: Callable[[str], None] | None = None,
    quick: bool = False,
) -> dict[str, Any]:
    """Every model on every data set, measured; and fit time against N on digits
    (``quick``: shorter fits, and no fit time against N)."""
    results: dict[str, Any] = {"q": q, "data": {}, "scaling": {}, "skipped": [], "quick": quick}
    settings = QUICK if quick else {}
    scaling = () if quick else scaling
    if "gplvm" in models and importlib.util.find_spec("gpytorch") is None:
        models = tuple(m for m in models if m != "gplvm")
        from ..models.gplvm import MISSING

        results["skipped"].append(MISSING)
    for name, (train, test) in datasets().items():
        rows = []
        for model in models:
            if progress:
                progress(f"{model} on {name}")
            rows.append(
                measure(FITTERS[model](train[0], q, **settings.get(model, {})), train, test)
            )
        results["data"][name] = rows
    train, _ = datasets()["digits"]
    for model in models:
        if progress:
            progress(f"{model}: fit time against N")
        results["scaling"][model] = {
            n: FITTERS[model](train[0][:n], q, **settings.get(model, {})).fit_seconds
            for n in scaling
        }
    return results
