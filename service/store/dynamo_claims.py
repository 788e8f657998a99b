"""Leased delivery on DynamoDB: claims, and what a lease's holder (release, extend) or an operator
(redrive) does after. A claim reads only events it can claim now (`claim-index`, by when they
become claimable), over the tenant's shards, taking turns among them; each lease is one
conditional write on the event item."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from service.store import items as codec
from service.store.base import (
    Claim,
    Event,
    ExtendOutcome,
    RedriveOutcome,
    Refusal,
    ReleaseOutcome,
    new_lease_token,
)
from service.store.dynamo_client import Item, Op, query_all, run_all
from service.store.events_table import LIVE, NAMES, EventsTable
from service.store.items import CLAIM_KEY, SK, number, text
from service.store.merge import merge_sorted
from service.store.schema import CLAIM_INDEX

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.type_defs import QueryInputTypeDef

_CLAIMABLE = f"{LIVE} AND #st = :undelivered AND #ck <= :now"
_LEASE = Op(
    NAMES,
    condition=f"{_CLAIMABLE} AND #at < :max",
    update="SET #ls = :until, #ck = :until, #tk = :tok, #at = #at + :one, #av = :zero",
)
_KILL = Op(
    NAMES,
    condition=f"{_CLAIMABLE} AND #at >= :max",
    update="SET #st = :dead, #sp = :sp REMOVE #tk, #ck",
)
_HOLDER = f"{LIVE} AND #st = :undelivered AND #tk = :tok"  # the lease :tok names is current
# Released at once, an event goes back in line where it was made; held back, from when it may go.
_RELEASE = Op(NAMES, condition=_HOLDER, update="SET #ls = :zero, #av = :zero, #ck = #ca REMOVE #tk")
_RELEASE_WITH_ERROR = Op(
    NAMES,
    condition=_HOLDER,
    update="SET #ls = :zero, #av = :zero, #ck = #ca, #er = :err REMOVE #tk",
)
_HOLD_BACK = Op(NAMES, condition=_HOLDER, update="SET #ls = :zero, #av = :av, #ck = :av REMOVE #tk")
_HOLD_BACK_WITH_ERROR = Op(
    NAMES, condition=_HOLDER, update="SET #ls = :zero, #av = :av, #ck = :av, #er = :err REMOVE #tk"
)
_EXTEND = Op(NAMES, condition=_HOLDER, update="SET #ls = :until, #ck = :until")
_REDRIVE = Op(
    NAMES,
    condition=f"{LIVE} AND #st = :dead",
    update="SET #st = :undelivered, #sp = :sp, #at = :zero, #ls = :zero, #av = :zero, #ck = #ca",
)
_CLAIM_SLACK = 5  # extra candidates per query, for events another claim takes meanwhile


async def claim_events(
    table: EventsTable, tenant: str, *, limit: int, lease_until: int, max_attempts: int, now: int
) -> Claim:
    shards = range((await table.shards()).widest(tenant))
    candidates = merge_sorted(
        [_claimable(table, tenant, shard, limit, now) for shard in shards],
        key=lambda item: (int(item[CLAIM_KEY]["N"]), item[SK]["S"]),
    )
    claim = Claim([], [])
    batch: list[Item] = []
    # Candidates go in rounds, each as large as what is still wanted: a claim that loses a
    # candidate to another claim takes the next one.
    async for candidate in candidates:
        batch.append(candidate)
        if len(batch) < limit - len(claim.leased):
            continue
        await _claim_all(table, tenant, batch, claim, lease_until, max_attempts, now)
        batch = []
        if len(claim.leased) >= limit:
            break
    await _claim_all(table, tenant, batch, claim, lease_until, max_attempts, now)
    await _fill_payloads(table, tenant, claim.leased, now)
    claim.leased.sort(key=lambda event: event.id)
    for _ in claim.leased:
        table.counters.lease(tenant, lease_until, +1, now)
    if claim.dead:
        table.counters.count(tenant, undelivered=-len(claim.dead), dead=len(claim.dead))
    return claim


async def count_claimable(table: EventsTable, tenant: str, *, up_to: int, now: int) -> int:
    async def count(shard: int) -> int:
        request = _claimable_request(table, tenant, shard, up_to, now)
        request["Select"] = "COUNT"
        response = await table.db.query(**request)
        return int(response["Count"])

    shards = range((await table.shards()).widest(tenant))
    return min(sum(await run_all(count(shard) for shard in shards)), up_to)


def _claimable_request(
    table: EventsTable, tenant: str, shard: int, limit: int, now: int
) -> QueryInputTypeDef:
    # An undelivered event created before the retention window has expired: skip them all.
    return {
        "TableName": table.name,
        "IndexName": CLAIM_INDEX,
        "KeyConditionExpression": "#pk = :pk AND #ck BETWEEN :floor AND :now",
        "ExpressionAttributeNames": NAMES.of("#pk", "#ck"),
        "ExpressionAttributeValues": {
            ":pk": text(codec.tenant_pk(tenant, shard)),
            ":floor": number(now - table.undelivered_ms),
            ":now": number(now),
        },
        "Limit": limit,
    }


async def _claimable(
    table: EventsTable, tenant: str, shard: int, limit: int, now: int
) -> AsyncIterator[Item]:
    """The shard's events that can be claimed now, the longest available first."""
    request = _claimable_request(table, tenant, shard, limit + _CLAIM_SLACK, now)
    async for item in query_all(table.db, request):
        yield item


