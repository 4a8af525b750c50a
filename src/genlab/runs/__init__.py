"""Run folders, split by what the code does: ``folder`` reads, samples and records any run
folder, whatever wrote it; ``fit`` writes and evaluates the runs of the models that fit
themselves (``genlab fit``). ``genlab train``'s runs are written by ``training.runfolder``,
with the same records. The names are re-exported here, where the CLI and tests import them."""

from __future__ import annotations

from .fit import build_model, cross_validate, eval_run, fit_metrics, fit_plots, fit_run
from .folder import (
    git_commit,
    is_shipped,
    machine,
    model_path,
    open_run,
    read_meta,
    run_folder,
    run_record,
    sample_run,
    split_data,
    versions,
    write_json,
)

__all__ = [
    "build_model",
    "cross_validate",
    "eval_run",
    "fit_metrics",
    "fit_plots",
    "fit_run",
    "git_commit",
    "is_shipped",
    "machine",
    "model_path",
    "open_run",
    "read_meta",
    "run_folder",
    "run_record",
    "sample_run",
    "split_data",
    "versions",
    "write_json",
]
