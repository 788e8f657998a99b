"""Backlog counts for `GET /v1/stats` on DynamoDB, kept with the writes but not in them.

Each write that changes a count (a create, a claim, a release, an ack, a death, a redrive, a
delete) adds its change here, in memory, per tenant; every `FLUSH_SECONDS` (and on close) the
changes go out as one `ADD` per tenant and counter item. A hot tenant's thousands of changes a
second cost each task one small write per flush, not one per event, and no item is hot.

  counts   pk = C#<tenant>  sk = C              u: undelivered, x: dead
  leases   pk = C#<tenant>  sk = L#<minute>     n: leases that end in that minute (expires a day
                                                later); in flight = those ending now or later

Reads add this task's changes not yet flushed. A flush and a read never overlap: while a flush
writes, its changes are neither in memory nor surely stored, and a read then would miss them.
A task killed before it flushes loses at most `FLUSH_SECONDS` of its changes (documented in
DESIGN-NOTES); counts never go below zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from service.store.base import Backlog
from service.store.dynamo_client import run_all
from service.store.items import TTL, number, seconds, text

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

log = logging.getLogger("trigger_api")

FLUSH_SECONDS = 5.0
MINUTE = 60_000
MAX_LEASE_MINUTES = 43_200 // 60 + 1  # the longest lease a claim may ask for, in minutes


def minute(ms: int) -> int:
    return ms // MINUTE


@dataclass(slots=True)
class _Changes:
    undelivered: int = 0
    dead: int = 0
    leases: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))

    def merge(self, other: _Changes) -> None:
        self.undelivered += other.undelivered
        self.dead += other.dead
        for end, count in other.leases.items():
            self.leases[end] += count


class Counters:
    def __init__(self, db: DynamoDBClient, table: str) -> None:
        self._db = db
        self._table = table
        self._changes: defaultdict[str, _Changes] = defaultdict(_Changes)
        self._flusher: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()  # held by a flush, and by a read for its whole length

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_periodically())

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        with contextlib.suppress(BotoCoreError, ClientError):
            await self.flush()

    def count(self, tenant: str, *, undelivered: int = 0, dead: int = 0) -> None:
        changes = self._changes[tenant]
        changes.undelivered += undelivered
        changes.dead += dead

    def lease(self, tenant: str, ends: int, change: int, now: int) -> None:
        """A lease ending at `ends` begins (+1) or ends early (-1); a lease already over at
        `now` is not in flight either way."""
        if ends > now:
            self._changes[tenant].leases[minute(ends)] += change

    async def flush(self) -> None:
        async with self._flushing:
            changes, self._changes = self._changes, defaultdict(_Changes)
            await run_all(self._flush_tenant(t, change) for t, change in changes.items())

    async def _flush_tenant(self, tenant: str, changes: _Changes) -> None:
        try:
            if changes.undelivered or changes.dead:
                await self._db.update_item(
                    TableName=self._table,
                    Key=_key(tenant, "C"),
                    UpdateExpression="ADD u :u, x :x",
                    ExpressionAttributeValues={
                        ":u": number(changes.undelivered),
                        ":x": number(changes.dead),
                    },
                )
                changes.undelivered = changes.dead = 0
            for end, count in list(changes.leases.items()):
                if count:
                    await self._db.update_item(
                        TableName=self._table,
                        Key=_key(tenant, f"L#{end:010d}"),
                        UpdateExpression="ADD n :n SET #ttl = :ttl",
                        ExpressionAttributeNames={"#ttl": TTL},
                        ExpressionAttributeValues={
                            ":n": number(count),
                            ":ttl": number(seconds((end + 1) * MINUTE) + 86_400),
                        },
                    )
                del changes.leases[end]
        except (BotoCoreError, ClientError) as error:
            log.warning(
                "backlog counts not flushed for %s, kept for the next try: %r", tenant, error
            )
            self._changes[tenant].merge(changes)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()

    async def read(self, tenant: str, now: int) -> Backlog:
        """The tenant's counts: stored, plus this task's changes not flushed yet."""
        async with self._flushing:
            return await self._read(tenant, now)

    async def _read(self, tenant: str, now: int) -> Backlog:
        current = minute(now)
        counts, leases = await asyncio.gather(
            self._db.get_item(TableName=self._table, Key=_key(tenant, "C"), ConsistentRead=True),
            self._db.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND sk BETWEEN :from AND :to",
                ExpressionAttributeValues={
                    ":pk": text(f"C#{tenant}"),
                    ":from": text(f"L#{current:010d}"),
                    ":to": text(f"L#{current + MAX_LEASE_MINUTES:010d}"),
                },
                ConsistentRead=True,
            ),
        )
        item = counts.get("Item", {})
        pending = self._changes.get(tenant, _Changes())
        undelivered = int(item.get("u", {"N": "0"})["N"]) + pending.undelivered
        dead = int(item.get("x", {"N": "0"})["N"]) + pending.dead
        in_flight = sum(int(bucket["n"]["N"]) for bucket in leases["Items"])
        in_flight += sum(count for end, count in pending.leases.items() if end >= current)
        return Backlog(
            undelivered=max(undelivered, 0),
            in_flight=max(in_flight, 0),
            dead=max(dead, 0),
            oldest_undelivered_at=None,
            as_of=now - int(FLUSH_SECONDS * 1000),
        )


def _key(tenant: str, sort_key: str) -> dict[str, dict[str, str]]:
    return {"pk": text(f"C#{tenant}"), "sk": text(sort_key)}
