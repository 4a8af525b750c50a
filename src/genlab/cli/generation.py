"""txt2img, img2img and inpaint (one request, one back end, the images written), and
png-info. ``txt2img --from-png FILE`` redraws an image from the parameters it carries, flags
given on the command line overriding them."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from .common import (
    command,
    deepcache_flags,
    lora_flags,
    loras,
    model_flags,
    placement,
    placement_flags,
    sampler_flags,
    seed,
    tome_flag,
)

EXAMPLES = {
    "png-info": "example:\n  genlab png-info out.png",
    "txt2img": """examples:
  genlab txt2img "a red circle to the left of a blue square" --seed 1 --out out.png
  genlab txt2img "green star, top, small" --negative "red" --cfg 7 --steps 30 --out star.png
  genlab txt2img "a pink heart above a white box" --batch 8 --out hearts.png  # + grid
  genlab txt2img "a blue triangle on the right" --model runs/txt2img --sampler euler-a
  genlab txt2img "a green star at the top" --model builtin-fast  # 4 steps (lcm)
  genlab txt2img --from-png out.png --out again.png         # the same image, redrawn
  genlab txt2img --from-png out.png --seed 5 --out other.png  # its settings, another seed
  genlab txt2img "a red circle" --hires-scale 2 --denoising-strength 0.3 --out big.png  # 64x64
  genlab txt2img "a red circle" --hires-scale 2 --hr-sampler euler --hr-prompt "a red circle" \\
      --hr-negative-prompt "blurry" --out big.png  # the second pass's own sampler and prompts
  genlab txt2img "a red circle" --deepcache 3 --out fast.png  # LOSSY: step caching
  genlab txt2img "a red circle" --model SD_FOLDER --tome 0.5  # lossy: token merging""",
    "img2img": """examples:
  genlab img2img scene.png "a blue circle on the left" --strength 0.6 --out redrawn.png
  genlab img2img out.png "green star, top, small" --strength 0.3 --seed 2 --out near.png""",
    "inpaint": """examples:
  genlab inpaint scene.png mask.png "a yellow heart" --out painted.png
  genlab inpaint scene.png mask.png "a red square" --strength 0.8 --out painted.png""",
}
IMAGE_ARGS = {"init": "initial image (PNG, JPEG ...)", "mask": "mask image: white is regenerated"}
#: flag -> the request field it sets; each flag defaults to None so that one given on the
#: command line is told apart from one left out (--from-png keeps the PNG's value then)
FIELDS = {
    "prompt": "prompt", "negative": "negative_prompt", "sampler": "sampler",
    "schedule": "schedule", "steps": "steps", "cfg": "cfg_scale", "seed": "seed",
    "batch": "batch_size", "width": "width", "height": "height", "strength": "strength",
    "deepcache": "deepcache", "deepcache_branch": "deepcache_branch",
}  # fmt: skip


def given_fields(args: argparse.Namespace) -> dict:
    """The request fields the command line sets explicitly."""
    return {
        field: getattr(args, flag)
        for flag, field in FIELDS.items()
        if getattr(args, flag, None) is not None
    }


def from_png(path: str, args: argparse.Namespace) -> tuple[dict, str]:
    """(request fields, model hash) recorded in the PNG ``path``; LoRAs it names that are not
    given with --lora are said in one sentence (a LoRA is a folder; the PNG has its name)."""
    from pathlib import Path

    from ..generation.pnginfo import parse_parameters, read_parameters, request_from_parameters

    text = read_parameters(path)
    fields = request_from_parameters(text)
    recorded = dict(fields.pop("loras", ()))
    if fields.pop("strength", None) is not None:
        print(f"genlab: {path} was made from an initial image; txt2img redraws it from its "
              "prompt alone (img2img takes the image).", file=sys.stderr)  # fmt: skip
    given = {Path(p).resolve().name for p in args.lora or []}
    missing = [name for name in recorded if name not in given]
    if missing:
        print(f"genlab: {path} was drawn with the LoRA{'s' if len(missing) > 1 else ''} "
              f"{', '.join(missing)}, not given with --lora: drawing without "
              f"{'them' if len(missing) > 1 else 'it'}.", file=sys.stderr)  # fmt: skip
    if args.lora and not args.lora_scale:  # a LoRA the PNG names keeps the scale it had
        args.lora_scale = [recorded.get(Path(p).resolve().name, 1.0) for p in args.lora]
    parsed = parse_parameters(text)
    if args.tome is None and "Token merging ratio" in parsed:  # drawn merged: redrawn so
        args.tome = tome_ratio(parsed["Token merging ratio"], path)
    return fields, parsed.get("Model hash", "")


def tome_ratio(text: str, path: str) -> float:
    """The token merging ratio a PNG's parameters record."""
    from ..errors import GenlabError

    try:
        return float(text)
    except ValueError:
        raise GenlabError(
            f"{path} records a token merging ratio that is no number: {text!r}."
        ) from None


