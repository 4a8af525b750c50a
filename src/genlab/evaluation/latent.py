"""The latent-variable comparison (``genlab compare --latent``): PCA, probabilistic PCA, a
linear autoencoder, a linear-Gaussian VAE, genlab's nonlinear AE and VAE, and a Bayesian
GPLVM (GPyTorch, inducing points) fitted to the same data with the same latent size, and
measured the same way.

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


def ppca_mle(x: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Tipping and Bishop (1999): mean, W = U_q (L_q - s2 I)^(1/2), s2 = the mean of the
    discarded eigenvalues of the sample covariance (divided by N)."""
    mean = x.mean(0)
    cov = np.cov(x.T, bias=True)
    vals, vecs = np.linalg.eigh(cov)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    s2 = float(vals[q:].mean())
    w = vecs[:, :q] * np.sqrt(np.maximum(vals[:q] - s2, 0.0))
    return mean, w, s2


def ppca_log_lik(x: np.ndarray, mean: np.ndarray, w: np.ndarray, s2: float) -> float:
    """Average exact log-likelihood under N(mean, W W^T + s2 I)."""
    from scipy.stats import multivariate_normal

    cov = w @ w.T + s2 * np.eye(len(mean))
    return float(multivariate_normal(mean, cov).logpdf(x).mean())


def fit_ppca(x: np.ndarray, q: int) -> Fitted:
    def fit() -> Fitted:
        mean, w, s2 = ppca_mle(x, q)
        m_inv = np.linalg.inv(w.T @ w + s2 * np.eye(q))

        def encode(y):  # the posterior mean E[z | x] = M^-1 W^T (x - mean)
            return (y - mean) @ w @ m_inv

        return Fitted(
            "ppca",
            encode,
            lambda z: z @ w.T + mean,
            0.0,
            lambda y: ppca_log_lik(y, mean, w, s2),
            "exact",
            {"W": w, "sigma2": s2, "mean": mean},
        )

    return _timed(fit)


# --- linear models trained by gradient: the autoencoder and the linear-Gaussian VAE -------
def _lbfgs(params: list, loss: Callable[[], Any], iters: int) -> None:
    import torch

    opt = torch.optim.LBFGS(
        params,
        max_iter=iters,
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        value = loss()
        value.backward()
        return value

    opt.step(closure)


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
        _lbfgs([enc, dec, b], lambda: (((t - b) @ enc @ dec + b - t) ** 2).sum(1).mean(), iters)
        e, w, c = (v.detach().numpy() for v in (enc, dec, b))
        return Fitted(
            "linear-ae", lambda y: (y - c) @ e, lambda z: z @ w + c, 0.0, info={"decoder": w}
        )

    return _timed(fit)


def linear_vae_elbo(x, enc, enc_bias, log_std, dec, dec_bias, log_s2):
    """The ELBO of a linear-Gaussian VAE, in closed form (no sampling): q(z|x) =
    N(enc (x - dec_bias) + enc_bias, diag(exp(2 log_std))), p(x|z) = N(dec z + dec_bias,
    exp(log_s2) I), p(z) = N(0, I). Average per point."""
    import math

    m = (x - dec_bias) @ enc + enc_bias
    v = (2 * log_std).exp()
    d = x.shape[1]
    s2 = log_s2.exp()
    err = ((x - m @ dec - dec_bias) ** 2).sum(1) + (v * (dec**2).sum(1)).sum()
    rec = -0.5 * d * (math.log(2 * math.pi) + log_s2) - 0.5 * err / s2
    kl = 0.5 * (m**2 + v - 1 - 2 * log_std).sum(1)
    return (rec - kl).mean()


def fit_linear_vae(x: np.ndarray, q: int, iters: int = 500, seed: int = 0) -> Fitted:
    import torch

    def fit() -> Fitted:
        g = torch.Generator().manual_seed(seed)
        t = torch.as_tensor(x, dtype=torch.float64)
        d = t.shape[1]

        def param(*shape, scale=0.1):
            return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).requires_grad_()

        enc, enc_bias, log_std = param(d, q), param(q, scale=0.0), param(q, scale=0.0)
        dec, log_s2 = param(q, d), torch.zeros((), dtype=torch.float64, requires_grad=True)
        dec_bias = t.mean(0).clone().requires_grad_()
        params = [enc, enc_bias, log_std, dec, dec_bias, log_s2]
        _lbfgs(params, lambda: -linear_vae_elbo(t, *params), iters)
        e, eb, ls, w, wb, l2 = (p.detach() for p in params)

        def elbo(y):
            return float(
                linear_vae_elbo(torch.as_tensor(y, dtype=torch.float64), e, eb, ls, w, wb, l2)
            )

        return Fitted(
            "linear-vae",
            lambda y: (y - wb.numpy()) @ e.numpy() + eb.numpy(),
            lambda z: z @ w.numpy() + wb.numpy(),
            0.0,
            elbo,
            "ELBO",
            {"train_elbo": elbo(x), "decoder": w.numpy(), "sigma2": float(l2.exp())},
        )

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
def _gplvm_class():
    import gpytorch
    import torch
    from gpytorch.models.gplvm import BayesianGPLVM, VariationalLatentVariable

    class GPLVM(BayesianGPLVM):
        """One GP per data dimension, sharing the latent points X (a Gaussian q(X) per
        point, prior N(0, I)) and M inducing points; ``kernel`` "rbf" or "linear"."""

        def __init__(self, y: torch.Tensor, q: int, inducing: int, kernel: str, x_init):
            n, d = y.shape
            batch = torch.Size([d])
            z = torch.randn(d, inducing, q, generator=torch.Generator().manual_seed(0))
            dist = gpytorch.variational.CholeskyVariationalDistribution(inducing, batch_shape=batch)
            strategy = gpytorch.variational.VariationalStrategy(
                self, z, dist, learn_inducing_locations=True
            )
            prior = gpytorch.priors.NormalPrior(torch.zeros(n, q), torch.ones(n, q))
            latent = VariationalLatentVariable(n, d, q, x_init, prior)
            super().__init__(latent, strategy)
            self.mean_module = gpytorch.means.ZeroMean()
            base = (
                gpytorch.kernels.RBFKernel(ard_num_dims=q)
                if kernel == "rbf"
                else gpytorch.kernels.LinearKernel()
            )
            self.covar_module = gpytorch.kernels.ScaleKernel(base)

        def forward(self, x):
            return gpytorch.distributions.MultivariateNormal(
                self.mean_module(x), self.covar_module(x)
            )

    return GPLVM


