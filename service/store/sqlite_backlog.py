"""Backlog counts for `GET /v1/stats` on SQLite, kept by the same transactions that change them.

Every write job that moves an event into or out of the undelivered or dead ones adds its change
here, on the same connection, before the group commit: the counts are exact. Leases are counted
by the minute they end, so a read sums the minutes from now on (a lease that ended earlier this
minute still counts: counts lag by at most a minute). Expired events are counted out when the
periodic purge deletes them (at most a minute late).
"""

from __future__ import annotations

import sqlite3
from collections import Counter

from service.store.base import Backlog

SCHEMA = """
CREATE TABLE IF NOT EXISTS backlog (
    tenant      TEXT PRIMARY KEY,
    undelivered INTEGER NOT NULL DEFAULT 0,
    dead        INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS leases (
    name   TEXT PRIMARY KEY,
    holder TEXT    NOT NULL,
    until  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lease_ends (
    tenant TEXT    NOT NULL,
    minute INTEGER NOT NULL,
    leases INTEGER NOT NULL,
    PRIMARY KEY (tenant, minute)
);
"""
MINUTE = 60_000


def count(db: sqlite3.Connection, tenant: str, *, undelivered: int = 0, dead: int = 0) -> None:
    if undelivered or dead:
        db.execute(
            "INSERT INTO backlog (tenant, undelivered, dead) VALUES (?, ?, ?)"
            " ON CONFLICT (tenant) DO UPDATE SET undelivered = undelivered + excluded.undelivered,"
            " dead = dead + excluded.dead",
            (tenant, undelivered, dead),
        )


def lease(db: sqlite3.Connection, tenant: str, ends: int, change: int, now: int) -> None:
    """A lease ending at `ends` begins (+1) or ends early (-1); one already over is not counted."""
    if ends > now:
        db.execute(
            "INSERT INTO lease_ends VALUES (?, ?, ?)"
            " ON CONFLICT (tenant, minute) DO UPDATE SET leases = leases + excluded.leases",
            (tenant, ends // MINUTE, change),
        )


def end(db: sqlite3.Connection, tenant: str, status: int, lease_until: int, now: int) -> None:
    """An event leaves the undelivered (status 0) or the dead ones (2), ending its lease."""
    if status == 0:
        count(db, tenant, undelivered=-1)
        lease(db, tenant, lease_until, -1, now)
    elif status == 2:
        count(db, tenant, dead=-1)


def read(db: sqlite3.Connection, tenant: str, now: int) -> Backlog:
    row = db.execute("SELECT undelivered, dead FROM backlog WHERE tenant = ?", (tenant,)).fetchone()
    undelivered, dead = row if row is not None else (0, 0)
    in_flight = db.execute(
        "SELECT coalesce(sum(leases), 0) FROM lease_ends WHERE tenant = ? AND minute >= ?",
        (tenant, now // MINUTE),
    ).fetchone()[0]
    oldest = db.execute(
        "SELECT created_at FROM events WHERE tenant = ? AND status = 0 AND expires_at > ?"
        " ORDER BY id LIMIT 1",
        (tenant, now),
    ).fetchone()
    return Backlog(
        undelivered=max(undelivered, 0),
        in_flight=max(in_flight, 0),
        dead=max(dead, 0),
        oldest_undelivered_at=None if oldest is None else oldest[0],
        as_of=now,
    )


def forget_expired(db: sqlite3.Connection, expired: list[tuple[str, int]], now: int) -> None:
    """Count out expired (tenant, status) rows the purge deletes; drop minutes long past."""
    for (tenant, status), gone in Counter(expired).items():
        if status == 0:
            count(db, tenant, undelivered=-gone)
        elif status == 2:
            count(db, tenant, dead=-gone)
    db.execute("DELETE FROM lease_ends WHERE minute < ?", (now // MINUTE - 1,))
