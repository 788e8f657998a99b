"""Acknowledge finished events in batches: one request per up to 100 events, not one per event.

A batch goes out when it is full or when the first event in it has waited `linger` seconds, so
a busy worker sends full batches and an idle one still acknowledges within a few milliseconds —
well inside the lease, so the event is not claimed again by someone else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from worker.client import ApiError, TenantApi, Unauthorized, Unavailable
from worker.leases import Lease, report
from worker.logs import log

MAX_BATCH = 100  # the API's limit for POST /v1/events/ack


@dataclass(frozen=True, slots=True)
class _Done:
    lease: Lease
    duration_ms: int


class AckBatcher:
    def __init__(self, api: TenantApi, tenant: str, *, retry_for: float, linger: float) -> None:
        self._api = api
        self._tenant = tenant
        self._retry_for = retry_for  # how long to retry a batch that meets transient errors
        self._linger = linger
        self._pending: list[_Done] = []
        self._ready = asyncio.Event()
        self._closing = False
        self._deadline_cap: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"acks-{self._tenant}")

    def add(self, lease: Lease, duration_ms: int) -> None:
        self._pending.append(_Done(lease, duration_ms))
        self._ready.set()

    async def close(self, deadline: float) -> None:
        """Send what is pending (retrying until `deadline` at most), then stop."""
        self._closing = True
        self._deadline_cap = deadline
        self._ready.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            if len(self._pending) < MAX_BATCH and not self._closing:
                await asyncio.sleep(self._linger)
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
            if not self._pending:
                self._ready.clear()
            if batch:
                await self._send(batch)
            if self._closing and not self._pending:
                return

    async def _send(self, batch: list[_Done]) -> None:
        deadline = time.monotonic() + self._retry_for
        if self._deadline_cap is not None:
            deadline = min(deadline, self._deadline_cap)
        log(logging.DEBUG, "acknowledging", tenant=self._tenant, events=len(batch))
        try:
            _acknowledged, not_found = await self._api.ack(
                [done.lease.id for done in batch], deadline=deadline
            )
        except (ApiError, Unavailable) as error:
            # Unacknowledged events come back when their lease ends: at-least-once, not lost.
            reason = "unauthorized" if isinstance(error, Unauthorized) else "ack_failed"
            log(logging.ERROR, "ack failed", tenant=self._tenant, events=len(batch), error=error)
            for done in batch:
                report(
                    "lost", self._tenant, done.lease, reason=reason, duration_ms=done.duration_ms
                )
            return
        missing = set(not_found)  # every other id in the batch is now delivered
        for done in batch:
            if done.lease.id in missing:
                # Deleted or expired while we worked on it: nothing left to deliver.
                report("lost", self._tenant, done.lease, reason="not_found")
            else:
                report("acked", self._tenant, done.lease, duration_ms=done.duration_ms)
