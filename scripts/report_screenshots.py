"""Screenshots of the real report (``genlab demo``'s index.html) at 1400 px, one per
section, for docs/img: the pictures the README and the issue tracker look at.

    genlab demo --out report
    python scripts/report_screenshots.py report/index.html            # -> docs/img/report-N.png
    python scripts/report_screenshots.py report/index.html --sections 1,6 --out docs/img
"""

from __future__ import annotations

import argparse
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--sections", default="", help="comma-separated numbers (default: all)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    wanted = {int(n) for n in args.sections.split(",") if n.strip()}
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=FLAGS)
        view = browser.new_page(viewport={"width": 1400, "height": 900})
        view.goto(args.index.resolve().as_uri())
        view.wait_for_load_state("load")
        wide = view.evaluate("document.documentElement.scrollWidth")
        for i, section in enumerate(view.locator("section").all(), 1):
            if wanted and i not in wanted:
                continue
            path = args.out / f"report-{i}.png"
            section.screenshot(path=str(path))
            print(f"wrote {path}")
        browser.close()
    print(f"page width at a 1400-px window: {wide} px")


if __name__ == "__main__":
    main()
