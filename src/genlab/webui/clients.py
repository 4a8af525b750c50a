"""Who is still listening. A page's job runs in Gradio's queue; its results travel back on an
event stream the client opens (``/gradio_api/queue/data?session_hash=S``, or
``/gradio_api/call/NAME/EVENT`` for the REST form). Gradio stops a generator whose stream
closed only at its next yield, and a client that joins the queue but never opens the stream
is never noticed at all: its job would run to the end while everyone else waits. So the
server's ``ClientWatch`` middleware notes every stream that opens and closes, and each draw
asks ``Clients.present`` between its steps: a job with nobody listening for ``GRACE``
seconds (or whose client sent ``/cancel``) stops there.

Nothing here imports Gradio: the middleware is plain ASGI and the registry plain threads,
so both are tested directly."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

#: seconds a job may go without a listener: between joining the queue and opening the stream
#: a client takes milliseconds, and a reconnect well under a second
GRACE = 3.0
#: keys remembered before those closed long ago are forgotten
KEEP = 4096
#: the longest /cancel body read (it is three short fields)
MAX_CANCEL_BODY = 16_384

#: Gradio's cancel route (its API routes live under /gradio_api)
CANCEL_PATHS = ("/gradio_api/cancel", "/cancel")

BAD_CANCEL = (
    'A cancel names its job: send JSON {"session_hash": ..., "fn_index": ..., '
    '"event_id": ...} as the page\'s client does (the event_id is what /queue/join answered).'
)


class Clients:
    """Open event streams by key (a session hash or an event id), when each key was last
    heard of, and the keys whose client sent /cancel. Thread-safe: the server's event loop
    writes, the draws' threads read."""

    def __init__(self, grace: float = GRACE) -> None:
        self.grace = grace
        self._open: Counter[str] = Counter()
        self._seen: dict[str, float] = {}
        self._cancelled: dict[str, float] = {}  # key -> when its client sent /cancel
        self._lock = threading.Lock()

    def opened(self, key: str) -> None:
        with self._lock:
            self._open[key] += 1
            self._seen[key] = time.monotonic()

    def closed(self, key: str) -> None:
        with self._lock:
            self._open[key] -= 1
            if self._open[key] <= 0:
                del self._open[key]
            self._seen[key] = time.monotonic()
            self._prune()

    def cancel(self, *keys: str) -> None:
        """The client of ``keys`` asked to stop: its jobs begun before now stop (a job it
        starts later, on the same session, does not)."""
        now = time.monotonic()
        with self._lock:
            self._cancelled.update((k, now) for k in keys if k)
            self._prune()

    def present(self, *keys: str | None, since: float | None = None) -> Callable[[], bool]:
        """A check for a job of ``keys`` (its session hash, its event id; None skipped) that
        began at ``since`` (time.monotonic(), default now): True while one of its streams is
        open, or was within the grace time, or the job is younger than that; False once its
        client cancelled or has been gone that long."""
        keys = tuple(k for k in keys if k)
        start = time.monotonic() if since is None else since

        def check() -> bool:
            with self._lock:
                if any(self._cancelled.get(k, -1.0) >= start for k in keys):
                    return False
                if any(self._open[k] > 0 for k in keys):
                    return True
                last = max([start, *(self._seen.get(k, start) for k in keys)])
            return time.monotonic() - last < self.grace

        return check

    def _prune(self) -> None:
        """Forget keys closed long ago (a page load makes one; a server runs for weeks)."""
        if len(self._seen) + len(self._cancelled) <= KEEP:
            return
        old = time.monotonic() - 10 * self.grace
        for table in (self._seen, self._cancelled):
            for k in [k for k, t in table.items() if t < old and not self._open[k]]:
                del table[k]


def stream_key(scope: dict) -> str | None:
    """The key of an event stream request (GET .../queue/data?session_hash=S: S;
    GET .../call/NAME/EVENT: EVENT), None for any other request."""
    if scope.get("type") != "http" or scope.get("method") != "GET":
        return None
    path = scope.get("path", "")
    if path.endswith("/queue/data"):
        from urllib.parse import parse_qs

        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return (query.get("session_hash") or [None])[0]
    parts = path.rstrip("/").split("/")
    if "call" in parts[:-2]:  # /gradio_api/call/NAME/EVENT (and call/v2/NAME/EVENT)
        return parts[-1] or None
    return None


class ClientWatch:
    """ASGI middleware: feeds ``clients`` with the event streams as they open and close, and
    reads /cancel first: a well-formed one marks its job cancelled (the draw stops at its next
    step, whatever Gradio manages to close) and goes on to Gradio; a malformed one is answered
    400 with one sentence instead of Gradio's validation dump."""

    def __init__(self, app: Any, clients: Clients) -> None:
        self.app, self.clients = app, clients

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        key = stream_key(scope)
        if key is not None:
            self.clients.opened(key)
            try:
                await self.app(scope, receive, send)
            finally:
                self.clients.closed(key)
            return
        if scope.get("type") == "http" and scope.get("path") in CANCEL_PATHS:
            await self._cancel(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _cancel(self, scope: dict, receive: Any, send: Any) -> None:
        from starlette.responses import PlainTextResponse

        if scope.get("method") != "POST":
            await PlainTextResponse(BAD_CANCEL, status_code=405)(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_CANCEL_BODY:
                await PlainTextResponse(BAD_CANCEL, status_code=413)(scope, receive, send)
                return
        fields = _cancel_fields(body)
        if fields is None:
            await PlainTextResponse(BAD_CANCEL, status_code=400)(scope, receive, send)
            return
        self.clients.cancel(fields["session_hash"], fields["event_id"])
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _cancel_fields(body: bytes) -> dict | None:
    """The fields of a /cancel body, or None when it is not the JSON object Gradio takes."""
    try:
        fields = json.loads(body)
    except ValueError:
        return None
    if not isinstance(fields, dict):
        return None
    ok = (
        isinstance(fields.get("session_hash"), str) and fields["session_hash"]
        and isinstance(fields.get("event_id"), str) and fields["event_id"]
        and isinstance(fields.get("fn_index"), int) and not isinstance(fields["fn_index"], bool)
    )  # fmt: skip
    return fields if ok else None
