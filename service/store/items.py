"""The DynamoDB items of the events table: keys, and events to items and back.

An event item holds the event's state; its payload, compressed, rides along when the whole item
stays under 1 KB (one write unit per update), and otherwise lives in a payload item of its own,
written once and never updated, so claims and acks are billed for the small state item only.

  event item  pk = T#<tenant>#<shard>  sk = <event id>
    st  status: U undelivered, D delivered, X dead, - deleted (a tombstone, below)
    ca  created_at      at  attempts
    ls  lease end, ms (0: none)   tk  the lease's token
    av  available_at    er  last error                dl  delivered_at
    ex  expiry, ms (reads treat an item past it as absent; `ttl` lets DynamoDB delete it)
    ck  claim-index key: when it can next be claimed, ms (only while undelivered)
    sp  status-index key: T#<tenant>#<shard>#<st>
    pl  payload (compressed), or  px  its payload item's digest (the payload is elsewhere)
  payload item  pk = (same)  sk = <event id>#p   pl, ttl
  tombstone   a deleted event's item, kept a day with st "-": a retried create that finds it
              knows its event was stored (and deleted since), and does not bring it back.

"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping
from typing import Any

from service.store import schema
from service.store.base import Event, NewEvent, Status

Item = Mapping[str, Any]
AttributeValue = dict[str, Any]

PK = schema.EVENTS.partition_key
SK = schema.EVENTS.sort_key
CLAIM_KEY = schema.EVENTS.index(schema.CLAIM_INDEX).sort_key
STATUS_KEY = schema.EVENTS.index(schema.STATUS_INDEX).partition_key
TTL = schema.TTL_ATTRIBUTE

STATUS_CODES: dict[Status, str] = {"undelivered": "U", "delivered": "D", "dead": "X"}
STATUSES: dict[str, Status] = {code: status for status, code in STATUS_CODES.items()}
GONE = "-"  # a tombstone's status
PAYLOAD_SUFFIX = "#p"
ITEM_LIMIT = 1024  # an item at most this big costs one write unit per update
# Room kept in an inline item for what claims and acks add later (a lease token, delivered_at).
GROWTH = 48
_RAW, _ZLIB = b"r", b"z"
# An event item's size without its payload and tenant name is at most this (ids, numbers of
# 13 digits and the attribute names); tests/store/test_items.py checks it.
_OVERHEAD = 200


def number(value: int) -> AttributeValue:
    return {"N": str(value)}


def text(value: str) -> AttributeValue:
    return {"S": value}


def seconds(ms: int) -> int:
    """TTL is in whole seconds; rounding up never deletes an item before `ex`."""
    return -(-ms // 1000)


def tenant_pk(tenant: str, shard: int) -> str:
    return f"T#{tenant}#{shard}"


def status_pk(tenant: str, shard: int, status: Status) -> str:
    return f"T#{tenant}#{shard}#{STATUS_CODES[status]}"


def event_key(tenant: str, shard: int, event_id: str) -> dict[str, AttributeValue]:
    return {PK: text(tenant_pk(tenant, shard)), SK: text(event_id)}


def payload_key(tenant: str, shard: int, event_id: str) -> dict[str, AttributeValue]:
    return {PK: text(tenant_pk(tenant, shard)), SK: text(event_id + PAYLOAD_SUFFIX)}


def compress(payload: bytes) -> bytes:
    packed = zlib.compress(payload, 6)
    return _ZLIB + packed if len(packed) < len(payload) else _RAW + payload


def decompress(stored: bytes) -> bytes:
    return zlib.decompress(stored[1:]) if stored[:1] == _ZLIB else stored[1:]


def new_items(
    tenant: str, shard: int, event: NewEvent, payload_expires_at: int
) -> tuple[dict[str, AttributeValue], dict[str, AttributeValue] | None]:
    """The event item of a new event, and its payload item when the payload does not fit in.

    The payload item outlives any expiry its event can get (`payload_expires_at`: created, plus
    the undelivered and the delivered retention), so it is never updated."""
    pk = text(tenant_pk(tenant, shard))
    # A payload that fits as it is is not compressed: that costs CPU for no write unit saved.
    small = len(event.payload) + _OVERHEAD + 3 * len(tenant.encode()) <= ITEM_LIMIT - GROWTH
    packed = _RAW + event.payload if small else compress(event.payload)
    item: dict[str, AttributeValue] = {
        PK: pk,
        SK: text(event.id),
        "st": text("U"),
        "ca": number(event.created_at),
        "at": number(0),
        "ls": number(0),
        "av": number(0),
        "ex": number(event.expires_at),
        TTL: number(seconds(event.expires_at)),
        CLAIM_KEY: number(event.created_at),
        STATUS_KEY: text(status_pk(tenant, shard, "undelivered")),
        "pl": {"B": packed},
    }
    if small or item_size(item) + GROWTH <= ITEM_LIMIT:
        return item, None
    del item["pl"]
    item["px"] = {"B": hashlib.sha256(event.payload).digest()[:16]}
    payload = {
        PK: pk,
        SK: text(event.id + PAYLOAD_SUFFIX),
        "pl": {"B": packed},
        TTL: number(seconds(payload_expires_at)),
    }
    return item, payload


def is_own(found: Item | None, written: Item) -> bool:
    """Whether an item a create found under its key is the one it wrote (an earlier attempt's
    write landed but its answer was lost) or that item since deleted, rather than another."""
    if found is None:
        return False
    if found.get("st") == text(GONE):
        return True
    mine = written.get("pl") or written.get("px")
    return bool(found.get("pl", found.get("px")) == mine)


def live(item: Item, now: int) -> bool:
    return int(item["ex"]["N"]) > now and item["st"]["S"] != GONE


def status_of(item: Item) -> Status:
    return STATUSES[item["st"]["S"]]


def shard_of_pk(item: Item) -> int:
    return int(item[PK]["S"].rsplit("#", 1)[1])


def lease_end(old: Item) -> int:
    """The lease end an update replaced (absent from UPDATED_OLD when it did not change)."""
    return int(old.get("ls", {"N": "0"})["N"])


def event_of(item: Item, now: int, payload: bytes, token: str | None = None) -> Event:
    lease = int(item["ls"]["N"])
    available_at = int(item["av"]["N"])
    status = status_of(item)
    delivered_at = item.get("dl")
    last_error = item.get("er")
    undelivered = status == "undelivered"
    event_id = item[SK]["S"]
    return Event(
        id=event_id,
        created_at=int(item["ca"]["N"]),
        status=status,
        payload=payload,
        delivered_at=None if delivered_at is None else int(delivered_at["N"]),
        attempts=int(item["at"]["N"]),
        lease_expires_at=lease if lease > now and undelivered else None,
        available_at=available_at if available_at > now and undelivered else None,
        last_error=None if last_error is None else last_error["S"],
        lease_token=token,
    )


def inline_payload(item: Item) -> bytes | None:
    """The payload, when the event item holds it."""
    stored = item.get("pl")
    return None if stored is None else decompress(stored["B"])


# -- sizes, as DynamoDB counts them for billing ------------------------------------------------


def item_size(item: Item) -> int:
    """An item's size in bytes: each attribute's name plus its value (DynamoDB's rules)."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def value_size(value: AttributeValue) -> int:
    ((kind, content),) = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "B":
        return len(content)
    if kind == "N":
        return number_size(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in content)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in content.items())
    if kind == "SS":
        return sum(len(s.encode()) for s in content)
    if kind == "NS":
        return sum(number_size(n) for n in content)
    return sum(len(b) for b in content)  # BS


def number_size(text: str) -> int:
    """About half a byte per significant digit, plus one."""
    digits = text.lstrip("-").replace(".", "").split("e")[0].split("E")[0].strip("0")
    return (len(digits) + 1) // 2 + 1
