"""One course page: prose in the reader's language, math as MathML (rendered by the browser
itself, so the page needs no network and no script), figures, numbers, the code that made
them, and the tests that check them.

Every piece of prose is given in both languages at the place it is used
(``page.say(en=..., ja=...)``), so the two pages cannot drift apart: they share every
figure, number and code block and differ only in their words.
"""

from __future__ import annotations

import html
import inspect
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LANGS = ("en", "ja")

STYLE = """
body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;
line-height:1.55;color:#222}
nav{font-size:0.9em;margin-bottom:1.5em}nav a{margin-right:1em}
math[display=block]{margin:0.8em 0;font-size:1.1em}
figure{display:inline-block;margin:0.5em 1em 1em 0;vertical-align:top}
figure img{max-width:460px;border:1px solid #ddd}figcaption{font-size:0.9em;color:#555}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:0.2em 0.6em}
td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f6f6f6;padding:0.8em;overflow-x:auto;font-size:0.88em}
.switch{background:#fff8e0;border-left:4px solid #e0b000;padding:0.4em 0.8em;margin:0.8em 0}
"""


def pick(lang: str, en: str, ja: str) -> str:
    return ja if lang == "ja" else en


def mathml(latex: str, display: bool = True) -> str:
    """LaTeX -> MathML, which current browsers draw without any script or font download."""
    from latex2mathml.converter import convert

    return convert(latex, display="block" if display else "inline")


def source_of(func: Any) -> str:
    """The source of a function, as the page shows it (and a reader can paste it)."""
    return textwrap.dedent(inspect.getsource(func))


def code_text(*funcs: Any, call: str = "") -> str:
    """The functions that did the work, verbatim, and the line that calls them: the page's
    code block and the notebook's code cell."""
    text = "\n\n".join(["import numpy as np", *(source_of(f) for f in funcs)])
    return text + (f"\n\n{call}\n" if call else "")


@dataclass
class Page:
    """The parts of one step's page, in order; ``numbers`` also go back to the caller."""

    lang: str
    folder: Path
    parts: list[str] = field(default_factory=list)
    numbers: dict[str, float] = field(default_factory=dict)
    # the same parts as (kind, content) in the reader's language, which a notebook is made of
    record: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, en: str, ja: str) -> None:
        self.record.append(("heading", pick(self.lang, en, ja)))
        self.parts.append(f"<h2>{html.escape(pick(self.lang, en, ja))}</h2>")

    def say(self, en: str, ja: str) -> None:
        """A paragraph; ``$...$`` spans in it are inline math."""
        text = pick(self.lang, en, ja)
        self.record.append(("say", text))
        pieces = text.split("$")
        out = [mathml(p, display=False) if i % 2 else html.escape(p) for i, p in enumerate(pieces)]
        self.parts.append(f"<p>{''.join(out)}</p>")

    def math(self, *latex: str) -> None:
        self.record.extend(("math", x) for x in latex)
        self.parts.extend(mathml(x) for x in latex)

    def switch(self, flag: str, en: str, ja: str) -> None:
        """A variant that differs between texts, and the flag that picks it."""
        self.record.append(("switch", (flag, pick(self.lang, en, ja))))
        text = html.escape(pick(self.lang, en, ja))
        self.parts.append(f'<div class="switch"><code>{html.escape(flag)}</code>: {text}</div>')

    def figure(self, picture: Any, name: str, en: str, ja: str) -> None:
        from ..viz.plots import save

        save(picture, self.folder / name)
        self.record.append(("figure", (name, pick(self.lang, en, ja))))
        caption = html.escape(pick(self.lang, en, ja))
        self.parts.append(
            f'<figure><img src="{html.escape(name)}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )

    def table(self, rows: list[tuple[str, str, str, Any]]) -> None:
        """Numbers with their names; each row (key, English, Japanese, value) also lands in
        ``numbers`` under its key, for the tests and the caller."""
        head = pick(
            self.lang, "<tr><th>quantity</th><th>value</th></tr>", "<tr><th>量</th><th>値</th></tr>"
        )
        self.record.append(
            ("table", [(key, pick(self.lang, en, ja), v) for key, en, ja, v in rows])
        )
        body = []
        for key, en, ja, value in rows:
            self.numbers[key] = value
            shown = f"{value:.6g}" if isinstance(value, float) else html.escape(str(value))
            body.append(
                f"<tr><td>{html.escape(pick(self.lang, en, ja))}</td>"
                f'<td class="num">{shown}</td></tr>'
            )
        self.parts.append(f"<table>{head}{''.join(body)}</table>")

    def code(self, *funcs: Any, call: str = "") -> None:
        """The functions that did the work, verbatim, and the line that calls them."""
        text = code_text(*funcs, call=call)
        self.record.append(("code", text))
        self.parts.append(f"<pre><code>{html.escape(text)}</code></pre>")

    def tests(self, *names: str) -> None:
        """The tests that check this step's numbers against their oracles."""
        self.record.append(("tests", names))
        items = "".join(f"<li>{_test_link(n)}</li>" for n in names)
        lead = pick(
            self.lang,
            "Checked by these tests (run them with <code>pytest</code>):",
            "これらのテストが数値を検証します（<code>pytest</code> で実行）：",
        )
        self.parts.append(f"<p>{lead}</p><ul>{items}</ul>")


def _test_link(name: str) -> str:
    """A test's name, linked to its file where genlab runs from a clone of the repository
    (the tests are not part of an installed package)."""
    path = Path(__file__).resolve().parents[3] / name.split("::")[0].split(" ")[0]
    text = f"<code>{html.escape(name)}</code>"
    return f'<a href="{html.escape(path.as_uri())}">{text}</a>' if path.is_file() else text


def document(lang: str, title: str, body: str, nav: str = "") -> str:
    return (
        f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<nav>{nav}</nav><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )
