"""The DynamoDB layout's own promises: big payloads in items of their own, shards that can grow
without hiding an event, and single creates coalesced into batch writes that a lost answer never
turns into a reset or a resurrection. Against moto's server over HTTP."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import aioboto3
import pytest

from service.ids import new_event_id
from service.settings import Settings
from service.store import items
from service.store.base import DuplicateEventId, NewEvent
from service.store.batch_client import BatchClient
from service.store.coalescer import Coalescer
from service.store.dynamodb import DynamoStore
from tests.conftest import create_dynamo_tables, free_port
from tests.store.helpers import DAY, NOW, claim

BIG = os.urandom(6000).hex().encode()  # 12 KB that does not compress


def event(payload: bytes = b'{"n": 1}', now: int = NOW) -> NewEvent:
    return NewEvent(new_event_id(now), now, payload, now + 30 * DAY)


def big_event() -> NewEvent:
    return event(b'{"blob": "' + BIG + b'"}')


@pytest.fixture
async def store(dynamodb_settings: Settings) -> AsyncIterator[DynamoStore]:
    async with DynamoStore(
        events_table=dynamodb_settings.events_table,
        keys_table=dynamodb_settings.keys_table,
        endpoint_url=dynamodb_settings.dynamodb_endpoint,
    ) as store:
        yield store


async def raw_items(store: DynamoStore, tenant: str) -> dict[str, dict[str, object]]:
    """The tenant's items in shard 0, by sort key."""
    response = await store._db.query(
        TableName=store._events,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": items.tenant_pk(tenant, 0)}},
    )
    return {item["sk"]["S"]: item for item in response["Items"]}


# -- payloads --------------------------------------------------------------------------------


async def test_a_payload_that_compresses_into_the_event_item_is_stored_there(
    store: DynamoStore, acme: str
) -> None:
    payload = b'{"event_type": "customer.created", "note": "' + b"repeat " * 200 + b'"}'
    created = event(payload)
    await store.insert_events(acme, [created], idempotency=None, now=NOW)

    [item] = (await raw_items(store, acme)).values()

    assert items.item_size(item) <= 1024  # one write unit per claim and per ack
    assert len(item["pl"]["B"]) < len(payload)  # type: ignore[index]
    got = await store.get_event(acme, created.id, now=NOW)
    assert got is not None
    assert got.payload == payload


async def test_a_big_payload_gets_an_item_of_its_own_read_with_its_event(
    store: DynamoStore, acme: str
) -> None:
    single, batched = big_event(), big_event()
    await store.insert_events(acme, [single], idempotency=None, now=NOW)
    await store.insert_events(acme, [batched, event()], idempotency=None, now=NOW)

    stored = await raw_items(store, acme)

    for created in (single, batched):
        assert items.item_size(stored[created.id]) <= 1024
        assert created.id + "#p" in stored
        got = await store.get_event(acme, created.id, now=NOW)
        assert got is not None
        assert got.payload == created.payload
    listed, _ = await store.list_events(acme, status=None, limit=10, after=None, now=NOW)
    by_status, _ = await store.list_events(
        acme, status="undelivered", limit=10, after=None, now=NOW
    )
    leased = await claim(store, acme)
    for events in (listed, by_status, leased.leased):
        payloads = {e.id: e.payload for e in events}
        assert payloads[single.id] == single.payload
        assert payloads[batched.id] == batched.payload


async def test_deleting_an_event_deletes_its_payload_and_leaves_a_tombstone(
    store: DynamoStore, acme: str
) -> None:
    created = big_event()
    await store.insert_events(acme, [created], idempotency=None, now=NOW)

    assert await store.delete_event(acme, created.id, now=NOW) is True

    stored = await raw_items(store, acme)
    assert created.id + "#p" not in stored
    assert stored[created.id]["st"] == {"S": items.GONE}
    assert "pl" not in stored[created.id]
    assert await store.get_event(acme, created.id, now=NOW) is None
    listed, _ = await store.list_events(acme, status=None, limit=10, after=None, now=NOW)
    assert listed == []


# -- coalesced creates --------------------------------------------------------------------------


async def test_creates_made_together_go_out_in_one_batch_write(
    store: DynamoStore, acme: str
) -> None:
    await store.insert_events(acme, [event()], idempotency=None, now=NOW)  # reads the plan
    events = [event() for _ in range(20)]
    before = store.coalescer.calls

    await asyncio.gather(
        *(store.insert_events(acme, [e], idempotency=None, now=NOW) for e in events)
    )

    assert store.coalescer.calls - before == 1
    listed, _ = await store.list_events(acme, status=None, limit=50, after=None, now=NOW)
    assert {e.id for e in events} <= {e.id for e in listed}


