"""Rewrite the example dataset shipped in ``src/genlab/data/examples/teal``: a dozen 32x32
scenes of genlab's shapes renderer in teal (a colour the shapes data never draws), each
with its caption in NAME.txt. The web page's Train tab offers it as its example.

    python scripts/make_example_dataset.py
"""

import shutil

from genlab.data.examples import TEAL, write_teal


def main() -> None:
    shutil.rmtree(TEAL, ignore_errors=True)
    images = write_teal(TEAL)
    size = sum(p.stat().st_size for p in TEAL.iterdir())
    print(f"wrote {len(images)} images and captions into {TEAL} ({size} bytes)")


if __name__ == "__main__":
    main()
