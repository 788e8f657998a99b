"""The embedded store: one SQLite file, no other process.

Writes are jobs for the group-commit writer (`writer.py`): one thread, one transaction for
everything queued, a 201 only after COMMIT. Reads run on a small pool of reader threads with
their own connections (WAL lets them read while the writer writes). The event loop never
touches a connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from service.clock import now_ms
from service.store import sqlite_backlog as counts
from service.store.base import (
    ApiKey,
    Backlog,
    Claim,
    Event,
    ExtendOutcome,
    IdempotencyRecord,
    NewEvent,
    RedriveOutcome,
    Refusal,
    ReleaseOutcome,
    Status,
    Store,
    StoreError,
    StoreUnavailable,
    new_lease_token,
)
from service.store.sqlite_inserts import Insert
from service.store.writer import GroupCommitWriter, as_store_error

T = TypeVar("T")

# Bumped whenever the tables change; a file made with another version is refused (this store is
# unreleased, so there is nothing to migrate yet).
SCHEMA_VERSION = 4
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    tenant       TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    status       INTEGER NOT NULL DEFAULT 0,  -- 0 undelivered, 1 delivered, 2 dead
    payload      BLOB    NOT NULL,
    delivered_at INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    lease_until  INTEGER NOT NULL DEFAULT 0,  -- 0: never leased, or released
    lease_token  TEXT,                        -- the current lease's name, until it ends
    available_at INTEGER NOT NULL DEFAULT 0,  -- not claimable before (a delayed release)
    last_error   TEXT,
    expires_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_tenant ON events (tenant, id);
CREATE INDEX IF NOT EXISTS events_by_status ON events (tenant, status, id);
CREATE INDEX IF NOT EXISTS events_by_expiry ON events (expires_at);
CREATE TABLE IF NOT EXISTS idempotency (
    tenant     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    body_hash  TEXT    NOT NULL,
    status     INTEGER NOT NULL,
    response   BLOB    NOT NULL,
    expires_at INTEGER NOT NULL,
    location   TEXT,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX IF NOT EXISTS idempotency_by_expiry ON idempotency (expires_at);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash   TEXT PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    active     INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
"""

EVENT_COLUMNS = (
    "id, created_at, status, payload, delivered_at, attempts, lease_until, available_at, last_error"
)
UNDELIVERED, DELIVERED, DEAD = 0, 1, 2
STATUSES: tuple[Status, ...] = ("undelivered", "delivered", "dead")  # by their code
PURGE_INTERVAL_SECONDS = 60.0
# Rows deleted per transaction: a purge of many rows is many short writes, between which
# everyone else's writes go ahead (one transaction of 200,000 rows held them for over a second).
PURGE_BATCH = 200


# Prepared statements kept per connection: ours, and the 64 sizes of `sqlite_inserts`' INSERT.
STATEMENT_CACHE = 256


def _connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path,
        timeout=5.0,
        isolation_level=None,
        check_same_thread=False,
        cached_statements=STATEMENT_CACHE,
    )
    connection.execute("PRAGMA journal_mode=WAL")
    # FULL: COMMIT returns only after the WAL is on disk, which is what a 201 promises.
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA busy_timeout=5000")
    return connection


def _event(row: sqlite3.Row | tuple[Any, ...], now: int, token: str | None = None) -> Event:
    (
        event_id,
        created_at,
        status,
        payload,
        delivered_at,
        attempts,
        lease_until,
        available_at,
        last_error,
    ) = row
    undelivered = status == UNDELIVERED
    return Event(
        id=event_id,
        created_at=created_at,
        status=STATUSES[status],
        payload=bytes(payload),
        delivered_at=delivered_at,
        attempts=attempts,
        lease_expires_at=lease_until if lease_until > now and undelivered else None,
        available_at=available_at if available_at > now and undelivered else None,
        last_error=last_error,
        lease_token=token,
    )


