"""Events on a 1-D variable written as text: "x <= 160", "x > 180", "150 < x <= 170"."""

from __future__ import annotations

import math
import re

from ..errors import GenlabError

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_ONE = re.compile(rf"^x\s*(<=|<|>=|>)\s*({_NUM})$")
_TWO = re.compile(rf"^({_NUM})\s*(<=|<)\s*x\s*(<=|<)\s*({_NUM})$")


def parse_interval(expr: str) -> tuple[float, float]:
    """The interval ``(lo, hi)`` an event describes (open or closed makes no difference
    for a continuous variable). ``P( ... )`` around the event is allowed."""
    text = expr.strip()
    if text.lower().startswith("p(") and text.endswith(")"):
        text = text[2:-1].strip()
    if m := _ONE.match(text):
        op, value = m.group(1), float(m.group(2))
        return (-math.inf, value) if op.startswith("<") else (value, math.inf)
    if m := _TWO.match(text):
        lo, hi = float(m.group(1)), float(m.group(4))
        if lo > hi:
            raise GenlabError(f"The event {expr!r} is empty: {lo} is above {hi}.")
        return lo, hi
    raise GenlabError(
        f"Cannot read the event {expr!r}; write it like 'x <= 160', 'x > 180' or '150 < x <= 170'."
    )
