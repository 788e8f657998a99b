"""The DynamoDB adapter: events over sharded partition keys, two sparse indexes, coalesced creates.

The items are in `items.py`, the shards in `shards.py`. Every state change is one conditional
write on the event item; a claim reads only events it can claim now (`claim-index`, by when
they become claimable), and a status listing reads only that status (`status-index`, by id).
Both go over the tenant's shards: listings merge them in id order, claims take turns among
them. Every event also carries `ex` (expiry, ms) because DynamoDB TTL deletes late: reads skip
an item past it, and every state change is conditional on it.

This module opens the clients, keeps the shard plan fresh and hands each call, with the
`EventsTable` they share (`events_table.py`), to the part that does it: creates
(`dynamo_creates.py`), reads (`dynamo_reads.py`), acks and deletes (`dynamo_acks.py`), leased
delivery (`dynamo_claims.py`) and the backlog (`dynamo_backlog.py`); API keys go to
`keys_table.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import aioboto3

from service.store import dynamo_acks, dynamo_backlog, dynamo_claims, dynamo_creates, dynamo_reads
from service.store.base import (
    ApiKey,
    Backlog,
    Claim,
    Event,
    ExtendOutcome,
    IdempotencyRecord,
    NewEvent,
    RedriveOutcome,
    ReleaseOutcome,
    Status,
    Store,
    StoreUnavailable,
)
from service.store.batch_client import BatchClient
from service.store.coalescer import Coalescer
from service.store.counters import Counters
from service.store.dynamo_client import client_config, unavailable_on_failure
from service.store.events_table import DAY, EventsTable
from service.store.keys_table import KeysTable
from service.store.shards import DEFAULT, LEAD_MS, REFRESH_SECONDS, ShardPlan

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient


class DynamoStore(Store):
    def __init__(
        self,
        *,
        events_table: str,
        keys_table: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        shards: int = 1,
        tenant_shards: Mapping[str, int] | None = None,
        undelivered_retention_ms: int = 30 * DAY,
        delivered_retention_ms: int = 7 * DAY,
        plan_lead_ms: int = LEAD_MS,
    ) -> None:
        self._events = events_table
        self._keys_name = keys_table
        self._endpoint_url = endpoint_url
        self._region = region
        self._counts = {DEFAULT: shards, **(tenant_shards or {})}
        self._lead_ms = plan_lead_ms
        self._stack: AsyncExitStack | None = None
        self._client: DynamoDBClient | None = None
        self._plan: ShardPlan | None = None
        self._plan_read = 0.0  # time.monotonic() of the last read of the plan
        self._plan_lock = asyncio.Lock()
        self._plan_refresher: asyncio.Task[None] | None = None
        self._secret: bytes | None = None
        self._table = EventsTable(
            events_table,
            client=lambda: self._db,
            counters=lambda: self.counters,
            shards=self._shards,
            undelivered_ms=undelivered_retention_ms,
            delivered_ms=delivered_retention_ms,
        )

    async def start(self) -> None:
        stack = AsyncExitStack()
        session = aioboto3.Session()
        client = await stack.enter_async_context(
            session.client(
                "dynamodb",
                endpoint_url=self._endpoint_url,
                region_name=self._region,
                config=client_config(),
            )
        )
        batches = BatchClient(
            session, endpoint_url=self._endpoint_url, region=client.meta.region_name
        )
        await batches.start()
        stack.push_async_callback(batches.close)
        self._stack, self._client = stack, client
        self.keys = KeysTable(client, self._keys_name)
        self.coalescer = Coalescer(client, batches, self._events)
        self.counters = Counters(client, self._events)
        self.counters.start()
        self._plan_refresher = asyncio.create_task(self._refresh_plan_periodically())

    async def close(self) -> None:
        if self._plan_refresher is not None:
            self._plan_refresher.cancel()
            await asyncio.gather(self._plan_refresher, return_exceptions=True)
        if self._client is not None:
            await self.coalescer.close()
            await self.counters.close()
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    @property
    def _db(self) -> DynamoDBClient:
        if self._client is None:
            raise RuntimeError("DynamoStore used before start()")
        return self._client

    @unavailable_on_failure
    async def ping(self) -> None:
        await self.keys.ping()

    # -- the shard plan -------------------------------------------------------------------------

    async def _shards(self, *, creating: bool = False) -> ShardPlan:
        """The plan: read once, then kept fresh in the background. Creating an event needs a
        plan read within half the lead time (`shards.py` says why)."""
        age = time.monotonic() - self._plan_read
        if self._plan is None or (creating and age * 1000 > self._lead_ms / 2):
            async with self._plan_lock:  # one read for every request that needs it
                if self._plan is None or time.monotonic() - self._plan_read > age:
                    await self._read_plan()
        assert self._plan is not None
        return self._plan

    async def _read_plan(self) -> None:
        for _ in range(5):
            found = await self.keys.read_plan()
            now = time.time_ns() // 1_000_000
            if found is None:
                plan = ShardPlan.first(self._counts)
                if await self.keys.write_plan(plan, None):
                    break
                continue  # another task made one first
            plan, version = found
            raised = plan.raised(self._counts, now, lead_ms=self._lead_ms)
            if raised is None:
                break
            if await self.keys.write_plan(raised, version):
                plan = raised
                break
        else:
            raise StoreUnavailable("the shard plan kept changing; try again")
        self._plan = plan
        self._plan_read = time.monotonic()

    async def _refresh_plan_periodically(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            # On failure creates refuse to guess once the plan is too old; reads carry on.
            with contextlib.suppress(StoreUnavailable):
                await unavailable_on_failure(self._read_plan)()

    # -- creating -------------------------------------------------------------------------------

    @unavailable_on_failure
    async def insert_events(
        self,
        tenant: str,
        events: Sequence[NewEvent],
        *,
        idempotency: IdempotencyRecord | None,
        now: int,
    ) -> IdempotencyRecord | None:
        return await dynamo_creates.insert_events(
            self._table, self.coalescer, tenant, events, idempotency=idempotency, now=now
        )

    # -- reading --------------------------------------------------------------------------------

    @unavailable_on_failure
    async def get_event(self, tenant: str, event_id: str, *, now: int) -> Event | None:
        return await dynamo_reads.get_event(self._table, tenant, event_id, now=now)

    @unavailable_on_failure
    async def list_events(
        self, tenant: str, *, status: Status | None, limit: int, after: str | None, now: int
    ) -> tuple[list[Event], bool]:
        return await dynamo_reads.list_events(
            self._table, tenant, status=status, limit=limit, after=after, now=now
        )

    # -- acknowledging and deleting ---------------------------------------------------------------

    @unavailable_on_failure
    async def ack_events(
        self, tenant: str, event_ids: Sequence[str], *, now: int, expires_at: int
    ) -> set[str]:
        return await dynamo_acks.ack_events(
            self._table, tenant, event_ids, now=now, expires_at=expires_at
        )

    @unavailable_on_failure
    async def delete_event(self, tenant: str, event_id: str, *, now: int) -> bool:
        return await dynamo_acks.delete_event(self._table, tenant, event_id, now=now)

    # -- leased delivery ------------------------------------------------------------------------

    @unavailable_on_failure
    async def claim_events(
        self, tenant: str, *, limit: int, lease_until: int, max_attempts: int, now: int
    ) -> Claim:
        return await dynamo_claims.claim_events(
            self._table,
            tenant,
            limit=limit,
            lease_until=lease_until,
            max_attempts=max_attempts,
            now=now,
        )

    @unavailable_on_failure
    async def count_claimable(self, tenant: str, *, up_to: int, now: int) -> int:
        return await dynamo_claims.count_claimable(self._table, tenant, up_to=up_to, now=now)

    @unavailable_on_failure
    async def release_event(
        self,
        tenant: str,
        event_id: str,
        *,
        token: str,
        available_at: int,
        error: str | None,
        now: int,
    ) -> ReleaseOutcome:
        return await dynamo_claims.release_event(
            self._table,
            tenant,
            event_id,
            token=token,
            available_at=available_at,
            error=error,
            now=now,
        )

    @unavailable_on_failure
    async def extend_lease(
        self, tenant: str, event_id: str, *, token: str, lease_until: int, now: int
    ) -> ExtendOutcome:
        return await dynamo_claims.extend_lease(
            self._table, tenant, event_id, token=token, lease_until=lease_until, now=now
        )

    @unavailable_on_failure
    async def redrive_events(
        self, tenant: str, event_ids: Sequence[str], *, now: int
    ) -> dict[str, RedriveOutcome]:
        return await dynamo_claims.redrive_events(self._table, tenant, event_ids, now=now)

    # -- backlog ----------------------------------------------------------------------------------

    @unavailable_on_failure
    async def backlog(self, tenant: str, *, now: int) -> Backlog:
        return await dynamo_backlog.backlog(self._table, tenant, now=now)

    @unavailable_on_failure
    async def sweep_expired(self, tenant: str, *, now: int) -> int:
        return await dynamo_backlog.sweep_expired(self._table, tenant, now=now)

    @unavailable_on_failure
    async def take_lease(self, name: str, holder: str, until: int, *, now: int) -> bool:
        return await self.keys.take_lease(name, holder, until, now)

    # -- API keys ---------------------------------------------------------------------------------

    @unavailable_on_failure
    async def put_api_key(self, key: ApiKey) -> None:
        await self.keys.put(key)

    @unavailable_on_failure
    async def get_api_key(self, key_hash: str) -> ApiKey | None:
        return await self.keys.get(key_hash)

    @unavailable_on_failure
    async def list_api_keys(self) -> list[ApiKey]:
        return await self.keys.list()

    @unavailable_on_failure
    async def revoke_api_key(self, key_hash: str) -> bool:
        return await self.keys.revoke(key_hash)

    @unavailable_on_failure
    async def shared_secret(self) -> bytes:
        if self._secret is None:
            self._secret = await self.keys.secret()
        return self._secret
