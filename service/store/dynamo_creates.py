"""Creating events on DynamoDB: single creates through the coalescer, the rest (batches, creates
with an Idempotency-Key) as one `TransactWriteItems` each, with the idempotency record."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from service.store import items as codec
from service.store.base import DuplicateEventId, IdempotencyRecord, NewEvent, StoreUnavailable
from service.store.dynamo_client import Item, Op
from service.store.events_table import NAMES, EventsTable
from service.store.items import PK, SK, TTL, number, text

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef

    from service.store.coalescer import Coalescer

_CREATE = Op(NAMES, condition="attribute_not_exists(#pk)")
_CREATE_RECORD = Op(NAMES, condition="attribute_not_exists(#pk) OR #ex <= :now")
_MAX_TRANSACTION = 100
_TRANSACTION_ATTEMPTS = 4


async def insert_events(
    table: EventsTable,
    coalescer: Coalescer,
    tenant: str,
    events: Sequence[NewEvent],
    *,
    idempotency: IdempotencyRecord | None,
    now: int,
) -> IdempotencyRecord | None:
    if len(events) + 1 > _MAX_TRANSACTION:
        raise ValueError(f"at most {_MAX_TRANSACTION - 1} events per insert")
    plan = await table.shards(creating=True)
    written = [
        codec.new_items(
            tenant,
            plan.shard_of(tenant, event.id),
            event,
            event.expires_at + table.delivered_ms,
        )
        for event in events
    ]
    if idempotency is None and len(events) == 1:
        await coalescer.create(*written[0])
        existing = None
    else:
        await coalescer.put_blind([p for _, p in written if p is not None])
        existing = await _create_atomically(
            table, tenant, [item for item, _ in written], idempotency, now
        )
    if existing is None:
        table.counters.count(tenant, undelivered=len(events))
    return existing


async def _create_atomically(
    table: EventsTable,
    tenant: str,
    event_items: Sequence[Item],
    record: IdempotencyRecord | None,
    now: int,
) -> IdempotencyRecord | None:
    actions: list[TransactWriteItemTypeDef] = [
        {
            "Put": {
                "TableName": table.name,
                "Item": cast("Any", item),
                "ConditionExpression": _CREATE.condition,
                "ExpressionAttributeNames": _CREATE.names,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        for item in event_items
    ]
    if record is not None:
        actions.append(
            {
                "Put": {
                    "TableName": table.name,
                    "Item": _record_item(tenant, record),
                    "ConditionExpression": _CREATE_RECORD.condition,
                    "ExpressionAttributeNames": _CREATE_RECORD.names,
                    "ExpressionAttributeValues": {":now": number(now)},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        )
    ids = [item[SK]["S"] for item in event_items]
    for attempt in range(_TRANSACTION_ATTEMPTS):
        try:
            await table.db.transact_write_items(
                TransactItems=actions, ClientRequestToken=_request_token(ids, attempt)
            )
            return None
        except table.db.exceptions.TransactionCanceledException as error:
            reasons = cast("list[dict[str, Any]]", error.response.get("CancellationReasons", []))
        outcome = _cancellation_outcome(event_items, record, reasons)
        if outcome is not _RETRY:
            return cast("IdempotencyRecord | None", outcome)
        await asyncio.sleep(random.uniform(0, 0.02 * 2**attempt))
    raise StoreUnavailable("DynamoDB kept cancelling the write; try again")


def _record_key(tenant: str, key: str) -> str:
    return f"I#{tenant}#{hashlib.sha256(key.encode()).hexdigest()}"


def _record_item(tenant: str, record: IdempotencyRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        PK: text(_record_key(tenant, record.key)),
        SK: text("I"),
        "key": text(record.key),
        "body_hash": text(record.body_hash),
        "http_status": number(record.status),
        "response": {"B": record.response},
        "ex": number(record.expires_at),
        TTL: number(codec.seconds(record.expires_at)),
    }
    if record.location is not None:
        item["location"] = text(record.location)
    return item


def _record(item: Item) -> IdempotencyRecord:
    return IdempotencyRecord(
        key=item["key"]["S"],
        body_hash=item["body_hash"]["S"],
        status=int(item["http_status"]["N"]),
        response=item["response"]["B"],
        expires_at=int(item["ex"]["N"]),
        location=item["location"]["S"] if "location" in item else None,
    )


def _request_token(ids: Sequence[str], attempt: int) -> str:
    """Same transaction, same token: DynamoDB then applies a write botocore retries only once.
    Our own retries of a cancelled transaction get a fresh one."""
    return hashlib.sha256(f"{'|'.join(ids)}#{attempt}".encode()).hexdigest()[:36]


_RETRY = object()


def _cancellation_outcome(
    event_items: Sequence[Item],
    record: IdempotencyRecord | None,
    reasons: Sequence[Mapping[str, Any]],
) -> IdempotencyRecord | object | None:
    """What a cancelled insert means: a record already held (returned), a duplicate id (raised),
    our own earlier attempt having committed (None), or a transient conflict (retry)."""
    codes = [reason.get("Code") for reason in reasons]
    if record is not None and codes[len(event_items) :] == ["ConditionalCheckFailed"]:
        held = reasons[len(event_items)].get("Item")
        if held is None:
            return _RETRY  # no copy of what failed the check: look again
        # Even our own record from a retried write: the caller replays its response then.
        return _record(held)
    conflicts = [
        (item, reason.get("Item"))
        for item, reason in zip(event_items, reasons, strict=False)
        if reason.get("Code") == "ConditionalCheckFailed"
    ]
    for item, found in conflicts:
        if not codec.is_own(found, item):
            raise DuplicateEventId(item[SK]["S"])
    if conflicts:
        return None
    if "TransactionConflict" in codes:
        return _RETRY
    raise StoreUnavailable("DynamoDB cancelled the write; try again")
