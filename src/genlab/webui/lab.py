"""The model lab: any trained run sampled with its own options, with its metrics and plots;
and a 2-D playground that fits a mixture, a flow or a diffusion model on a toy set live,
steps through EM, and shows the forward diffusion at a chosen time."""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GenlabError
from .catalog import inside

TOY_SETS = ("8gaussians", "moons", "rings", "checkerboard", "faithful")
FAMILIES = ("gmm", "realnvp", "ddpm")
#: the 2-D models of the playground: the packaged recipes' networks, trained briefly
_NEURAL = {
    "realnvp": {"n_couplings": 8, "hidden": [64, 64]},
    "ddpm": {"hidden": [128, 128, 128], "schedule": "linear", "prediction": "eps"},
}
PLAIN = (int, float, str, bool)
#: options that change what ``sample`` returns (samples and labels), not what a picture shows
_NOT_SHOWN = {"return_labels"}
_TRAIN = {"batch_size": 256, "lr": 2e-3, "ema_decay": 0.99, "progress": False, "log_every": 10**9}


@lru_cache(maxsize=8)
def toy_points(name: str, n: int = 1000, seed: int = 0) -> np.ndarray:
    """A toy set standardised to mean 0 and unit spread (Old Faithful's minutes and
    eruption lengths differ in scale)."""
    from ..data import load

    if name not in TOY_SETS:
        raise GenlabError(f"Unknown toy set '{name}'; choose one of {', '.join(TOY_SETS)}.")
    x = load(name).x if name == "faithful" else load(name, n=n, seed=seed).x
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean(0)) / x.std(0)


def options_of(model_name: str) -> list[dict[str, Any]]:
    """The sampling options a page can offer for a model (plain values, not callbacks)."""
    from ..registry import model_class

    options = model_class(model_name).sample_options
    return [o.describe() for o in options if o.kind in PLAIN and o.name not in _NOT_SHOWN]


@lru_cache(maxsize=4)
def _run_model_name(folder: str) -> str:
    from ..runs import read_meta

    return read_meta(folder)["model"]


def run_options(folder: Path) -> list[dict[str, Any]]:
    return options_of(_run_model_name(str(folder)))


def run_figures(folder: Path) -> list[tuple[Any, str]]:
    """The run's plots as (PIL image, name): the page gets pixels, never the run's paths;
    a plot that links outside the run folder is left out."""
    from PIL import Image

    out = []
    for path in sorted(folder.glob("plots/*.png")) + sorted(folder.glob("*.png")):
        if not inside(path, folder) or not path.is_file():
            continue
        with Image.open(path) as im:
            out.append((im.convert("RGB"), path.stem))
    return out


def sample_run_to(folder: Path, out: Path, n: int, seed: int, options: dict[str, Any]) -> Path:
    """Draw ``n`` samples of a run with ``options`` (checked against its schema) as a PNG."""
    from ..runs import sample_run

    given = {k: v for k, v in options.items() if v is not None and v != ""}
    return sample_run(folder, n, out, seed=seed, **given)


def fit_toy(family: str, data: str, *, components: int = 8, steps: int = 400, seed: int = 0):
    """A model of ``family`` fitted to a toy set: a mixture by EM, a flow or a diffusion
    model by ``steps`` gradient steps."""
    x = toy_points(data)
    if family == "gmm":
        from ..models.mixture import GaussianMixture

        return GaussianMixture(n_components=components, seed=seed).fit(x)
    if family not in _NEURAL:
        raise GenlabError(f"Unknown family '{family}'; choose one of {', '.join(FAMILIES)}.")
    import torch

    from ..registry import model_class

    torch.manual_seed(seed)
    model = model_class(family)((2,), **_NEURAL[family])
    return model.fit(x.astype(np.float32), {**_TRAIN, "steps": steps, "seed": seed})


def density_figure(model: Any, data: str, *, title: str, grid: int = 60) -> Any:
    """log p(x) on a grid (coloured) with the data on top."""
    from ..viz.plots import subplots

    x = toy_points(data)
    lo, hi = x.min(0) - 0.5, x.max(0) + 0.5
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid))
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    logp = np.asarray(_log_prob(model, pts), dtype=np.float64).reshape(xx.shape)
    fig, ax = subplots(figsize=(5, 4.5))
    floor = np.quantile(logp, 0.05)
    mesh = ax.pcolormesh(xx, yy, np.maximum(logp, floor), cmap="magma", shading="auto")
    fig.colorbar(mesh, ax=ax, label="log p(x)")
    ax.scatter(x[:, 0], x[:, 1], s=2, c="white", alpha=0.4)
    ax.set(title=title, xlabel="x1", ylabel="x2")
    return fig


def _log_prob(model: Any, pts: np.ndarray) -> np.ndarray:
    """log p of the grid points, asked of the model: it says whether it has a density
    (``has_log_prob``) and turns the points into its own dtype (a neural model's float32,
    a mixture's float64), so the page needs no list of model names."""
    if not model.has_log_prob:
        raise GenlabError(f"A {model.name} model has no exact density to draw.")
    out = model.log_prob(pts)
    return out.detach().numpy() if hasattr(out, "detach") else out


def em_figure(data: str, components: int, iteration: int, seed: int = 0) -> tuple[Any, str]:
    """The mixture after ``iteration`` EM iterations from a fixed start, with the average
    log-likelihood after each iteration so far (it never decreases)."""
    from ..models.mixture import ConvergenceWarning, GaussianMixture
    from ..viz.plots import scatter_density

    x = toy_points(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = GaussianMixture(n_components=components, max_iter=iteration, tol=0, seed=seed)
        gm.fit(x)
    history = ", ".join(f"{h:.3f}" for h in np.asarray(gm.history_)[-5:])
    title = f"after {gm.n_iter_} EM iterations: avg log-lik {gm.score(x):.3f}"
    return scatter_density(x, gm, title=title), f"last average log-likelihoods: {history}"


def forward_figure(data: str, t: int, schedule: str = "linear", timesteps: int = 1000) -> Any:
    """Samples of q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) over the toy set."""
    import torch

    from ..diffusion.forward import q_sample
    from ..diffusion.schedules import alpha_bar
    from ..viz.plots import subplots

    if not 1 <= t <= timesteps:
        raise GenlabError(f"t must lie in 1..{timesteps}, got {t}.")
    x0 = torch.from_numpy(toy_points(data))
    ab = alpha_bar(schedule, timesteps)
    xt = q_sample(x0, t, ab, generator=torch.Generator().manual_seed(0)).numpy()
    fig, ax = subplots(figsize=(5, 4.5))
    ax.scatter(x0[:, 0], x0[:, 1], s=2, c="0.8", label="x_0")
    ax.scatter(xt[:, 0], xt[:, 1], s=3, c="tab:blue", label=f"x_{t}")
    ax.set(
        title=f"q(x_t | x_0) at t = {t}: alpha_bar = {float(ab[t - 1]):.3f}",
        xlim=(-4, 4), ylim=(-4, 4), aspect="equal",
    )  # fmt: skip
    ax.legend(loc="upper right")
    return fig
