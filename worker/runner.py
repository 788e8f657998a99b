"""The worker process: every tenant in one task group, over one shared HTTP connection pool."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx

from worker.backoff import Backoff
from worker.client import CONNECT_TIMEOUT, REQUEST_TIMEOUT, TenantApi
from worker.config import Settings
from worker.handlers import Handler
from worker.logs import log
from worker.metrics import WorkerMetrics
from worker.shutdown import Shutdown
from worker.tally import Tally
from worker.tenant import TenantWorker
from worker.throughput import Throughput

RETRY_BACKOFF = Backoff(base=0.2, cap=10.0)
HEARTBEAT_SECONDS = 5.0


async def _beat(path: str | None) -> None:
    """Touch `path` every few seconds: a container health check reads its age to tell a
    working worker from a wedged one (its event loop no longer turns)."""
    if path is None:
        return
    heartbeat = Path(path)
    while True:
        await asyncio.to_thread(heartbeat.touch)
        await asyncio.sleep(HEARTBEAT_SECONDS)


async def run(
    settings: Settings,
    handler: Handler,
    shutdown: Shutdown,
    metrics: WorkerMetrics | None = None,
) -> int:
    """Run until drained (--once), stopped by `shutdown`, or no tenant can go on.

    Returns the exit status: 0, or 1 when no stop was requested and a tenant stopped on an error
    (its key was refused, or the API stayed unreachable in --once mode) or, with --once, a
    handler failed. The last lines logged say what was done: the throughput since the last such
    line, then the totals.
    """
    log(
        logging.INFO,
        "worker starting",
        api_url=settings.api_url,
        tenants=",".join(tenant.name for tenant in settings.tenants),
        concurrency=settings.concurrency,
        lease_seconds=settings.lease_seconds,
        wait_seconds=settings.wait_seconds,
        max_attempts=settings.max_attempts,
        retry_max_seconds=settings.retry_max_seconds,
        once=settings.once,
    )
    # Enough connections for a claim, an ack batch and a burst of releases per tenant.
    limits = httpx.Limits(
        max_connections=min(200, len(settings.tenants) * (settings.concurrency + 2)),
        max_keepalive_connections=4 * len(settings.tenants),
    )
    timeout = httpx.Timeout(REQUEST_TIMEOUT, connect=CONNECT_TIMEOUT)
    async with httpx.AsyncClient(base_url=settings.api_url, limits=limits, timeout=timeout) as http:
        workers = [
            TenantWorker(
                TenantApi(http, tenant, RETRY_BACKOFF), tenant.name, handler, settings, shutdown
            )
            for tenant in settings.tenants
        ]
        if metrics is not None:
            metrics.tenants = workers
        throughput = Throughput(lambda: sum((worker.tally for worker in workers), Tally()))
        background = [asyncio.create_task(_beat(settings.heartbeat_file))]
        if settings.throughput_seconds > 0:
            background.append(asyncio.create_task(throughput.every(settings.throughput_seconds)))
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(worker.run(), name=worker.name) for worker in workers]
        finally:
            for task in background:
                task.cancel()
    throughput.report()
    tally = sum((worker.tally for worker in workers), Tally())
    healthy = all(task.result() for task in tasks) and not (settings.once and tally.failed)
    status = 0 if healthy or shutdown.requested.is_set() else 1
    log(
        logging.INFO,
        "worker stopped",
        exit_status=status,
        handled=tally.handled,
        failed=tally.failed,
        dead_lettered=tally.dead_lettered,
        lease_extensions=tally.extended,
        leases_lost=tally.leases_lost,
    )
    return status
