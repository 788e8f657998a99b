"""New events on the embedded store: the rows of many creates in a few multi-row INSERTs.

A create without an Idempotency-Key is an `Insert` job. The writer runs the ones queued next to
each other together (`writer.Combinable`): their rows go in statements of up to `ROWS_PER_INSERT`
rows, and each tenant's backlog count changes once. Should any row fail (an id that exists), the
writer runs the batch again with each job alone, and only that job's caller gets the error.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from service.store import sqlite_backlog as counts
from service.store.base import DuplicateEventId
from service.store.writer import Combinable

Row = tuple[str, str, int, bytes, int]  # tenant, id, created_at, payload, expires_at
# 64 rows of 5 values stay far below SQLite's oldest limit of 999 variables a statement, and the
# statements for 1 to 64 rows fit the connection's statement cache (`sqlite.STATEMENT_CACHE`).
ROWS_PER_INSERT = 64


@functools.cache
def _insert_statement(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?)"] * rows)
    return f"INSERT INTO events (tenant, id, created_at, payload, expires_at) VALUES {values}"


def insert_rows(db: sqlite3.Connection, rows: Sequence[Row]) -> None:
    """All of `rows`, or `DuplicateEventId` when one of their ids exists (the caller's
    transaction or savepoint then undoes the rest)."""
    try:
        for start in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[start : start + ROWS_PER_INSERT]
            db.execute(_insert_statement(len(chunk)), [value for row in chunk for value in row])
    except sqlite3.IntegrityError:
        raise DuplicateEventId("an event id already exists") from None


@dataclass(frozen=True, slots=True)
class Insert(Combinable):
    """One request's new events for one tenant, and its backlog count."""

    tenant: str
    rows: list[Row]

    def __call__(self, db: sqlite3.Connection) -> None:
        insert_rows(db, self.rows)
        counts.count(db, self.tenant, undelivered=len(self.rows))

    @classmethod
    def run_together(cls, db: sqlite3.Connection, jobs: Sequence[Insert]) -> list[None]:
        insert_rows(db, [row for job in jobs for row in job.rows])
        added: Counter[str] = Counter()
        for job in jobs:
            added[job.tenant] += len(job.rows)
        for tenant, undelivered in added.items():
            counts.count(db, tenant, undelivered=undelivered)
        return [None] * len(jobs)
