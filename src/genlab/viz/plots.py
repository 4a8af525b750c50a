"""Pictures of models and data: densities, mixtures, EM curves, samples, flows, energies,
the diffusion process.

Every function returns a figure and writes nothing: a matplotlib ``Figure`` (built without
pyplot, so no global state and no display), or a PIL image for image grids. ``save`` writes
any of them to a file; a web page shows them as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def subplots(*grid: int, figsize: tuple[float, float]):
    """A new Figure and its axes (no pyplot: nothing global, nothing to close)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid)


def _colors(n: int) -> np.ndarray:
    import matplotlib

    return matplotlib.colormaps["tab10"](np.arange(n) % 10)


def _done(fig):
    """Tight layout, plain tick labels (no "1e-13+3.08e-1" offset a flat curve gets), and
    axis names x1, x2 on a 2-D scatter that has none."""
    for ax in fig.axes:
        if ax.name != "3d":
            _widen_flat_limits(ax)
            try:
                ax.ticklabel_format(useOffset=False)
            except AttributeError:  # a log or categorical axis has no offset to drop
                pass
            named = ax.get_xlabel() or ax.get_ylabel() or hasattr(ax, "_colorbar")
            if not named and ax.collections:
                ax.set(xlabel="x1", ylabel="x2")
    fig.tight_layout()
    return fig


def _widen_flat_limits(ax) -> None:
    """A curve flat to a few parts in a million (EM's log-likelihood once converged) gets
    limits of +-0.1% around its value: without an offset, ticks 1e-13 apart would print as
    "0.30800000000040"; with these limits they print as "0.3080"."""
    for get, set_, scale in ((ax.get_ylim, ax.set_ylim, ax.get_yscale),
                             (ax.get_xlim, ax.set_xlim, ax.get_xscale)):  # fmt: skip
        if scale() != "linear":
            continue
        low, high = get()
        centre = (low + high) / 2
        if centre and abs(high - low) < 1e-6 * abs(centre):
            half = 1e-3 * abs(centre)
            set_(centre - half, centre + half)


def save(figure: Any, path: str | Path) -> Path:
    """Write a figure (PNG), a PIL image, or a list of images (an animated GIF) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(figure, list):
        frames = [im.convert("P") for im in figure]
        # each frame 120 ms, the last one held 3 s: the finished picture stays on screen
        # before the loop starts again
        durations = [120] * (len(frames) - 1) + [3000]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations,
                       loop=0)  # fmt: skip
    elif hasattr(figure, "savefig"):
        # matplotlib's 3-D projection now and then overflows inside its own matrix products
        # while drawing (it silences the same errors in some of its own paths); the picture
        # is unaffected, so keep the warning away from the user.
        with np.errstate(over="ignore", invalid="ignore"):
            figure.savefig(path, dpi=110)
    else:
        figure.save(path)
    return path


def save_figures(figures: dict[str, Any], folder: Path) -> list[Path]:
    """Write figures by stem as PNG files in ``folder``."""
    return [save(fig, Path(folder) / f"{stem}.png") for stem, fig in figures.items()]


def density_histogram(x, model, *, title: str = "", xlabel: str = "x") -> Any:
    """Histogram of 1-D data with the fitted model's density drawn over it."""
    x = np.asarray(x, dtype=float).ravel()
    fig, ax = subplots(figsize=(6, 4))
    ax.hist(x, bins=40, density=True, alpha=0.5, color="tab:blue", label="data")
    pad = 0.1 * (x.max() - x.min())
    grid = np.linspace(x.min() - pad, x.max() + pad, 400)
    ax.plot(grid, np.exp(model.log_prob(grid[:, None])), color="tab:red", lw=2, label="fit")
    ax.set(xlabel=xlabel, ylabel="density", title=title)
    ax.legend()
    return _done(fig)


