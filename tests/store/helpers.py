"""Events, records and calls that the store tests share."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator

from service.ids import new_event_id
from service.store.base import Claim, IdempotencyRecord, NewEvent, ReleaseOutcome, Store
from service.store.writer import GroupCommitWriter

DAY = 86_400_000
NOW = int(time.time() * 1000)


def make_events(count: int, now: int = NOW, *, ttl: int = 30 * DAY) -> list[NewEvent]:
    return [
        NewEvent(new_event_id(now), now, json.dumps({"n": n}).encode(), now + ttl)
        for n in range(count)
    ]


async def insert(store: Store, tenant: str, count: int, now: int = NOW) -> list[NewEvent]:
    events = make_events(count, now)
    assert await store.insert_events(tenant, events, idempotency=None, now=now) is None
    return events


def record(key: str, body_hash: str = "h1", expires_at: int = NOW + DAY) -> IdempotencyRecord:
    return IdempotencyRecord(key, body_hash, 201, b'{"id":"x"}', expires_at)


async def claim(
    store: Store,
    tenant: str,
    *,
    limit: int = 10,
    lease_ms: int = 30_000,
    max_attempts: int = 10,
    now: int = NOW,
) -> Claim:
    return await store.claim_events(
        tenant, limit=limit, lease_until=now + lease_ms, max_attempts=max_attempts, now=now
    )


async def release(
    store: Store,
    tenant: str,
    event_id: str,
    token: str,
    *,
    available_at: int = 0,
    error: str | None = None,
    now: int = NOW,
) -> ReleaseOutcome:
    return await store.release_event(
        tenant, event_id, token=token, available_at=available_at, error=error, now=now
    )


@contextlib.asynccontextmanager
async def holding(writer: GroupCommitWriter) -> AsyncIterator[None]:
    """Keep the writer thread busy, so that everything submitted meanwhile queues up."""
    started, gate = threading.Event(), threading.Event()

    def hold(db: sqlite3.Connection) -> None:
        started.set()
        gate.wait(10)

    held = asyncio.create_task(writer.submit(hold))
    await asyncio.to_thread(started.wait, 10)
    yield
    await asyncio.sleep(0)  # the submits scheduled in the block queue their jobs
    gate.set()
    await held
