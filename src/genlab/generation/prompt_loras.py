"""LoRAs named in a prompt, as stable-diffusion-webui writes them: ``<lora:NAME:WEIGHT>``
(the weight optional, 1 by default). The tags are taken out of the prompt, which the text
encoder then never sees; the names are resolved by the front end (a catalog name, never a
path), so this module only reads text."""

from __future__ import annotations

import math
import re

from ..errors import GenlabError

#: a tag: "<lora:" then a name without ":" or ">" then an optional ":weight", then ">".
#: Each part is one character class, so the match cannot backtrack.
_TAG = re.compile(r"<lora:([^:<>]+)(?::([^:<>]*))?>", re.IGNORECASE)


def prompt_loras(prompt: str) -> tuple[str, tuple[tuple[str, float], ...]]:
    """(the prompt without its ``<lora:...>`` tags, ((name, weight), ...) in the order
    written); a weight that is not a finite number is one sentence (GenlabError)."""
    if not isinstance(prompt, str):
        raise GenlabError("The prompt must be text.")
    found: list[tuple[str, float]] = []

    def take(match: re.Match) -> str:
        name, weight = match.group(1).strip(), (match.group(2) or "").strip()
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            value = math.nan
        if not name or not math.isfinite(value):
            raise GenlabError(
                f"The prompt's tag {match.group(0)!r} must read <lora:NAME:WEIGHT> with a "
                "finite number as the weight."
            )
        found.append((name, value))
        return ""

    text = _TAG.sub(take, prompt)
    if found:  # the spaces and commas a removed tag leaves behind
        text = re.sub(r"[ \t]{2,}", " ", text)
        text = re.sub(r"\s*,(\s*,)*", ",", text).strip(" ,\t")
    return text, tuple(found)
