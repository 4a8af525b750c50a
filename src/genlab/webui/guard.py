"""The page's front door, an ASGI middleware outside all of Gradio's: a request whose Host
header is not one this page answers to is refused (a web page the user visits can reach
127.0.0.1 through DNS rebinding, and it then sends its own name as the Host); a state-changing
request from another web site (its Origin) is refused; and no CORS header leaves the server
unless ``--cors-allow-origins`` names the origin."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

#: the names of this machine a local page is reached by (with the served port)
LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")
#: methods that change nothing (a cross-site GET still gets no CORS header, so reads nothing)
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

BAD_HOST = (
    "This page answers only to the address it serves (localhost, 127.0.0.1 or a name given "
    "with --allowed-hosts), and this request's Host header is not one of them."
)
BAD_ORIGIN = (
    "Requests from another web site are refused; start the page with --cors-allow-origins "
    "to allow one."
)


def split_host(host: str) -> tuple[str, str | None]:
    """("name", "port" or None) of a Host header value, lower case; IPv6 keeps its brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        name += "]"
        port = rest[1:] if rest.startswith(":") else None
        return name, port if rest else None
    name, colon, port = host.partition(":")
    return name, port if colon else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class HostGuard:
    """Wraps an ASGI app. ``allowed_hosts``: extra names ("box.lan" any port, "box.lan:8000"
    that port only); ``listen``: the page serves every interface, so any IP address of the
    machine is a Host (a DNS-rebinding page always sends its own name, never an address);
    ``cors_origins``: origins ("http://a.example:3000") that may read responses."""

    def __init__(
        self, app: Any, *, allowed_hosts: Iterable[str] = (), listen: bool = False,
        cors_origins: Iterable[str] = (),
    ) -> None:  # fmt: skip
        self.app = app
        self.listen = listen
        self.names: set[str] = set()
        self.exact: set[str] = set()
        for host in allowed_hosts:
            name, port = split_host(host)
            if name:
                (self.exact if port else self.names).add(f"{name}:{port}" if port else name)
        self.cors = {o.strip().lower().rstrip("/") for o in cors_origins if o.strip()}

    def host_ok(self, host: str | None, port: int | None) -> bool:
        if not host:
            return False
        name, given = split_host(host)
        if name in self.names or f"{name}:{given}" in self.exact:
            return True
        if given is None or port is None or given != str(port):
            return False
        return name in LOCAL_NAMES or (self.listen and _is_ip(name))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        port = (scope.get("server") or (None, None))[1]
        host = headers.get("host")
        if not self.host_ok(host, port):
            await self._refuse(scope, receive, send, 400, BAD_HOST)
            return
        origin = headers.get("origin")
        same_site = origin is not None and origin.lower().partition("://")[2] == host.lower()
        allowed = origin is not None and origin.lower().rstrip("/") in self.cors
        foreign = origin is not None and not same_site and not allowed
        if foreign and (scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS):
            await self._refuse(scope, receive, send, 403, BAD_ORIGIN)
            return
        await self.app(scope, receive, self._cors_send(send, origin if allowed else None))

    @staticmethod
    def _cors_send(send: Any, origin: str | None) -> Any:
        """``send`` with every CORS header taken out of the response, then the one allowed
        origin (if any) put back: Gradio's own middleware echoes an Origin for a Host that is
        not localhost."""

        async def wrapped(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"access-control-allow-origin")
                    and not k.lower().startswith(b"access-control-allow-credentials")
                ]  # fmt: skip
                if origin is not None:
                    headers += [
                        (b"access-control-allow-origin", origin.encode("latin-1")),
                        (b"access-control-allow-credentials", b"true"),
                        (b"vary", b"Origin"),
                    ]
                message = {**message, "headers": headers}
            await send(message)

        return wrapped

    @staticmethod
    async def _refuse(scope: dict, receive: Any, send: Any, status: int, text: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": text[:120]})
            return
        from starlette.responses import PlainTextResponse

        await PlainTextResponse(text, status_code=status)(scope, receive, send)
