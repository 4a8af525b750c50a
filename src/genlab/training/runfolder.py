"""``genlab train``: resolve a recipe and overrides into one config, build the model and the
data, and train into a run folder (config.yaml, meta.json, metrics.jsonl, samples/,
checkpoints/, model/). The runs of the models that fit themselves are ``runs.fit``'s; reading
and sampling any run folder is ``runs.folder``'s, and meta.json's record of how a run was
made (``runs.run_record``) is the same for both."""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import GenlabError
from ..options import parse_bool
from ..runfiles import clear_run, holds_run, refuse_other_run
from ..runlock import RunLock, prepare_run_folder
from .config import TrainConfig

HELD_OUT = 0.2  # share of the data kept out of training, for genlab eval


def recipe_names() -> list[str]:
    folder = resources.files("genlab.recipes")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_recipe(name_or_path: str) -> dict[str, Any]:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise GenlabError(f"Recipe {path} does not exist.")
        text = path.read_text()
    elif name_or_path in recipe_names():
        text = resources.files("genlab.recipes").joinpath(f"{name_or_path}.yaml").read_text()
    else:
        raise GenlabError(
            f"Unknown recipe '{name_or_path}'; packaged: {', '.join(recipe_names())}."
        )
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise GenlabError(f"Recipe {name_or_path} is not valid YAML ({e}).") from e
    unknown = set(doc) - {"model", "data", "data_options", "model_config", "train"}
    if unknown:
        raise GenlabError(f"Recipe {name_or_path} has an unknown section '{sorted(unknown)[0]}'.")
    return doc


def _parse_value(text: str, like: Any = None) -> Any:
    """A ``--set`` value, typed by the setting it replaces: the text itself for a text
    setting ("no" stays "no", "007" stays "007"), a number or a yes/no for a number or a
    flag (checked where the setting is used); YAML (lists, dicts) for the rest."""
    if isinstance(like, bool):
        try:
            return parse_bool(text)
        except ValueError:
            return text  # refused with a sentence by the setting's own check
    if isinstance(like, (int, float)):
        try:
            return type(like)(text) if isinstance(like, float) else int(text, 10)
        except ValueError:
            return text  # refused with a sentence by the setting's own check
    if isinstance(like, str):
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _defaults(func: Any) -> dict[str, Any]:
    """The default value of each keyword parameter of ``func`` (a class: its constructor)."""
    import inspect

    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def resolve(
    target: str | None,
    data: str | None,
    *,
    sets: list[str] = (),
    flags: dict[str, Any] | None = None,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full run config: ``base`` (a run's saved config) or the recipe for ``target``
    (a model name picks ``MODEL-DATA`` if packaged), then flags, then ``--set key=value``
    (``model.KEY`` and ``data.KEY`` reach the model and the data)."""
    from ..registry import MODELS

    if base is not None:
        cfg = copy.deepcopy(base)
    elif target is None:
        raise GenlabError("Name a model or a recipe to train.")
    elif target in MODELS:
        name = f"{target}-{data}"
        cfg = load_recipe(name) if data and name in recipe_names() else {"model": target}
    else:
        cfg = load_recipe(target)
    if data is not None and data != cfg.get("data"):
        cfg["data"], cfg["data_options"] = data, {}
    if not cfg.get("data"):
        raise GenlabError("No data: pass --data NAME.")
    cfg.setdefault("data_options", {})
    cfg.setdefault("model_config", {})
    cfg.setdefault("train", {})
    cfg["train"].update({k: v for k, v in (flags or {}).items() if v is not None})
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise GenlabError(f"--set takes key=value, got '{item}'.")
        section, dot, rest = key.partition(".")
        if dot and section in ("model", "data"):
            like = _setting_defaults(cfg, section).get(rest)
            cfg["model_config" if section == "model" else "data_options"][rest] = _parse_value(
                value, like
            )
        else:
            like = {f.name: f.default for f in dataclasses.fields(TrainConfig)}.get(key)
            cfg["train"][key] = _parse_value(value, like)
    return cfg


def _setting_defaults(cfg: dict[str, Any], section: str) -> dict[str, Any]:
    """The defaults of the model's constructor or of the data set's loader."""
    from ..data import DATASETS
    from ..registry import MODELS, model_class

    if section == "model":
        return _defaults(model_class(cfg["model"])) if cfg.get("model") in MODELS else {}
    name = str(cfg.get("data", "")).partition(":")[0]
    return _defaults(DATASETS[name][0]) if name in DATASETS else {}


def build(cfg: dict[str, Any]):
    """(model, dataset, TrainConfig) of a resolved config."""
    import torch

    from ..data import load_spec
    from ..registry import entry, model_class

    data = load_spec(cfg["data"], **cfg["data_options"])
    cls = model_class(cfg["model"])
    if entry(cfg["model"]).kind != "neural":
        raise GenlabError(f"'{cfg['model']}' is not trained by gradient steps; use genlab fit.")
    train = TrainConfig.make(cls, cfg["train"])
    torch.manual_seed(train.seed)
    try:
        model = cls(data.shape, **cfg["model_config"])
    except TypeError as e:
        raise GenlabError(f"Bad model setting for {cfg['model']}: {e}.") from e
    return model, data, train


def train_run(
    cfg: dict[str, Any], out: str | Path, resume: str | None = None, held_out: float = HELD_OUT,
    on_step: Callable | None = None, overwrite: bool = False,
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
    model, data, train = build(cfg)
    cfg = {**cfg, "train": train.to_dict()}
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
        raise
    return summary


def saved_config(run_dir: str | Path) -> dict[str, Any]:
    from ..runfiles import refuse_links

    path = Path(run_dir) / "config.yaml"
    refuse_links(run_dir)  # a linked config.yaml is neither read nor, later, written through
    if not path.is_file():
        raise GenlabError(f"{run_dir} holds no config.yaml to resume from.")
    return yaml.safe_load(path.read_text())
