"""A small ASGI layer in front of every route: body size limits, allowed Host names, same-origin writes.

It runs before any request body is parsed, so an oversize upload is refused after reading at most the limit
(never buffered in full), a page of another web site cannot drive the app through the user's browser (its
``Origin`` differs), and a DNS-rebinding name cannot reach it (its ``Host`` is not allowed).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _TooLarge(Exception):
    pass


def _host_name(host: str) -> str:
    """'localhost:7860' -> 'localhost'; '[::1]:7860' -> '::1'."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


SLACK = 1024 * 1024  # multipart headers and form fields around the files


class Guard:
    """Wraps the app: ``limit_for(path)`` gives the largest upload a path accepts, in bytes (plus :data:`SLACK`)."""

    def __init__(self, app: Callable, limit_for: Callable[[str], int], allowed_hosts: tuple[str, ...]) -> None:
        self.app = app
        self.limit_for = limit_for
        self.any_host = "*" in allowed_hosts
        self.allowed_hosts = {h.lower().strip("[]") for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if not self.any_host and _host_name(host).lower() not in self.allowed_hosts:
            await _reply(send, 421, f"this server does not answer for the host name {host[:80]!r}")
            return
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and origin and origin != "null" \
                and urlsplit(origin).netloc.lower() != host.lower():
            await _reply(send, 403, "requests from other web sites are not accepted")
            return
        allowed = self.limit_for(scope["path"])
        limit = allowed + SLACK
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _reply(send, 413, f"upload too large (at most {allowed // (1024 * 1024)} MB)")
            return
        received = 0
        started = over = False
        too_large = f"upload too large (at most {allowed // (1024 * 1024)} MB)"

        async def limited_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            # a parser that turned our exception into its own error reply: it becomes the 413 it is
            nonlocal started
            if over:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _reply(send, 413, too_large)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _reply(send, 413, too_large)
