"""The README's text-to-image figure: the built-in model on eight prompts (four of them
compositions it never saw in training), two seeds each.

    python scripts/txt2img_figure.py            # writes docs/img/txt2img.png
"""

from __future__ import annotations

from pathlib import Path

from genlab.backends import generate
from genlab.generation import GenerationRequest
from genlab.generation.output import grid_of

PROMPTS = [
    "a red circle to the left of a blue square",
    "a large yellow star at the top",
    "white triangle, bottom, large",
    "a small orange square on the right",
    "a green star in the centre",  # held out: green star
    "a pink box at the left",  # held out: pink square
    "a large yellow heart at the bottom",  # held out: yellow heart
    "a circle above a square",  # held out: circle above square
]


def main() -> None:
    images = [
        generate(GenerationRequest(p, seed=seed)).images[0] for seed in (0, 1) for p in PROMPTS
    ]
    out = Path(__file__).resolve().parent.parent / "docs" / "img" / "txt2img.png"
    grid = grid_of(images)
    grid.save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
