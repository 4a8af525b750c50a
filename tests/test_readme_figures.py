"""A README true on any machine: every measured figure in README.md and README.ja.md has a
source line in docs/results.md, where the command, machine, date and load that produced it
are written.

What counts as a figure (outside code blocks and inline code, which hold commands and
settings): a number with a unit of measurement (%, s, ms, minutes, MB, kB, GiB, x or
"times", nats, dB, images/s ...; in Japanese 秒, 分, 倍), each end of a range ("0.7-1.0 s",
"16-28 times", "95.0-99.2%"), a count of outcomes ("23 times in 24", which must stand in
results.md as it is), and any number with a decimal point (a bare decimal is a
measurement: "0.1228338 against 0.1228357 nats"). Plain integers (200 prompts, 934
heights, seeds) are counts of what was run, not measurements, and are not checked.

A figure has a source when docs/results.md, outside the sections that say they are
superseded (listed below with the section that replaces them), holds the same number with
the same kind of unit, the README's figure being results.md's rounded to the README's
digits ("1.7x" for "1.71x"; "98%" for "98.0%"). A 95% interval written "[95.0, 99.2]" in a
results table is a pair of percentages. Non-figures that look like figures (a version, an
upload cap, a constant of a syntax) are allowed by name below, each with its reason.

What it cannot tell: which command a number came from. A README figure that happens to
equal a number on an unrelated line passes, so a figure is fixed by hand to results.md's
latest for its own command, and a superseded section is kept out by SUPERSEDED, not by
the matching.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = ("README.md", "README.ja.md")

#: unit spelling -> kind; longest spellings first so "ms" is not read as "m" + "s"
UNITS = {
    "images/s": "images/s", "samples/s": "samples/s", "steps/s": "steps/s",
    "bits/dim": "bits/dim", "minutes": "min", "minute": "min", "min": "min", "hours": "h",
    "ms": "ms", "s": "s", "MiB": "MiB", "GiB": "GiB", "MB": "MB", "kB": "kB", "GB": "GB",
    "nats": "nats", "dB": "dB", "times": "x", "x": "x", "%": "%",
    "秒": "s", "分": "min", "時間": "h", "倍": "x",
}  # fmt: skip
NUMBER = r"\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?"
UNIT = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True) if u != "x")
FIGURE = re.compile(
    rf"(?<![\w.,/+=-])(?P<a>{NUMBER})"
    rf"(?:\s?[-–〜~]\s?(?P<b>{NUMBER}))?"
    rf"(?P<tail>\.\d)?"  # a version's third part: not a figure
    rf"(?:(?P<x>x)(?![\w.])|\s?(?P<unit>{UNIT})(?![A-Za-z0-9]))?"  # 1.7x, not 272 x 2
)
#: "23 times in 24", "23 of 24", "24 回中 23 回": k of n, a count of outcomes
COUNT = re.compile(
    r"(?<![\w.])(?P<k>\d+) (?:times )?(?:in|of) (?P<n>\d+)(?!\w|\.\d)"
    r"|(?<![\w.])(?P<n2>\d+)\s?回中\s?(?P<k2>\d+)\s?回"
)
INTERVAL = re.compile(rf"\[({NUMBER}), ({NUMBER})\]")  # results tables' 95% intervals

#: results.md sections whose figures a newer section replaces: not a source
SUPERSEDED = {
    "Default recipes: training time and sample quality": "measured before digits were cut "
    "into parts (the feature network saw the generators' training images); 'Every family "
    "on digits' replaces it",
    "Diffusion on digits": "the same superseded protocol (FD against the training images); "
    "'Every family on digits' replaces it",
}

#: (README, the figure as written) -> why it is not a measurement
NOT_FIGURES = {
    ("README.md", "3.10"): "the Python version genlab needs",
    ("README.ja.md", "3.10"): "the Python version genlab needs",
    ("README.md", "10 MB"): "the upload cap, a setting",
    ("README.ja.md", "10 MB"): "the upload cap, a setting",
    ("README.md", "1.1"): "the weight of stable-diffusion-webui's (word) syntax",
    ("README.ja.md", "1.1 倍"): "the weight of stable-diffusion-webui's (word) syntax",
    ("README.ja.md", "1.1"): "the weight of stable-diffusion-webui's [word] syntax",
    ("README.md", "1.5"): "the weight written in the emphasis example (blue:1.5)",
    ("README.ja.md", "1.5"): "the weight written in the emphasis example (blue:1.5)",
    ("README.md", "20%"): "the held-out share the recipes and fit cut, a setting",
    ("README.ja.md", "20%"): "the held-out share the recipes and fit cut, a setting",
    ("README.md", "5%"): "what the memorisation check gives a model that does not copy, "
    "by its definition (95% of held-out images)",
    ("README.ja.md", "5%"): "what the memorisation check gives a model that does not copy, "
    "by its definition (95% of held-out images)",
    ("README.md", "95%"): "the level of the intervals, a setting",
    ("README.ja.md", "95%"): "the level of the intervals, a setting",
    ("README.md", "90%"): "the project's adherence target, not a measurement",
    ("README.ja.md", "90%"): "the project's adherence target, not a measurement",
    ("README.md", "0.3x"): "the learning-rate sweep's factors, settings",
    ("README.md", "3x"): "the learning-rate sweep's factors, settings",
    ("README.ja.md", "0.3 倍"): "the learning-rate sweep's factors, settings",
    ("README.ja.md", "3 倍"): "the learning-rate sweep's factors, settings",
    ("README.ja.md", "1 秒"): "'a preview every second', a setting of the page",
}


def _value(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def prose(markdown: str) -> str:
    """The text a reader reads as sentences and tables: no fenced code, no inline code, no
    link targets (paths and addresses)."""
    markdown = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    markdown = re.sub(r"`[^`]*`", " ", markdown)
    return re.sub(r"\]\([^)]*\)", "]", markdown)


def figures(text: str) -> list[tuple[str, Decimal, str]]:
    """(as written, value, unit kind) of every figure in ``text``; a range gives both ends
    with its unit."""
    found = []
    for m in COUNT.finditer(text):
        k, n = (m["k"], m["n"]) if m["k"] else (m["k2"], m["n2"])
        found.append((m[0].strip(), Decimal(f"{k}.{n.zfill(6)}"), "of"))  # one value: k, n
    for m in FIGURE.finditer(COUNT.sub(" ", text)):
        if m["tail"]:
            continue  # 2.13.0
        unit = "x" if m["x"] else UNITS.get(m["unit"] or "", "")
        ends = [m["a"]] + ([m["b"]] if m["b"] else [])
        for end in ends:
            if unit or "." in end:
                found.append((m[0].strip(), _value(end), unit))
    return found


def sections(markdown: str) -> dict[str, str]:
    """Top-level (##) sections of results.md by title, subsections included."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def table_units(body: str) -> str:
    """The body with each bare number of a table cell followed by its column's unit, when
    the header names one ("peak MiB", "train s", "wall time (s)"): a table states its
    units once."""
    out, units = [], None
    for line in body.splitlines():
        cells = line.split("|")
        if not line.startswith("|"):
            units = None
        elif units is None:
            units = [_header_unit(c) for c in cells]
        elif not set(line) <= set("|-: "):
            line = "|".join(
                f"{c.strip(' *')} {units[i]}" if i < len(units) and units[i]
                and re.fullmatch(rf"\*\*({NUMBER})\*\*|{NUMBER}", c.strip()) else c
                for i, c in enumerate(cells)
            )  # fmt: skip
        out.append(line)
    return "\n".join(out)


def _header_unit(cell: str) -> str:
    words = re.findall(r"[\w/%]+", cell.replace("seconds", "s"))
    return next((w for w in reversed(words) if w in UNITS and w != "x"), "")


def sources() -> dict[str, list[Decimal]]:
    """unit kind -> every value docs/results.md states with it (superseded sections left
    out); bare numbers under "" include every number, since a decimal in the README may
    stand beside its unit in results.md."""
    text = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    kept = [body for title, body in sections(text).items() if title not in SUPERSEDED]
    found: dict[str, list[Decimal]] = {}
    for body in map(table_units, kept):
        for _, value, unit in figures(body):
            found.setdefault(unit, []).append(value)
            found.setdefault("", []).append(value)
        for a, b in INTERVAL.findall(body):
            found.setdefault("%", []).extend([_value(a), _value(b)])
        # every number, integers too, as a source for the README's long bare decimals
        for m in re.finditer(NUMBER, COUNT.sub(" ", body)):
            found.setdefault("", []).append(_value(m[0]))
    return found


def matches(value: Decimal, unit: str, known: dict[str, list[Decimal]]) -> bool:
    """Whether results.md states ``value`` (to the README's digits) with this unit."""
    if unit == "of":
        return value in known.get("of", [])
    exponent = value.as_tuple().exponent
    if len(value.as_tuple().digits) >= 4 and value in known.get("", []):
        return True  # so many digits name one figure whatever unit stands beside it
    candidates = known.get(unit, [])
    return any(  # rounded to the README's digits, from a figure stated at least as finely
        c.as_tuple().exponent <= exponent and c.quantize(Decimal(1).scaleb(exponent)) == value
        for c in candidates
        if c.adjusted() < 12
    )


@pytest.mark.parametrize("name", READMES)
def test_every_readme_figure_has_a_source_line_in_results(name):
    known = sources()
    text = prose((ROOT / name).read_text(encoding="utf-8"))
    missing = [
        written
        for written, value, unit in figures(text)
        if (name, written) not in NOT_FIGURES and not matches(value, unit, known)
    ]
    missing = [" ".join(w.split()) for w in missing]
    assert not missing, (
        f"{name}: figures with no source line in docs/results.md (measure them with a "
        f"command in the repo and write them there, or say in NOT_FIGURES why they are not "
        f"measurements): {sorted(set(missing))}"
    )


def test_both_readmes_state_the_same_figures():
    """A figure fixed in one README is fixed in the other."""
    stated = {}
    for name in READMES:
        text = prose((ROOT / name).read_text(encoding="utf-8"))
        stated[name] = {(v, u) for w, v, u in figures(text) if (name, w) not in NOT_FIGURES}
    assert stated["README.md"] == stated["README.ja.md"], (
        stated["README.md"] ^ stated["README.ja.md"]
    )


def test_the_extractor_finds_figures_and_skips_versions_and_counts():
    found = [(w, str(v), u) for w, v, u in figures(
        "about 0.7-1.0 s (the library: 0.5 s), 16-28 times faster, 98.0% (95.0-99.2%), "
        "7.4 MB, torch 2.13.0, 200 prompts, 32x32 images, 1.7x, 0.1228338 nats, 約 25 秒, "
        "272 x 2, red 23 times in 24, 24 回中 23 回"
    )]  # fmt: skip
    assert found == [
        ("23 times in 24", "23.000024", "of"), ("24 回中 23 回", "23.000024", "of"),
        ("0.7-1.0 s", "0.7", "s"), ("0.7-1.0 s", "1.0", "s"), ("0.5 s", "0.5", "s"),
        ("16-28 times", "16", "x"), ("16-28 times", "28", "x"), ("98.0%", "98.0", "%"),
        ("95.0-99.2%", "95.0", "%"), ("95.0-99.2%", "99.2", "%"), ("7.4 MB", "7.4", "MB"),
        ("1.7x", "1.7", "x"), ("0.1228338 nats", "0.1228338", "nats"), ("25 秒", "25", "s"),
    ]  # fmt: skip


def test_a_stale_figure_fails_and_a_rounded_one_passes():
    known = {"s": [Decimal("0.354")], "x": [Decimal("1.71")], "%": [Decimal("98.0")], "": []}
    assert not matches(Decimal("0.7"), "s", known)  # the page's round trip before 0.354 s
    assert matches(Decimal("0.35"), "s", known) and matches(Decimal("1.7"), "x", known)
    assert matches(Decimal("98"), "%", known) and not matches(Decimal("0.354"), "%", known)
    assert not matches(Decimal("1.0"), "s", {"s": [Decimal("1")]})  # finer than its source


def test_a_tables_header_gives_its_cells_their_unit():
    table = "| N | peak MiB | train s |\n|---|---|---|\n| 1,000 | 490 | **12.5** |\n\nafter 3"
    assert [(str(v), u) for _, v, u in figures(table_units(table))] == [
        ("490", "MiB"),
        ("12.5", "s"),
    ]


def test_the_allow_lists_name_real_sections_and_figures():
    """An allow-list entry that no longer matches anything is removed, not kept."""
    text = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    assert set(SUPERSEDED) <= set(sections(text))
    for name, written in NOT_FIGURES:
        shown = {w for w, _, _ in figures(prose((ROOT / name).read_text(encoding="utf-8")))}
        assert written in shown, (name, written)
