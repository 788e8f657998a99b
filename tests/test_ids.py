"""Event ids: ULIDs that sort in creation order, with the timestamp where ULID puts it."""

from __future__ import annotations

import time

from ulid import ULID

from service.ids import is_event_id, new_event_id


def test_ids_are_valid_ulids_carrying_their_creation_time() -> None:
    now = int(time.time() * 1000)
    event_id = new_event_id(now)

    assert is_event_id(event_id)
    parsed = ULID.from_str(event_id.removeprefix("evt_"))  # an independent decoder agrees
    assert parsed.milliseconds == now


def test_ids_sort_in_creation_order_even_within_one_millisecond() -> None:
    now = int(time.time() * 1000)
    ids = [new_event_id(now) for _ in range(1000)] + [new_event_id(now + 1) for _ in range(10)]

    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_a_clock_that_steps_back_does_not_break_the_order() -> None:
    now = int(time.time() * 1000) + 10_000
    later = new_event_id(now)
    earlier_clock = new_event_id(now - 5_000)

    assert earlier_clock > later


def test_ids_carry_80_random_bits() -> None:
    now = 1_700_000_000_000
    first = ULID.from_str(new_event_id(now + 20_000)[4:])
    second = ULID.from_str(new_event_id(now + 30_000)[4:])

    assert first.bytes[6:] != second.bytes[6:]
    assert not is_event_id("evt_" + "8" + "0" * 25)  # beyond 128 bits
    assert not is_event_id("evt_01JD3Y8Z4Q9W2M7K5R6T1V0XBI")  # I is not Crockford
