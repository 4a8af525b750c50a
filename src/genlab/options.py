"""Typed sampling options: each model declares the options its ``sample`` takes (name, type,
default, range, choices, help), so the library and the command line refuse an option a model
does not take, and a web page can build its controls from the same schema."""

from __future__ import annotations

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

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any) -> Any:
        """``value`` typed and checked, or a GenlabError naming the option."""
        if value is None or self.kind is object:
            return value
        try:
            typed = _coerce(value, self.kind)
        except (TypeError, ValueError):
            raise GenlabError(
                f"Sampling option {self.name}={value!r} is not a {self.kind.__name__}."
            ) from None
        if self.kind is float and not math.isfinite(typed):
            raise GenlabError(f"Sampling option {self.name} must be a finite number.")
        if self.low is not None and typed < self.low:
            raise GenlabError(f"Sampling option {self.name} must be at least {self.low:g}.")
        if self.high is not None and typed > self.high:
            raise GenlabError(f"Sampling option {self.name} must be at most {self.high:g}.")
        if self.choices is not None and typed not in self.choices:
            raise GenlabError(
                f"Unknown {self.name} '{typed}'; choose one of {', '.join(self.choices)}."
            )
        return typed

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
    if kind is bool:
        return parse_bool(value)
    if kind is int:
        number = float(value)
        if not number.is_integer():
            raise ValueError(value)
        return int(number)
    return kind(value)


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
