"""The Bayesian GPLVM (Titsias and Lawrence 2010) on GPyTorch: one Gaussian process per data
dimension from shared latent points to the data, with inducing points.

PPCA's dual (Lawrence 2005): with a linear kernel it recovers the PPCA subspace, with an RBF
kernel it bends it. GPyTorch is an optional extra (``pip install 'genlab[latent]'``), imported
only inside this model. The model has no exact density and no per-point bound for new data
(a new point's latent is found by optimisation), so it answers sample, encode and decode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..base import GenerativeModel
from ..errors import GenlabError
from .gaussian import table_of

KERNELS = ("rbf", "linear")
MISSING = "The GPLVM needs GPyTorch, which is not installed: pip install 'genlab[latent]'."


def _gpytorch():
    try:
        import gpytorch
    except ImportError:
        raise GenlabError(MISSING) from None
    return gpytorch


def _module_class():
    gpytorch = _gpytorch()
    import torch
    from gpytorch.models.gplvm import BayesianGPLVM, VariationalLatentVariable

    class Module(BayesianGPLVM):
        """One GP per data dimension, sharing the latent points X (a Gaussian q(X) per
        point, prior N(0, I)) and M inducing points."""

        def __init__(self, n: int, d: int, q: int, inducing: int, kernel: str, x_init):
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

    return Module


class GPLVM(GenerativeModel):
    """A Bayesian GPLVM on centred data, started at the PCA latents (as is usual), trained
    on GPyTorch's variational ELBO with Adam on minibatches of points.

    ``n_components``: the latent size q; ``kernel``: "rbf" or "linear"; ``inducing``: the
    inducing points; ``steps``, ``batch_size``: Adam's; ``seed``: minibatches and the start.
    """

    name = "gplvm"

    def __init__(
        self,
        n_components: int = 2,
        kernel: str = "rbf",
        inducing: int = 32,
        steps: int = 1500,
        batch_size: int = 200,
        seed: int = 0,
    ) -> None:
        _gpytorch()  # one sentence now, not a traceback at fit time
        if kernel not in KERNELS:
            raise GenlabError(f"kernel must be one of {', '.join(KERNELS)}, got '{kernel}'.")
        self.n_components, self.kernel, self.inducing = int(n_components), kernel, int(inducing)
        self.steps, self.batch_size, self.seed = int(steps), int(batch_size), int(seed)
        if min(self.n_components, self.inducing, self.steps, self.batch_size) < 1:
            raise GenlabError("n_components, inducing, steps and batch_size must be at least 1.")
        self.module_ = None
        self.final_loss_: float | None = None

    def _build(self, n: int, d: int, x_init) -> None:
        import torch

        gpytorch = _gpytorch()
        self.module_ = _module_class()(n, d, self.n_components, self.inducing, self.kernel, x_init)
        self.likelihood_ = gpytorch.likelihoods.GaussianLikelihood(batch_shape=torch.Size([d]))

    def _check_fitted(self):
        if self.module_ is None:
            raise GenlabError("This GPLVM is not fitted yet; call fit() first.")
        return self.module_

    def fit(self, data: Any, config: Any = None) -> GPLVM:
        import torch

        gpytorch = _gpytorch()
        x = table_of(data)
        q = self.n_components
        torch.manual_seed(self.seed)
        self.mean_ = x.mean(0)
        y = torch.as_tensor(x - self.mean_, dtype=torch.float32)
        u = torch.linalg.svd(y, full_matrices=False)[0]
        x_init = (u[:, :q] * np.sqrt(len(y))).clone()  # PCA latents, unit variance
        self._build(len(y), y.shape[1], x_init)
        model, likelihood = self.module_, self.likelihood_
        mll = gpytorch.mlls.VariationalELBO(likelihood, model, num_data=len(y))
        opt = torch.optim.Adam([*model.parameters(), *likelihood.parameters()], lr=0.01)
        g = torch.Generator().manual_seed(self.seed)
        model.train()
        likelihood.train()
        for _ in range(self.steps):  # minibatches of points; the ELBO is scaled to all N
            batch = torch.randperm(len(y), generator=g)[: self.batch_size]
            opt.zero_grad()
            out = model(model.sample_latent_variable()[batch])
            loss = -mll(out, y[batch].T).sum()
            loss.backward()
            opt.step()
        self.final_loss_ = loss.item() / len(y)
        self._train_points = y
        self._freeze()
        return self

    def _freeze(self) -> None:
        self.module_.eval()
        self.likelihood_.eval()
        for p in [*self.module_.parameters(), *self.likelihood_.parameters()]:
            p.requires_grad_(False)  # embedding new points moves only their latents

    @property
    def train_codes(self) -> np.ndarray:
        """The latent means of the training points, (N, q)."""
        return self._check_fitted().X.q_mu.detach().numpy()

    def decode(self, z: np.ndarray) -> np.ndarray:
        """The GP's posterior mean at latents ``z`` (N, q), in data space (N, d)."""
        import torch

        gpytorch = _gpytorch()
        model = self._check_fitted()
        with torch.no_grad(), gpytorch.settings.fast_pred_var():
            f = model(torch.as_tensor(np.asarray(z), dtype=torch.float32))
            return f.mean.T.numpy().astype(np.float64) + self.mean_

    def encode(self, points: Any, iters: int = 150) -> np.ndarray:
        """New points' latents by optimisation: each starts at its nearest training point's
        latent and moves to the mode of p(x | z) p(z) under the GP's marginal."""
        import torch

        model, likelihood = self._check_fitted(), self.likelihood_
        codes = model.X.q_mu.detach()
        # train mode: the variational marginal q(f(z)), without eval mode's caches (whose
        # graph a second backward cannot reuse); the parameters stay frozen
        model.train()
        likelihood.train()
        target = torch.as_tensor(table_of(points) - self.mean_, dtype=torch.float32)
        train = getattr(self, "_train_points", None)
        if train is None:
            train = torch.as_tensor(self.decode(codes.numpy()) - self.mean_, dtype=torch.float32)
        near = torch.cdist(target, train).argmin(1)  # start at the nearest training point
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

    def sample(self, n: int, *, cond: Any = None, seed: int | None = None, **kw: Any):
        """z ~ N(0, I), then the GP's mean at z plus the likelihood's noise."""
        self.sampling(kw)
        self._check_fitted()
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.n_components))
        noise = self.likelihood_.noise.detach().numpy().reshape(-1).astype(np.float64)
        return self.decode(z) + np.sqrt(noise) * rng.standard_normal((n, len(self.mean_)))

    def fit_metrics(self) -> dict[str, Any]:
        return {} if self.final_loss_ is None else {"final_loss": self.final_loss_}

    def get_config(self) -> dict[str, Any]:
        return {
            "n_components": self.n_components,
            "kernel": self.kernel,
            "inducing": self.inducing,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "seed": self.seed,
        }

    def state_arrays(self) -> dict[str, np.ndarray]:
        model = self._check_fitted()
        out = {"mean": np.asarray(self.mean_)}
        out |= {f"gp.{k}": v.detach().numpy() for k, v in model.state_dict().items()}
        out |= {f"lik.{k}": v.detach().numpy() for k, v in self.likelihood_.state_dict().items()}
        return out

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        import torch

        n, q = arrays["gp.X.q_mu"].shape
        if q != self.n_components:
            raise ValueError(f"X.q_mu has shape {(n, q)}, not (N, {self.n_components})")
        self.mean_ = np.asarray(arrays["mean"], dtype=np.float64)
        self._build(n, len(self.mean_), torch.zeros(n, q))

        def part(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix) :]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
                    if k.startswith(prefix)}  # fmt: skip

        self.module_.load_state_dict(part("gp."))
        self.likelihood_.load_state_dict(part("lik."))
        self._freeze()
