"""``genlab train``: resolve a recipe and overrides into one config, build the model and the
data, and train into a run folder (config.yaml, meta.json, metrics.jsonl, samples/,
checkpoints/, model/). The runs of the models that fit themselves are ``runs.fit``'s; reading
and sampling any run folder is ``runs.folder``'s, and meta.json's record of how a run was
made (``runs.run_record``) is the same for both."""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import GenlabError
from ..runfiles import clear_run, holds_run, refuse_other_run
from ..runlock import RunLock, prepare_run_folder
from .runconfig import RunConfig

HELD_OUT = 0.2  # share of the data kept out of training, for genlab eval


def recipe_names() -> list[str]:
    folder = resources.files("genlab.recipes")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_recipe(name_or_path: str) -> dict[str, Any]:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise GenlabError(f"Recipe {path} does not exist.")
        from ..runfiles import read_run_text

        text = read_run_text(path, f"Recipe {path}", links=True)
    elif name_or_path in recipe_names():
        text = resources.files("genlab.recipes").joinpath(f"{name_or_path}.yaml").read_text()
    else:
        raise GenlabError(
            f"Unknown recipe '{name_or_path}'; packaged: {', '.join(recipe_names())}."
        )
    from ..runfiles import parse_yaml

    doc = parse_yaml(text, f"Recipe {name_or_path}", mapping=True)
    check_shape(doc, f"Recipe {name_or_path}")
    return doc


def check_shape(doc: Any, source: str) -> None:
    """One sentence naming ``source`` if ``doc`` is not a run config's mapping of sections
    (``data: [1, 2]``, ``train: [1, 2]``, a plain text, an unknown section)."""
    from .runconfig import SECTIONS

    if not isinstance(doc, dict):
        raise GenlabError(f"{source} must be a mapping of {', '.join(SECTIONS)}.")
    unknown = sorted(str(k) for k in set(doc) - set(SECTIONS))
    if unknown:
        raise GenlabError(f"{source} has an unknown section '{unknown[0]}'.")
    for key in ("model", "data"):
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise GenlabError(f"{source}: '{key}' must be a name, got {doc[key]!r:.40}.")
    for key in ("data_options", "model_config", "train"):
        if doc.get(key) is not None and not isinstance(doc[key], dict):
            raise GenlabError(f"{source}: '{key}' must be a mapping of settings, got "
                              f"{doc[key]!r:.40}.")  # fmt: skip


def resolve(
    target: str | None,
    data: str | None,
    *,
    sets: list[str] = (),
    flags: dict[str, Any] | None = None,
    base: dict[str, Any] | RunConfig | None = None,
) -> RunConfig:
    """The full run config, typed and checked before any work: ``base`` (a run's saved
    config) or the recipe for ``target`` (a model name picks ``MODEL-DATA`` if packaged),
    then flags, then ``--set key=value`` (``model.KEY`` and ``data.KEY`` reach the model
    and the data), merged by ``RunConfig.merge``."""
    from ..registry import MODELS

    if base is not None:
        doc = base.to_dict() if isinstance(base, RunConfig) else copy.deepcopy(base)
        check_shape(doc, "The run's config.yaml")
    elif target is None:
        raise GenlabError("Name a model or a recipe to train.")
    elif target in MODELS:
        name = f"{target}-{data}"
        doc = load_recipe(name) if data and name in recipe_names() else {"model": target}
    else:
        doc = load_recipe(target)
    if data is not None and data != doc.get("data"):
        doc["data"], doc["data_options"] = data, {}
    if not doc.get("data"):
        raise GenlabError("No data: pass --data NAME.")
    overrides: dict[str, Any] = {k: v for k, v in (flags or {}).items() if v is not None}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise GenlabError(f"--set takes key=value, got '{item}'.")
        overrides[key] = value
    source = "The run's config.yaml" if base is not None else f"Recipe {target}"
    return RunConfig.from_dict(doc, source).merge(overrides)


def as_run_config(cfg: dict[str, Any] | RunConfig) -> RunConfig:
    """A RunConfig of a config given either way (the dicts of older callers)."""
    return RunConfig.from_dict(cfg)


def build(cfg: dict[str, Any] | RunConfig, data=None):
    """(model, dataset, TrainConfig) of a config (``data``: a dataset already loaded, as
    genlab compare passes its training split)."""
    import torch

    from ..data import load_spec
    from ..registry import model_class

    cfg = as_run_config(cfg)
    if data is None:
        data = load_spec(cfg.data, **cfg.data_options)
    torch.manual_seed(cfg.train.seed)
    try:
        model = model_class(cfg.model)(data.shape, **cfg.model_config)
    except (TypeError, ValueError) as e:
        raise GenlabError(f"Bad model setting for {cfg.model}: {e}.") from e
    return model, data, cfg.train