def _purge_some(db: sqlite3.Connection, *, table: str, now: int) -> int:
    expired = f"SELECT rowid FROM {table} WHERE expires_at <= ? LIMIT {PURGE_BATCH}"
    if table != "events":
        return int(db.execute(f"DELETE FROM {table} WHERE rowid IN ({expired})", (now,)).rowcount)
    gone = db.execute(
        f"DELETE FROM events WHERE rowid IN ({expired}) RETURNING tenant, status", (now,)
    ).fetchall()
    counts.forget_expired(db, gone, now)
    return len(gone)


def _close_readers(
    readers: concurrent.futures.ThreadPoolExecutor | None, connections: list[sqlite3.Connection]
) -> None:
    if readers is not None:
        readers.shutdown(wait=True)
    for connection in connections:
        connection.close()


def _held_lease(db: sqlite3.Connection, tenant: str, event_id: str, token: str, now: int) -> int:
    """When the lease `token` names ends (0 if it is not the event's current one)."""
    row = db.execute(
        "SELECT lease_until FROM events WHERE tenant = ? AND id = ? AND lease_token = ?"
        " AND status = 0 AND expires_at > ?",
        (tenant, event_id, token, now),
    ).fetchone()
    return 0 if row is None else int(row[0])


def _refusal(db: sqlite3.Connection, tenant: str, event_id: str, now: int) -> Refusal:
    """Why a conditional update of a lease did not apply."""
    row = db.execute(
        "SELECT status FROM events WHERE tenant = ? AND id = ? AND expires_at > ?",
        (tenant, event_id, now),
    ).fetchone()
    if row is None:
        return "not_found"
    return "already_delivered" if row[0] == DELIVERED else "lease_lost"