def compare_histograms(real, generated, *, title: str = "", xlabel: str = "x") -> Any:
    """Real against generated 1-D samples, on the same bins."""
    real, generated = np.ravel(real), np.ravel(generated)
    bins = np.histogram_bin_edges(np.concatenate([real, generated]), bins=40)
    fig, ax = subplots(figsize=(6, 4))
    ax.hist(real, bins=bins, density=True, alpha=0.5, label="real")
    ax.hist(generated, bins=bins, density=True, alpha=0.5, label="generated")
    ax.set(xlabel=xlabel, ylabel="density", title=title)
    ax.legend()
    return _done(fig)


def _grid(x: np.ndarray, steps: int = 200):
    lo, hi = x.min(0), x.max(0)
    pad = 0.15 * (hi - lo)
    gx = np.linspace(lo[0] - pad[0], hi[0] + pad[0], steps)
    gy = np.linspace(lo[1] - pad[1], hi[1] + pad[1], steps)
    xx, yy = np.meshgrid(gx, gy)
    return xx, yy, np.stack([xx.ravel(), yy.ravel()], 1)


def _ellipse(ax, mean, cov, color, n_std: float = 2.0) -> None:
    from matplotlib.patches import Ellipse

    vals, vecs = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vecs[1, -1], vecs[0, -1]))
    w, h = 2 * n_std * np.sqrt(vals[::-1])
    ax.add_patch(Ellipse(mean, w, h, angle=angle, fill=False, color=color, lw=2))


def scatter_density(x, model, *, title: str = "", labels: Any = None, names: Any = None) -> Any:
    """2-D scatter with the model's log-density contours and, for a mixture, 2-sigma
    ellipses of its components."""
    x = np.asarray(x, dtype=float)
    fig, ax = subplots(figsize=(6, 5))
    xx, yy, pts = _grid(x)
    logp = model.log_prob(pts).reshape(xx.shape)
    levels = np.quantile(logp, np.linspace(0.5, 0.995, 8))
    ax.contour(xx, yy, logp, levels=levels, cmap="viridis", linewidths=1)
    ax.scatter(x[:, 0], x[:, 1], s=6, c="k" if labels is None else labels, alpha=0.5)
    if hasattr(model, "full_covariances"):
        colors = _colors(len(model.means_))
        for mean, cov, color in zip(model.means_, model.full_covariances(), colors, strict=True):
            _ellipse(ax, mean, cov, color)
    elif hasattr(model, "covariance_"):
        _ellipse(ax, model.mean_, model.covariance_, "tab:red")
    names = names or ("x1", "x2")
    ax.set(title=title, xlabel=names[0], ylabel=names[1])
    return _done(fig)


def em_history(history, *, title: str = "EM: average log-likelihood") -> Any:
    """The average log-likelihood before each EM iteration's M-step."""
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(np.arange(1, len(history) + 1), history, marker="o", ms=3)
    ax.set(xlabel="iteration", ylabel="average log-likelihood", title=title)
    ax.grid(alpha=0.3)
    return _done(fig)


def responsibilities(x, resp, *, title: str = "responsibilities") -> Any:
    """Each point coloured by the mix of its components' colours, weighted by p(z | x)."""
    x, resp = np.asarray(x, dtype=float), np.asarray(resp)
    colors = _colors(resp.shape[1])[:, :3]
    fig, ax = subplots(figsize=(6, 5))
    ax.scatter(x[:, 0], x[:, 1], s=10, c=np.clip(resp @ colors, 0, 1))
    ax.set(title=title)
    return _done(fig)


def scatter(x, *, title: str = "", reference: Any = None) -> Any:
    """Samples as a 2-D scatter, optionally over reference data in grey."""
    x = np.asarray(x, dtype=float)
    fig, ax = subplots(figsize=(5, 5))
    if reference is not None:
        ref = np.asarray(reference)
        ax.scatter(ref[:, 0], ref[:, 1], s=4, c="0.7", label="data")
    ax.scatter(x[:, 0], x[:, 1], s=4, c="tab:red", label="samples")
    ax.set(title=title)
    ax.legend(loc="upper right")
    return _done(fig)