#: hires flag -> HiresFix field
HIRES_FIELDS = {
    "hires_scale": "scale", "hires_upscaler": "upscaler", "hires_steps": "steps",
    "denoising_strength": "denoising_strength", "hr_sampler": "sampler",
    "hr_schedule": "schedule", "hr_prompt": "prompt", "hr_negative_prompt": "negative_prompt",
}  # fmt: skip


def hires_fields(args: argparse.Namespace, fields: dict) -> None:
    """Hires fix from --hires-scale (with --hires-upscaler, --hires-steps,
    --denoising-strength and the second pass's --hr-sampler, --hr-schedule, --hr-prompt and
    --hr-negative-prompt over their defaults, or over what a PNG recorded) into ``fields``."""
    from ..errors import GenlabError

    given = {
        field: getattr(args, flag)
        for flag, field in HIRES_FIELDS.items()
        if getattr(args, flag, None) is not None
    }
    if not given:
        return
    recorded = fields.get("hires")
    if recorded is None and "scale" not in given:
        raise GenlabError("--hires-upscaler, --hires-steps, --denoising-strength and the --hr-* "
                          "flags tune hires fix: turn it on with --hires-scale (2 doubles the "
                          "size).")  # fmt: skip
    fields["hires"] = {**(recorded or {}), **given}


def cmd_txt2img(args: argparse.Namespace) -> None:
    """txt2img, img2img and inpaint: one request, one back end, the images written."""
    from tqdm import (
        tqdm,
    )  # a terminal's bar (tqdm.auto also imports its notebook and asyncio parts)

    from ..backends import load_backend
    from ..errors import GenlabError
    from ..generation import GenerationRequest
    from ..generation.hires import planned_steps
    from ..generation.images import size_of
    from ..generation.output import check_writable, save_result
    from ..runfiles import check_file, disk_error

    fields, recorded_hash = {}, ""
    if getattr(args, "from_png", None) is not None:
        fields, recorded_hash = from_png(args.from_png, args)
    elif args.prompt is None:
        raise GenlabError("Give a prompt, or --from-png FILE to redraw an image.")
    fields |= given_fields(args)
    hires_fields(args, fields)
    init, mask = getattr(args, "init", None), getattr(args, "mask", None)
    if init is not None:
        init_w, init_h = size_of(init)  # the initial image's size, where none is given
        fields.setdefault("width", init_w)
        fields.setdefault("height", init_h)
    if getattr(args, "refiner", None) is not None and init is not None:
        raise GenlabError("--refiner applies to txt2img: it finishes the base's last steps.")
    request = GenerationRequest(**fields, init_image=init, mask=mask)
    check_file(args.out)  # before any work: a folder that can be written, a name that fits
    check_writable(args.out)
    request = dataclasses.replace(request, loras=loras(args.lora, args.lora_scale))
    pipe = load_backend(args.model, args.model_config, placement(args))
    embeddings_dir(pipe, args)
    if hasattr(pipe, "use_refiner"):  # always: a back end kept from an earlier call forgets it
        pipe.use_refiner(getattr(args, "refiner", None), getattr(args, "refiner_switch", 0.8))
    elif getattr(args, "refiner", None) is not None:
        raise GenlabError("--refiner applies to SDXL checkpoints.")
    pipe.use_token_merging(args.tome or 0.0)  # always: a kept back end has the last call's
    # a distilled model's own sampler, steps and CFG scale (builtin-fast: lcm, 4, 1) where
    # neither the command line nor the PNG gives them
    own = {k: v for k, v in getattr(pipe.describe(), "sampling", {}).items() if k not in fields}
    if own:
        request = dataclasses.replace(request, **own)
    model_hash = getattr(pipe, "model_hash", "") or ""
    if recorded_hash and model_hash and not model_hash.startswith(recorded_hash):
        print(f"genlab: {args.from_png} was drawn by another model (hash {recorded_hash}); "
              f"redrawing it with {args.model}.", file=sys.stderr)  # fmt: skip
    request = pipe.check(request)  # the model's own size where none is given (SD 1.x: 512)
    if request.unconditional:
        from ..generation.request import UNCONDITIONAL

        print(f"genlab: {UNCONDITIONAL}", file=sys.stderr)
    with tqdm(total=planned_steps(request), desc=args.command, leave=False) as bar:
        result = pipe(request, lambda p: bar.update(p.step - bar.n) if p.step > bar.n else None)
    if result.info.get("notice"):  # words or counts the model cannot draw, a cut prompt
        print(f"genlab: {result.info['notice']}", file=sys.stderr)
    try:
        paths = save_result(result, args.out)
    except OSError as e:
        raise disk_error(e, e.filename or args.out) from None
    for path in paths:
        print(f"wrote {path}")


def embeddings_dir(pipe, args: argparse.Namespace) -> None:
    """Give a Stable Diffusion back end its embeddings folder: --embeddings-dir, else an
    ``embeddings/`` folder beside the model (webui's models folder layout)."""
    from pathlib import Path

    from ..errors import GenlabError

    folder = getattr(args, "embeddings_dir", None)
    if not hasattr(pipe, "use_embeddings"):
        if folder is not None:
            raise GenlabError("--embeddings-dir applies to Stable Diffusion checkpoints.")
        return
    if folder is not None and not Path(folder).is_dir():
        raise GenlabError(f"--embeddings-dir {folder} is not a folder.")
    beside = Path(args.model).resolve().parent / "embeddings"
    pipe.use_embeddings(folder if folder is not None else (beside if beside.is_dir() else None))


