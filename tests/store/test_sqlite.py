"""What only the embedded store does: deleting expired rows, which DynamoDB leaves to TTL."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from service.ids import new_event_id
from service.store.base import IdempotencyRecord, NewEvent
from service.store.sqlite import SqliteStore

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