def fit_gplvm(
    x: np.ndarray,
    q: int,
    kernel: str = "rbf",
    inducing: int = 32,
    steps: int = 1500,
    batch_size: int = 200,
    seed: int = 0,
) -> Fitted:
    """A Bayesian GPLVM on centred data, started at the PCA latents (as is usual), trained on
    GPyTorch's variational ELBO with Adam; new points are embedded by optimising their
    latent position under the fitted model."""
    import gpytorch
    import torch

    def fit() -> Fitted:
        torch.manual_seed(seed)
        mean = x.mean(0)
        y = torch.as_tensor(x - mean, dtype=torch.float32)
        u = torch.linalg.svd(y, full_matrices=False)[0]
        x_init = (u[:, :q] * np.sqrt(len(y))).clone()  # PCA latents, unit variance
        model = _gplvm_class()(y, q, inducing, kernel, x_init)
        likelihood = gpytorch.likelihoods.GaussianLikelihood(batch_shape=torch.Size([y.shape[1]]))
        mll = gpytorch.mlls.VariationalELBO(likelihood, model, num_data=len(y))
        opt = torch.optim.Adam([*model.parameters(), *likelihood.parameters()], lr=0.01)
        g = torch.Generator().manual_seed(seed)
        model.train()
        likelihood.train()
        for _ in range(steps):  # minibatches of points; the ELBO is scaled to all N
            batch = torch.randperm(len(y), generator=g)[:batch_size]
            opt.zero_grad()
            out = model(model.sample_latent_variable()[batch])
            loss = -mll(out, y[batch].T).sum()
            loss.backward()
            opt.step()
        model.eval()
        likelihood.eval()
        for p in [*model.parameters(), *likelihood.parameters()]:
            p.requires_grad_(False)  # embedding new points moves only their latents
        codes = model.X.q_mu.detach()

        def decode(z):
            with torch.no_grad(), gpytorch.settings.fast_pred_var():
                f = model(torch.as_tensor(z, dtype=torch.float32))
                return f.mean.T.numpy() + mean

        def encode(points, iters=150):
            # train mode: the variational marginal q(f(z)), without eval mode's caches (whose
            # graph a second backward cannot reuse); the parameters stay frozen
            model.train()
            likelihood.train()
            target = torch.as_tensor(points - mean, dtype=torch.float32)
            near = torch.cdist(target, y).argmin(1)  # start at the nearest training point
            z = codes[near].clone().requires_grad_()
            opt_z = torch.optim.Adam([z], lr=0.05)
            for _ in range(iters):
                opt_z.zero_grad()
                f = model(z)  # each point on its own: the marginal mean and variance
                var = f.variance + likelihood.noise
                nll = 0.5 * (((target.T - f.mean) ** 2) / var + var.log()).sum()
                nll = nll + 0.5 * (z**2).sum()  # the prior N(0, I)
                nll.backward()
                opt_z.step()
            model.eval()
            likelihood.eval()
            return z.detach().numpy()

        return Fitted(
            f"gplvm-{kernel}" if kernel != "rbf" else "gplvm",
            encode,
            decode,
            0.0,
            info={"train_codes": codes.numpy(), "final_loss": loss.item() / len(y)},
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
        results["skipped"].append(
            "The GPLVM needs GPyTorch, which is not installed: pip install 'genlab[latent]'."
        )
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
