"""Reading events on DynamoDB: one event by id, and listings over a tenant's shards. A listing
without a status reads the table, newest first; with one, it reads ids from `status-index` and
the events from the table (the index lags it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from service.ids import first_id_at
from service.store import items as codec
from service.store.base import Event, Status
from service.store.dynamo_client import query_all
from service.store.events_table import BATCH_GET, NAMES, EventsTable
from service.store.items import SK, text
from service.store.merge import merge_sorted
from service.store.schema import STATUS_INDEX

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.type_defs import QueryInputTypeDef


async def get_event(table: EventsTable, tenant: str, event_id: str, *, now: int) -> Event | None:
    shard = (await table.shards()).shard_of(tenant, event_id)
    response = await table.db.query(
        TableName=table.name,
        KeyConditionExpression="#pk = :pk AND begins_with(#sk, :id)",
        ExpressionAttributeNames=NAMES.of("#pk", "#sk"),
        ExpressionAttributeValues={
            ":pk": text(codec.tenant_pk(tenant, shard)),
            ":id": text(event_id),
        },
        ConsistentRead=True,
    )
    found = {item[SK]["S"]: item for item in response["Items"]}
    item = found.get(event_id)
    if item is None or not codec.live(item, now):
        return None
    payload = codec.inline_payload(item)
    if payload is None:
        payload = codec.inline_payload(found.get(event_id + codec.PAYLOAD_SUFFIX, {})) or b"{}"
    return codec.event_of(item, now, payload)


async def list_events(
    table: EventsTable,
    tenant: str,
    *,
    status: Status | None,
    limit: int,
    after: str | None,
    now: int,
) -> tuple[list[Event], bool]:
    shards = range((await table.shards()).widest(tenant))
    found: list[Event] = []
    if status is None:
        streams = [_newest_first(table, tenant, shard, after, limit, now) for shard in shards]
        async for event in merge_sorted(streams, key=lambda e: e.id, reverse=True):
            found.append(event)
            if len(found) > limit:
                break
    else:
        floor = now - table.undelivered_ms
        if status == "delivered":
            floor -= table.delivered_ms
        start = max(after or "", first_id_at(floor))
        ids = merge_sorted(
            [ids_by_status(table, tenant, shard, status, start, limit) for shard in shards],
            key=lambda key: key[1],
        )
        async for event in events_of(table, tenant, ids, status, limit + 1, now):
            found.append(event)
    return found[:limit], len(found) > limit


async def _newest_first(
    table: EventsTable, tenant: str, shard: int, before: str | None, limit: int, now: int
) -> AsyncIterator[Event]:
    """The shard's events, newest first: an event item comes after its payload item."""
    values = {":pk": text(codec.tenant_pk(tenant, shard))}
    condition = "#pk = :pk"
    if before is not None:
        condition += " AND #sk < :before"
        values[":before"] = text(before)
    request: QueryInputTypeDef = {
        "TableName": table.name,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": NAMES.of(condition),
        "ExpressionAttributeValues": values,
        "ScanIndexForward": False,
        "ConsistentRead": True,
        "Limit": 2 * (limit + 1),
    }
    payloads: dict[str, bytes] = {}
    async for item in query_all(table.db, request):
        sort_key = item[SK]["S"]
        if sort_key.endswith(codec.PAYLOAD_SUFFIX):
            payloads[sort_key.removesuffix(codec.PAYLOAD_SUFFIX)] = (
                codec.inline_payload(item) or b"{}"
            )
            continue
        if not codec.live(item, now):
            continue
        payload = codec.inline_payload(item) or payloads.pop(sort_key, b"{}")
        yield codec.event_of(item, now, payload)


async def ids_by_status(
    table: EventsTable, tenant: str, shard: int, status: Status, after: str, limit: int
) -> AsyncIterator[tuple[int, str]]:
    request: QueryInputTypeDef = {
        "TableName": table.name,
        "IndexName": STATUS_INDEX,
        "KeyConditionExpression": "#sp = :sp AND #sk > :after",
        "ExpressionAttributeNames": NAMES.of("#sp", "#sk"),
        "ExpressionAttributeValues": {
            ":sp": text(codec.status_pk(tenant, shard, status)),
            ":after": text(after),
        },
        "Limit": limit + 1,
    }
    async for item in query_all(table.db, request):
        yield shard, item[SK]["S"]


async def events_of(
    table: EventsTable,
    tenant: str,
    keys: AsyncIterator[tuple[int, str]],
    status: Status,
    wanted: int,
    now: int,
) -> AsyncIterator[Event]:
    """The events the (shard, id) keys name, read from the table (an index lags it), in
    order, skipping any whose status has changed since, until `wanted` are found."""
    found = 0
    chunk: list[tuple[int, str]] = []
    async for key in keys:
        chunk.append(key)
        if len(chunk) < min(wanted - found, BATCH_GET):
            continue
        for event in await _read_events(table, tenant, chunk, now):
            if event.status == status:
                found += 1
                yield event
        chunk = []
        if found >= wanted:
            return
    for event in await _read_events(table, tenant, chunk, now):
        if event.status == status:
            yield event


async def _read_events(
    table: EventsTable, tenant: str, keys: Sequence[tuple[int, str]], now: int
) -> list[Event]:
    """The live events of `keys`, in their order, with their payloads."""
    items = await table.batch_get([codec.event_key(tenant, s, i) for s, i in keys])
    wanted = [items[k] for k in keys if k in items and codec.live(items[k], now)]
    external = [
        codec.payload_key(tenant, shard, event_id)
        for shard, event_id in keys
        if (shard, event_id) in items and "px" in items[(shard, event_id)]
    ]
    payloads = await table.batch_get(external) if external else {}
    events = []
    for item in wanted:
        key = codec.shard_of_pk(item), item[SK]["S"]
        payload = codec.inline_payload(item)
        if payload is None:
            stored = payloads.get((key[0], key[1] + codec.PAYLOAD_SUFFIX))
            payload = codec.inline_payload(stored or {}) or b"{}"
        events.append(codec.event_of(item, now, payload))
    return events
