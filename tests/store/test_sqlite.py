"""What only the embedded store does: deleting expired rows, which DynamoDB leaves to TTL, in
small transactions; writing the rows of many creates in a few statements; and closing without
blocking the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from service.ids import new_event_id
from service.store.base import IdempotencyRecord, NewEvent
from service.store.sqlite import PURGE_BATCH, SqliteStore
from service.store.sqlite_inserts import ROWS_PER_INSERT
from tests.store.helpers import holding

NOW = int(time.time() * 1000)


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


async def test_purge_deletes_expired_events_and_idempotency_records_only(tmp_path: Path) -> None:
    path = tmp_path / "purge.db"
    async with SqliteStore(str(path)) as store:
        short = NewEvent(new_event_id(NOW), NOW, b'{"short": 1}', NOW + 1_000)
        long = NewEvent(new_event_id(NOW), NOW, b'{"long": 1}', NOW + 60_000)
        record = IdempotencyRecord("k", "h", 201, b"{}", NOW + 1_000)
        await store.insert_events("acme", [short], idempotency=record, now=NOW)
        await store.insert_events("acme", [long], idempotency=None, now=NOW)

        purged = await store.purge_expired(NOW + 1_000)

        assert purged == 1
        assert count(path, "events") == 1
        assert count(path, "idempotency") == 0
        assert await store.get_event("acme", long.id, now=NOW + 1_000) is not None


async def fill_expired(store: SqliteStore, count: int) -> None:
    for _ in range(count // 500):
        events = [NewEvent(new_event_id(NOW), NOW, b'{"old": 1}', NOW + 1) for _ in range(500)]
        await store.insert_events("acme", events, idempotency=None, now=NOW)


async def test_a_large_purge_lets_other_writes_through_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "big-purge.db"
    async with SqliteStore(str(path)) as store:
        await fill_expired(store, 20 * PURGE_BATCH)

        purge = asyncio.create_task(store.purge_expired(NOW + 1_000))
        await asyncio.sleep(0)  # its first transaction is under way
        fresh = NewEvent(new_event_id(NOW), NOW, b'{"new": 1}', NOW + 60_000)
        await store.insert_events("globex", [fresh], idempotency=None, now=NOW)
        written_during_purge = not purge.done()

        assert await purge == 20 * PURGE_BATCH
        assert written_during_purge
        assert count(path, "events") == 1


class SlowReads(SqliteStore):
    async def slow_read(self, seconds: float) -> None:
        await self._read(lambda db: time.sleep(seconds))


async def test_close_never_blocks_the_event_loop(tmp_path: Path) -> None:
    store = SlowReads(str(tmp_path / "close.db"))
    await store.start()
    await store.ping()  # a reader connection to close
    reading = asyncio.create_task(store.slow_read(0.5))
    await asyncio.sleep(0.05)
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await store.close()
    ticker.cancel()
    await reading

    assert gaps
    assert max(gaps) < 0.2


async def test_concurrent_creates_share_a_few_inserts_and_every_count_stays_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    open_writer = SqliteStore._open_writer_connection

    def traced(store: SqliteStore) -> sqlite3.Connection:
        connection = open_writer(store)
        connection.set_trace_callback(statements.append)
        return connection

    monkeypatch.setattr(SqliteStore, "_open_writer_connection", traced)
    tenants = ["acme", "globex", "initech"]
    sent: dict[str, set[str]] = {tenant: set() for tenant in tenants}
    async with SqliteStore(str(tmp_path / "shared.db")) as store:
        creates = []
        async with holding(store._writer):
            for n in range(150):  # 1 or 2 events each: 225 rows
                tenant = tenants[n % 3]
                events = [
                    NewEvent(new_event_id(NOW), NOW, b'{"n": %d}' % n, NOW + 60_000)
                    for _ in range(1 + n % 2)
                ]
                sent[tenant] |= {e.id for e in events}
                creates.append(
                    asyncio.create_task(
                        store.insert_events(tenant, events, idempotency=None, now=NOW)
                    )
                )
        assert await asyncio.gather(*creates) == [None] * 150

        for tenant in tenants:
            page, _ = await store.list_events(tenant, status=None, limit=100, after=None, now=NOW)
            assert {e.id for e in page} == sent[tenant]
            assert (await store.backlog(tenant, now=NOW)).undelivered == len(sent[tenant])
    inserts = [s for s in statements if s.startswith("INSERT INTO events")]
    assert len(inserts) == -(-225 // ROWS_PER_INSERT)  # 4, not 150
