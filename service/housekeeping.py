"""What no request does: once a minute, the backlog published to CloudWatch, and expired events
swept out of the backlog counts.

Every task writes the events it created that minute as an Embedded Metric Format line on stdout
(`EventsCreated`; CloudWatch sums the tasks). Then one task of the deployment, the holder of a
lease in the store, sweeps each tenant's expired undelivered and dead events out of the counts
(DynamoDB: TTL deletes late, and nothing would count them out) and writes each tenant's backlog
as one EMF line, plus one line for the whole deployment (counts summed, the oldest age the
largest): the metrics the worker service scales on and the alarms watch (docs/DEPLOY.md,
"Metrics"). Nothing is written to CloudWatch unless `TRIGGER_METRICS_SERVICE` names the service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import msgspec

from service.clock import now_ms
from service.store.base import Backlog, Store, StoreError

log = logging.getLogger("trigger_api")

NAMESPACE = "TriggerApi"
PERIOD_SECONDS = 60.0
LEASE = "housekeeping"
BACKLOG_METRICS = [
    {"Name": "Undelivered", "Unit": "Count"},
    {"Name": "InFlight", "Unit": "Count"},
    {"Name": "Dead", "Unit": "Count"},
    {"Name": "OldestUndeliveredAgeSeconds", "Unit": "Seconds"},
]

_encode = msgspec.json.Encoder().encode


def _write_line(line: bytes) -> None:
    sys.stdout.buffer.write(line + b"\n")
    sys.stdout.flush()


class Housekeeping:
    def __init__(
        self,
        store: Store,
        *,
        service: str,
        emit: Callable[[bytes], None] = _write_line,
        holder: str | None = None,
    ) -> None:
        self._store = store
        self._service = service  # the EMF `Service` dimension; "" writes nothing
        self._emit = emit
        self._holder = holder or f"{os.uname().nodename}:{os.getpid()}:{id(self):x}"
        self.created = 0  # events this task created since the last round
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(PERIOD_SECONDS)
            try:
                await self.round(now_ms())
            except StoreError as error:  # the next round tries again
                log.warning("housekeeping skipped a round: %r", error)

    async def round(self, now: int) -> bool:
        """One round; True when this task held the lease and did the deployment's chores."""
        created, self.created = self.created, 0
        if self._service:
            metric = [{"Name": "EventsCreated", "Unit": "Count"}]
            self._emit(self._line(now, {"EventsCreated": created}, metric))
        lease_until = now + int(PERIOD_SECONDS * 1500)
        if not await self._store.take_lease(LEASE, self._holder, lease_until, now=now):
            return False
        tenants = sorted({key.tenant for key in await self._store.list_api_keys()})
        totals = Backlog(0, 0, 0, None, now)
        for tenant in tenants:
            await self._store.sweep_expired(tenant, now=now)
            backlog = await self._store.backlog(tenant, now=now)
            totals = _add(totals, backlog)
            if self._service:
                self._emit(self._backlog_line(now, backlog, tenant))
        if self._service:
            self._emit(self._backlog_line(now, totals, None))
        return True

    def _backlog_line(self, now: int, backlog: Backlog, tenant: str | None) -> bytes:
        oldest = backlog.oldest_undelivered_at
        values = {
            "Undelivered": backlog.undelivered,
            "InFlight": backlog.in_flight,
            "Dead": backlog.dead,
            "OldestUndeliveredAgeSeconds": 0 if oldest is None else max(now - oldest, 0) // 1000,
        }
        return self._line(now, values, BACKLOG_METRICS, tenant)

    def _line(
        self,
        now: int,
        values: dict[str, int],
        metrics: list[dict[str, str]],
        tenant: str | None = None,
    ) -> bytes:
        dimensions = ["Service", "Tenant"] if tenant is not None else ["Service"]
        line: dict[str, Any] = {
            "_aws": {
                "Timestamp": now,
                "CloudWatchMetrics": [
                    {"Namespace": NAMESPACE, "Dimensions": [dimensions], "Metrics": metrics}
                ],
            },
            "Service": self._service,
            **values,
        }
        if tenant is not None:
            line["Tenant"] = tenant
        return _encode(line)


def _add(total: Backlog, backlog: Backlog) -> Backlog:
    oldest = [t for t in (total.oldest_undelivered_at, backlog.oldest_undelivered_at) if t]
    return Backlog(
        undelivered=total.undelivered + backlog.undelivered,
        in_flight=total.in_flight + backlog.in_flight,
        dead=total.dead + backlog.dead,
        oldest_undelivered_at=min(oldest) if oldest else None,
        as_of=min(total.as_of, backlog.as_of),
    )