@pytest.fixture
async def lost_answers(dynamodb_settings: Settings, store: DynamoStore) -> AsyncIterator[Coalescer]:
    """A coalescer whose batch writes never get an answer (a dead endpoint), as when one lands
    but its answer is lost: it must fall back to conditional creates through the good client."""
    dead = BatchClient(
        aioboto3.Session(), endpoint_url=f"http://127.0.0.1:{free_port()}", region="us-east-1"
    )
    await dead.start()
    try:
        yield Coalescer(store._db, dead, dynamodb_settings.events_table)
    finally:
        await dead.close()


async def test_after_a_lost_answer_each_create_is_made_conditionally(
    store: DynamoStore, lost_answers: Coalescer, acme: str
) -> None:
    fresh = event(b'{"fresh": 1}')
    landed = event(b'{"landed": 1}')
    gone = event(b'{"gone": 1}')
    # Two landed before the answer was lost; a worker has since claimed one and deleted the other.
    await store.insert_events(acme, [landed], idempotency=None, now=NOW)
    await store.insert_events(acme, [gone], idempotency=None, now=NOW)
    [leased] = (await claim(store, acme, limit=1)).leased
    assert leased.id == landed.id
    await store.delete_event(acme, gone.id, now=NOW)

    await asyncio.gather(
        *(
            lost_answers.create(*items.new_items(acme, 0, e, e.expires_at + DAY))
            for e in (fresh, landed, gone)
        )
    )

    kept = await store.get_event(acme, landed.id, now=NOW + 1)
    assert kept is not None
    assert (kept.attempts, kept.lease_expires_at) == (1, leased.lease_expires_at)  # not reset
    assert await store.get_event(acme, gone.id, now=NOW + 1) is None  # not resurrected
    assert await store.get_event(acme, fresh.id, now=NOW + 1) is not None


async def test_another_event_under_an_existing_id_is_a_duplicate_and_changes_nothing(
    store: DynamoStore, lost_answers: Coalescer, acme: str
) -> None:
    original = event(b'{"n": 1}')
    await store.insert_events(acme, [original], idempotency=None, now=NOW)
    impostor = NewEvent(original.id, original.created_at, b'{"n": 2}', original.expires_at)

    with pytest.raises(DuplicateEventId):
        await store.insert_events(acme, [event(), impostor], idempotency=None, now=NOW)
    with pytest.raises(DuplicateEventId):
        await lost_answers.create(*items.new_items(acme, 0, impostor, impostor.expires_at))

    stored = await store.get_event(acme, original.id, now=NOW)
    assert stored is not None
    assert stored.payload == original.payload


# -- shards -------------------------------------------------------------------------------------


async def test_raising_the_shard_count_never_hides_an_event(moto_endpoint: str, acme: str) -> None:
    events_table, keys_table = await create_dynamo_tables(moto_endpoint)

    def store(shards: int) -> DynamoStore:
        return DynamoStore(
            events_table=events_table,
            keys_table=keys_table,
            endpoint_url=moto_endpoint,
            shards=shards,
            plan_lead_ms=0,  # the raise applies at once (a deployment waits ten minutes)
        )

    async with store(1) as before:
        old = [event() for _ in range(6)]
        await before.insert_events(acme, old, idempotency=None, now=NOW)
        assert {items.tenant_pk(acme, 0)} == {  # all in the one shard there was
            item["pk"]["S"] for item in (await raw_items(before, acme)).values()
        }
    async with store(8) as after:
        await after.get_event(acme, old[0].id, now=NOW)  # reads the plan, raising it to 8
        now = int(time.time() * 1000) + 1
        new = [event(now=now) for _ in range(40)]
        await after.insert_events(acme, new, idempotency=None, now=now)

        shards = {after._plan.shard_of(acme, e.id) for e in new}  # type: ignore[union-attr]
        assert len(shards) > 1
        for created in old + new:
            assert await after.get_event(acme, created.id, now=now) is not None
        listed, _ = await after.list_events(acme, status=None, limit=100, after=None, now=now)
        assert {e.id for e in listed} == {e.id for e in old + new}
        leased = await claim(after, acme, limit=100, now=now)
        assert {e.id for e in leased.leased} == {e.id for e in old + new}
        assert await after.ack_events(acme, [e.id for e in old], now=now, expires_at=now + DAY) == {
            e.id for e in old
        }
    async with store(2) as lowered:  # a lower count is ignored: a count never goes down
        await lowered.insert_events(acme, [event(now=now)], idempotency=None, now=now)
        assert lowered._plan is not None
        assert lowered._plan.widest(acme) == 8
