"""The backlog on DynamoDB (`GET /v1/stats`): the counts from `counters.py`, the oldest
undelivered event from `status-index`, and the sweep that deletes expired events and counts them
out (DynamoDB TTL would delete them later, counting nothing)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from service.ids import first_id_at
from service.store import items as codec
from service.store.base import Backlog, Event, Status
from service.store.dynamo_client import Item, Op, query_all, run_all
from service.store.dynamo_reads import events_of, ids_by_status
from service.store.events_table import NAMES, EventsTable
from service.store.items import SK, number, text
from service.store.schema import STATUS_INDEX

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.type_defs import QueryInputTypeDef

_EXPIRED = Op(NAMES, condition="attribute_exists(#pk) AND #ex <= :now")


async def backlog(table: EventsTable, tenant: str, *, now: int) -> Backlog:
    counted, oldest = await asyncio.gather(
        table.counters.read(tenant, now), _oldest_undelivered(table, tenant, now)
    )
    return dataclasses.replace(counted, oldest_undelivered_at=oldest)


async def _oldest_undelivered(table: EventsTable, tenant: str, now: int) -> int | None:
    """The oldest undelivered event's creation time: the first of each shard's status
    partition, checked against the table (the index lags it)."""
    shards = range((await table.shards()).widest(tenant))
    start = first_id_at(now - table.undelivered_ms)

    async def first(shard: int) -> Event | None:
        ids = ids_by_status(table, tenant, shard, "undelivered", start, 0)
        async for event in events_of(table, tenant, ids, "undelivered", 1, now):
            return event
        return None

    firsts = [event for event in await run_all(first(s) for s in shards) if event]
    return min(firsts, key=lambda event: event.id).created_at if firsts else None


async def sweep_expired(table: EventsTable, tenant: str, *, now: int) -> int:
    """Events created before the undelivered retention window are past their expiry: delete
    them (DynamoDB TTL would, later, without counting them out)."""
    shards = range((await table.shards()).widest(tenant))
    before = first_id_at(now - table.undelivered_ms)

    async def sweep(shard: int, status: Status) -> int:
        request: QueryInputTypeDef = {
            "TableName": table.name,
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": "#sp = :sp AND #sk < :before",
            "ExpressionAttributeNames": NAMES.of("#sp", "#sk"),
            "ExpressionAttributeValues": {
                ":sp": text(codec.status_pk(tenant, shard, status)),
                ":before": text(before),
            },
        }
        swept = 0
        async for item in query_all(table.db, request):
            if await _delete_expired(table, tenant, shard, item[SK]["S"], now):
                swept += 1
        return swept

    counts = await run_all(
        sweep(shard, status) for shard in shards for status in ("undelivered", "dead")
    )
    return sum(counts)


async def _delete_expired(
    table: EventsTable, tenant: str, shard: int, event_id: str, now: int
) -> bool:
    try:
        response = await table.db.delete_item(
            TableName=table.name,
            Key=codec.event_key(tenant, shard, event_id),
            ConditionExpression=_EXPIRED.condition,
            ExpressionAttributeNames=_EXPIRED.names,
            ExpressionAttributeValues={":now": number(now)},
            ReturnValues="ALL_OLD",
        )
    except table.db.exceptions.ConditionalCheckFailedException:
        return False
    old: Item | None = response.get("Attributes")
    if not old:
        return False
    status = codec.status_of(old)
    table.counters.count(
        tenant,
        undelivered=-(status == "undelivered"),
        dead=-(status == "dead"),
    )
    if "px" in old:
        await table.db.delete_item(
            TableName=table.name, Key=codec.payload_key(tenant, shard, event_id)
        )
    return True
