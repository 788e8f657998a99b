"""What each operation costs in DynamoDB write units, as docs/DESIGN-NOTES.md accounts for it
("Write units per event"), measured by the metered test server (tests/moto_server.py --meter),
and one tenant's write budget growing with its shards (--partition-wcu)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from service.ids import new_event_id
from service.store import items
from service.store.base import Event, NewEvent, StoreUnavailable
from service.store.dynamodb import DynamoStore
from tests.conftest import create_dynamo_tables, moto_server

DAY = 86_400_000


@pytest.fixture(scope="module")
def metered() -> Iterator[str]:
    with moto_server("--meter") as endpoint:
        yield endpoint


@pytest.fixture
async def store(metered: str) -> AsyncIterator[DynamoStore]:
    events_table, keys_table = await create_dynamo_tables(metered)
    async with DynamoStore(
        events_table=events_table, keys_table=keys_table, endpoint_url=metered
    ) as store:
        await store.get_event("acme", new_event_id(0), now=0)  # the shard plan, read once
        yield store


def billed(endpoint: str, table: str) -> int:
    """Write units billed to the table and its indexes since the last call."""
    counts = httpx.post(f"{endpoint}/_meter/reset").json()
    entry = counts["tables"].get(table)
    if entry is None:
        return 0
    return int(entry["wcu"]) + sum(int(index["wcu"]) for index in entry["indexes"].values())


async def claim_one(store: DynamoStore, now: int, max_attempts: int = 10) -> Event:
    [leased] = (
        await store.claim_events(
            "acme", limit=1, lease_until=now + 60_000, max_attempts=max_attempts, now=now
        )
    ).leased
    return leased


def event(payload: bytes) -> NewEvent:
    now = int(time.time() * 1000)
    return NewEvent(new_event_id(now), now, payload, now + 30 * DAY)


async def test_an_event_that_fits_its_item_costs_ten_units_from_create_to_ack(
    store: DynamoStore, metered: str
) -> None:
    created = event(json.dumps({"note": "x" * 700}).encode())
    now = created.created_at
    billed(metered, store._events)

    await store.insert_events("acme", [created], idempotency=None, now=now)
    create = billed(metered, store._events)
    [leased] = (
        await store.claim_events(
            "acme", limit=1, lease_until=now + 60_000, max_attempts=10, now=now
        )
    ).leased
    claim = billed(metered, store._events)
    await store.ack_events("acme", [leased.id], now=now, expires_at=now + DAY)
    ack = billed(metered, store._events)

    # Create: the item, and its entries in both indexes. Claim: the item, and its claim-index
    # entry moved (a delete and a put). Ack: the item, the claim-index entry removed, and the
    # status-index entry moved from undelivered to delivered.
    assert (create, claim, ack) == (3, 3, 4)


async def test_a_big_payload_is_billed_once_and_never_again(
    store: DynamoStore, metered: str
) -> None:
    created = event(json.dumps({"blob": os.urandom(5000).hex()}).encode())  # 10 KB
    now = created.created_at
    billed(metered, store._events)

    await store.insert_events("acme", [created], idempotency=None, now=now)
    create = billed(metered, store._events)
    [leased] = (
        await store.claim_events(
            "acme", limit=1, lease_until=now + 60_000, max_attempts=10, now=now
        )
    ).leased
    claim = billed(metered, store._events)
    await store.ack_events("acme", [leased.id], now=now, expires_at=now + DAY)
    ack = billed(metered, store._events)

    # The payload item once, at its size (compressed); then billed as a small event.
    stored = await store._db.get_item(
        TableName=store._events, Key=items.payload_key("acme", 0, created.id)
    )
    assert create == -(-items.item_size(stored["Item"]) // 1024) + 3
    assert (claim, ack) == (3, 4)


async def test_release_and_redrive_cost_an_item_write_and_an_index_move(
    store: DynamoStore, metered: str
) -> None:
    created = event(b'{"n": 1}')
    now = created.created_at
    await store.insert_events("acme", [created], idempotency=None, now=now)
    leased = await claim_one(store, now, max_attempts=1)
    assert leased.lease_token is not None
    billed(metered, store._events)

    await store.release_event(
        "acme", created.id, token=leased.lease_token, available_at=0, error=None, now=now
    )
    release = billed(metered, store._events)
    found = await store.claim_events(
        "acme", limit=1, lease_until=now + 60_000, max_attempts=1, now=now
    )
    die = billed(metered, store._events)
    await store.redrive_events("acme", [created.id], now=now)
    redrive = billed(metered, store._events)

    assert found.dead == [created.id]
    assert release == 3  # the item; its claim-index entry moved back to when it was made
    assert die == 4  # the item; the claim-index entry removed; the status-index entry moved
    assert redrive == 4  # the item; back in the claim index; the status-index entry moved


async def test_a_tenants_write_budget_grows_with_its_shards(moto_endpoint: str) -> None:
    # A tiny per-partition budget: 25 write units a second for each key value.
    with moto_server("--partition-wcu", "25") as limited:
        stored = {}
        for shards in (1, 8):
            events_table, keys_table = await create_dynamo_tables(limited)
            async with DynamoStore(
                events_table=events_table,
                keys_table=keys_table,
                endpoint_url=limited,
                shards=shards,
            ) as store:
                stored[shards] = 0
                for _ in range(6):  # six batches of ten right away: 120 units for the table
                    batch = [event(b'{"n": 1}') for _ in range(10)]
                    try:
                        await store.insert_events(
                            "acme", batch, idempotency=None, now=batch[0].created_at
                        )
                        stored[shards] += len(batch)
                    except StoreUnavailable:
                        pass
        # One partition takes its burst and then throttles; eight share the load.
        assert stored[1] <= 30
        assert stored[8] == 60