async def _claim_all(
    table: EventsTable,
    tenant: str,
    candidates: Sequence[Item],
    claim: Claim,
    lease_until: int,
    max_attempts: int,
    now: int,
) -> None:
    await run_all(
        _claim_one(
            table, tenant, codec.shard_of_pk(item), item, claim, lease_until, max_attempts, now
        )
        for item in candidates
    )


async def _claim_one(
    table: EventsTable,
    tenant: str,
    shard: int,
    candidate: Item,
    claim: Claim,
    lease_until: int,
    max_attempts: int,
    now: int,
) -> None:
    """Lease the candidate, or make it dead when it has had its attempts. One someone else
    changed since the index showed it is left alone (the condition says so)."""
    event_id = candidate[SK]["S"]
    values: dict[str, Any] = {
        ":now": number(now),
        ":undelivered": text("U"),
        ":max": number(max_attempts),
    }
    if int(candidate["at"]["N"]) >= max_attempts:
        values[":dead"] = text("X")
        values[":sp"] = text(codec.status_pk(tenant, shard, "dead"))
        applied, _ = await table.update(tenant, event_id, _KILL, values, "NONE", shard=shard)
        if applied:
            claim.dead.append(event_id)
        return
    token = new_lease_token()
    values.update(
        {
            ":until": number(lease_until),
            ":tok": text(token),
            ":one": number(1),
            ":zero": number(0),
        }
    )
    applied, item = await table.update(tenant, event_id, _LEASE, values, "ALL_NEW", shard=shard)
    if applied and item is not None:
        payload = codec.inline_payload(item)
        claim.leased.append(codec.event_of(item, now, payload or b"", token))


async def _fill_payloads(table: EventsTable, tenant: str, events: list[Event], now: int) -> None:
    """Leased events whose payload has an item of its own get it read in."""
    missing = [i for i, event in enumerate(events) if not event.payload]
    if not missing:
        return
    plan = await table.shards()
    keys = [
        codec.payload_key(tenant, plan.shard_of(tenant, events[i].id), events[i].id)
        for i in missing
    ]
    payloads = await table.batch_get(keys)
    for i in missing:
        event = events[i]
        stored = payloads.get((plan.shard_of(tenant, event.id), event.id + codec.PAYLOAD_SUFFIX))
        events[i] = dataclasses.replace(event, payload=codec.inline_payload(stored or {}) or b"{}")


async def release_event(
    table: EventsTable,
    tenant: str,
    event_id: str,
    *,
    token: str,
    available_at: int,
    error: str | None,
    now: int,
) -> ReleaseOutcome:
    values = {
        ":now": number(now),
        ":undelivered": text("U"),
        ":tok": text(token),
        ":zero": number(0),
    }
    if available_at:
        values[":av"] = number(available_at)
        op = _HOLD_BACK if error is None else _HOLD_BACK_WITH_ERROR
    else:
        op = _RELEASE if error is None else _RELEASE_WITH_ERROR
    if error is not None:
        values[":err"] = text(error)
    applied, old = await table.update(tenant, event_id, op, values, "UPDATED_OLD")
    if not applied:
        return _refusal(old, now)
    if old is not None:
        table.counters.lease(tenant, codec.lease_end(old), -1, now)
    return "released"


async def extend_lease(
    table: EventsTable, tenant: str, event_id: str, *, token: str, lease_until: int, now: int
) -> ExtendOutcome:
    values = {
        ":now": number(now),
        ":undelivered": text("U"),
        ":tok": text(token),
        ":until": number(lease_until),
    }
    applied, old = await table.update(tenant, event_id, _EXTEND, values, "UPDATED_OLD")
    if not applied:
        return _refusal(old, now)
    if old is not None:
        table.counters.lease(tenant, codec.lease_end(old), -1, now)
    table.counters.lease(tenant, lease_until, +1, now)
    return "extended"


async def redrive_events(
    table: EventsTable, tenant: str, event_ids: Sequence[str], *, now: int
) -> dict[str, RedriveOutcome]:
    plan = await table.shards()
    unique = list(dict.fromkeys(event_ids))

    async def redrive(event_id: str) -> RedriveOutcome:
        shard = plan.shard_of(tenant, event_id)
        values = {
            ":now": number(now),
            ":dead": text("X"),
            ":undelivered": text("U"),
            ":sp": text(codec.status_pk(tenant, shard, "undelivered")),
            ":zero": number(0),
        }
        applied, item = await table.update(tenant, event_id, _REDRIVE, values, "NONE", shard=shard)
        if applied:
            table.counters.count(tenant, undelivered=1, dead=-1)
            return "redriven"
        refusal = _refusal(item, now)
        # Not dead but undelivered (the condition's other way to fail): nothing to do.
        return "redriven" if refusal == "lease_lost" else refusal

    outcomes = await run_all(redrive(event_id) for event_id in unique)
    return dict(zip(unique, outcomes, strict=True))


def _refusal(item: Item | None, now: int) -> Refusal:
    """Why a conditional update did not apply, from the item its condition failed on."""
    if item is None or not codec.live(item, now):
        return "not_found"
    return "already_delivered" if codec.status_of(item) == "delivered" else "lease_lost"
