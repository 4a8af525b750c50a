"""webui: the web page on this machine."""

from __future__ import annotations

import argparse

from .common import command, placement, placement_flags

EXAMPLES = """examples:
  genlab webui                                # http://127.0.0.1:7860, built-in model
  genlab webui --models-dir ~/models --runs-dir runs --out outputs
  genlab webui --port 8000 --listen           # other machines too (with a warning)
  genlab webui --datasets-dir ~/images        # the Train tab may train on folders there
  genlab webui --allowed-hosts box.lan        # answer to that name too (else refused)
  genlab webui --api                          # also stable-diffusion-webui's API, /sdapi/v1
  genlab webui --nowebui --api-auth me:secret # the API alone, behind HTTP Basic"""


def names(text: str | None) -> tuple[str, ...]:
    """A comma-separated flag as a tuple of its non-empty items."""
    return tuple(item.strip() for item in (text or "").split(",") if item.strip())


def cmd_webui(args: argparse.Namespace) -> None:
    from ..errors import GenlabError

    try:
        from ..webui import create, launch
    except ModuleNotFoundError as e:
        raise GenlabError(
            f"The web page needs Gradio ({e.name} is missing): pip install 'genlab[webui]'."
        ) from None
    if not 1 <= args.port <= 65535 or args.queue < 1:
        raise GenlabError(f"--port must lie in 1..65535 and --queue be at least 1, got "
                          f"{args.port} and {args.queue}.")  # fmt: skip
    from ..interop.diffusers.files import config_folder

    if args.model_config:
        config_folder(args.model_config)  # checked before the page starts
    place = placement(args)
    hosts, origins = names(args.allowed_hosts), names(args.cors_allow_origins)
    bad = [o for o in origins if not o.lower().startswith(("http://", "https://"))]
    if bad or any("/" in h or " " in h for h in hosts):
        raise GenlabError("--allowed-hosts takes names such as box.lan or box.lan:8000, and "
                          "--cors-allow-origins origins such as http://box.lan:3000.")  # fmt: skip
    from ..webui.api import parse_auth

    api_auth, gradio_auth = parse_auth(args.api_auth), parse_auth(args.gradio_auth)
    flags = {"api": args.api or args.nowebui, "nowebui": args.nowebui, "listen": args.listen,
             "port": args.port, "queue": args.queue, "api_auth": bool(api_auth),
             "gradio_auth": bool(gradio_auth)}  # fmt: skip
    if args.nowebui:
        serve_api_alone(args, place, api_auth, hosts, origins, flags)
        return
    app, studio = create(args.out, args.models_dir, args.runs_dir, args.model_config, place,
                         datasets_dir=args.datasets_dir)  # fmt: skip
    print(f"genlab webui: http://{'0.0.0.0' if args.listen else '127.0.0.1'}:{args.port} "
          f"(images in {studio.out}; Ctrl-C stops)")  # fmt: skip
    try:
        launch(app, studio, port=args.port, listen=args.listen, queue_size=args.queue,
               allowed_hosts=hosts, cors_allow_origins=origins, api=args.api,
               api_auth=api_auth, gradio_auth=gradio_auth, flags=flags)  # fmt: skip
    except OSError as e:  # the port is taken, or not ours to bind
        raise GenlabError(f"Cannot serve on port {args.port} ({e}).") from None


def serve_api_alone(args, place, api_auth, hosts, origins, flags) -> None:
    """--nowebui: stable-diffusion-webui's API with no page, as webui's own flag does."""
    import sys

    from ..errors import GenlabError
    from ..webui.api import serve_api
    from ..webui.catalog import Catalog
    from ..webui.server import configure, prepare_out
    from ..webui.studio import Studio

    out = prepare_out(args.out)
    configure(out)
    studio = Studio(Catalog.scan(args.models_dir, args.runs_dir, args.model_config, place), out)
    print(f"genlab webui --nowebui: http://{'0.0.0.0' if args.listen else '127.0.0.1'}:"
          f"{args.port}/sdapi/v1 (Ctrl-C stops)")  # fmt: skip
    if args.listen and not api_auth:
        print("genlab: warning: --listen serves the API to every machine that can reach "
              "this one; --api-auth asks for a password.", file=sys.stderr)  # fmt: skip
    try:
        serve_api(studio, port=args.port, listen=args.listen, auth=api_auth,
                  queue_size=args.queue, allowed_hosts=hosts, cors_allow_origins=origins,
                  flags=flags)  # fmt: skip
    except OSError as e:
        raise GenlabError(f"Cannot serve on port {args.port} ({e}).") from None


def add(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "webui", cmd_webui,
                "start the web page on this machine (needs genlab[webui])", EXAMPLES)  # fmt: skip
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--listen", action="store_true", help="serve other machines too (0.0.0.0)")
    models = "text-to-image runs, Stable Diffusion folders and .safetensors files"
    p.add_argument("--models-dir", help=models)
    configs = "diffusers folder the .safetensors checkpoints take configs from"
    p.add_argument("--model-config", help=configs)
    placement_flags(p)
    p.add_argument("--runs-dir", default="runs", help="trained runs for the model lab")
    p.add_argument("--out", default="outputs", help="output folder: the only one served")
    p.add_argument("--queue", type=int, default=16, help="requests that may wait (then refused)")
    p.add_argument("--datasets-dir", help="folders the Train tab may train on (else uploads only)")
    hosts = "more names the page answers to, comma-separated (besides localhost, 127.0.0.1)"
    p.add_argument("--allowed-hosts", help=hosts)
    p.add_argument("--cors-allow-origins", help="origins other sites may read the page from")
    p.add_argument("--api", action="store_true", help="also serve webui's HTTP API, /sdapi/v1")
    p.add_argument("--nowebui", action="store_true", help="serve the HTTP API alone, no page")
    p.add_argument("--api-auth", help="user:pass[,user2:pass2]: HTTP Basic for the API")
    p.add_argument("--gradio-auth", help="user:pass[,user2:pass2]: the page's log-in")
