"""The report's HTML pieces: the page, a figure with its caption, a table with the one-line
reading above it, section numbering, plural forms.

Layout rules the browser test checks (tests/test_demo_page.py): a readable column with
margins; figures sit in a grid of columns and each image fills its column's width (a wide
figure, such as a families' sample grid, the whole column) and links to its full size, so
no picture is shrunk out of reach or wider than the page."""

from __future__ import annotations

import html
import re
from pathlib import Path

STYLE = """
body{font-family:system-ui,sans-serif;line-height:1.5;max-width:1180px;margin:2em auto;
  padding:0 2.5em;color:#222}
p,ul{max-width:48em}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:1.2em;
  margin:1em 0;align-items:start}
figure{margin:0;min-width:0}
figure.wide{grid-column:1/-1}
figure img{display:block;box-sizing:border-box;width:100%;height:auto;
  image-rendering:pixelated;
  border:1px solid #ddd}
figcaption{font-size:0.9em;color:#444}
table{border-collapse:collapse;margin:0.5em 0 1em;font-size:0.92em;display:block;
  max-width:100%;overflow-x:auto}
td,th{border:1px solid #ccc;padding:0.2em 0.6em;text-align:left}
p.reading{font-style:italic;margin-bottom:0.3em}
code{background:#f3f3f3;padding:0 0.2em}
.cells{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:0.8em}
.cells figcaption{font-size:0.8em}
.cells .figs{display:contents}
.right{color:#176b2c}.wrong{color:#a11}
"""


def plural(n: int | float, word: str, many: str | None = None) -> str:
    """``plural(1, "step") == "1 step"``, ``plural(1000, "step") == "1,000 steps"``."""
    count = f"{n:,}" if isinstance(n, int) else f"{n:g}"
    return f"{count} {word if n == 1 else (many or word + 's')}"


def figure(path: Path, root: Path, caption: str, wide: bool = False) -> str:
    """The image at ``path`` filling its column, a link to its full size, its caption."""
    src, text = html.escape(path.relative_to(root).as_posix()), html.escape(caption)
    cls = ' class="wide"' if wide else ""
    return (f'<figure{cls}><a href="{src}"><img src="{src}" alt="{text}"></a>'
            f"<figcaption>{text}</figcaption></figure>")  # fmt: skip


def table(rows: list[tuple[str, str]], reading: str = "") -> str:
    """A two-column table, after ``reading``: one plain-language line on what it says."""
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return read(reading) + f"<table>{body}</table>"


def read(reading: str) -> str:
    return f'<p class="reading">{html.escape(reading)}</p>' if reading else ""


def group_figures(section: str) -> str:
    """Runs of consecutive figures wrapped in one grid (``.figs``)."""
    return re.sub(r"((?:<figure.*?</figure>)+)", r'<div class="figs">\1</div>', section,
                  flags=re.S)  # fmt: skip


def numbered(sections: list[str]) -> list[str]:
    """One numbering: each section's first heading gets its place, whatever it had."""
    out = []
    for i, s in enumerate(sections, 1):
        out.append(re.sub(r"<h2>(?:\d+\.\s*)?", f"<h2>{i}. ", s, count=1))
    return out


def page(title: str, intro: str, sections: list[str]) -> str:
    body = "".join(f"<section>{group_figures(s)}</section>" for s in numbered(sections))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{STYLE}</style>
</head><body><h1>{html.escape(title)}</h1>
{intro}
{body}
</body></html>
"""
