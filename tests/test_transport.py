"""The coalescing transport: writes within one turn of the event loop go out in one call, and
nothing held is lost or sent after its connection closed."""

from __future__ import annotations

import asyncio

from service.transport import HOLD_BYTES, CoalescingTransport


class Recording(asyncio.Transport):
    """A transport that keeps what it was asked to do."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closing, "a write after close"
        self.calls.append(("write", bytes(data)))

    def writelines(self, list_of_data: object) -> None:
        assert not self.closing, "a write after close"
        self.calls.append(("writelines", b"|".join(bytes(d) for d in list_of_data)))  # type: ignore[attr-defined]

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", b""))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort", b""))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 10


async def next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_a_head_and_body_written_in_one_turn_go_out_in_one_call() -> None:
    inner = Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())

    transport.write(b"HTTP/1.1 201 Created\r\n\r\n")
    transport.write(b'{"id":"evt_1"}')
    assert inner.calls == []  # held until the end of the turn
    assert transport.get_write_buffer_size() == 10 + 24 + 14
    await next_turn()

    assert inner.calls == [("writelines", b'HTTP/1.1 201 Created\r\n\r\n|{"id":"evt_1"}')]


async def test_writes_in_later_turns_go_out_in_their_own_turn() -> None:
    inner = Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())

    transport.write(b"one")
    await next_turn()
    transport.write(b"two")
    await next_turn()

    assert inner.calls == [("write", b"one"), ("write", b"two")]


async def test_a_close_sends_what_is_held_first() -> None:
    inner = Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())

    transport.write(b"last words")
    transport.close()
    await next_turn()  # the scheduled flush finds nothing more to send

    assert inner.calls == [("write", b"last words"), ("close", b"")]


async def test_an_abort_drops_what_is_held() -> None:
    inner = Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())

    transport.write(b"never sent")
    transport.abort()
    await next_turn()

    assert inner.calls == [("abort", b"")]


async def test_held_writes_are_dropped_when_the_connection_closed_meanwhile() -> None:
    inner = Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())

    transport.write(b"too late")
    inner.closing = True  # the peer went away: the server closed the real transport
    await next_turn()

    assert inner.calls == []


async def test_writes_past_the_hold_limit_go_out_at_once() -> None:
    inner = Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    body = b"x" * HOLD_BYTES

    transport.write(b"head")
    transport.write(body)

    assert inner.calls == [("writelines", b"head|" + body)]
    assert transport.get_write_buffer_size() == 10


class Delegated(Recording):
    """Records the calls the coalescing transport passes on unchanged."""

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("extra", name)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.calls.append(("set_protocol", b""))

    def get_protocol(self) -> asyncio.BaseProtocol:
        return asyncio.Protocol()

    def is_reading(self) -> bool:
        return True

    def pause_reading(self) -> None:
        self.calls.append(("pause_reading", b""))

    def resume_reading(self) -> None:
        self.calls.append(("resume_reading", b""))

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.calls.append(("limits", b"%d,%d" % (high or 0, low or 0)))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (1, 2)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.calls.append(("write_eof", b""))


async def test_everything_else_is_the_wrapped_transports() -> None:
    inner = Delegated()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())

    assert transport.get_extra_info("peername") == ("extra", "peername")
    assert isinstance(transport.get_protocol(), asyncio.Protocol)
    assert transport.is_reading()
    assert transport.can_write_eof()
    assert transport.get_write_buffer_limits() == (1, 2)
    transport.set_protocol(asyncio.Protocol())
    transport.pause_reading()
    transport.resume_reading()
    transport.set_write_buffer_limits(8, 4)
    transport.write(b"before eof")
    transport.write_eof()  # what is held goes first

    assert inner.calls == [
        ("set_protocol", b""),
        ("pause_reading", b""),
        ("resume_reading", b""),
        ("limits", b"8,4"),
        ("write", b"before eof"),
        ("write_eof", b""),
    ]
