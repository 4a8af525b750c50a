"""``genlab fit`` and ``genlab eval`` of a fitted run: the models that fit themselves in
closed form or by EM (the registry's "classical" kind), which all have an exact likelihood.

What a run shows is asked of the model, never decided by its name: its likelihood (score,
BIC, AIC), ``fit_metrics()`` (EM's iterations and convergence) and ``run_plots(x)`` (a
mixture's responsibilities and EM curve, a normal's surface), beside the density plots any
model with a likelihood gets on 1-D and 2-D data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data import Dataset, load_spec
from ..errors import GenlabError
from ..registry import entry, model_class, names
from .folder import is_shipped, open_run, run_folder, run_record, split_data, write_json


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
    from ..runfiles import clear_run, refuse_other_run
    from ..runlock import RunLock, prepare_run_folder

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
    from ..runfiles import disk_error, disk_full

    try:
        return _write_fit_files(model, name, data_spec, out, train, test, options,
                                test_fraction, split_seed, plots, argv)  # fmt: skip
    except OSError as e:
        if disk_full(e):
            raise disk_error(e, e.filename or out) from None
        raise


def fit_metrics(model, train: Dataset, test: Dataset | None) -> dict[str, Any]:
    """A fitted classical model's metrics: average log-likelihood on both splits, BIC on
    the training split, and the model's own ``fit_metrics()``."""
    metrics = {"train_avg_loglik": model.score(train.x), "n_train": len(train)}
    metrics["train_bic"] = model.bic(train.x)
    if test is not None:
        metrics |= {"test_avg_loglik": model.score(test.x), "n_test": len(test)}
    return metrics | model.fit_metrics()


def _write_fit_files(model, name, data_spec, out: Path, train, test, options, test_fraction,
                     split_seed, plots, argv) -> dict[str, Any]:  # fmt: skip
    model.save(out / "model")
    metrics = fit_metrics(model, train, test)
    meta = {
        "model": name,
        "options": options,
        "data": data_spec,
        "test_fraction": test_fraction,
        "split_seed": split_seed,
        "columns": train.columns,
        **run_record(argv),
    }
    write_json(out / "meta.json", meta)
    write_json(out / "metrics.json", metrics)
    if plots:
        from ..viz.plots import save_figures

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
    """The figures that explain a fit, by file stem: the density against the data on 1-D
    and 2-D tables (any model with a likelihood), then the model's own ``run_plots``."""
    from ..viz import plots

    x = data.x
    label = (data.columns or ["x"])[0]
    figures: dict[str, Any] = {}
    if model.has_log_prob and x.ndim == 2 and x.shape[1] == 1:
        figures["density"] = plots.density_histogram(x, model, xlabel=label)
        fake = model.sample(len(x), seed=0)
        figures["real_vs_generated"] = plots.compare_histograms(
            x, fake, title="real vs generated", xlabel=label
        )
    elif model.has_log_prob and x.ndim == 2 and x.shape[1] == 2:
        figures["density"] = plots.scatter_density(x, model, title=data.name, names=data.columns)
    return figures | model.run_plots(x)


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
