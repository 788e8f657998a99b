"""A claim's answer decoded so that every event reaches the handler, whatever its numbers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from worker.decoding import Claimed, decode_claim, number

HUGE = "9" * 400
BEYOND_LIMIT = "7" * 5000  # past Python's 4,300-digit limit on int(text)


def event(payload: str, **fields: Any) -> str:
    envelope = {"id": "evt_1", "attempts": 1, "lease_token": "lt_1", "status": "undelivered"}
    envelope.update(fields)
    return json.dumps(envelope)[:-1] + f', "payload": {payload}}}'


def answer(*events: str) -> bytes:
    return ('{"events": [' + ", ".join(events) + "]}").encode()


def payload_of(body: bytes) -> dict[str, Any]:
    [claimed], nameless = decode_claim(body)
    assert nameless == []
    assert claimed.event is not None
    payload: dict[str, Any] = claimed.event["payload"]
    return payload


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5", 1.5),
        ("-0.0", -0.0),
        ("1e308", 1e308),
        ("5e-324", 5e-324),
        ("0e5000", 0.0),
        ("1e400", Decimal("1e400")),
        ("-1E400", Decimal("-1E400")),
        ("1e-400", Decimal("1e-400")),
    ],
)
def test_a_number_is_a_float_unless_a_float_cannot_hold_it(
    text: str, expected: float | Decimal
) -> None:
    value = number(text)

    assert type(value) is type(expected)
    assert value == expected
    if isinstance(value, Decimal):
        assert str(value) == str(Decimal(text))  # the exact text, not a rounding of it


def test_numbers_beyond_a_float_and_huge_integers_arrive_exactly() -> None:
    body = answer(
        event(
            f'{{"amount": 1e400, "debt": -1e400, "big": {HUGE}, "bigger": {BEYOND_LIMIT},'
            ' "price": 12.5, "n": 3}'
        )
    )

    payload = payload_of(body)

    assert payload["amount"] == Decimal("1e400")
    assert payload["debt"] == Decimal("-1e400")
    assert payload["big"] == int(HUGE)
    assert type(payload["big"]) is int
    assert payload["bigger"] == Decimal(BEYOND_LIMIT)
    assert (payload["price"], payload["n"]) == (12.5, 3)
    # Encoded again, every number is the one the producer sent.
    again = msgspec.json.Encoder(decimal_format="number").encode(payload)
    assert json.loads(again, parse_float=Decimal, parse_int=Decimal) == {
        "amount": Decimal("1e400"),
        "debt": Decimal("-1e400"),
        "big": Decimal(HUGE),
        "bigger": Decimal(BEYOND_LIMIT),
        "price": Decimal("12.5"),
        "n": 3,
    }


def test_the_lease_token_is_kept_out_of_the_event() -> None:
    [claimed], _ = decode_claim(answer(event('{"a": 1}', attempts=3)))

    assert claimed == Claimed(
        "evt_1",
        "lt_1",
        3,
        {"id": "evt_1", "attempts": 3, "status": "undelivered", "payload": {"a": 1}},
    )


def test_an_event_that_cannot_be_read_is_named_and_does_not_take_the_others_down() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    good = event('{"n": 1}', id="evt_good", lease_token="lt_good")
    bad = event(f'{{"deep": {deep}}}', id="evt_bad", lease_token="lt_bad", attempts=4)
    no_token = json.dumps({"id": "evt_x", "attempts": 1, "payload": {}})
    nameless = json.dumps({"payload": {}})

    claimed, problems = decode_claim(answer(good, bad, no_token, nameless))

    assert [(c.id, c.lease_token, c.attempts) for c in claimed] == [
        ("evt_good", "lt_good", 1),
        ("evt_bad", "lt_bad", 4),
    ]
    assert claimed[0].event is not None
    assert claimed[1].event is None
    assert claimed[1].problem
    assert len(problems) == 2


def test_an_answer_that_is_not_a_list_of_events_is_refused() -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_claim(b"<html>proxy</html>")
