"""One tenant's loop: claim events, run the handler on each, acknowledge or release them.

Only as many events are claimed as there are free handler slots, so every claimed event starts
at once and no lease runs down while an event waits in a local queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from worker.acks import AckBatcher
from worker.backoff import Backoff
from worker.client import ApiError, TenantApi, Unauthorized, Unavailable
from worker.config import Settings
from worker.handlers import Handler, current_tenant
from worker.leases import Lease, report, safety_margin
from worker.logs import log
from worker.shutdown import Shutdown, wait_first

MAX_CLAIM = 100  # the API's limit per claim
ONCE_RETRY_FOR = 60.0  # --once gives up on an unreachable API after this long; a daemon never does
WIND_DOWN_CAP = 10.0  # longest we spend handing back leases and flushing acks when stopping
ACK_LINGER = 0.01
# Failed events are held (still leased) before they are released, doubling per attempt, so a
# poison event comes back ever more slowly instead of spinning; the lease end bounds the hold.
HOLD_BACKOFF = Backoff(base=1.0, cap=600.0)


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
        self._margin = safety_margin(settings.lease_seconds)
        self._running: dict[asyncio.Task[None], Lease] = {}
        self._held: dict[asyncio.Task[None], Lease] = {}
        self._slot_freed = asyncio.Event()
        self._release_held_now = asyncio.Event()
        self._failed: set[str] = set()  # --once only: ids whose handler failed in this run
        self._unstarted: list[Lease] = []  # claimed just as the shutdown began
        self._release_cap = float("inf")  # set when winding down: stop retrying releases then
        self._acks = AckBatcher(api, name, retry_for=settings.lease_seconds, linger=ACK_LINGER)

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
                await self._until_slot_freed()
                continue
            sent = time.monotonic()
            events = await self._claim(min(free, MAX_CLAIM))
            if events is None:
                return  # shutdown while the claim was in flight
            leases = [Lease(event, sent + settings.lease_seconds, self._margin) for event in events]
            log(
                logging.DEBUG,
                "claimed",
                tenant=self.name,
                asked=min(free, MAX_CLAIM),
                got=len(events),
            )
            if self._shutdown.requested.is_set():
                self._unstarted.extend(leases)
                return
            for lease in leases:
                self._start(lease)
            if leases:
                continue
            if settings.once:
                if not self._running:
                    return  # drained: nothing claimable and nothing in flight
                await self._until_slot_freed()  # a failure may make an event claimable again
            elif settings.wait_seconds == 0:
                await wait_first(self._shutdown.requested.wait(), within=settings.poll_interval)

    async def _claim(self, limit: int) -> list[dict[str, Any]] | None:
        """Claim, or None if the shutdown began first (the claim is then abandoned)."""
        settings = self._settings
        claim = asyncio.create_task(
            self._api.claim(
                limit=limit,
                lease_seconds=settings.lease_seconds,
                wait_seconds=settings.wait_seconds,
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

    async def _until_slot_freed(self) -> None:
        self._slot_freed.clear()
        await wait_first(self._slot_freed.wait(), self._shutdown.requested.wait())

    def _start(self, lease: Lease) -> None:
        if lease.id in self._failed:
            # --once tries an event once per run: one that failed and came back is only held.
            self._hold(lease, "failed_earlier")
            return
        task = asyncio.create_task(self._process(lease), name=lease.id)
        self._running[task] = lease
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        lease = self._running.pop(task)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            # A bug of ours, not the handler's (those are caught): say so, the lease will lapse.
            report("lost", self.name, lease, reason="worker_error", error=repr(task.exception()))

    async def _process(self, lease: Lease) -> None:
        # Nothing here awaits after the handler (releases run in their own task), so a task
        # the wind-down finds cancelled is exactly a handler that was cut short.
        started = time.monotonic()
        try:
            async with asyncio.timeout(lease.handler_deadline - started) as limit:
                await self._handler(lease.event)
        except Exception as error:
            duration_ms = round((time.monotonic() - started) * 1000)
            if isinstance(error, TimeoutError) and limit.expired():
                # The lease is about to end: stop the handler rather than let a second worker
                # get the event while this one still runs it, and hand it back in time.
                report("failed", self.name, lease, reason="lease_timeout", duration_ms=duration_ms)
                if self._settings.once:
                    self._failed.add(lease.id)
                self._hold(lease, "lease_timeout")  # no time left to hold: released at once
                return
            if self._settings.once:
                self._failed.add(lease.id)
            hold = self._hold(lease, "handler_error")
            report(
                "failed",
                self.name,
                lease,
                reason="handler_error",
                error=f"{type(error).__name__}: {error}",
                duration_ms=duration_ms,
                release_in=round(hold, 3),
            )
        else:
            self._acks.add(lease, round((time.monotonic() - started) * 1000))

    def _hold(self, lease: Lease, reason: str) -> float:
        """Keep the lease a while before releasing the event; return for how many seconds."""
        seconds = lease.handler_deadline - time.monotonic()
        if not self._settings.once:  # --once holds to the end of the run (or of the lease)
            seconds = min(seconds, HOLD_BACKOFF.delay(max(lease.attempts - 1, 0)))
        seconds = max(0.0, seconds)
        task = asyncio.create_task(self._release_after(lease, seconds, reason), name=lease.id)
        self._held[task] = lease
        task.add_done_callback(self._held.pop)
        return seconds

    async def _release_after(self, lease: Lease, seconds: float, reason: str) -> None:
        await wait_first(self._release_held_now.wait(), within=seconds)
        await self._release(lease, reason)

    async def _release(self, lease: Lease, reason: str) -> None:
        # Never retry past the lease: by then the event may be someone else's, and a release
        # would end *their* lease.
        deadline = min(lease.expires, self._release_cap)
        try:
            outcome = await self._api.release(lease.id, deadline=deadline)
        except (ApiError, Unavailable) as error:
            # The lease lapses on its own and the event comes back: late, but not lost for good.
            report("lost", self.name, lease, reason=f"release_failed:{reason}", error=error)
        else:
            if outcome == "released":
                report("released", self.name, lease, reason=reason)
            else:
                report("lost", self.name, lease, reason=outcome)

    async def _wind_down(self) -> None:
        """Let running handlers finish within the grace period, then hand back every lease
        still held and send the pending acknowledgements."""
        grace_end = self._shutdown.deadline or time.monotonic() + self._settings.grace_seconds
        while self._running and not self._shutdown.hurried.is_set():
            remaining = grace_end - time.monotonic()
            if remaining <= 0:
                break
            self._slot_freed.clear()
            await wait_first(
                self._slot_freed.wait(), self._shutdown.hurried.wait(), within=remaining
            )
        cut_short = list(self._running.items())
        for task, _lease in cut_short:
            task.cancel()
        self._release_cap = time.monotonic() + WIND_DOWN_CAP
        if cut_short:
            # A handler that swallows the cancellation is not waited for forever.
            await asyncio.wait([task for task, _lease in cut_short], timeout=WIND_DOWN_CAP)
        for task, lease in cut_short:
            if not task.done():
                report("lost", self.name, lease, reason="handler_ignored_cancellation")
        unfinished = [lease for task, lease in cut_short if task.cancelled()] + self._unstarted
        self._release_held_now.set()
        await asyncio.gather(
            *(self._release(lease, "shutdown") for lease in unfinished), *self._held
        )
        await self._acks.close(self._release_cap)
