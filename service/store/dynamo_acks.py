"""Acknowledging and deleting events on DynamoDB: the two ways an event leaves its undelivered or
dead count for good, each one conditional write on the event item."""

from __future__ import annotations

from collections.abc import Sequence

from service.store import items as codec
from service.store.dynamo_client import Item, Op, run_all
from service.store.events_table import DAY, LIVE, NAMES, EventsTable
from service.store.items import number, text

_ACK = Op(
    NAMES,
    condition=f"{LIVE} AND #st <> :delivered",
    update="SET #st = :delivered, #sp = :sp, #dl = :now, #ex = :exp, #ttl = :ttl, #ls = :zero,"
    " #av = :zero REMOVE #tk, #ck",
)
# A deleted event becomes a tombstone for a day (`items.py` says why).
_DELETE = Op(
    NAMES,
    condition=LIVE,
    update="SET #st = :gone, #ex = :now, #ttl = :ttl REMOVE #sp, #ck, #tk, #pl, #at, #ls, #av,"
    " #er, #dl",
)


async def ack_events(
    table: EventsTable, tenant: str, event_ids: Sequence[str], *, now: int, expires_at: int
) -> set[str]:
    plan = await table.shards()
    unique = list(dict.fromkeys(event_ids))

    async def ack(event_id: str) -> bool:
        shard = plan.shard_of(tenant, event_id)
        values = {
            ":now": number(now),
            ":delivered": text("D"),
            ":sp": text(codec.status_pk(tenant, shard, "delivered")),
            ":exp": number(expires_at),
            ":ttl": number(codec.seconds(expires_at)),
            ":zero": number(0),
        }
        applied, item = await table.update(
            tenant, event_id, _ACK, values, "UPDATED_OLD", shard=shard
        )
        if applied and item is not None:
            _count_end(table, tenant, item, now)
            return True
        # Delivered already: ack is idempotent.
        return item is not None and codec.live(item, now) and codec.status_of(item) == "delivered"

    outcomes = await run_all(ack(event_id) for event_id in unique)
    return {event_id for event_id, found in zip(unique, outcomes, strict=True) if found}


def _count_end(table: EventsTable, tenant: str, old: Item, now: int) -> None:
    """Count an event leaving the undelivered or dead ones, ending any lease it held."""
    status = codec.status_of(old)
    if status == "undelivered":
        table.counters.count(tenant, undelivered=-1)
        table.counters.lease(tenant, codec.lease_end(old), -1, now)
    elif status == "dead":
        table.counters.count(tenant, dead=-1)


async def delete_event(table: EventsTable, tenant: str, event_id: str, *, now: int) -> bool:
    shard = (await table.shards()).shard_of(tenant, event_id)
    values = {
        ":now": number(now),
        ":gone": text(codec.GONE),
        ":ttl": number(codec.seconds(now + DAY)),
    }
    applied, old = await table.update(tenant, event_id, _DELETE, values, "ALL_OLD", shard=shard)
    if not applied or old is None:
        return False
    _count_end(table, tenant, old, now)
    if "px" in old:
        await table.db.delete_item(
            TableName=table.name, Key=codec.payload_key(tenant, shard, event_id)
        )
    return True