def normal_surface(model, *, title: str = "2-D normal density") -> Any:
    """The density of a 2-D normal as a 3-D surface, with its contours below."""
    mean, cov = model.mean_, model.covariance_
    std = np.sqrt(np.diag(cov))
    gx = np.linspace(mean[0] - 3 * std[0], mean[0] + 3 * std[0], 80)
    gy = np.linspace(mean[1] - 3 * std[1], mean[1] + 3 * std[1], 80)
    xx, yy = np.meshgrid(gx, gy)
    zz = np.exp(model.log_prob(np.stack([xx.ravel(), yy.ravel()], 1))).reshape(xx.shape)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot(projection="3d")
    ax.plot_surface(xx, yy, zz, cmap="viridis", linewidth=0, antialiased=True)
    ax.contour(xx, yy, zz, zdir="z", offset=0, cmap="viridis")
    ax.set(title=title, xlabel="x1", ylabel="x2", zlabel="p(x)")
    return _done(fig)


def image_grid(images, *, nrow: int | None = None) -> Any:
    """Images (N, C, H, W) in [-1, 1] or [0, 1] tiled into one PIL image (4x enlarged)."""
    from PIL import Image

    imgs = np.asarray(images, dtype=np.float32)
    if imgs.min() < 0:
        imgs = (imgs + 1) / 2
    n, c, h, w = imgs.shape
    nrow = nrow or int(np.ceil(np.sqrt(n)))
    ncol = int(np.ceil(n / nrow))
    canvas = np.ones((c, ncol * (h + 1) + 1, nrow * (w + 1) + 1), dtype=np.float32)
    for i in range(n):
        r, q = divmod(i, nrow)
        canvas[:, 1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + q * (w + 1) : 1 + q * (w + 1) + w] = (
            imgs[i]
        )
    pixels = (np.clip(canvas, 0, 1) * 255).round().astype(np.uint8)
    pixels = pixels[0] if c == 1 else pixels.transpose(1, 2, 0)
    return Image.fromarray(pixels).resize((pixels.shape[1] * 4, pixels.shape[0] * 4), 0)


def training_curves(rows: list[dict], *, title: str = "training") -> Any:
    """Every loss-like metric logged in metrics.jsonl against the step (one panel each)."""
    keys = [k for k in rows[0] if k.endswith("loss")] if rows else []
    fig, axes = subplots(1, max(len(keys), 1), figsize=(4 * max(len(keys), 1), 3.2))
    axes = np.atleast_1d(axes)
    steps = [r["step"] for r in rows]
    for ax, key in zip(axes, keys, strict=False):
        ax.plot(steps, [r.get(key, np.nan) for r in rows])
        ax.set(xlabel="step", title=key)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return _done(fig)


def flow_grid(model, data, *, lines: int = 21, span: float = 3.0) -> Any:
    """How a 2-D flow warps space: straight grid lines of the latent space, drawn through
    the inverse map in data space, beside the data and the learned density."""
    import torch

    t = np.linspace(-span, span, 200)
    fig, (ax_z, ax_x, ax_p) = subplots(1, 3, figsize=(13, 4.3))
    with torch.no_grad():
        for v in np.linspace(-span, span, lines):
            for pts in (np.stack([t, np.full_like(t, v)], 1), np.stack([np.full_like(t, v), t], 1)):
                ax_z.plot(pts[:, 0], pts[:, 1], lw=0.6, c="tab:blue")
                warped = model.inverse([torch.as_tensor(pts, dtype=torch.float32)]).numpy()
                ax_x.plot(warped[:, 0], warped[:, 1], lw=0.6, c="tab:blue")
    x = np.asarray(data)
    ax_x.scatter(x[:, 0], x[:, 1], s=2, c="0.6", zorder=0)
    lo, hi = x.min(0) - 0.5, x.max(0) + 0.5
    ax_x.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), title="latent grid in data space")
    ax_z.set(title="latent space (z ~ N(0, I))")
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    dens = np.exp(np.asarray(model.log_prob(np.stack([gx.ravel(), gy.ravel()], 1))))
    ax_p.imshow(dens.reshape(gx.shape), origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]))
    ax_p.set(title="exact density p(x)")
    return _done(fig)


