"""A course step as a Jupyter notebook (nbformat v4), made from the same page record.

The page's prose, math, switches and test names become Markdown cells (math as ``$...$``,
which Jupyter renders); the computation becomes code cells: a first cell that installs genlab
where it is missing (a hosted notebook service), one that recomputes the step's figures and
numbers by running the step in the kernel (:func:`replay`), a cell per figure and table where
the page has it, the functions the page shows verbatim with the call that uses them, and the
step's oracle check (its ``oracle`` function, verbatim), which prints what it compared.

    genlab course 2 --notebook            # course/02-maximum-likelihood/02-maximum-likelihood.ipynb
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from importlib import import_module
from pathlib import Path
from typing import Any

from .page import Page, pick, source_of

INSTALL = """\
# genlab where it is missing (a hosted notebook service); an installed genlab is used as is
try:
    import genlab
except ImportError:
    %pip install genlab
    import genlab
print("genlab", genlab.__version__ if hasattr(genlab, "__version__") else "")"""

# the tags on the cells, which the tests (and a reader's tools) go by
TAG_NUMBERS = "numbers"
TAG_ORACLE = "oracle"


def options_call(options: Any) -> str:
    """``Options(quick=True, seed=3)``: the options that differ from the defaults."""
    given = [
        f"{f.name}={getattr(options, f.name)!r}"
        for f in dataclasses.fields(options)
        if getattr(options, f.name) != f.default
    ]
    return f"Options({', '.join(given)})"


def _markdown(text: str) -> str:
    """Prose for Markdown: math spans kept as they are, the rest with the characters that
    Markdown would read as markup escaped."""
    pieces = text.split("$")
    out = []
    for i, piece in enumerate(pieces):
        if i % 2:
            out.append(f"${piece}$")
        else:
            piece = piece.replace("\\", "\\\\").replace("<", "&lt;")
            out.append(re.sub(r"([*_`#|])", r"\\\1", piece))
    return "".join(out)


def notebook(step: Any, lang: str, options: Any, record: list[tuple[str, Any]]) -> Any:
    """The notebook of one step, from the page's record (``Page.record``)."""
    import nbformat.v4 as v4

    module = import_module(f"{__package__}.{step.module}")
    cells: list[Any] = []
    text: list[str] = []

    def flush() -> None:
        if text:
            cells.append(v4.new_markdown_cell("\n\n".join(text)))
            text.clear()

    def code(source: str, *tags: str) -> None:
        flush()
        cells.append(v4.new_code_cell(source, metadata={"tags": list(tags)} if tags else {}))

    title = f"{step.key}. {step.name(lang)}" if step.key.isdigit() else step.name(lang)
    flags = " --quick" if options.quick else ""
    text.append(f"# {title}\n\n{_markdown(pick(lang, *step.summary))}")
    text.append(
        pick(
            lang,
            f"The notebook of `genlab course {step.key}{flags}` (the page "
            f"`{step.folder}/index.html`): run the cells in order. The first installs genlab "
            "where it is missing; the next recomputes every figure and number of the step.",
            f"`genlab course {step.key}{flags}` のノートブック版です（ページは "
            f"`{step.folder}/index.html`）。セルを順に実行してください。最初のセルは genlab が"
            "なければインストールし、次のセルがこのステップの図と数値をすべて計算し直します。",
        )
    )
    code(INSTALL, "install")
    code(
        "from genlab.course import Options\nfrom genlab.course.notebook import replay\n\n"
        f"options = {options_call(options)}\n"
        f"step = replay({step.key!r}, {lang!r}, options)  # runs genlab.course.{step.module}",
        "compute",
    )
    tables = 0
    for kind, content in record:
        if kind == "heading":
            text.append(f"## {_markdown(content)}")
        elif kind == "say":
            text.append(_markdown(content))
        elif kind == "math":
            text.append(f"$$\n{content}\n$$")
        elif kind == "switch":
            flag, words = content
            text.append(f"> `{flag}`: {_markdown(words)}")
        elif kind == "figure":
            name, caption = content
            code(f"step.show({name!r})", "figure")
            text.append(f"*{_markdown(caption)}*")
        elif kind == "table":
            code(f"step.table({tables})", TAG_NUMBERS)
            tables += 1
        elif kind == "code":
            text.append(
                pick(
                    lang,
                    "The functions that did the work, as the page shows them, and a call:",
                    "計算に使った関数（ページに示したもの）と、その呼び出し：",
                )
            )
            code(content.rstrip("\n"), "code")
        elif kind == "tests":
            lead = pick(
                lang,
                "Checked by these tests of genlab's repository (`pytest`):",
                "genlab のリポジトリのこれらのテストが数値を検証します（`pytest`）：",
            )
            text.append(lead + "\n\n" + "\n".join(f"- `{name}`" for name in content))
    text.append(
        pick(
            lang,
            "## The oracle check\n\nThe step's numbers against an independent computation; "
            "each line says what was compared with what, and the last line fails if any "
            "disagrees.",
            "## オラクルによる検証\n\nこのステップの数値を独立な計算と比べます。各行が何と何を"
            "比べたかを示し、一致しないものがあれば最後の行がエラーになります。",
        )
    )
    code(
        source_of(module.oracle)
        + "\n\nchecks = oracle(step.numbers, step.options)\n"
        + 'assert all(checks), f"{checks.count(False)} of {len(checks)} checks disagree"',
        TAG_ORACLE,
    )
    flush()
    for i, cell in enumerate(cells):
        cell["id"] = f"{step.folder}-{i}"  # stable ids: the same notebook each time
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def write(nb: Any, path: Path) -> Path:
    import nbformat

    nbformat.validate(nb)
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    return path


def require() -> None:
    """Refuse --notebook before any work when nbformat is missing."""
    from ..errors import GenlabError

    try:
        import nbformat  # noqa: F401
    except ImportError:
        raise GenlabError(
            "--notebook needs nbformat: pip install 'genlab[notebook]' (nbformat, nbclient, "
            "ipykernel)."
        ) from None


def number_line(key: str, value: Any) -> str:
    """How a notebook prints one number: ``key = value`` with the value exact (repr)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars
        except (TypeError, ValueError):
            return f"{key} = {str(value)!r}"
    return f"{key} = {value!r}"


class Replay:
    """One step run in the notebook's kernel: its figures (files in a scratch folder) and
    tables, in the page's order, and its numbers."""

    def __init__(self, key: str, lang: str = "en", options: Any = None) -> None:
        from . import Options, check, step_of

        self.step = step_of(key)
        self.options = options or Options()
        check(self.step, lang, self.options)
        self._scratch = tempfile.TemporaryDirectory(prefix="genlab-course-")
        self.page = Page(lang, Path(self._scratch.name))
        import_module(f"{__package__}.{self.step.module}").run(self.page, self.options)
        self.numbers = self.page.numbers
        self.tables = [rows for kind, rows in self.page.record if kind == "table"]

    def show(self, name: str) -> Any:
        """A figure of the step, for the notebook to display."""
        from IPython.display import Image

        return Image(filename=str(self.page.folder / name))

    def table(self, i: int) -> None:
        """The step's i-th table, one ``key = value  # what it is`` line per number."""
        for key, words, value in self.tables[i]:
            print(f"{number_line(key, value)}  # {words}")


def replay(key: str, lang: str = "en", options: Any = None) -> Replay:
    """Run course step ``key`` in this process (the notebook's kernel) and keep its figures
    and numbers for the cells that show them."""
    return Replay(key, lang, options)
