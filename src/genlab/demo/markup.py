"""The report's HTML pieces: a figure with its caption, a two-column table."""

from __future__ import annotations

import html
from pathlib import Path


def figure(path: Path, root: Path, caption: str) -> str:
    src, text = html.escape(path.relative_to(root).as_posix()), html.escape(caption)
    return f'<figure><img src="{src}" alt="{text}"><figcaption>{text}</figcaption></figure>'


def table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"