def energy_landscape(model, data, *, samples=None) -> Any:
    """E(x) over the data's box as a heat map, with the data and (optionally) samples."""
    import torch

    x = np.asarray(data)
    lo, hi = x.min(0) - 0.5, x.max(0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    with torch.no_grad():
        grid = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
        e = model.energy(grid).numpy().reshape(gx.shape)
    fig, ax = subplots(figsize=(5.5, 4.6))
    im = ax.imshow(e, origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), cmap="magma_r")
    fig.colorbar(im, ax=ax, label="energy E(x)")
    ax.scatter(x[:, 0], x[:, 1], s=1, c="w", alpha=0.3, label="data")
    if samples is not None:
        s = np.asarray(samples)
        ax.scatter(s[:, 0], s[:, 1], s=2, c="tab:cyan", label="Langevin samples")
    ax.legend(loc="upper right", fontsize=8)
    ax.set(title="energy landscape")
    return _done(fig)


def mode_coverage(samples, centers, std: float, hit: int, quality: float) -> Any:
    """Samples over the true modes with their 3-sigma circles: dropped modes stand out."""
    from matplotlib.patches import Circle

    s, c = np.asarray(samples), np.asarray(centers)
    fig, ax = subplots(figsize=(5, 5))
    ax.scatter(s[:, 0], s[:, 1], s=3, c="tab:red", alpha=0.5, label="samples")
    for center in c:
        ax.add_patch(Circle(center, 3 * std, fill=False, color="k", lw=1))
    ax.set_aspect("equal")
    ax.set(title=f"{hit} of {len(c)} modes hit; {quality:.0%} of samples within 3 sigma")
    ax.legend(loc="upper right")
    return _done(fig)


def noising(x0, alpha_bar, *, steps=(0, 50, 100, 200, 400, 600, 800, 999), seed: int = 0):
    """Rows of images pushed through q(x_t | x_0) at increasing t: the forward process."""
    import torch

    from ..diffusion.forward import q_sample

    x0 = torch.as_tensor(np.asarray(x0), dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(x0.shape, generator=g)
    cols = [x0 if t == 0 else q_sample(x0, t, alpha_bar, eps=eps) for t in steps]
    grid = torch.stack(cols, 1).flatten(0, 1).clamp(-1, 1).numpy()
    return image_grid(grid, nrow=len(steps))


def animation(frames) -> list:
    """Image batches (one per step, each (N, C, H, W)) as frames of grids (``save`` to .gif)."""
    return [image_grid(np.clip(np.asarray(frame), -1, 1)) for frame in frames]


def score_field(score, data, *, sigma: float, title: str = "") -> Any:
    """Arrows of the score grad log p_sigma(x) on a 2-D grid, over the data."""
    x = np.asarray(data)
    lo, hi = x.min(0) - 0.5, x.max(0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 25), np.linspace(lo[1], hi[1], 25))
    pts = np.stack([gx.ravel(), gy.ravel()], 1)
    s = np.asarray(score(pts, sigma))
    norm = np.linalg.norm(s, axis=1, keepdims=True) + 1e-12
    fig, ax = subplots(figsize=(5.5, 5))
    ax.scatter(x[:, 0], x[:, 1], s=1, c="0.7")
    ax.quiver(pts[:, 0], pts[:, 1], *(s / norm).T, np.log(norm[:, 0]), cmap="viridis")
    ax.set(title=title or f"score at sigma = {sigma:g} (arrows: direction; colour: log length)")
    return _done(fig)
