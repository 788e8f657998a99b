"""Long-polling claims wait here until an event they could claim may be there.

A claim that found nothing waits (holding no store connection). It is woken when this process
stores, releases or redrives events for its tenant (`notify`: one waiter per event), or when the
tenant's watcher finds claimable events in the store: events other service tasks stored, or
whose lease or delay ran out. One watcher per tenant with waiters checks the store every
`RECHECK_SECONDS` and wakes as many waiters as it found events, so an idle tenant costs one
small read a second per task however many claims wait, and an event does not wake a crowd.

When the server begins to shut down (`stop_waiting`), every claim waiting is woken to look once
more and answer, and none waits again: a stop or a deployment does not hold long polls open for
their remaining seconds, and their workers poll another task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable

RECHECK_SECONDS = 1.0
MAX_WAKE = 100  # the most claimable events a watcher counts in one look

# (tenant, up to) -> how many events the tenant could have claimed now, at most `up to`
Count = Callable[[str, int], Awaitable[int]]


class Notifier:
    def __init__(self, count_claimable: Count, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self._count = count_claimable
        self._recheck = recheck_seconds
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self.waiting = 0  # claims waiting now, for the metrics
        self.looks: Counter[str] = Counter()  # store checks made, by tenant

    def notify(self, tenant: str, events: int = 1) -> None:
        """`events` events became claimable for `tenant`: wake that many waiters."""
        waiters = self._waiters.get(tenant)
        while waiters and events > 0:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                events -= 1

    def stop_waiting(self) -> None:
        """Wake every waiting claim; from now on, `wait` returns at once."""
        self._stopping = True
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def wait(self, tenant: str, within: float) -> bool:
        """Wait until woken (True) or `within` seconds pass (False); False at once once the
        server is stopping."""
        if self._stopping:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(tenant, deque())
        waiters.append(waiter)
        if tenant not in self._watchers:
            self._watchers[tenant] = asyncio.create_task(self._watch(tenant))
        self.waiting += 1
        try:
            async with asyncio.timeout(within):
                await waiter
            return True
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1
            with contextlib.suppress(ValueError):
                waiters.remove(waiter)

    async def _watch(self, tenant: str) -> None:
        try:
            while self._waiters.get(tenant):
                await asyncio.sleep(self._recheck)
                waiting = len(self._waiters.get(tenant, ()))
                if not waiting:
                    break
                self.looks[tenant] += 1
                with contextlib.suppress(Exception):  # a failed look is only a missed wake-up
                    self.notify(tenant, await self._count(tenant, min(waiting, MAX_WAKE)))
        finally:
            del self._watchers[tenant]
            if not self._waiters.get(tenant):
                self._waiters.pop(tenant, None)

    async def close(self) -> None:
        for watcher in list(self._watchers.values()):
            watcher.cancel()
        await asyncio.gather(*self._watchers.values(), return_exceptions=True)
