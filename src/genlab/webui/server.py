"""Starting the page safely: localhost only unless asked, no share link, no analytics, uploads
capped and opened with Pillow's decompression-bomb guard, a bounded queue drawing one image
at a time, and only the output folder served."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from ..errors import GenlabError

LOCALHOST = "127.0.0.1"
#: written into the output folder: the page only serves a folder it made itself
MARKER = ".genlab-webui"
MAX_UPLOAD = "10mb"
#: pixels an uploaded image may have (Pillow refuses more: a small file can hold a huge image)
MAX_PIXELS = 4096 * 4096


def prepare_out(out: str | Path) -> Path:
    """The output folder, made if missing; an existing folder must be empty or one the page
    made before, because everything in it is served."""
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise GenlabError(f"--out {out} is a file; give a folder for the page's images.")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise GenlabError(
            f"--out {out} holds other files; the page serves everything in its output folder, "
            "so give an empty folder or one made by genlab webui."
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text("genlab webui output folder: served to the page\n")
    except OSError as e:
        raise GenlabError(f"Cannot write the output folder {out} ({e.strerror or e}).") from None
    return out


def configure(out: Path) -> None:
    """Settings that must hold before Gradio is imported: its uploads and caches inside the
    output folder, analytics off, and the decompression-bomb guard an error."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_TEMP_DIR"] = str(out / "uploads")
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(out / "cache")
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def create(
    out: str | Path = "outputs",
    models_dir: str | Path | None = None,
    runs_dir: str | Path | None = "runs",
    model_config: str | Path | None = None,
    place: Any = None,
    datasets_dir: str | Path | None = None,
) -> tuple[Any, Any]:
    """(gr.Blocks, Studio) over a prepared output folder, its queue bounded; the Train page
    takes uploads, or folders inside ``datasets_dir`` by name."""
    from .catalog import Catalog
    from .studio import Studio

    folder = prepare_out(out)
    configure(folder)
    from ..generation.placement import CPU
    from .app import build_app

    catalog = Catalog.scan(models_dir, runs_dir, model_config, place or CPU)
    if datasets_dir is not None:
        datasets = Path(datasets_dir).expanduser().resolve()
        if not datasets.is_dir():
            raise GenlabError(f"--datasets-dir {datasets} is not a folder.")
        catalog.datasets_dir = str(datasets)
    studio = Studio(catalog, folder)
    return build_app(studio), studio


def _guard_lifespan(mount: Any = None, clients: Any = None, **guard: Any) -> Any:
    """A FastAPI lifespan that puts the HostGuard outside every other middleware: it runs
    when the server starts, before it accepts a connection (Gradio adds its own CORS
    middleware after any given to the app, so one given to the app would sit inside it).
    ``mount(fastapi_app)`` adds routes first (the HTTP API), so the guard covers them too;
    inside the guard, ``clients.ClientWatch`` notes the event streams (a draw whose client
    never listened, or left, stops) and reads /cancel."""
    from contextlib import asynccontextmanager

    from .clients import ClientWatch
    from .guard import HostGuard

    @asynccontextmanager
    async def lifespan(fastapi_app: Any):
        if mount is not None:
            mount(fastapi_app)
        stack = fastapi_app.middleware_stack or fastapi_app.build_middleware_stack()
        if clients is not None:
            stack = ClientWatch(stack, clients)
        fastapi_app.middleware_stack = HostGuard(stack, **guard)
        yield

    return lifespan


def launch(
    app: Any, studio: Any, *, port: int | None = None, listen: bool = False,
    queue_size: int = 16, block: bool = True, allowed_hosts: tuple[str, ...] = (),
    cors_allow_origins: tuple[str, ...] = (), api: bool = False,
    api_auth: dict[str, str] | None = None, gradio_auth: dict[str, str] | None = None,
    flags: dict | None = None,
) -> Any:  # fmt: skip
    """Serve ``app``; the built-in model loads in the background so the page is up at once.
    Only requests whose Host is this page's (``allowed_hosts`` adds names) are answered; no
    other site may read a response unless ``cors_allow_origins`` names it. ``api``: also
    stable-diffusion-webui's HTTP API (``webui/api.py``), behind ``api_auth`` if given;
    ``gradio_auth``: the page's log-in ({user: password})."""
    from .guard import HostGuard

    host = "0.0.0.0" if listen else LOCALHOST
    mount = None
    if api:
        from .api import mount_api

        def mount(fastapi_app: Any) -> None:
            mount_api(fastapi_app, studio, studio.catalog, auth=api_auth,
                      queue_size=queue_size, flags=flags)  # fmt: skip

    if listen and (not gradio_auth or (api and not api_auth)):
        print(
            "genlab: warning: --listen serves the page to every machine that can reach this "
            "one; anyone there can generate images and read the output folder (--gradio-auth "
            "and --api-auth ask for a password).",
            file=sys.stderr,
        )
    app.queue(max_size=queue_size, default_concurrency_limit=1)
    try:  # a Ctrl-C while the page starts ends it as one after it started
        app.launch(
            server_name=host, server_port=port, share=False, inbrowser=False, quiet=True,
            allowed_paths=[str(studio.out)], max_file_size=MAX_UPLOAD, ssr_mode=False,
            show_error=True, prevent_thread_lock=True, css=_css(), enable_monitoring=False,
            mcp_server=False, run_history=False, num_workers=0,
            auth=list(gradio_auth.items()) if gradio_auth else None,
            app_kwargs={"lifespan": _guard_lifespan(mount, studio.clients,
                allowed_hosts=allowed_hosts, listen=listen, cors_origins=cors_allow_origins)},
        )  # fmt: skip
        if not isinstance(getattr(app.server_app, "middleware_stack", None), HostGuard):
            app.close()  # never serve without the Host check
            raise GenlabError(
                "The page's Host check did not install; this Gradio is not supported."
            )
        # after the page is up: loading the model competes with Gradio's start for the CPU
        threading.Thread(target=studio.warm_up, daemon=True).start()
        if block:
            app.block_thread()  # returns on Ctrl-C, the server closed
    except KeyboardInterrupt:
        if not block:
            raise
        with contextlib.suppress(Exception):
            app.close()
    if block:
        stop_and_exit(studio)
    return app


def stop_and_exit(studio: Any, wait: float = 10.0) -> None:
    """After Ctrl-C: stop the draw in progress at its next step, wait for it to let go (its
    files are written whole or not at all), then end the process at once. A normal exit
    would tear down torch's worker threads under a daemon thread still inside them, which
    once in a few tries aborted with "terminate called without an active exception"."""
    import os

    studio.interrupt("interrupt")
    if studio.lock.acquire(timeout=wait):
        studio.lock.release()
    print("genlab: the page has stopped.", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _css() -> str:
    from .app import CSS

    return CSS
