"""Typed options: each model declares the options its ``sample`` takes (name, type, default,
range, choices, help), so the library and the command line refuse an option a model does not
take, and a web page can build its controls from the same schema. The same ``Option`` types
a run's settings (``genlab train --set key=value``: the Trainer's settings, a model's
constructor, a data set's loader): one coercer, ``Option.check``, for all of them."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .errors import GenlabError


@dataclass(frozen=True)
class Option:
    """One sampling option. ``kind`` is int, float, str or bool (coerced and checked), or
    object (passed through: callbacks, models, per-sample tensors). A ``default`` of None
    means "not set"; ``low``/``high`` bound numbers (inclusive)."""

    name: str
    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    item: type | None = None  # list and tuple kinds: the type of each element (checked as one)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any, label: str = "Sampling option") -> Any:
        """``value`` typed and checked, or a GenlabError naming the option (``label``: what
        the sentence calls it, "Sampling option" or "Setting")."""
        if value is None or self.kind is object:
            return value
        if self.kind in (list, tuple):
            if not isinstance(value, (list, tuple)) or len(value) > 64:
                raise GenlabError(
                    f"{label} {self.name}={_shown(value)} is not a list such as "
                    f"{list(self.default or [1, 2])}."
                )
            item = Option(f"{self.name}[]", self.item, None, "", None, self.low, self.high)
            return self.kind(item.check(v, label) for v in value) if self.item else value
        try:
            typed = _coerce(value, self.kind)
        except (TypeError, ValueError, OverflowError):
            raise GenlabError(
                f"{label} {self.name}={_shown(value)} is not {_a(self.kind.__name__)}."
            ) from None
        if self.kind is float and not math.isfinite(typed):
            raise GenlabError(f"{label} {self.name} must be a finite number, got {typed}.")
        if self.low is not None and typed < self.low:
            raise GenlabError(f"{label} {self.name} must be at least {self.low:g}, got {typed}.")
        if self.high is not None and typed > self.high:
            raise GenlabError(f"{label} {self.name} must be at most {self.high:g}, got {typed}.")
        if self.choices is not None and typed not in self.choices:
            raise GenlabError(
                f"Unknown {self.name} '{_shown(typed, quote=False)}'; choose one of "
                f"{', '.join(map(str, self.choices))}."
            )
        return typed

    def parse(self, text: str, label: str = "Setting") -> Any:
        """A value typed in as text (``--set key=TEXT``, a form field), checked: lists and
        free-form settings are read as YAML ("[64, 64]", "null"), the rest by their kind, so
        "007" stays a text and "2.5" is refused for an integer."""
        if self.default is None and text.strip().lower() in ("null", "none", "~"):
            return None
        if self.kind in (list, tuple, dict, object):
            import yaml

            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError:
                raise GenlabError(
                    f"{label} {self.name}={_shown(text)} is not valid YAML."
                ) from None
            if self.kind is dict and value is not None and not isinstance(value, dict):
                raise GenlabError(f"{label} {self.name} takes a mapping such as {{key: value}}.")
            return self.check(value, label)
        return self.check(text, label)

    def describe(self) -> dict[str, Any]:
        """The option as plain data (what a web page builds a control from)."""
        return {
            "name": self.name,
            "type": self.kind.__name__,
            "default": self.default,
            "help": self.help,
            "choices": list(self.choices) if self.choices else None,
            "low": self.low,
            "high": self.high,
        }


def parse_bool(value: Any) -> bool:
    """A bool from a flag or form value: 1/true/yes/on and 0/false/no/off (any case)."""
    if not isinstance(value, str):
        return bool(value)
    words = {"1": True, "true": True, "yes": True, "on": True}
    words |= {"0": False, "false": False, "no": False, "off": False}
    if value.lower() not in words:
        raise ValueError(value)
    return words[value.lower()]


def _coerce(value: Any, kind: type) -> Any:
    """The one coercer of options and settings: a bool from yes/no words, an int only from
    a whole number ("2.5" is refused, "1e3" is 1000), a str only from text or a number."""
    if kind is bool:
        return parse_bool(value)
    if kind is int:
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value.strip())  # exact for long integers, where float() rounds
        number = float(value)
        if not number.is_integer():
            raise ValueError(value)
        return int(number)
    if kind is str and not isinstance(value, (str, int, float)):
        raise TypeError(value)
    if kind is float and isinstance(value, str) and not value.strip():
        raise ValueError(value)
    return kind(value)


def _shown(value: Any, quote: bool = True) -> str:
    """A value as a sentence quotes it: short, on one line."""
    text = repr(value) if quote else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def _a(word: str) -> str:
    names = {"int": "a whole number", "float": "a number", "bool": "yes or no", "str": "a text"}
    return names.get(word, f"a {word}")


def signature_schema(
    func: Any, declared: tuple[Option, ...] = (), skip: int = 0
) -> tuple[Option, ...]:
    """The settings a callable takes (a class: its constructor), each typed: ``declared``
    Options first, then every other keyword parameter typed from its default (a positive
    integer default is a count or a size: at least 1; a non-negative number stays
    non-negative; a list of integers holds positive integers; text is free; a default of
    None takes what its annotation names, or anything). ``skip``: leading positional
    parameters that are not settings (a model's data shape)."""
    import inspect

    try:
        params = list(inspect.signature(func).parameters.values())[skip:]
    except (TypeError, ValueError):
        return tuple(declared)
    mine = {o.name: o for o in declared}
    out = list(declared)
    for p in params:
        if p.name in mine or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty:
            continue
        out.append(_option_from_default(p.name, p.default, str(p.annotation)))
    return tuple(out)


def _option_from_default(name: str, default: Any, annotation: str) -> Option:
    if isinstance(default, bool):
        return Option(name, bool, default, "")
    if isinstance(default, int):
        low = 1 if default >= 1 else 0 if default >= 0 else None
        return Option(name, int, default, "", low=low, high=2**31 - 1)
    if isinstance(default, float):
        return Option(name, float, default, "", low=0.0 if default >= 0 else None)
    if isinstance(default, str):
        return Option(name, str, default, "")
    if isinstance(default, (list, tuple)):
        numbers = [v for v in default if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if default and len(numbers) == len(default):
            whole = all(isinstance(v, int) and v >= 1 for v in numbers)
            low = 1 if whole else 0.0 if min(numbers) >= 0 else None
            return Option(name, type(default), default, "", item=int if whole else float,
                          low=low, high=2**20 if whole else None)  # fmt: skip
        return Option(name, type(default), default, "")
    if default is None:
        plain = annotation.replace(" ", "").replace("Optional[", "").rstrip("]")
        for word, kind in (("bool", bool), ("int", int), ("float", float), ("str", str)):
            if plain in (word, f"{word}|None", f"None|{word}"):
                return dataclasses.replace(_option_from_default(name, kind(), ""), default=None)
        if "dict" in annotation:
            return Option(name, dict, None, "")
    return Option(name, object, default, "")


def resolve(owner: str, schema: tuple[Option, ...], given: dict[str, Any]) -> dict[str, Any]:
    """Every option of ``schema`` with its value: the given ones checked, the rest defaults.
    An option the schema does not have is refused with one sentence naming those it has."""
    known = {o.name: o for o in schema}
    for name in given:
        if name not in known:
            takes = [o.name for o in schema if o.kind is not object]
            offer = f"it takes: {', '.join(takes)}" if takes else "it takes none"
            raise GenlabError(f"The {owner} model has no sampling option '{name}'; {offer}.")
    values = {o.name: o.default for o in schema}
    values.update({name: known[name].check(value) for name, value in given.items()})
    return values


CALLBACK = Option("callback", object, None, "called after each step with {i, x, sigma, denoised}")
