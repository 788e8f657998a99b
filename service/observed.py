"""The outermost layer of the app: for every HTTP request, one access-log line and the request
metrics, taken from what the client was sent.

One pure-ASGI layer does both, outside Starlette's error middleware, so a 500 is seen as sent.
The status comes from `http.response.start`, the bytes from the body messages, the route
template from the route Starlette matched (`scope["route"]`), the request id and the tenant from
what the response helpers and the authenticator left in the scope.

The access line is written straight to stderr rather than through `logging`, which costs ~8 µs a
record — more than the rest of this layer together, on a route that spends ~100 µs in all.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable
from typing import TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth import TENANT_KEY
from service.logfmt import utc_second, value
from service.metrics import Metrics
from service.request_ids import SCOPE_KEY as REQUEST_ID_KEY

UNMATCHED = "unmatched"  # the route label of a path no route matches


class AccessLog:
    """`ts=… level=info msg=request request_id=… tenant=… method=… route=… status=…
    duration_ms=… bytes=…`, one line per request; `tenant` only once a key was accepted, `bytes`
    the response body's.

    Lines wait for the end of the event loop's turn and go out in one write: under load, one
    system call carries many of them (a write per line costs more than the line's formatting).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream  # None: whatever sys.stderr is when they go out
        self._lines: list[str] = []
        self._second = -1
        self._stamp = ""

    def write(self, scope: Scope, route: str, status: int, seconds: float, sent: int) -> None:
        if not self._lines:
            asyncio.get_running_loop().call_soon(self.flush)
        request_id = scope.get(REQUEST_ID_KEY)
        tenant = scope.get(TENANT_KEY)
        millis = time.time_ns() // 1_000_000
        second, milli = divmod(millis, 1000)
        if second != self._second:
            # strftime costs more than the rest of the line: once a second is enough.
            self._second, self._stamp = second, utc_second(second)
        # One f-string: each `+` of a piece would make one more string.
        self._lines.append(
            f"ts={self._stamp}.{milli:03d}Z level=info msg=request"
            f"{'' if request_id is None else ' request_id=' + _plain(request_id)}"
            f"{'' if tenant is None else ' tenant=' + _plain(tenant)}"
            f" method={scope['method']} route={route} status={status}"
            f" duration_ms={seconds * 1000:.2f} bytes={sent}\n"
        )

    def flush(self) -> None:
        lines = "".join(self._lines)
        self._lines.clear()
        stream = self._stream or sys.stderr
        stream.write(lines)
        stream.flush()


def _plain(text: str) -> str:
    # Request ids are visible ASCII and tenants are names: quoting is rare, a regex every time not.
    if text.isalnum():  # the ids made here
        return text
    if '"' in text or "=" in text or "\\" in text or " " in text or not text.isprintable():
        return value(text)
    return text


class Observed:
    """Wraps an ASGI app: HTTP requests are counted, timed and logged; other scopes pass."""

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: AccessLog | None) -> None:
        self._app = app
        self._metrics = metrics
        self._access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app sends nothing
        sent = 0

        def observe(message: Message) -> Awaitable[None]:
            # A plain function returning send's awaitable: no coroutine of its own to resume.
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            else:
                sent += len(message.get("body", b""))
            return send(message)

        try:
            await self._app(scope, receive, observe)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", UNMATCHED)
            self._metrics.request(route, scope["method"], status, seconds)
            if self._access_log is not None:
                self._access_log.write(scope, route, status, seconds, sent)
