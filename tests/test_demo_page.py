"""The report's page in a real browser (Debian's chromium through Playwright): at 1400 px
no image is wider than its column, each figure fills its column and links to its full
size, one numbering, a reading above each table. ``GENLAB_SCREENSHOTS=DIR`` also keeps a
screenshot of each section there (the real report's: scripts/report_screenshots.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from genlab.demo.markup import figure, page, plural, table

CHROMIUM = "/usr/bin/chromium"


def _report(root: Path) -> Path:
    from PIL import Image

    from genlab.viz.plots import em_history, save

    root.mkdir(parents=True, exist_ok=True)
    wide = Image.fromarray(np.random.default_rng(0).integers(0, 255, (352, 1408, 3), np.uint8))
    wide_png = root / "wide.png"
    wide.save(wide_png)
    small_png = root / "small.png"
    Image.new("RGB", (32, 32), (200, 40, 40)).save(small_png)
    flat = save(em_history([0.308 + 1e-13 * i for i in range(5)]), root / "flat.png")
    sections = [
        "<h2>7. A plot and a small image</h2><p>text</p>"
        + table([("mean", "1.0")], "What the table says, in a line.")
        + table([(f"a long column name {i} " * 3, f"{i}.0") for i in range(4)]).replace(
            "</tr><tr>", "".join(f"<td>wide cell number {j}</td>" for j in range(30)) + "</tr><tr>"
        )
        + figure(flat, root, "a flat curve")
        + figure(small_png, root, "a 32-px image"),
        "<h2>A wide grid</h2>" + figure(wide_png, root, "1408-px samples", wide=True),
        '<h2>Cells</h2><div class="cells">'
        + "".join(figure(small_png, root, f"prompt {i}") for i in range(6))
        + "</div>",
    ]
    index = root / "index.html"
    index.write_text(page("test report", "<p>intro</p>", sections))
    return index


def test_plural_and_numbering():
    assert plural(1, "step") == "1 step" and plural(1000, "step") == "1,000 steps"
    html = page("t", "", ["<h2>7. a</h2>", "<h2>b</h2>"])
    assert "<h2>1. a</h2>" in html and "<h2>2. b</h2>" in html


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_report_in_a_browser_at_1400_px(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    index = _report(tmp_path / "report")
    shots = os.environ.get("GENLAB_SCREENSHOTS")
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        view = browser.new_page(viewport={"width": 1400, "height": 900})
        view.goto(index.as_uri())
        view.wait_for_load_state("load")
        sizes = view.evaluate("""() => [...document.images].map(im => ({
            img: im.getBoundingClientRect().width,
            column: im.closest('figure').getBoundingClientRect().width,
            body: document.body.getBoundingClientRect().width,
            link: im.parentElement.tagName === 'A' ? im.parentElement.getAttribute('href') : null,
            src: im.getAttribute('src')}))""")
        assert len(sizes) == 9
        cells = [s for s in sizes if s["column"] < 200]
        assert len(cells) == 6, sizes  # the text-to-image cells: a grid, not one a row
        for s in sizes:
            assert s["img"] <= s["column"] + 1 and s["column"] <= s["body"] + 1, s
            assert s["img"] >= s["column"] - 3, s  # it fills its column
            assert s["link"] == s["src"], s  # clickable to its full size
        assert view.evaluate("document.documentElement.scrollWidth") <= 1400
        tables = view.evaluate("""() => [...document.querySelectorAll('table')].map(t => ({
            table: t.getBoundingClientRect().width,
            section: t.closest('section').getBoundingClientRect().width}))""")
        assert tables and all(t["table"] <= t["section"] + 1 for t in tables), tables
        headings = view.evaluate("[...document.querySelectorAll('h2')].map(h => h.textContent)")
        assert headings == ["1. A plot and a small image", "2. A wide grid", "3. Cells"]
        assert view.locator("p.reading").count() == 1
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            for i, section in enumerate(view.locator("section").all(), 1):
                section.screenshot(path=str(Path(shots) / f"test-section-{i}.png"))
        browser.close()
    shutil.rmtree(index.parent)