def cmd_png_info(args: argparse.Namespace) -> None:
    from ..generation import read_parameters

    print(read_parameters(args.file))


def generation(
    sub: argparse._SubParsersAction, name: str, help: str, images: tuple[str, ...]
) -> argparse.ArgumentParser:
    p = command(sub, name, cmd_txt2img, help, EXAMPLES[name])
    for image in images:
        p.add_argument(image, help=IMAGE_ARGS[image])
    if name == "txt2img":
        p.add_argument("prompt", nargs="?", help="what to draw (empty: an unconditional "
                       "sample; with --from-png: the PNG's)")  # fmt: skip
        p.add_argument("--from-png", metavar="FILE", help="redraw a PNG from its own "
                       "parameters; flags given here override them")  # fmt: skip
        hires_flags(p)
    else:
        p.add_argument("prompt", help="what to draw (empty: an unconditional sample)")
    p.add_argument("--negative", help="negative prompt: what to steer away from")
    model_flags(p)
    placement_flags(p)
    sampler_flags(p, default=None)  # None: dpmpp-2m (builtin-fast: lcm), or the PNG's
    p.add_argument("--steps", type=int, help="sampling steps (default 20; builtin-fast: 4)")
    p.add_argument("--cfg", type=float,
                   help="classifier-free guidance scale (default 5; builtin-fast: 1, its "
                   "guidance is folded in)")  # fmt: skip
    p.add_argument("--seed", type=seed, help="default 0; image i of a batch uses seed + i")
    p.add_argument("--batch", type=int, help="images to draw (default 1; more: also a grid)")
    size = "pixels (default: the model's, or the initial image's)"
    p.add_argument("--width", type=int, help=size)
    p.add_argument("--height", type=int, help=size)
    p.add_argument("--out", default=f"{name}.png", help="PNG file (a batch: FILE-0.png ...)")
    deepcache_flags(p)
    p.add_argument("--embeddings-dir", metavar="DIR", help="Stable Diffusion: textual-inversion "
                   "embeddings (webui's .safetensors files), used by file name in prompts "
                   "(default: embeddings/ beside the model)")  # fmt: skip
    p.add_argument("--refiner", metavar="FOLDER", help="SDXL: a refiner (diffusers folder) "
                   "that draws the last steps of txt2img")  # fmt: skip
    p.add_argument("--refiner-switch", type=float, default=0.8, metavar="F", help="with "
                   "--refiner: the fraction of steps the base draws (default 0.8)")  # fmt: skip
    tome_flag(p)
    lora_flags(p)
    return p


def hires_flags(p: argparse.ArgumentParser) -> None:
    from ..generation.hires import UPSCALERS

    p.add_argument("--hires-scale", type=float, metavar="S", help="hires fix: draw at the "
                   "given size, upscale S times (1-8) and redraw there with img2img")  # fmt: skip
    p.add_argument("--hires-upscaler", metavar="NAME", help=f"hires fix's upscaler: "
                   f"{', '.join(UPSCALERS)} (default Latent)")  # fmt: skip
    p.add_argument("--hires-steps", type=int, metavar="N", help="hires fix's second-pass "
                   "steps (default 0: as many as --steps)")  # fmt: skip
    p.add_argument("--denoising-strength", type=float, metavar="D", help="hires fix's "
                   "second-pass strength in (0, 1] (default 0.7; lower keeps more)")  # fmt: skip
    p.add_argument("--hr-sampler", metavar="NAME", help="hires fix's second-pass sampler "
                   "(default: --sampler's)")  # fmt: skip
    p.add_argument("--hr-schedule", metavar="NAME", help="hires fix's second-pass schedule "
                   "(default: --schedule's)")  # fmt: skip
    p.add_argument("--hr-prompt", metavar="TEXT", help="hires fix's second-pass prompt "
                   "(default: the prompt)")  # fmt: skip
    p.add_argument("--hr-negative-prompt", metavar="TEXT", help="hires fix's second-pass "
                   "negative prompt (default: --negative's)")  # fmt: skip


def add(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "png-info", cmd_png_info, "print the generation parameters stored in a PNG",
                EXAMPLES["png-info"])  # fmt: skip
    p.add_argument("file")
    generation(sub, "txt2img", "draw images from a text prompt (built-in model by default)", ())
    p = generation(sub, "img2img", "redraw an image after a text prompt", ("init",))
    p.add_argument("--strength", type=float, default=0.6, help="how much to change: (0, 1]")
    p = generation(sub, "inpaint", "regenerate the masked region of an image", ("init", "mask"))
    p.add_argument("--strength", type=float, default=1.0, help="how much to change: (0, 1]")
