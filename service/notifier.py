"""Wakes long-polling claims when this process stores or releases an event for their tenant.

Other service tasks cannot reach these waiters, so a waiting claim also re-checks the store on
its own every `RECHECK_SECONDS`. Waiting holds no store connection and no lock.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class Notifier:
    def __init__(self) -> None:
        self._waiters: defaultdict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self.waiting = 0  # claims in `wait` now; read by the metrics (from another thread)

    def notify(self, tenant: str) -> None:
        for waiter in self._waiters.pop(tenant, ()):
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, tenant: str, within: float) -> None:
        """Return when `notify(tenant)` is called or `within` seconds pass, whichever is first."""
        waiter = asyncio.get_running_loop().create_future()
        waiters = self._waiters[tenant]
        waiters.add(waiter)
        self.waiting += 1
        try:
            await asyncio.wait_for(waiter, within)
        except TimeoutError:
            pass
        finally:
            self.waiting -= 1
            waiters.discard(waiter)
            if not waiters and self._waiters.get(tenant) is waiters:
                del self._waiters[tenant]
