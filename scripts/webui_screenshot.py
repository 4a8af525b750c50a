"""The README's picture of the web page: start ``genlab webui`` in this process, draw a batch
of four with the built-in model in headless chromium, and save the page.

    python scripts/webui_screenshot.py                 # -> docs/img/webui.png
    python scripts/webui_screenshot.py --out shot.png --chromium /usr/bin/chromium
"""

from __future__ import annotations

import argparse
import socket
import tempfile

FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
PROMPT = "a red circle to the left of a blue square"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/img/webui.png")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from genlab.webui import create, launch

    with tempfile.TemporaryDirectory() as tmp, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        app, studio = create(f"{tmp}/out", runs_dir=None)
        launch(app, studio, port=port, block=False)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("#prompt textarea").fill(PROMPT)
            page.locator("#txt2img-seed input").fill("1")
            page.locator("#txt2img-batch input[type=number]").fill("4")
            page.locator("#txt2img-batch input[type=number]").press("Enter")
            page.locator("#generate").click()
            page.wait_for_function(
                "document.querySelector('#txt2img-info textarea').value.includes('Seed: 1,')",
                timeout=120_000,
            )
            page.locator("#txt2img-gallery img").nth(3).wait_for(timeout=30_000)
            page.screenshot(path=args.out)
            browser.close()
        app.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
