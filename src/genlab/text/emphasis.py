"""Prompt emphasis in stable-diffusion-webui's syntax, so prompts people already write carry
over: ``(word)`` multiplies a word's attention weight by 1.1, ``[word]`` divides it by 1.1,
``(word:1.5)`` sets the factor, brackets nest (factors multiply), ``\\(`` ``\\)`` ``\\[``
``\\]`` ``\\\\`` are literal characters, a bracket left open applies to the rest of the
prompt, and a closing bracket with nothing open is plain text.

``parse_emphasis`` turns a prompt into (text, weight) runs; ``char_weights`` gives the plain
prompt (brackets removed) and one weight per character, which the text encoders map onto
their tokens. Weighting follows stable-diffusion-webui: each token's embedding is multiplied
by its weight, then all are rescaled so the prompt's mean embedding value is unchanged.
"""

from __future__ import annotations

import re

import torch

UP = 1.1
# escapes, an explicit weight closing a group, single brackets, then runs of plain text
_PIECE = re.compile(
    r"\\[()\[\]\\]"  # an escaped bracket or backslash
    r"|:\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*\)"  # ":1.5)"
    r"|[()\[\]]"
    r"|[^\\()\[\]:]+"
    r"|[\\:]"
)


def parse_emphasis(prompt: str) -> list[tuple[str, float]]:
    """(text, weight) runs of ``prompt``, neighbours of equal weight merged."""
    runs: list[list] = []  # [text, weight]
    opened: list[tuple[str, int]] = []  # ("(" or "[", index of the first run inside)

    def scale(start: int, factor: float) -> None:
        for run in runs[start:]:
            run[1] *= factor

    def close(kind: str, factor: float) -> bool:
        for i in range(len(opened) - 1, -1, -1):  # the innermost open bracket of that kind
            if opened[i][0] == kind:
                scale(opened.pop(i)[1], factor)
                return True
        return False

    for m in _PIECE.finditer(prompt):
        piece, weight = m.group(0), m.group(1)
        if piece.startswith("\\") and len(piece) == 2:
            runs.append([piece[1], 1.0])
        elif piece in ("(", "["):
            opened.append((piece, len(runs)))
        elif weight is not None and any(k == "(" for k, _ in opened):
            close("(", float(weight))
        elif weight is not None:  # "(...:w)" with no "(" open: the text as written
            runs.append([piece, 1.0])
        elif piece == ")" and close("(", UP):
            pass
        elif piece == "]" and close("[", 1 / UP):
            pass
        else:
            runs.append([piece, 1.0])
    for kind, start in reversed(opened):  # left open: applies to the rest
        scale(start, UP if kind == "(" else 1 / UP)
    merged: list[tuple[str, float]] = []
    for text, w in runs:
        if merged and merged[-1][1] == w:
            merged[-1] = (merged[-1][0] + text, w)
        else:
            merged.append((text, w))
    return merged or [("", 1.0)]


def char_weights(prompt: str) -> tuple[str, list[float]]:
    """The prompt without emphasis syntax, and the weight of each of its characters."""
    runs = parse_emphasis(prompt)
    text = "".join(t for t, _ in runs)
    return text, [w for t, w in runs for _ in t]


def token_weights(spans: list[tuple[int, int]], weights: list[float]) -> torch.Tensor:
    """One weight per token, from the character span each token covers (its first
    character's weight; special and padding tokens, with empty spans, keep 1)."""
    return torch.tensor([weights[a] if b > a and a < len(weights) else 1.0 for a, b in spans])


def apply_weights(tokens: torch.Tensor, mask: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Token embeddings (L, D) scaled by weights (L,), rescaled to keep the mean of the real
    tokens' values (stable-diffusion-webui's rule)."""
    if bool((w == 1).all()):
        return tokens
    real = mask[:, None].to(tokens.dtype)
    before = (tokens * real).sum() / (real.sum() * tokens.shape[1])
    out = tokens * w[:, None]
    after = (out * real).sum() / (real.sum() * tokens.shape[1])
    return out * (before / after) if float(after) != 0.0 else out
