"""uvicorn's httptools protocol with the limits it lacks: deadlines for a request's head and body,
and a cap on the head's size.

uvicorn closes idle keep-alive connections, but one that sends half a request head and stalls is
held for ever, and so is its file descriptor; and it accepts a head of any size (h11 has a limit,
httptools none). This subclass gives each phase a deadline: from the connection's first moment
(or the next request's first byte) until the head is complete, then until the body is. A head
that runs out of time gets 408; a body that does has its connection closed (the application
already owns the answer). A head larger than `max_header_bytes` gets 431 as soon as that is
known. Its writes go through a `CoalescingTransport`: a response's head and body in one send.

It overrides the callbacks of `uvicorn.protocols.http.httptools_impl.HttpToolsProtocol` of the
uvicorn version pinned in pyproject.toml; tests/test_protocol.py drives it over real sockets.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.models import Problem, encode
from service.problems import title
from service.request_ids import new_request_id
from service.transport import CoalescingTransport


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout: float  # seconds from connection (or a request's first byte) to its full head
    body_timeout: float  # seconds from a complete head to a complete body
    max_header_bytes: int  # request line and header fields, as received


class _HeadTooLarge(Exception):
    pass


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[Limits]
    # One sweep per server looks for connections past their deadline, rather than a timer armed
    # and cancelled twice per request: that costs each request a clock read, not ~2 µs.
    _sweeper: ClassVar[asyncio.TimerHandle | None]

    _deadline = 0.0  # loop time by which the current phase must end; 0 when none runs
    _in_head = True  # receiving a request's head (or waiting for the next one)
    _head_bytes = 0  # bytes received since the head began: bounds what httptools buffers
    _too_large = False

    # -- phases ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # A response's head and body in one send (`service/transport.py`).
        super().connection_made(CoalescingTransport(transport, self.loop))
        self._deadline = self.loop.time() + self.limits.header_timeout
        if type(self)._sweeper is None:
            self._sweep_soon()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        if not self._deadline:  # a later request on a kept-alive connection
            self._deadline = self.loop.time() + self.limits.header_timeout

    def on_headers_complete(self) -> None:
        if self._head_bytes > self.limits.max_header_bytes and self._head_size() > (
            self.limits.max_header_bytes
        ):
            self._too_large = True
            raise _HeadTooLarge  # httptools stops; uvicorn calls send_400_response
        self._in_head, self._head_bytes = False, 0
        self._deadline = self.loop.time() + self.limits.body_timeout
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._deadline = 0.0
        self._in_head, self._head_bytes = True, 0
        super().on_message_complete()

    # -- the head's size ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.limits.max_header_bytes:
            # Still no end of the head in sight (perhaps one header arriving in pieces, which
            # httptools buffers without a callback).
            self._too_large = True
            self.send_400_response("")

    def _head_size(self) -> int:
        """The request line and header fields, without what followed them in the same read."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def send_400_response(self, msg: str) -> None:
        if self.transport.is_closing():
            return
        if self._too_large:
            limit = self.limits.max_header_bytes
            detail = f"The request line and headers exceed {limit} bytes."
            self._answer(431, "request_header_fields_too_large", detail)
        else:
            self._answer(400, "bad_request", "The request is not valid HTTP/1.1.")

    # -- deadlines ------------------------------------------------------------------------------

    def _sweep_soon(self) -> None:
        every = min(1.0, self.limits.header_timeout / 4, self.limits.body_timeout / 4)
        type(self)._sweeper = self.loop.call_later(every, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for connection in list(self.connections):
            if isinstance(connection, LimitedHttpToolsProtocol) and 0 < connection._deadline <= now:
                connection._expired()
        type(self)._sweeper = None
        if self.connections:  # asleep while there is nothing to watch
            self._sweep_soon()

    def _expired(self) -> None:
        if self.transport.is_closing():
            self._deadline = 0.0
        elif not self._in_head:
            self._body_timed_out()
        elif self.cycle is None or self.cycle.response_complete:
            self._deadline = 0.0
            detail = f"The request head did not arrive within {self.limits.header_timeout:g} s."
            self._answer(408, "request_timeout", detail)
        else:  # an earlier request's answer is still being written: no room for ours
            self._deadline = 0.0
            self.transport.abort()

    def _body_timed_out(self) -> None:
        if self.flow.read_paused:  # the application is not reading yet: not the client's fault
            self._deadline = self.loop.time() + self.limits.body_timeout
        else:
            self._deadline = 0.0
            self.transport.abort()

    def _answer(self, status: int, code: str, detail: str) -> None:
        """A problem document written straight to the connection, which then closes."""
        rid = new_request_id()
        body = encode(Problem("about:blank", title(status), status, detail, code, rid))
        head = (
            f"HTTP/1.1 {status} {title(status)}\r\ncontent-type: application/problem+json\r\n"
            f"content-length: {len(body)}\r\nx-request-id: {rid}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()


def limited_protocol(limits: Limits) -> type[asyncio.Protocol]:
    """The protocol class to give uvicorn (`http=`), with these limits."""
    attributes: dict[str, Any] = {"limits": limits, "_sweeper": None}
    return type("HttpToolsProtocol", (LimitedHttpToolsProtocol,), attributes)


class Server(uvicorn.Server):
    """uvicorn's server, saying where it listens also when given the socket (it logs that only
    when it binds one itself), and telling the app when it begins to shut down (`on_stopping`),
    before it waits for the requests in flight."""

    def __init__(self, config: uvicorn.Config, on_stopping: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_stopping = on_stopping

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._on_stopping()
        await super().shutdown(sockets)

    async def startup(self, sockets: Sequence[socket.socket] | None = None) -> None:
        await super().startup(list(sockets) if sockets is not None else None)
        if self.started and sockets is not None:
            self._log_started_message(sockets)
