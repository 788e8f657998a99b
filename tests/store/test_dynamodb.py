"""What only the DynamoDB store has to prove: table creation, failure mapping and the item
attributes DynamoDB itself acts on. Runs against moto's server over HTTP. (`test_layout.py`:
payload items, shards, coalesced creates and their retries.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import aioboto3
import pytest

from service.ids import new_event_id
from service.settings import Settings
from service.store import schema
from service.store.base import NewEvent, Store, StoreUnavailable
from service.store.dynamo_client import CALLS_AT_ONCE, run_all
from service.store.dynamodb import DynamoStore
from service.store.tables import create_tables
from tests.conftest import free_port, unique_tables

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

DAY = 86_400_000
NOW = int(time.time() * 1000)


def new_event(payload: bytes = b'{"n": 1}', *, expires_at: int = NOW + DAY) -> NewEvent:
    return NewEvent(new_event_id(NOW), NOW, payload, expires_at)


@pytest.fixture
def tables(dynamodb_settings: Settings) -> tuple[str, str]:
    return dynamodb_settings.events_table, dynamodb_settings.keys_table


@pytest.fixture
def dynamo(dynamodb_store: Store) -> DynamoStore:
    assert isinstance(dynamodb_store, DynamoStore)
    return dynamodb_store


@pytest.fixture
async def client(moto_endpoint: str) -> AsyncIterator[DynamoDBClient]:
    async with aioboto3.Session().client("dynamodb", endpoint_url=moto_endpoint) as client:
        yield client


async def test_create_tables_is_idempotent_and_sets_up_index_and_ttl(
    moto_endpoint: str, client: DynamoDBClient
) -> None:
    events, keys = unique_tables()
    for _ in range(2):
        await create_tables(events, keys, endpoint_url=moto_endpoint, region="us-east-1")

    table = (await client.describe_table(TableName=events))["Table"]
    indexes = {i.get("IndexName"): i for i in table.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {schema.CLAIM_INDEX, schema.STATUS_INDEX}
    claim, status = indexes[schema.CLAIM_INDEX], indexes[schema.STATUS_INDEX]
    assert [k.get("AttributeName") for k in claim.get("KeySchema", [])] == ["pk", "ck"]
    assert claim.get("Projection") == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["at"]}
    assert [k.get("AttributeName") for k in status.get("KeySchema", [])] == ["sp", "sk"]
    assert status.get("Projection") == {"ProjectionType": "KEYS_ONLY"}
    types = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
    assert types == {"pk": "S", "sk": "S", "sp": "S", "ck": "N"}
    ttl = (await client.describe_time_to_live(TableName=events))["TimeToLiveDescription"]
    assert (ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")) == (
        "ENABLED",
        schema.TTL_ATTRIBUTE,
    )
    assert (await client.describe_table(TableName=keys))["Table"].get("TableStatus") == "ACTIVE"


async def test_ttl_attribute_follows_the_expiry_in_whole_seconds(
    dynamo: DynamoStore, tables: tuple[str, str], client: DynamoDBClient, acme: str
) -> None:
    event = new_event(expires_at=NOW + DAY + 1)
    await dynamo.insert_events(acme, [event], idempotency=None, now=NOW)
    key = {
        schema.EVENTS.partition_key: {"S": f"T#{acme}#0"},
        schema.EVENTS.sort_key: {"S": event.id},
    }

    async def ttl() -> int:
        item = (await client.get_item(TableName=tables[0], Key=key))["Item"]
        return int(item[schema.TTL_ATTRIBUTE]["N"])

    # Rounded up, so DynamoDB never deletes an event before it expires.
    assert ttl_seconds_cover(await ttl(), event.expires_at)
    delivered_until = NOW + 7 * DAY + 500
    await dynamo.ack_events(acme, [event.id], now=NOW, expires_at=delivered_until)
    assert ttl_seconds_cover(await ttl(), delivered_until)


def ttl_seconds_cover(ttl: int, expires_at: int) -> bool:
    return ttl * 1000 >= expires_at > (ttl - 1) * 1000


async def test_more_events_than_one_transaction_holds_are_refused(
    dynamo: DynamoStore, acme: str
) -> None:
    events = [new_event() for _ in range(100)]

    with pytest.raises(ValueError, match="at most 99"):
        await dynamo.insert_events(acme, events, idempotency=None, now=NOW)

    assert await dynamo.list_events(acme, status=None, limit=1, after=None, now=NOW) == (
        [],
        False,
    )


async def test_listing_pages_past_expired_items_dynamodb_still_holds(
    dynamo: DynamoStore, acme: str
) -> None:
    # moto, like DynamoDB before its TTL sweep, still returns expired items to the query.
    live = [new_event() for _ in range(3)]
    expired = [new_event(expires_at=NOW - 1) for _ in range(12)]
    await dynamo.insert_events(acme, live + expired, idempotency=None, now=NOW - 2)

    newest, more = await dynamo.list_events(acme, status=None, limit=2, after=None, now=NOW)
    oldest, _ = await dynamo.list_events(acme, status="undelivered", limit=3, after=None, now=NOW)

    assert ([e.id for e in newest], more) == ([live[2].id, live[1].id], True)
    assert [e.id for e in oldest] == [e.id for e in live]


async def test_two_store_instances_share_one_secret(
    dynamo: DynamoStore, tables: tuple[str, str], moto_endpoint: str
) -> None:
    events, keys = tables
    async with DynamoStore(
        events_table=events, keys_table=keys, endpoint_url=moto_endpoint
    ) as other:
        first = await dynamo.shared_secret()
        assert await other.shared_secret() == first
    assert len(first) == 32


async def test_an_unreachable_endpoint_is_unavailable_quickly(acme: str) -> None:
    closed_port = free_port()
    events, keys = unique_tables()
    async with DynamoStore(
        events_table=events, keys_table=keys, endpoint_url=f"http://127.0.0.1:{closed_port}"
    ) as store:
        calls: list[Callable[[], Awaitable[object]]] = [
            store.ping,
            lambda: store.insert_events(acme, [new_event()], idempotency=None, now=NOW),
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await call()
            # Two retries with backoff (~2.5 s here), then an answer: no hang on the request.
            assert time.monotonic() - started < 8


@pytest.mark.parametrize("attempts", ["1", "2"])
async def test_aws_max_attempts_sets_how_often_a_failed_call_is_tried(
    attempts: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server that accepts each connection and closes it without an answer.
    connections = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", attempts)
    events, keys = unique_tables()
    try:
        async with DynamoStore(
            events_table=events, keys_table=keys, endpoint_url=f"http://127.0.0.1:{port}"
        ) as store:
            with pytest.raises(StoreUnavailable):
                await store.ping()
    finally:
        server.close()
        await server.wait_closed()
    assert connections == int(attempts)


async def test_a_missing_table_is_unavailable(moto_endpoint: str, acme: str) -> None:
    events, keys = unique_tables()
    async with DynamoStore(
        events_table=events, keys_table=keys, endpoint_url=moto_endpoint
    ) as store:
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.get_event(acme, new_event_id(NOW), now=NOW)
        with pytest.raises(StoreUnavailable):
            await store.insert_events(acme, [new_event(), new_event()], idempotency=None, now=NOW)


async def test_unavailable_hides_the_cause_from_its_message(moto_endpoint: str) -> None:
    async with DynamoStore(
        events_table="Absent", keys_table="Absent", endpoint_url=moto_endpoint
    ) as store:
        with pytest.raises(StoreUnavailable) as caught:
            await store.ping()
    assert "Absent" not in str(caught.value)


async def test_one_request_runs_at_most_16_calls_at_once_and_keeps_every_answer() -> None:
    running = peak = 0

    async def call(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        return n

    assert await run_all(call(n) for n in range(100)) == list(range(100))
    assert peak == CALLS_AT_ONCE == 16


async def test_run_all_raises_the_first_failure_after_every_call_ended() -> None:
    ended: list[int] = []

    async def call(n: int) -> None:
        await asyncio.sleep(0.001 * (n % 3))
        ended.append(n)
        if n in (5, 7):
            raise StoreUnavailable(f"call {n}")

    with pytest.raises(StoreUnavailable, match="call 5"):
        await run_all(call(n) for n in range(40))
    assert sorted(ended) == list(range(40))


async def test_a_read_while_counts_are_being_flushed_misses_none_of_them(
    dynamo: DynamoStore, acme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A flush takes the changes out of memory before its writes land; a read in between used to
    # find them in neither place (GET /v1/stats said 0 for a moment).
    for _ in range(3):
        await dynamo.insert_events(acme, [new_event()], idempotency=None, now=NOW)
    counters = dynamo.counters
    stored = counters._db
    writing, go_on = asyncio.Event(), asyncio.Event()

    class HeldWrites:
        def __getattr__(self, name: str) -> object:
            return getattr(stored, name)

        async def update_item(self, **request: object) -> object:
            writing.set()
            await go_on.wait()
            return await stored.update_item(**request)  # type: ignore[arg-type]

    monkeypatch.setattr(counters, "_db", HeldWrites())
    flush = asyncio.create_task(counters.flush())
    await writing.wait()
    read = asyncio.create_task(dynamo.backlog(acme, now=NOW))
    await asyncio.sleep(0.3)  # time enough for a read that does not wait
    go_on.set()
    await flush

    assert (await read).undelivered == 3
    assert (await dynamo.backlog(acme, now=NOW)).undelivered == 3