def train_run(
    cfg: dict[str, Any] | RunConfig, out: str | Path, resume: str | None = None,
    held_out: float = HELD_OUT, on_step: Callable | None = None, overwrite: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Train ``cfg`` into the run folder ``out``; ``held_out``: the share of the data kept
    for genlab eval (0: train on all, as fine-tuning on a few dozen images does);
    ``on_step``: the Trainer's per-step hook; ``overwrite``: replace a run already there.

    The rule every command that writes a run follows, checked before any work: the path is
    a folder that can be written, nothing genlab writes there is a link, no live process
    holds its lock, and a run already there is continued (``resume``) or replaced
    (``overwrite``), never mixed into. ``resume="latest"`` on a folder with no complete
    checkpoint (a kill during the first one) starts again from step 0 and says so."""
    from . import checkpoint as ckpt
    from .trainer import Trainer

    cfg = as_run_config(cfg)
    out = prepare_run_folder(out)
    if resume is not None and overwrite:
        raise GenlabError("Give --resume or --overwrite, not both.")
    restart = resume == "latest" and ckpt.latest(out / "checkpoints") is None
    if restart:
        if holds_run(out) and not (out / "config.yaml").is_file():
            raise GenlabError(
                f"{out} holds {holds_run(out)} that genlab train did not make; pass "
                "--overwrite to replace it, or give another --out."
            )
        resume = None
    elif resume is None:
        refuse_other_run(out, overwrite, "pass --resume latest to continue it, or")
    if resume is not None:  # the resume rule, against the config the checkpoint was made by
        run = out if resume == "latest" else Path(resume).parent.parent
        if (run / "config.yaml").is_file() or (run / "config.yaml").is_symlink():
            saved = RunConfig.from_dict(saved_config(run), f"{run / 'config.yaml'}")
            cfg.check_resume(saved, str(run))
    model, data, train = build(cfg)
    cfg = cfg.to_dict()
    if held_out > 0:
        data, _ = data.split(held_out, seed=0)  # the held-out part is for genlab eval
    trainer = Trainer(model, data, train, run_dir=out, resume=resume, on_step=on_step)
    lock = RunLock(out)
    if trainer.main:
        lock.acquire()  # one writer per run folder
    try:
        if trainer.main and (overwrite or restart):
            if restart and holds_run(out):
                print(
                    f"genlab: {out} has no complete checkpoint; starting again from step 0.",
                    file=sys.stderr,
                )
            clear_run(out)
        return _write_and_train(trainer, cfg, data, out, held_out)
    finally:
        lock.release()


def _write_and_train(
    trainer, cfg: dict[str, Any], data, out: Path, held_out: float
) -> dict[str, Any]:
    from ..runfiles import disk_error, disk_full, write_text
    from ..runs import run_record, write_json

    try:
        if trainer.main:
            out.mkdir(parents=True, exist_ok=True)
            write_text(out / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
            write_json(
                out / "meta.json",
                {
                    "model": cfg["model"],
                    "data": cfg["data"],
                    "data_options": cfg["data_options"],
                    "columns": data.columns,
                    "test_fraction": held_out,
                    "split_seed": 0,
                    "seed": trainer.cfg.seed,
                    **run_record(),
                    "processes": trainer.world,
                    "effective_batch_size": trainer.effective_batch,
                },
            )
        summary = trainer.train()
        if trainer.main:  # the card of a shipped model quotes its training time from here
            write_json(out / "summary.json", summary)
    except OSError as e:
        if disk_full(e):
            raise disk_error(e, e.filename or out) from None
        raise GenlabError(  # a folder or an unwritable entry where the run writes a file
            f"Could not write {e.filename or out} ({e.strerror or e}); the run folder is damaged."
        ) from None
    return summary


def saved_config(run_dir: str | Path) -> dict[str, Any]:
    """A run's config.yaml as a dict of the run config's sections (``RunConfig.from_dict``
    types it); a file of the wrong shape is one sentence naming it."""
    from ..runfiles import read_yaml, refuse_links

    path = Path(run_dir) / "config.yaml"
    refuse_links(run_dir)  # a linked config.yaml is neither read nor, later, written through
    if not path.is_file():
        raise GenlabError(f"{run_dir} holds no config.yaml to resume from.")
    doc = read_yaml(path)
    check_shape(doc, str(path))
    doc.setdefault("data_options", {})
    doc.setdefault("model_config", {})
    doc.setdefault("train", {})
    for key in ("data_options", "model_config", "train"):
        doc[key] = doc[key] or {}
    return doc
