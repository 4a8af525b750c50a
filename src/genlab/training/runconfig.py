"""One run's configuration, typed: what ``genlab train``, ``genlab finetune``, ``genlab
compare`` and the page's Train tab build, and what ``config.yaml`` holds.

``RunConfig`` is frozen and checked when it is made: the model is a registered neural
model, the data names a loader, and every model, data and training setting is typed and
bounded by its declared ``Option`` (the model's ``config_schema``, ``genlab.data.SETTINGS``,
``TrainConfig``'s ``SETTINGS``; the rest typed from the defaults), so a bad value is one
sentence naming its key before any work. There is one way to change one, ``merge``, and one
rule for what a resumed run may change, ``check_resume``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import GenlabError
from ..options import Option, signature_schema
from .config import SETTINGS as TRAIN_SETTINGS
from .config import TrainConfig

SECTIONS = ("model", "data", "data_options", "model_config", "train")
#: Training settings a resumed run may change: how long it runs, how it reports and where
#: it runs. Everything else (the model, the data, and the optimisation: batch, learning
#: rate and schedule, betas, clipping, EMA, seed) is the checkpoint's and stays fixed.
RESUMABLE = frozenset(
    {"steps", "log_every", "sample_every", "checkpoint_every", "keep_last", "max_bad_steps",
     "progress", "mixed_precision", "fsdp"}
)  # fmt: skip


def _frozen(values: Mapping[str, Any] | None, what: str) -> Mapping[str, Any]:
    if values is None:
        return MappingProxyType({})
    if not isinstance(values, Mapping):
        raise GenlabError(f"The run's {what} must be a mapping of settings, got {values!r:.60}.")
    bad = [k for k in values if not isinstance(k, str)]
    if bad:
        raise GenlabError(f"The run's {what} has a setting named {bad[0]!r}; names are text.")
    return MappingProxyType(copy.deepcopy(dict(values)))


def model_settings(model: str) -> tuple[Option, ...]:
    """The typed constructor settings of a registered model (``--set model.KEY``)."""
    from ..registry import model_class

    cls = model_class(model)
    return signature_schema(cls, tuple(getattr(cls, "config_schema", ())), skip=1)


def data_settings(data: str) -> tuple[Option, ...]:
    """The typed loader settings of a data spec (``--set data.KEY``)."""
    from ..data import settings

    return settings(data)


def _checked(values: Mapping[str, Any], schema: tuple[Option, ...], prefix: str, owner: str):
    known = {o.name: o for o in schema}
    out = {}
    for key, value in values.items():
        if key not in known:
            names = ", ".join(known) or "none"
            raise GenlabError(f"{owner} has no setting '{prefix}{key}'; it takes: {names}.")
        option = dataclasses.replace(known[key], name=prefix + key)
        out[key] = option.check(value, "Setting")
        if isinstance(out[key], tuple):
            out[key] = list(out[key])  # config.yaml holds lists
    return out


@dataclass(frozen=True)
class RunConfig:
    """A run: ``model`` (a registered neural model), ``data`` (``NAME`` or ``NAME:PATH``),
    ``data_options`` (the loader's settings), ``model_config`` (the constructor's settings)
    and ``train`` (the Trainer's settings: a mapping of overrides of the model's defaults,
    or a TrainConfig; complete and typed once made)."""

    model: str
    data: str
    data_options: Mapping[str, Any] = field(default_factory=dict)
    model_config: Mapping[str, Any] = field(default_factory=dict)
    train: TrainConfig | Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from ..registry import MODELS, entry, model_class

        if not isinstance(self.model, str) or self.model not in MODELS:
            known = ", ".join(n for n in MODELS if entry(n).kind == "neural")
            raise GenlabError(f"Unknown model {self.model!r:.60}; trained models: {known}.")
        if entry(self.model).kind != "neural":
            raise GenlabError(f"'{self.model}' is not trained by gradient steps; use genlab fit.")
        if not isinstance(self.data, str) or not self.data:
            raise GenlabError("No data: pass --data NAME.")
        from ..data import DATASETS

        if self.data.partition(":")[0] not in DATASETS:
            raise GenlabError(f"Unknown dataset {self.data!r:.80}; known: {', '.join(DATASETS)}.")
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        options = _frozen(self.data_options, "data_options")
        options = _checked(options, data_settings(self.data), "data.", f"Data '{self.data}'")
        set_("data_options", MappingProxyType(options))
        config = _frozen(self.model_config, "model_config")
        config = _checked(config, model_settings(self.model), "model.", f"Model '{self.model}'")
        set_("model_config", MappingProxyType(config))
        train = self.train
        if not isinstance(train, TrainConfig):
            train = TrainConfig.make(model_class(self.model), dict(_frozen(train, "train")))
        set_("train", train)

    # -- the one way to change a config -------------------------------------------------

    def merge(self, overrides: Mapping[str, Any]) -> RunConfig:
        """A new config with ``overrides`` applied: ``model.KEY`` and ``data.KEY`` reach the
        model's and the data's settings, ``model`` and ``data`` replace them (new data
        drops the old data's settings), any other key is a training setting. A text value
        (``--set`` gives text) is read by the setting's own type ("2.5" is no step count);
        any other value is checked as it is."""
        model, data = self.model, self.data
        if "model" in overrides and overrides["model"] != model:
            model = str(overrides["model"])
        data_options, model_config = dict(self.data_options), dict(self.model_config)
        if "data" in overrides and overrides["data"] is not None and overrides["data"] != data:
            data, data_options = str(overrides["data"]), {}
        train = self.train.to_dict()
        mschema = {o.name: o for o in model_settings(model)}
        for key, value in overrides.items():
            if key in ("model", "data"):
                continue
            section, dot, rest = key.partition(".")
            if dot and section == "model":
                model_config[rest] = _parsed(mschema.get(rest), key, value)
            elif dot and section == "data":
                known = {o.name: o for o in data_settings(data)}
                data_options[rest] = _parsed(known.get(rest), key, value)
            else:
                known = {o.name: o for o in TRAIN_SETTINGS}
                train[key] = _parsed(known.get(key), key, value, "Training setting")
        return RunConfig(model, data, data_options, model_config, train)

    def check_resume(self, saved: RunConfig, where: str = "the run") -> None:
        """The resume rule: a run continued from its checkpoint keeps its model, its data and
        its optimisation (``saved``, its config.yaml); only the settings in ``RESUMABLE``
        (steps, reporting, checkpoints, precision and sharding) may change. One sentence
        naming the first setting that differs."""
        for name in ("model", "data"):
            if getattr(self, name) != getattr(saved, name):
                raise GenlabError(
                    f"{where} was trained as {name}={getattr(saved, name)}; a resumed run keeps "
                    f"its {name} (got {getattr(self, name)}), so train a new run instead."
                )
        for section, prefix in (("model_config", "model."), ("data_options", "data.")):
            mine, theirs = dict(getattr(self, section)), dict(getattr(saved, section))
            for key in sorted(set(mine) | set(theirs)):
                if mine.get(key) != theirs.get(key):
                    raise GenlabError(
                        f"{where} was trained with {prefix}{key}={theirs.get(key)!r:.40}; a "
                        f"resumed run keeps its model and data settings (got "
                        f"{mine.get(key)!r:.40}), so train a new run to change it."
                    )
        mine, theirs = self.train.to_dict(), saved.train.to_dict()
        for key in mine:
            if key not in RESUMABLE and mine[key] != theirs[key]:
                raise GenlabError(
                    f"{where} was trained with {key}={theirs[key]!r}; a resumed run keeps it "
                    f"(got {mine[key]!r}): only {', '.join(sorted(RESUMABLE))} may change."
                )

    # -- config.yaml ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data for config.yaml (and the older dict-taking functions)."""
        return {
            "model": self.model,
            "data": self.data,
            "data_options": copy.deepcopy(dict(self.data_options)),
            "model_config": copy.deepcopy(dict(self.model_config)),
            "train": self.train.to_dict(),
        }

    @classmethod
    def from_dict(cls, doc: Any, source: str = "The run config") -> RunConfig:
        """A config from plain data (a recipe, config.yaml, a dict of the older functions);
        a document of the wrong shape is one sentence naming ``source``."""
        if isinstance(doc, RunConfig):
            return doc
        if not isinstance(doc, Mapping):
            raise GenlabError(
                f"{source} must be a mapping of {', '.join(SECTIONS)}, got {_kind(doc)}."
            )
        unknown = sorted(str(k) for k in set(doc) - set(SECTIONS))
        if unknown:
            raise GenlabError(f"{source} has an unknown section '{unknown[0]}'.")
        for key in ("data_options", "model_config", "train"):
            if doc.get(key) is not None and not isinstance(doc[key], Mapping):
                raise GenlabError(
                    f"{source}: '{key}' must be a mapping of settings, got {_kind(doc[key])}."
                )
        for key in ("model", "data"):
            if doc.get(key) is not None and not isinstance(doc[key], str):
                raise GenlabError(f"{source}: '{key}' must be a name, got {_kind(doc[key])}.")
        if not doc.get("model"):
            raise GenlabError(f"{source} names no model.")
        if not doc.get("data"):
            raise GenlabError(f"{source} names no data: pass --data NAME.")
        try:
            return cls(doc["model"], doc["data"], doc.get("data_options") or {},
                       doc.get("model_config") or {}, doc.get("train") or {})  # fmt: skip
        except GenlabError as e:
            if source == "The run config":
                raise
            raise GenlabError(f"{source}: {e}") from None

    # Older callers read a config as the dict it used to be (cfg["train"]["steps"]).
    def __getitem__(self, key: str) -> Any:
        if key not in SECTIONS:
            raise KeyError(key)
        return self.to_dict()[key]


def _parsed(option: Option | None, key: str, value: Any, label: str = "Setting") -> Any:
    if option is None:
        return value  # an unknown key: refused, naming the known ones, when the config is made
    option = dataclasses.replace(option, name=key)
    return option.parse(value, label) if isinstance(value, str) else option.check(value, label)


def _kind(value: Any) -> str:
    names = {list: "a list", str: "a text", int: "a number", float: "a number", bool: "yes/no"}
    return names.get(type(value), "nothing" if value is None else type(value).__name__)
