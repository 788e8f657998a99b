"""Keep the leases of running handlers alive, so a slow handler is never run twice while its
worker lives.

A lease with a third of it left is extended by the configured lease again, as often as needed.
One timer per tenant, not one per event: it fires when the first lease is due, extends every
lease that is due, and is set again for the next one. An event handled in a few milliseconds
costs a set insertion and removal.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from worker.client import ApiError, ExtendOutcome, Refusal, TenantApi, Unavailable
from worker.leases import Lease
from worker.logs import log
from worker.tally import Tally

# After an extension met only transient errors, try again this much later: a late extension is
# still granted if nobody claimed the event in between (and refused with lease_lost if someone did).
RETRY_SECONDS = 1.0


class Heartbeat:
    def __init__(
        self,
        api: TenantApi,
        tenant: str,
        lease_seconds: int,
        tally: Tally,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._tenant = tenant
        self._lease_seconds = lease_seconds
        self._tally = tally
        self._clock = clock  # tests give a virtual one; the timer itself runs on the loop's
        self._leases: set[Lease] = set()
        self._extending: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def watch(self, lease: Lease) -> None:
        """Extend `lease` whenever it is due, until `forget`."""
        self._leases.add(lease)
        self._wake_at(lease.renew_at)

    def forget(self, lease: Lease) -> None:
        self._leases.discard(lease)  # its timer, if any, finds nothing to do

    @property
    def in_flight(self) -> int:
        """Extensions waiting for an answer."""
        return len(self._extending)

    def sweep(self) -> None:
        """Start an extension of every lease that is due; set the timer for the next one."""
        self._timer, self._timer_at = None, math.inf
        now = self._clock()
        next_at = math.inf
        for lease in self._leases:
            if lease.renew_at <= now:
                lease.renew_at = math.inf  # until the extension answers
                task = asyncio.create_task(self._extend(lease), name=f"extend-{lease.id}")
                self._extending.add(task)
                task.add_done_callback(self._extending.discard)
            else:
                next_at = min(next_at, lease.renew_at)
        self._wake_at(next_at)

    async def close(self) -> None:
        """Stop: no more extensions (whatever is still running gives its lease up)."""
        if self._timer is not None:
            self._timer.cancel()
        self._leases.clear()
        for task in self._extending:
            task.cancel()
        await asyncio.gather(*self._extending, return_exceptions=True)

    def _wake_at(self, when: float) -> None:
        if when >= self._timer_at or when == math.inf:
            return
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, when - self._clock())
        self._timer = asyncio.get_running_loop().call_later(delay, self.sweep)
        self._timer_at = when

    async def _extend(self, lease: Lease) -> None:
        sent = self._clock()
        outcome: ExtendOutcome | Unavailable | ApiError
        try:
            outcome = await self._api.extend(
                lease.id, lease.token, lease_seconds=self._lease_seconds, deadline=lease.expires
            )
        except (Unavailable, ApiError) as error:
            outcome = error
        if outcome == "extended":
            lease.renewed(sent, self._lease_seconds)
            self._tally.extended += 1
            log(logging.DEBUG, "lease extended", **self._about(lease))
        if lease not in self._leases:
            return  # its handler finished meanwhile: whatever the answer, nothing more to do
        if isinstance(outcome, Unavailable):
            log(logging.WARNING, "lease extension failed", **self._about(lease), error=outcome)
            lease.renew_at = self._clock() + RETRY_SECONDS
        elif isinstance(outcome, ApiError):
            # Final (a 401, or an answer outside the contract): retrying cannot help. The lease
            # runs out; if the handler is still running then, the event may run twice.
            log(logging.ERROR, "lease extension refused", **self._about(lease), error=outcome)
            self.forget(lease)
            return
        elif outcome != "extended":
            self._lost(lease, outcome)
            return
        self._wake_at(lease.renew_at)

    def _lost(self, lease: Lease, outcome: Refusal) -> None:
        # The handler is left to finish: cancelling it half-way could leave its side effects
        # half done, and the event is handled again elsewhere anyway. Its ack is still allowed.
        lease.lost = outcome
        if outcome == "lease_lost":
            self._tally.leases_lost += 1
        self.forget(lease)
        log(logging.WARNING, "lease lost", **self._about(lease), reason=outcome)

    def _about(self, lease: Lease) -> dict[str, Any]:
        return {
            "tenant": self._tenant,
            "event": lease.id,
            "attempts": lease.attempts,
            "extensions": lease.extensions,
        }