class SqliteStore(Store):
    def __init__(self, path: str) -> None:
        self._path = path
        self._writer = GroupCommitWriter()
        self._readers: concurrent.futures.ThreadPoolExecutor | None = None
        self._reader_local = threading.local()
        self._reader_connections: list[sqlite3.Connection] = []
        self._purger: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._writer.start(self._open_writer_connection)
        self._readers = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="sqlite-reader"
        )
        self._purger = asyncio.create_task(self._purge_periodically())

    def _open_writer_connection(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(os.path.abspath(self._path)), exist_ok=True)
        connection = _connect(self._path)
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        made = connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'events'").fetchone()
        if made and version != SCHEMA_VERSION:
            connection.close()
            raise StoreError(
                f"{self._path} holds an older trigger-api's data (schema {version}, this version"
                f" uses {SCHEMA_VERSION}): use another --db, or remove the file"
            )
        connection.executescript(SCHEMA + counts.SCHEMA)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return connection

    async def close(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            await asyncio.gather(self._purger, return_exceptions=True)
        await self._writer.close()
        readers, self._readers = self._readers, None
        connections = list(self._reader_connections)
        self._reader_connections.clear()
        # Waiting for reads in flight and closing connections block: not on the event loop.
        await asyncio.to_thread(_close_readers, readers, connections)

    # -- the two ways in: the writer and the reader pool -----------------------------------------

    async def _read(self, job: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None:
            raise StoreUnavailable("store is not open")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._readers, self._run_read, job)
        except sqlite3.Error as error:
            raise as_store_error(error) from None

    def _run_read(self, job: Callable[[sqlite3.Connection], T]) -> T:
        connection: sqlite3.Connection | None = getattr(self._reader_local, "connection", None)
        if connection is None:
            connection = _connect(self._path)
            self._reader_local.connection = connection
            self._reader_connections.append(connection)
        return job(connection)

    async def _purge_periodically(self) -> None:
        while True:
            await asyncio.sleep(PURGE_INTERVAL_SECONDS)
            with contextlib.suppress(StoreUnavailable):  # the next round tries again
                await self.purge_expired(now_ms())

    async def purge_expired(self, now: int) -> int:
        """Delete expired events and idempotency records, `PURGE_BATCH` rows per transaction;
        reads skip them either way. Returns how many events were deleted."""
        deleted = {"events": 0, "idempotency": 0}
        for table in deleted:
            some = functools.partial(_purge_some, table=table, now=now)
            while True:
                count = await self._writer.submit(some)
                deleted[table] += count
                if count < PURGE_BATCH:
                    break
        return deleted["events"]

    async def sweep_expired(self, tenant: str, *, now: int) -> int:
        # The periodic purge does this for every tenant (and delivered events) each minute.
        def sweep(db: sqlite3.Connection) -> int:
            expired = db.execute(
                "DELETE FROM events WHERE tenant = ? AND expires_at <= ? AND status != 1"
                " RETURNING tenant, status",
                (tenant, now),
            ).fetchall()
            counts.forget_expired(db, expired, now)
            return len(expired)

        return await self._writer.submit(sweep)

    async def take_lease(self, name: str, holder: str, until: int, *, now: int) -> bool:
        def take(db: sqlite3.Connection) -> bool:
            taken = db.execute(
                "INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
                " SET holder = excluded.holder, until = excluded.until"
                " WHERE leases.until <= ? OR leases.holder = excluded.holder RETURNING 1",
                (name, holder, until, now),
            ).fetchone()
            return taken is not None

        return await self._writer.submit(take)

    async def backlog(self, tenant: str, *, now: int) -> Backlog:
        return await self._read(lambda db: counts.read(db, tenant, now))

    async def ping(self) -> None:
        await self._read(lambda db: db.execute("SELECT 1").fetchone())

    # -- events -----------------------------------------------------------------------------------

    async def insert_events(
        self,
        tenant: str,
        events: Sequence[NewEvent],
        *,
        idempotency: IdempotencyRecord | None,
        now: int,
    ) -> IdempotencyRecord | None:
        rows = [(tenant, e.id, e.created_at, e.payload, e.expires_at) for e in events]
        if idempotency is None:
            return await self._writer.submit(Insert(tenant, rows))
        record = idempotency

        def insert(db: sqlite3.Connection) -> IdempotencyRecord | None:
            found = db.execute(
                "SELECT body_hash, status, response, expires_at, location FROM idempotency"
                " WHERE tenant = ? AND key = ? AND expires_at > ?",
                (tenant, record.key, now),
            ).fetchone()
            if found is not None:
                body_hash, status, response, expires_at, location = found
                return IdempotencyRecord(
                    record.key, body_hash, status, bytes(response), expires_at, location
                )
            Insert(tenant, rows)(db)
            db.execute(
                "INSERT OR REPLACE INTO idempotency"
                " (tenant, key, body_hash, status, response, expires_at, location)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    tenant,
                    record.key,
                    record.body_hash,
                    record.status,
                    record.response,
                    record.expires_at,
                    record.location,
                ),
            )
            return None

        return await self._writer.submit(insert)

    async def get_event(self, tenant: str, event_id: str, *, now: int) -> Event | None:
        def get(db: sqlite3.Connection) -> Event | None:
            row = db.execute(
                f"SELECT {EVENT_COLUMNS} FROM events"
                " WHERE tenant = ? AND id = ? AND expires_at > ?",
                (tenant, event_id, now),
            ).fetchone()
            return None if row is None else _event(row, now)

        return await self._read(get)

    async def list_events(
        self, tenant: str, *, status: Status | None, limit: int, after: str | None, now: int
    ) -> tuple[list[Event], bool]:
        where = "tenant = ? AND expires_at > ?"
        params: list[Any] = [tenant, now]
        if status is None:
            order = "id DESC"
            if after is not None:
                where += " AND id < ?"
                params.append(after)
        else:
            order = "id"
            where += " AND status = ?"
            params.append(STATUSES.index(status))
            if after is not None:
                where += " AND id > ?"
                params.append(after)
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE {where} ORDER BY {order} LIMIT ?"
        params.append(limit + 1)

        def page(db: sqlite3.Connection) -> tuple[list[Event], bool]:
            rows = db.execute(sql, params).fetchall()
            return [_event(row, now) for row in rows[:limit]], len(rows) > limit

        return await self._read(page)

    async def ack_events(
        self, tenant: str, event_ids: Sequence[str], *, now: int, expires_at: int
    ) -> set[str]:
        ids = list(dict.fromkeys(event_ids))
        marks = ",".join("?" * len(ids))

        def ack(db: sqlite3.Connection) -> set[str]:
            rows = db.execute(
                f"SELECT id, status, lease_until FROM events WHERE tenant = ? AND id IN ({marks})"
                " AND expires_at > ?",
                (tenant, *ids, now),
            ).fetchall()
            for _id, status, lease_until in rows:
                counts.end(db, tenant, status, lease_until, now)
            db.execute(
                "UPDATE events SET status = 1, delivered_at = ?, expires_at = ?, lease_until = 0,"
                f" lease_token = NULL, available_at = 0 WHERE tenant = ? AND id IN ({marks})"
                " AND status != 1 AND expires_at > ?",
                (now, expires_at, tenant, *ids, now),
            )
            return {row[0] for row in rows}

        return await self._writer.submit(ack)

    async def delete_event(self, tenant: str, event_id: str, *, now: int) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            row = db.execute(
                "DELETE FROM events WHERE tenant = ? AND id = ? AND expires_at > ?"
                " RETURNING status, lease_until",
                (tenant, event_id, now),
            ).fetchone()
            if row is not None:
                status, lease_until = row
                counts.end(db, tenant, status, lease_until, now)
            return row is not None

        return await self._writer.submit(delete)

    async def claim_events(
        self, tenant: str, *, limit: int, lease_until: int, max_attempts: int, now: int
    ) -> Claim:
        def claim(db: sqlite3.Connection) -> Claim:
            leased: list[Event] = []
            dead: list[str] = []
            after = ""
            while len(leased) < limit:
                candidates = db.execute(
                    "SELECT id, attempts FROM events WHERE tenant = ? AND status = 0 AND id > ?"
                    " AND lease_until <= ? AND available_at <= ? AND expires_at > ?"
                    " ORDER BY id LIMIT ?",
                    (tenant, after, now, now, now, limit - len(leased)),
                ).fetchall()
                if not candidates:
                    break
                for event_id, attempts in candidates:
                    if attempts >= max_attempts:
                        db.execute(
                            "UPDATE events SET status = 2, lease_token = NULL"
                            " WHERE tenant = ? AND id = ?",
                            (tenant, event_id),
                        )
                        dead.append(event_id)
                        counts.count(db, tenant, undelivered=-1, dead=1)
                        continue
                    token = new_lease_token()
                    row = db.execute(
                        "UPDATE events SET lease_until = ?, lease_token = ?,"
                        " attempts = attempts + 1, available_at = 0 WHERE tenant = ? AND id = ?"
                        f" RETURNING {EVENT_COLUMNS}",
                        (lease_until, token, tenant, event_id),
                    ).fetchone()
                    leased.append(_event(row, now, token))
                    counts.lease(db, tenant, lease_until, +1, now)
                after = candidates[-1][0]
            return Claim(leased, dead)

        return await self._writer.submit(claim)

    async def count_claimable(self, tenant: str, *, up_to: int, now: int) -> int:
        def count(db: sqlite3.Connection) -> int:
            return int(
                db.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM events WHERE tenant = ? AND status = 0"
                    " AND lease_until <= ? AND available_at <= ? AND expires_at > ? LIMIT ?)",
                    (tenant, now, now, now, up_to),
                ).fetchone()[0]
            )

        return await self._read(count)

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
        def release(db: sqlite3.Connection) -> ReleaseOutcome:
            held = _held_lease(db, tenant, event_id, token, now)
            released = db.execute(
                "UPDATE events SET lease_until = 0, lease_token = NULL, available_at = ?,"
                " last_error = coalesce(?, last_error) WHERE tenant = ? AND id = ?"
                " AND expires_at > ? AND status = 0 AND lease_token = ? RETURNING 1",
                (available_at, error, tenant, event_id, now, token),
            ).fetchone()
            if not released:
                return _refusal(db, tenant, event_id, now)
            counts.lease(db, tenant, held, -1, now)
            return "released"

        return await self._writer.submit(release)

    async def extend_lease(
        self, tenant: str, event_id: str, *, token: str, lease_until: int, now: int
    ) -> ExtendOutcome:
        def extend(db: sqlite3.Connection) -> ExtendOutcome:
            held = _held_lease(db, tenant, event_id, token, now)
            extended = db.execute(
                "UPDATE events SET lease_until = ? WHERE tenant = ? AND id = ?"
                " AND expires_at > ? AND status = 0 AND lease_token = ? RETURNING 1",
                (lease_until, tenant, event_id, now, token),
            ).fetchone()
            if not extended:
                return _refusal(db, tenant, event_id, now)
            counts.lease(db, tenant, held, -1, now)
            counts.lease(db, tenant, lease_until, +1, now)
            return "extended"

        return await self._writer.submit(extend)

    async def redrive_events(
        self, tenant: str, event_ids: Sequence[str], *, now: int
    ) -> dict[str, RedriveOutcome]:
        def redrive(db: sqlite3.Connection) -> dict[str, RedriveOutcome]:
            outcomes: dict[str, RedriveOutcome] = {}
            for event_id in dict.fromkeys(event_ids):
                revived = db.execute(
                    "UPDATE events SET status = 0, attempts = 0, lease_until = 0,"
                    " lease_token = NULL, available_at = 0 WHERE tenant = ? AND id = ?"
                    " AND expires_at > ? AND status = 2",
                    (tenant, event_id, now),
                ).rowcount
                counts.count(db, tenant, undelivered=revived, dead=-revived)
                row = db.execute(
                    "SELECT status FROM events WHERE tenant = ? AND id = ? AND expires_at > ?",
                    (tenant, event_id, now),
                ).fetchone()
                if row is None:
                    outcomes[event_id] = "not_found"
                elif row[0] == DELIVERED:
                    outcomes[event_id] = "already_delivered"
                else:
                    outcomes[event_id] = "redriven"
            return outcomes

        return await self._writer.submit(redrive)

    # -- API keys ---------------------------------------------------------------------------------

    async def put_api_key(self, key: ApiKey) -> None:
        await self._writer.submit(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO api_keys VALUES (?, ?, ?, ?)",
                (key.key_hash, key.tenant, key.active, key.created_at),
            )
        )

    async def get_api_key(self, key_hash: str) -> ApiKey | None:
        def get(db: sqlite3.Connection) -> ApiKey | None:
            row = db.execute(
                "SELECT key_hash, tenant, active, created_at FROM api_keys WHERE key_hash = ?",
                (key_hash,),
            ).fetchone()
            return None if row is None else ApiKey(row[0], row[1], bool(row[2]), row[3])

        return await self._read(get)

    async def list_api_keys(self) -> list[ApiKey]:
        def list_keys(db: sqlite3.Connection) -> list[ApiKey]:
            rows = db.execute(
                "SELECT key_hash, tenant, active, created_at FROM api_keys"
                " ORDER BY tenant, created_at"
            )
            return [ApiKey(r[0], r[1], bool(r[2]), r[3]) for r in rows]

        return await self._read(list_keys)

    async def revoke_api_key(self, key_hash: str) -> bool:
        def revoke(db: sqlite3.Connection) -> bool:
            cursor = db.execute("UPDATE api_keys SET active = 0 WHERE key_hash = ?", (key_hash,))
            return cursor.rowcount > 0

        return await self._writer.submit(revoke)

    async def shared_secret(self) -> bytes:
        candidate = os.urandom(32)

        def secret(db: sqlite3.Connection) -> bytes:
            db.execute("INSERT OR IGNORE INTO secrets VALUES ('cursor', ?)", (candidate,))
            return bytes(
                db.execute("SELECT value FROM secrets WHERE name = 'cursor'").fetchone()[0]
            )

        return await self._writer.submit(secret)
