"""DynamoDB's billing rules for writes: item sizes, write units, and the index writes an item change
causes, as pure functions over items in DynamoDB's JSON form (`{"S": "…"}`, `{"N": "…"}`, …).

`moto_meter` applies them to the requests the test server serves; docs/DESIGN-NOTES.md ("Write
units: how we count them") states the rules in prose, with the choices made where AWS is vague.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Attributes = Mapping[str, Any]  # an item, or part of one: name -> {"type": value}

WRITE_UNIT = 1024  # bytes per write unit


def write_units(size: int) -> int:
    """Units one write of `size` bytes costs: one per KiB started, at least one."""
    return max(1, -(-size // WRITE_UNIT))


def number_size(text: str) -> int:
    """Bytes of a number: one per pair of significant digits, the pairs aligned on the decimal
    point (a base-100 mantissa), plus one byte of exponent and one more when negative; zero is
    one byte. Leading and trailing zeros do not count. ("123" is 3 bytes, "100" 2, "1.5" 3,
    "0.05" 2, "-7" 3.)"""
    value = Decimal(text)
    if value.is_zero():
        return 1
    sign, digits, exponent = value.as_tuple()  # exact, without leading zeros
    assert isinstance(exponent, int)
    while digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    lowest, highest = exponent, exponent + len(digits) - 1  # powers of ten of the end digits
    pairs = highest // 2 - lowest // 2 + 1
    return pairs + 1 + sign


def _binary(data: bytes | str) -> bytes:
    # moto keeps what the client sent as bytes; a value off the wire is base64 text
    return data if isinstance(data, bytes) else base64.b64decode(data)


def value_size(value: Attributes) -> int:
    """Bytes of one attribute value (without its name)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return number_size(data)
    if kind == "B":
        return len(_binary(data))
    if kind == "SS":
        return sum(len(element.encode()) for element in data)
    if kind == "NS":
        return sum(number_size(element) for element in data)
    if kind == "BS":
        return sum(len(_binary(element)) for element in data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in data)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_size(v) for name, v in data.items())
    raise ValueError(f"not a DynamoDB attribute value: {value!r}")


def item_size(item: Attributes | None) -> int:
    """Bytes of an item: each attribute's name (UTF-8) plus its value. No item is 0 bytes."""
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def key_text(value: Attributes) -> str:
    """A key attribute's value as text: what the meter and the partition buckets are keyed by."""
    ((kind, data),) = value.items()
    return base64.b64encode(data).decode() if kind == "B" and isinstance(data, bytes) else str(data)


@dataclass(frozen=True, slots=True)
class IndexSchema:
    """A global secondary index: its key and what it projects (KEYS_ONLY, INCLUDE or ALL)."""

    name: str
    hash_key: str
    range_key: str | None
    projection: str
    included: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class TableSchema:
    name: str
    hash_key: str
    range_key: str | None
    indexes: tuple[IndexSchema, ...] = ()

    def entry(self, index: IndexSchema, item: Attributes | None) -> dict[str, Any] | None:
        """The item's entry in `index`, or None when the item lacks an index key attribute."""
        if item is None or any(
            name is not None and name not in item for name in (index.hash_key, index.range_key)
        ):
            return None
        if index.projection == "ALL":
            return dict(item)
        keys = {self.hash_key, self.range_key, index.hash_key, index.range_key}
        return {
            name: value for name, value in item.items() if name in keys or name in index.included
        }


@dataclass(frozen=True, slots=True)
class Charge:
    """One write DynamoDB bills: of an item (`index` None) or of an entry of one index."""

    table: str
    index: str | None
    partition: str  # the partition key value the write lands in, as text
    units: int

    @property
    def bucket(self) -> tuple[str, str | None, str]:
        return self.table, self.index, self.partition


def item_write(
    table: TableSchema,
    key: Attributes,
    before: Attributes | None,
    after: Attributes | None,
    *,
    factor: int = 1,
) -> list[Charge]:
    """A write that applied: the item billed by the larger of its sizes before and after (a
    delete of nothing costs 1), times `factor` (2 in a transaction); then every index entry the
    change put, deleted or rewrote, each billed once by its own size."""
    units = write_units(max(item_size(before), item_size(after)))
    charges = [Charge(table.name, None, key_text(key[table.hash_key]), factor * units)]
    for index in table.indexes:
        charges += _entry_writes(table, index, before, after)
    return charges


def condition_only(
    table: TableSchema, key: Attributes, existing: Attributes | None, *, factor: int = 1
) -> list[Charge]:
    """A write that changed nothing (its condition failed, or a transaction's ConditionCheck):
    the existing item's size, at least 1 unit, times `factor`; no index writes."""
    units = factor * write_units(item_size(existing))
    return [Charge(table.name, None, key_text(key[table.hash_key]), units)]


def _entry_writes(
    table: TableSchema, index: IndexSchema, before: Attributes | None, after: Attributes | None
) -> list[Charge]:
    old, new = table.entry(index, before), table.entry(index, after)
    if old == new:
        return []

    def charge(entry: Attributes, size: int) -> Charge:
        return Charge(table.name, index.name, key_text(entry[index.hash_key]), write_units(size))

    if old is None or new is None:  # the item enters the index, or leaves it
        entry = new if old is None else old
        assert entry is not None
        return [charge(entry, item_size(entry))]
    index_keys = [name for name in (index.hash_key, index.range_key) if name is not None]
    if any(old[name] != new[name] for name in index_keys):  # a delete, then a put
        return [charge(old, item_size(old)), charge(new, item_size(new))]
    return [charge(new, max(item_size(old), item_size(new)))]  # the entry rewritten in place
