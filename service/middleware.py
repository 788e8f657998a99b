"""Pure ASGI middleware (no per-request task, unlike BaseHTTPMiddleware)."""

from __future__ import annotations

import itertools
import os

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_REQUEST_ID_LENGTH = 128
# Generated ids: a random per-process prefix and a counter: unique, and far cheaper than uuid4.
_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(1)


def _accept(value: bytes) -> str | None:
    """A client's X-Request-ID is echoed only when it is short, visible ASCII."""
    if 0 < len(value) <= MAX_REQUEST_ID_LENGTH and all(0x21 <= b <= 0x7E for b in value):
        return value.decode()
    return None


class RequestIdMiddleware:
    """Puts the request id in `request.state.request_id` and on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = _accept(value)
                break
        request_id = request_id or f"{_PREFIX}{next(_COUNTER):016x}"
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name == b"x-request-id" for name, _ in headers):
                    headers.append(header)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
