"""A connection's transport whose writes within one turn of the event loop go out together.

uvicorn writes a response's head and its body with two `transport.write` calls, so every small
response cost two `send()` system calls and two TCP segments, and the client two wake-ups. On
the ingest route the first of them was the single most expensive line in the process (~16 µs of
~95 µs a request). Held until the end of the turn (or until they grow past `HOLD_BYTES`), the
head and body leave in one call: +10% single-event ingests a second, measured with
bench/ingest.py.

Everything but writing, closing and aborting is the wrapped transport's own: flow control still
comes from it (the protocol is its protocol), and a close sends what is held first.
"""

from __future__ import annotations

import asyncio
from typing import Any

HOLD_BYTES = 64 * 1024  # beyond this, held writes go out at once: a long body is not delayed


class CoalescingTransport(asyncio.Transport):
    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes | bytearray | memoryview] = []
        self._held_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes > HOLD_BYTES:
            self.flush()

    def flush(self) -> None:
        """Send what is held, in one call (nothing once the connection is closing)."""
        held, self._held, self._held_bytes = self._held, [], 0
        if held and not self._transport.is_closing():
            if len(held) == 1:
                self._transport.write(held[0])
            else:
                self._transport.writelines(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held, self._held_bytes = [], 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._held_bytes

    # -- the rest is the wrapped transport's ----------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()
