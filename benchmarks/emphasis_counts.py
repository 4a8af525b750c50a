"""Prompt emphasis on the built-in model, counted: how often the image's colour is the one
a weighted word asks for.

    python benchmarks/emphasis_counts.py [--n 24]

Draws each prompt with seeds 0..n-1 (genlab txt2img's defaults: DPM++ 2M, 20 steps, CFG 5,
32x32), reads every image back with eval-t2i's scene detector and prints, per prompt, how
many images came out red and how many blue (an unreadable colour counts as neither). The
first colour word wins in the plain prompt; "(blue:1.5)" weights the second up.
"""

from __future__ import annotations

import argparse

PROMPTS = ("a large red blue circle", "a large red (blue:1.5) circle", "a large [red] blue circle")


def main() -> None:
    from genlab.backends import load_backend
    from genlab.evaluation.scene_detector import detect
    from genlab.generation.images import image_batch
    from genlab.models.latent_sampling import draw_latents

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="images a prompt (seeds 0..n-1)")
    args = parser.parse_args()
    model = load_backend("builtin").model
    print("prompt | red | blue | images")
    for prompt in PROMPTS:
        latents, _ = draw_latents(
            model, [prompt] * args.n, [""] * args.n, list(range(args.n)), width=32, height=32
        )
        found = [detect(im) for im in image_batch(model.decode(latents))]
        colours = [f[0].colour if f else None for f in found]
        red, blue = colours.count("red"), colours.count("blue")
        print(f'"{prompt}" | {red} of {args.n} | {blue} of {args.n} | {args.n}', flush=True)


if __name__ == "__main__":
    main()
