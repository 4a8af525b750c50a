"""Run folders of every model, whoever wrote them (``genlab fit`` or ``genlab train``):
reading one (``read_meta``, ``open_run``: the model and its data split as it was fitted),
sampling one (``sample_run``), and the records every run keeps (``write_json``,
``run_record``: command line, git commit, versions).

A run folder holds ``model/`` (config.yaml + model.safetensors), ``meta.json`` (command
line, git commit, versions, seed, data and split), metrics and ``plots/``. Wherever a run
folder is read, a model shipped in genlab may be named instead (``run_folder("ddpm-digits")``):
its meta comes from its card's recipe, and nothing is ever written into it. The CLI, the page
and the demo call these functions; they hold no argument parsing.
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

from ..data import Dataset, load_spec
from ..errors import GenlabError


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


def run_record(argv: list[str] | None = None) -> dict[str, Any]:
    """What every run's meta.json records of how it was made: the command line, the git
    commit and the versions of the packages."""
    return {
        "argv": argv if argv is not None else sys.argv,
        "git_commit": git_commit(),
        "versions": versions(),
    }


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` whole (a new file renamed over the name: a link there is replaced, never
    written through)."""
    from ..runfiles import write_text

    write_text(path, json.dumps(doc, indent=2, default=float) + "\n")


def run_folder(spec: str | Path) -> Path:
    """The folder a command that reads a run takes: ``spec`` itself when it exists (a local
    folder wins over a shipped model of the same name), else the folder of the model shipped
    in genlab by that name, checked against its card. Anything else is returned as given,
    for the caller's own sentence ("not a genlab run folder")."""
    from .. import assets

    path = Path(spec)
    if os.path.lexists(path) or str(spec) not in assets.names():
        return path
    return assets.checked_folder(str(spec))


def is_shipped(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` is the folder of a model shipped in genlab (never written to)."""
    from .. import assets

    return assets.shipped_name(run_dir) is not None


def model_path(run_dir: str | Path) -> Path:
    """Where a run keeps its model: ``model/``, or a shipped model's folder itself."""
    return Path(run_dir) if is_shipped(run_dir) else Path(run_dir) / "model"


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    """A run's meta.json; for a shipped model, the same keys from its card and recipe."""
    from .. import assets

    path = Path(run_dir) / "meta.json"
    if not path.is_file():
        name = assets.shipped_name(run_dir)
        if name is not None:
            return assets.run_meta(name)
        if not path.is_symlink():
            raise GenlabError(f"{run_dir} is not a genlab run folder (no meta.json).")
    from ..runfiles import read_json

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
    from ..serialization import load

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


def sample_run(
    run_dir: str | Path, n: int, out: str | Path, seed: int | None = None, **options: Any
) -> Path:
    """Draw ``n`` samples and write them as .csv, .npy or a .png picture. ``options`` are
    the model's sampling options (checked against its ``sample_options``), and ``gif``: a
    path for an animation of the denoising (diffusion)."""
    from ..runfiles import check_file, disk_error, disk_full
    from ..serialization import load
    from ..viz import plots

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
    from ..viz import plots

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
