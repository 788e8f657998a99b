"""Reading a claim's answer so that every event the API accepted reaches the handler.

The API stores a payload's JSON text exactly as it was sent, so a payload can hold numbers that a
plain JSON decoder refuses or rounds. The handler gets:

- integers as `int`, exact whatever their size — except beyond Python's limit on converting
  decimal text (`sys.get_int_max_str_digits()`, 4,300 digits by default), which exists to stop
  slow conversions: those arrive as `decimal.Decimal`, still exact;
- other numbers as `float`, unless a float cannot hold them — beyond ±1.8e308 (`1e400`) or a
  non-zero number so small it would read as 0 (`1e-400`): those arrive as `decimal.Decimal` with
  the exact text.

Each event is decoded on its own, so one that still cannot be read is reported by itself and never
takes the rest of the claim (or the tenant's loop) with it. Nesting deeper than the decoders'
recursion limit is the one thing that can break the decoding of a whole answer; then the answer
is split without recursion (`_parts`), so the other events are still handled and the deep one is
still named, to be handed back.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec


@dataclass(frozen=True, slots=True)
class Claimed:
    """One event of a claim's answer, with the lease that came with it."""

    id: str
    lease_token: str
    attempts: int
    # The API's event object without its `lease_token`; None when it cannot be decoded.
    event: dict[str, Any] | None
    problem: str | None = None  # why `event` is None


class _Answer(msgspec.Struct):
    events: list[msgspec.Raw]


class _Envelope(msgspec.Struct):
    """What it takes to hand an event back when the rest of it cannot be read."""

    id: str
    lease_token: str
    attempts: int = 0


def number(text: str) -> float | Decimal:
    """A JSON number with a fraction or an exponent: a float when one holds it, else a Decimal."""
    value = float(text)
    if math.isinf(value) or (value == 0.0 and Decimal(text) != 0):
        return Decimal(text)
    return value


def _integer(text: str) -> int | Decimal:
    if len(text.lstrip("-")) > sys.get_int_max_str_digits() > 0:
        return Decimal(text)
    return int(text)


_answer = msgspec.json.Decoder(_Answer)
_event = msgspec.json.Decoder(dict[str, Any], float_hook=number)
_envelope = msgspec.json.Decoder(_Envelope)


def decode_claim(body: bytes) -> tuple[list[Claimed], list[str]]:
    """The events of a claim's answer, and the problems of any that could not even be named.

    Raises `msgspec.DecodeError` if the answer is not `{"events": [...]}` at all.
    """
    claimed: list[Claimed] = []
    nameless: list[str] = []
    try:
        events = _answer.decode(body).events
    except RecursionError:
        events = [msgspec.Raw(part) for part in _parts(_members(body).get("events", b"[]"))]
    for raw in events:
        one = _decode_event(raw)
        if isinstance(one, Claimed):
            claimed.append(one)
        else:
            nameless.append(one)
    return claimed, nameless


def _decode_event(raw: msgspec.Raw) -> Claimed | str:
    try:
        event = _event.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        # msgspec refuses integers past the conversion limit; the standard library lets us
        # choose what they become.
        try:
            event = json.loads(bytes(raw), parse_float=number, parse_int=_integer)
        except (ValueError, RecursionError) as error:
            return _unreadable(raw, f"{type(error).__name__}: {error}")
        if not isinstance(event, dict):
            return _unreadable(raw, "the event is not a JSON object")
    event_id, token, attempts = (
        event.get("id"),
        event.pop("lease_token", None),
        event.get("attempts"),
    )
    if isinstance(event_id, str) and isinstance(token, str) and type(attempts) is int:
        return Claimed(event_id, token, attempts, event)
    return _unreadable(raw, "the event lacks a valid id, lease_token or attempts")


def _unreadable(raw: msgspec.Raw, problem: str) -> Claimed | str:
    try:
        envelope = _envelope.decode(raw)
    except RecursionError:
        try:
            envelope = msgspec.convert(
                {
                    key: msgspec.json.decode(value)
                    for key, value in _members(bytes(raw)).items()
                    if key in _Envelope.__struct_fields__
                },
                _Envelope,
            )
        except msgspec.DecodeError as error:
            return f"{problem}; {error}"
    except msgspec.DecodeError as error:
        return f"{problem}; {error}"
    return Claimed(envelope.id, envelope.lease_token, envelope.attempts, None, problem)


# Strings whole (so brackets inside them do not count), and the structural characters.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)
_KEY = re.compile(rb'\s*("(?:[^"\\]|\\.)*")\s*:', re.DOTALL)


def _parts(text: bytes) -> list[bytes]:
    """The top-level parts of a JSON array or object (for an object, `"key": value`), found
    without recursion, however deep the values nest."""
    parts: list[bytes] = []
    depth, start = 0, 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth == 1:
                start = match.end()
        elif token in (b"]", b"}"):
            depth -= 1
            if depth == 0:
                parts.append(text[start : match.start()])
                break
        elif token == b"," and depth == 1:
            parts.append(text[start : match.start()])
            start = match.end()
    return [part for part in parts if part.strip()]


def _members(text: bytes) -> dict[str, bytes]:
    """A JSON object's members, as raw JSON values, found without recursion."""
    members: dict[str, bytes] = {}
    for part in _parts(text):
        key = _KEY.match(part)
        if key is not None:
            members[msgspec.json.decode(key[1], type=str)] = part[key.end() :]
    return members
