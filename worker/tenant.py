"""One tenant's loop: claim events, run the handler on each, acknowledge or release them.

Only as many events are claimed as there are free handler slots, so every claimed event starts
at once and no lease runs down while an event waits in a local queue. While a handler runs, the
heartbeat keeps its lease; when it fails, the event is released at once with a delay growing with
its attempts, so no lease is held just to wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from service.timings import Timings
from worker.acks import AckBatcher
from worker.backoff import retry_delay
from worker.client import ApiError, TenantApi, Unauthorized, Unavailable
from worker.config import Settings
from worker.decoding import Claimed
from worker.handlers import Handler, current_tenant
from worker.heartbeat import Heartbeat
from worker.leases import Lease, report
from worker.logs import log
from worker.metrics import HANDLER_BUCKETS
from worker.shutdown import Shutdown, wait_first
from worker.tally import Tally

MAX_CLAIM = 100  # the API's limit per claim
ONCE_RETRY_FOR = 60.0  # --once gives up on an unreachable API after this long; a daemon never does
WIND_DOWN_CAP = 10.0  # longest we spend handing back leases and flushing acks when stopping
ACK_LINGER = 0.01


class TenantWorker:
    def __init__(
        self,
        api: TenantApi,
        name: str,
        handler: Handler,
        settings: Settings,
        shutdown: Shutdown,
    ) -> None:
        self._api = api
        self.name = name
        self._handler = handler
        self._settings = settings
        self._shutdown = shutdown
        self.tally = Tally()
        self.handler_seconds = Timings(HANDLER_BUCKETS)  # by (outcome,): handled or failed
        self._running: dict[asyncio.Task[None], Lease] = {}
        self._releasing: set[asyncio.Task[None]] = set()
        self._settled = asyncio.Event()  # a handler or a release finished
        self._releases_done = 0
        self._unstarted: list[Lease] = []  # claimed just as the shutdown began
        self._release_cap = float("inf")  # set when winding down: stop retrying releases then
        self._acks = AckBatcher(api, name, retry_for=settings.lease_seconds, linger=ACK_LINGER)
        self._heartbeat = Heartbeat(api, name, settings.lease_seconds, self.tally)

    async def run(self) -> bool:
        """Work until drained (--once), stopped, or the key is refused; False on an error."""
        current_tenant.set(self.name)  # this task's context: inherited by its handler tasks
        self._acks.start()
        ok = True
        try:
            await self._claim_loop()
        except Unauthorized:
            log(
                logging.ERROR,
                "tenant stopped: the API refused its key (401); check API_KEY(S) for it",
                tenant=self.name,
            )
            ok = False
        except Unavailable as error:
            log(logging.ERROR, "tenant stopped: API unavailable", tenant=self.name, error=error)
            ok = False
        except ApiError as error:
            # Not transient (a 4xx other than 401): retrying the same claim cannot help.
            log(logging.ERROR, "tenant stopped: claim refused", tenant=self.name, error=error)
            ok = False
        finally:
            await self._wind_down()
        return ok

    async def _claim_loop(self) -> None:
        settings = self._settings
        while not self._shutdown.requested.is_set():
            free = settings.concurrency - len(self._running)
            if free <= 0:
                await self._until_settled()
                continue
            releases_before = self._releases_done
            sent = time.monotonic()
            claimed = await self._claim(min(free, MAX_CLAIM))
            if claimed is None:
                return  # shutdown while the claim was in flight
            leases = [Lease.granted(one, sent, settings.lease_seconds) for one in claimed]
            log(
                logging.DEBUG,
                "claimed",
                tenant=self.name,
                asked=min(free, MAX_CLAIM),
                got=len(leases),
            )
            if self._shutdown.requested.is_set():
                self._unstarted.extend(leases)
                return
            for lease in leases:
                self._start(lease)
            if leases:
                continue
            if settings.once:
                # A failed event may become claimable again (with RETRY_MAX_SECONDS=0 at once,
                # until it is dead): claim again when a handler or a release is done. A release
                # that ended while the claim was under way may have been too late for it.
                if self._running or self._releasing:
                    await self._until_settled()
                elif self._releases_done == releases_before:
                    return  # drained: nothing claimable, nothing in flight, nothing released
            elif settings.wait_seconds == 0:
                await wait_first(self._shutdown.requested.wait(), within=settings.poll_interval)

    async def _claim(self, limit: int) -> list[Claimed] | None:
        """Claim, or None if the shutdown began first (the claim is then abandoned)."""
        settings = self._settings
        claim = asyncio.create_task(
            self._api.claim(
                limit=limit,
                lease_seconds=settings.lease_seconds,
                wait_seconds=settings.wait_seconds,
                max_attempts=settings.max_attempts,
                deadline=time.monotonic() + ONCE_RETRY_FOR if settings.once else None,
            )
        )
        await wait_first(claim, self._shutdown.requested.wait())
        if claim.done():
            return claim.result()
        # Cut short a long poll. Should the service have leased events in the instant before,
        # we never see them: they come back when the (short) lease ends — at-least-once holds.
        claim.cancel()
        await asyncio.gather(claim, return_exceptions=True)
        return None

    async def _until_settled(self) -> None:
        self._settled.clear()
        await wait_first(self._settled.wait(), self._shutdown.requested.wait())

    def _start(self, lease: Lease) -> None:
        event = lease.claimed.event
        if event is None:
            self._fail(lease, "unreadable", f"unreadable event: {lease.claimed.problem}")
            return
        task = asyncio.create_task(self._process(lease, event), name=lease.id)
        self._running[task] = lease
        self._heartbeat.watch(lease)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        lease = self._running.pop(task)
        self._heartbeat.forget(lease)
        self._settled.set()
        if not task.cancelled() and task.exception() is not None:
            # A bug of ours, not the handler's (those are caught): say so, the lease will lapse.
            report("lost", self.name, lease, reason="worker_error", error=repr(task.exception()))

    async def _process(self, lease: Lease, event: dict[str, Any]) -> None:
        # Nothing here awaits after the handler (releases run in their own task), so a task
        # the wind-down finds cancelled is exactly a handler that was cut short.
        started = time.monotonic()
        try:
            await self._handler(event)
        except asyncio.CancelledError as error:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the wind-down cut it short: it releases the event
            self._ran("failed", started)
            self._fail(lease, "handler_error", _describe(error), error, _ms_since(started))
        except Exception as error:
            self._ran("failed", started)
            self._fail(lease, "handler_error", _describe(error), error, _ms_since(started))
        else:
            self._ran("handled", started)
            self.tally.handled += 1
            self._acks.add(lease, _ms_since(started))

    def _ran(self, outcome: str, started: float) -> None:
        self.handler_seconds.observe((outcome,), time.monotonic() - started)

    def _fail(
        self,
        lease: Lease,
        reason: str,
        error: str,
        exc: BaseException | None = None,
        duration_ms: int | None = None,
    ) -> None:
        """Log the failure once (with its traceback) and release the event with a delay."""
        self.tally.failed += 1
        ours = lease.lost is None  # else someone else has the event now: no release, no retry
        last = ours and lease.attempts >= self._settings.max_attempts
        # On the last attempt, no delay: the next claim makes the event dead, and a delay would
        # only keep it out of the dead list for a while.
        delay = 0 if last else retry_delay(lease.attempts, self._settings.retry_max_seconds)
        report(
            "failed",
            self.name,
            lease,
            exc,
            reason=reason,
            error=error,
            duration_ms=duration_ms,
            retry_in=delay if ours and not last else None,
            dead_letter="true" if last else None,
        )
        if not ours:
            report("lost", self.name, lease, reason=lease.lost)
            return
        if last:
            self.tally.dead_lettered += 1
        task = asyncio.create_task(self._release(lease, reason, delay, error), name=lease.id)
        self._releasing.add(task)
        task.add_done_callback(self._released)

    def _released(self, task: asyncio.Task[None]) -> None:
        self._releasing.discard(task)
        self._releases_done += 1
        self._settled.set()

    async def _release(
        self, lease: Lease, reason: str, delay_seconds: int = 0, error: str | None = None
    ) -> None:
        # The token makes a late release harmless (lease_lost if someone claimed the event since),
        # but after a whole lease of transient errors the event is claimable again anyway.
        deadline = min(time.monotonic() + self._settings.lease_seconds, self._release_cap)
        try:
            outcome = await self._api.release(
                lease.id, lease.token, delay_seconds=delay_seconds, error=error, deadline=deadline
            )
        except (ApiError, Unavailable) as failure:
            # The lease lapses on its own and the event comes back: late, but not lost for good.
            report("lost", self.name, lease, reason=f"release_failed:{reason}", error=failure)
        else:
            if outcome == "released":
                report("released", self.name, lease, reason=reason)
            else:
                report("lost", self.name, lease, reason=outcome)

    async def _wind_down(self) -> None:
        """Let running handlers finish within the grace period (their leases still extended),
        then hand back every lease still held and send the pending acknowledgements."""
        grace_end = self._shutdown.deadline or time.monotonic() + self._settings.grace_seconds
        while self._running and not self._shutdown.hurried.is_set():
            remaining = grace_end - time.monotonic()
            if remaining <= 0:
                break
            self._settled.clear()
            await wait_first(self._settled.wait(), self._shutdown.hurried.wait(), within=remaining)
        cut_short = list(self._running.items())
        for task, _lease in cut_short:
            task.cancel()
        self._release_cap = time.monotonic() + WIND_DOWN_CAP
        if cut_short:
            # A handler that swallows the cancellation is not waited for forever.
            await asyncio.wait([task for task, _lease in cut_short], timeout=WIND_DOWN_CAP)
        await self._heartbeat.close()
        for task, lease in cut_short:
            if not task.done():
                report("lost", self.name, lease, reason="handler_ignored_cancellation")
        unfinished = [
            lease for task, lease in cut_short if task.cancelled() and lease.lost is None
        ] + self._unstarted
        await asyncio.gather(
            *(self._release(lease, "shutdown") for lease in unfinished), *self._releasing
        )
        await self._acks.close(self._release_cap)


def _describe(error: BaseException) -> str:
    """ "Type: message", as the event's `last_error` and in the log."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
