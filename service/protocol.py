"""uvicorn's httptools protocol with the limits it lacks: deadlines for a request's head and body,
and a cap on the head's size.

uvicorn closes idle keep-alive connections, but one that sends half a request head and stalls is
held for ever, and so is its file descriptor; and it accepts a head of any size (h11 has a limit,
httptools none). This subclass arms one timer per phase: from the connection's first moment (or
the next request's first byte) until the head is complete, then until the body is. A head that
runs out of time gets 408; a body that does has its connection closed (the application already
owns the answer). A head larger than `max_header_bytes` gets 431 as soon as that is known.

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


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout: float  # seconds from connection (or a request's first byte) to its full head
    body_timeout: float  # seconds from a complete head to a complete body
    max_header_bytes: int  # request line and header fields, as received


class _HeadTooLarge(Exception):
    pass


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[Limits]

    _timer: asyncio.TimerHandle | None = None
    _in_head = True
    _head_bytes = 0  # bytes received since the head began: bounds what httptools buffers
    _head_size = 0  # request line and header fields parsed so far
    _too_large = False

    # -- phases ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_size = True, 0
        if self._timer is None:  # a later request on a kept-alive connection
            self._arm(self.limits.header_timeout, self._head_timed_out)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        self._arm(self.limits.body_timeout, self._body_timed_out)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head, self._head_bytes = True, 0
        super().on_message_complete()

    # -- the head's size ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.limits.max_header_bytes:
            # One header still arriving, which httptools buffers without a callback.
            self._too_large = True
            self.send_400_response("")

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.limits.max_header_bytes:
            self._too_large = True
            raise _HeadTooLarge  # httptools stops; uvicorn calls send_400_response

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

    def _arm(self, seconds: float, expired: Callable[[], None]) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            detail = f"The request head did not arrive within {self.limits.header_timeout:g} s."
            self._answer(408, "request_timeout", detail)
        else:  # an earlier request's answer is still being written: no room for ours
            self.transport.abort()

    def _body_timed_out(self) -> None:
        self._timer = None
        if self.flow.read_paused:  # the application is not reading yet: not the client's fault
            self._arm(self.limits.body_timeout, self._body_timed_out)
        elif not self.transport.is_closing():
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
    attributes: dict[str, Any] = {"limits": limits}
    return type("HttpToolsProtocol", (LimitedHttpToolsProtocol,), attributes)


class Server(uvicorn.Server):
    """uvicorn's server, saying where it listens also when given the socket (it logs that only
    when it binds one itself)."""

    async def startup(self, sockets: Sequence[socket.socket] | None = None) -> None:
        await super().startup(list(sockets) if sockets is not None else None)
        if self.started and sockets is not None:
            self._log_started_message(sockets)
