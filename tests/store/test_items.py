"""The event item codec: sizes as DynamoDB counts them, and what goes inline."""

from __future__ import annotations

import os

from service.ids import new_event_id
from service.store import items
from service.store.base import NewEvent

NOW = 1_796_017_256_712
LONGEST = 10**15  # a 16-digit ms time: more digits than any we write


def test_the_fixed_part_of_an_event_item_is_within_its_allowance() -> None:
    tenant = "t" * 63  # the longest tenant name
    event = NewEvent(new_event_id(NOW), LONGEST, b"", LONGEST)
    item, payload = items.new_items(tenant, 255, event, LONGEST)
    fresh = items.item_size(item)
    # What claims and acks add later: a lease token, a lease end, delivered_at.
    item["tk"] = items.text("x" * 22)
    item["dl"] = items.number(LONGEST)
    item["ls"] = items.number(LONGEST)

    assert payload is None
    assert fresh <= items._OVERHEAD + 3 * len(tenant)
    assert items.item_size(item) - fresh <= items.GROWTH


def test_payloads_go_inline_while_the_item_fits_one_write_unit() -> None:
    for size in (0, 500, 700, 2000, 9000):
        payload = b'{"x": "' + os.urandom(size // 2).hex().encode() + b'"}'
        event = NewEvent(new_event_id(NOW), NOW, payload, NOW + 1000)
        item, separate = items.new_items("acme", 0, event, NOW + 2000)
        if separate is None:
            assert items.item_size(item) + items.GROWTH <= items.ITEM_LIMIT
            assert items.inline_payload(item) == payload
        else:
            assert items.inline_payload(separate) == payload
            assert items.item_size(item) < 512


def test_sizes_follow_dynamodbs_rules() -> None:
    assert items.value_size(items.text("héllo")) == 6
    assert items.value_size({"B": b"abc"}) == 3
    assert items.number_size("100") == 2
    assert items.number_size("12345") == 4
    assert items.item_size({"ab": items.text("cd"), "n": items.number(7)}) == 2 + 2 + 1 + 2
