"""Run folders for the classical models: fit, evaluate, sample, and the pictures of a fit.

A run folder holds ``model/`` (config.yaml + model.safetensors), ``meta.json`` (command
line, git commit, versions, seed, data and split), ``metrics.json`` and ``plots/``.
Wherever a run folder is read, a model shipped in genlab may be named instead
(``run_folder("ddpm-digits")``): its meta comes from its card's recipe, and nothing is ever
written into it. The CLI and the demo call these functions; they hold no argument parsing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .data import Dataset, load_spec
from .errors import GenlabError
from .registry import entry, model_class, names


def machine() -> str:
    """The machine a report's figures came from, in words (processor, cores)."""
    import os
    import platform

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in ("genlab", "numpy", "scipy", "scikit-learn", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` whole (a new file renamed over the name: a link there is replaced, never
    written through)."""
    from .runfiles import write_text

    write_text(path, json.dumps(doc, indent=2, default=float) + "\n")


def run_folder(spec: str | Path) -> Path:
    """The folder a command that reads a run takes: ``spec`` itself when it exists (a local
    folder wins over a shipped model of the same name), else the folder of the model shipped
    in genlab by that name, checked against its card. Anything else is returned as given,
    for the caller's own sentence ("not a genlab run folder")."""
    from . import assets

    path = Path(spec)
    if os.path.lexists(path) or str(spec) not in assets.names():
        return path
    return assets.checked_folder(str(spec))


def is_shipped(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` is the folder of a model shipped in genlab (never written to)."""
    from . import assets

    return assets.shipped_name(run_dir) is not None


def model_path(run_dir: str | Path) -> Path:
    """Where a run keeps its model: ``model/``, or a shipped model's folder itself."""
    return Path(run_dir) if is_shipped(run_dir) else Path(run_dir) / "model"


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    """A run's meta.json; for a shipped model, the same keys from its card and recipe."""
    from . import assets

    path = Path(run_dir) / "meta.json"
    if not path.is_file():
        name = assets.shipped_name(run_dir)
        if name is not None:
            return assets.run_meta(name)
        if not path.is_symlink():
            raise GenlabError(f"{run_dir} is not a genlab run folder (no meta.json).")
    from .runfiles import read_json

    meta = read_json(path, keys=("model", "data"))
    if not isinstance(meta["model"], str) or not isinstance(meta["data"], str):
        raise GenlabError(f"{path}: 'model' and 'data' must be names; the run folder is damaged.")
    if not isinstance(meta.get("data_options", {}), dict):
        raise GenlabError(f"{path}: 'data_options' must be a mapping; the run folder is damaged.")
    return meta


def split_data(
    spec: str, test_fraction: float, split_seed: int, /, **options: Any
) -> tuple[Dataset, Dataset | None]:
    """(train, test) of a dataset; ``options`` go to its loader (which may take a seed of
    its own, hence the positional-only split seed)."""
    data = load_spec(spec, **options)
    if test_fraction == 0:
        return data, None
    return data.split(test_fraction, split_seed)


def open_run(run_dir: str | Path):
    """(meta, model, train split, test split or None) of a run folder (or a shipped model's
    name), as it was fitted."""
    from .serialization import load

    run_dir = run_folder(run_dir)
    meta = read_meta(run_dir)
    model = load(model_path(run_dir))
    train, test = split_data(
        meta["data"],
        meta.get("test_fraction", 0.2),
        meta.get("split_seed", 0),
        **meta.get("data_options", {}),
    )
    return meta, model, train, test


def build_model(name: str, options: dict[str, Any]):
    if entry(name).kind != "classical":
        known = ", ".join(names("classical"))
        raise GenlabError(f"'{name}' is not fitted in closed form or by EM; known: {known}.")
    cls = model_class(name)
    try:
        return cls(**options)
    except TypeError as e:
        raise GenlabError(f"Bad option for model '{name}': {e}.") from e


def fit_run(
    name: str,
    data_spec: str,
    out: str | Path,
    *,
    options: dict[str, Any] | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    plots: bool = True,
    argv: list[str] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Fit a classical model on the training split, write the run folder, return metrics.

    The rule of every command that writes a run (as ``genlab train``'s): the folder is
    checked before any work, a run already there is refused unless ``overwrite`` (then it
    is replaced whole once the fit has succeeded), and the folder's lock is held while
    writing."""
    from .runfiles import clear_run, refuse_other_run
    from .runlock import RunLock, prepare_run_folder

    out = prepare_run_folder(out)
    refuse_other_run(out, overwrite)
    options = dict(options or {})
    model = build_model(name, options)
    train, test = split_data(data_spec, test_fraction, split_seed)
    model.fit(train)
    with RunLock(out):
        refuse_other_run(out, overwrite)  # again, now that no one else can write it
        if overwrite:
            clear_run(out)
        return _write_fit(model, name, data_spec, out, train, test, options,
                          test_fraction, split_seed, plots, argv)  # fmt: skip


def _write_fit(model, name, data_spec, out: Path, train, test, options, test_fraction,
               split_seed, plots, argv) -> dict[str, Any]:  # fmt: skip
    from .runfiles import disk_error, disk_full

    try:
        return _write_fit_files(model, name, data_spec, out, train, test, options,
                                test_fraction, split_seed, plots, argv)  # fmt: skip
    except OSError as e:
        if disk_full(e):
            raise disk_error(e, e.filename or out) from None
        raise


def _write_fit_files(model, name, data_spec, out: Path, train, test, options, test_fraction,
                     split_seed, plots, argv) -> dict[str, Any]:  # fmt: skip
    model.save(out / "model")
    metrics = {"train_avg_loglik": model.score(train.x), "n_train": len(train)}
    metrics["train_bic"] = model.bic(train.x)
    if test is not None:
        metrics |= {"test_avg_loglik": model.score(test.x), "n_test": len(test)}
    if name == "gmm":
        metrics |= {"n_iter": model.n_iter_, "converged": model.converged_}
    meta = {
        "model": name,
        "options": options,
        "data": data_spec,
        "test_fraction": test_fraction,
        "split_seed": split_seed,
        "columns": train.columns,
        "argv": argv if argv is not None else sys.argv,
        "git_commit": git_commit(),
        "versions": versions(),
    }
    write_json(out / "meta.json", meta)
    write_json(out / "metrics.json", metrics)
    if plots:
        from .viz.plots import save_figures

        made = save_figures(fit_plots(model, train), out / "plots")
        metrics["plots"] = [str(p) for p in made]
    return metrics


def cross_validate(
    name: str, data: Dataset, options: dict[str, Any] | None = None, k: int = 5, seed: int = 0
) -> np.ndarray:
    """Held-out average log-likelihood of a classical model on each of ``k`` folds."""
    scores = []
    for train, test in data.kfold(k, seed):
        scores.append(build_model(name, dict(options or {})).fit(train).score(test.x))
    return np.array(scores)


def fit_plots(model, data: Dataset) -> dict[str, Any]:
    """The figures that explain a fit, by file stem, chosen by the data's dimension and
    the model."""
    from .viz import plots

    x = data.x
    label = (data.columns or ["x"])[0]
    figures: dict[str, Any] = {}
    if x.shape[1] == 1:
        figures["density"] = plots.density_histogram(x, model, xlabel=label)
        fake = model.sample(len(x), seed=0)
        figures["real_vs_generated"] = plots.compare_histograms(
            x, fake, title="real vs generated", xlabel=label
        )
    elif x.shape[1] == 2:
        figures["density"] = plots.scatter_density(x, model, title=data.name, names=data.columns)
        if model.name == "mvn":
            figures["surface3d"] = plots.normal_surface(model)
        if model.name == "gmm":
            figures["responsibilities"] = plots.responsibilities(x, model.predict_proba(x))
    if model.name == "gmm":
        figures["em_loglik"] = plots.em_history(model.history_)
    return figures


def eval_run(run_dir: str | Path, data_spec: str | None = None) -> dict[str, Any]:
    """Held-out average log-likelihood and BIC of a fitted classical model (eval.json is
    written beside it, unless it is a shipped model)."""
    run_dir = run_folder(run_dir)
    meta, model, _, test = open_run(run_dir)
    if data_spec is None:
        if test is None:
            raise GenlabError("The run was fitted on all its data; pass --data to evaluate it.")
        x, source = test.x, f"{meta['data']} (held-out split)"
    else:
        x, source = load_spec(data_spec).x, data_spec
    result = {
        "data": source,
        "n": len(x),
        "avg_loglik": model.score(x),
        "bic": model.bic(x),
        "aic": model.aic(x),
    }
    if not is_shipped(run_dir):
        write_json(Path(run_dir) / "eval.json", result)
    return result


def sample_run(
    run_dir: str | Path, n: int, out: str | Path, seed: int | None = None, **options: Any
) -> Path:
    """Draw ``n`` samples and write them as .csv, .npy or a .png picture. ``options`` are
    the model's sampling options (checked against its ``sample_options``), and ``gif``: a
    path for an animation of the denoising (diffusion)."""
    from .runfiles import check_file, disk_error, disk_full
    from .serialization import load
    from .viz import plots

    if n < 1:
        raise GenlabError(f"--n must be at least 1, got {n}.")
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".npy", ".png"):
        raise GenlabError(f"Unknown output type '{out.suffix}'; use .csv, .npy or .png.")
    check_file(out)  # before any work: a folder that can be written, a name that fits
    if options.get("gif") is not None:
        check_file(options["gif"], "--gif")
    run_dir = run_folder(run_dir)
    meta = read_meta(run_dir)
    model = load(model_path(run_dir))
    if not model.generative:
        raise GenlabError(f"A {model.name} run is a part of other models; it samples nothing.")
    if isinstance(options.get("classifier"), str | Path):  # a run, or a shipped classifier
        options["classifier"] = run_folder(options["classifier"])
    frames: list = []
    animation = options.pop("gif", None)
    if animation is not None:  # keep the running estimate of x0 at every sampling step
        if "callback" not in {o.name for o in model.sample_options}:
            raise GenlabError("--gif animates diffusion sampling; this model samples in one go.")
        options["callback"] = lambda info: frames.append(info["denoised"].numpy())
    x = model.sample(n, seed=seed, **options)
    if animation is not None:
        try:
            plots.save(plots.animation([*frames, x.numpy()]), animation)
        except OSError as e:
            raise disk_error(e, animation) from None
    x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    if suffix == ".csv" and x.ndim > 2:
        raise GenlabError("Images cannot be written as .csv; use .png or .npy.")
    if suffix == ".png" and x.ndim == 2 and x.shape[1] > 2:
        raise GenlabError(f"Cannot draw {x.shape[1]}-D samples; write .csv or .npy instead.")
    try:
        _write_samples(x, out, meta, n)
    except OSError as e:
        out.unlink(missing_ok=True)  # no half-written file left
        if disk_full(e):
            raise disk_error(e, out) from None
        raise GenlabError(f"Could not write {out} ({e.strerror or e}).") from None
    return out


def _write_samples(x: np.ndarray, out: Path, meta: dict[str, Any], n: int) -> None:
    from .viz import plots

    suffix = out.suffix.lower()
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        cols = meta.get("columns") or [f"x{i + 1}" for i in range(x.shape[1])]
        np.savetxt(out, x, delimiter=",", header=",".join(cols), comments="", fmt="%.6g")
    elif suffix == ".npy":
        np.save(out, x)
    else:
        reference = load_spec(meta["data"], **meta.get("data_options", {})).x
        if x.ndim == 4:
            figure = plots.image_grid(x)
        elif x.shape[1] == 1:
            figure = plots.compare_histograms(reference, x, title="real vs samples")
        else:
            figure = plots.scatter(x, title=f"{n} samples", reference=reference)
        plots.save(figure, out)
