"""The throughput line: every `WORKER_THROUGHPUT_SECONDS` and once more at exit, what the worker
did since the last one, over all its tenants:

    msg=throughput seconds=60.0 handled=1200 failed=3 dead_lettered=0 handled_per_second=20.0
    failed_per_second=0.05
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from worker.logs import log
from worker.tally import Tally


class Throughput:
    def __init__(
        self, totals: Callable[[], Tally], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._totals = totals
        self._clock = clock
        self._last = Tally()
        self._since = clock()

    def report(self) -> None:
        """Log what was done since the last report (or since the start)."""
        now, totals, last = self._clock(), self._totals(), self._last
        seconds = max(now - self._since, 1e-9)
        handled, failed = totals.handled - last.handled, totals.failed - last.failed
        log(
            logging.INFO,
            "throughput",
            seconds=round(seconds, 1),
            handled=handled,
            failed=failed,
            dead_lettered=totals.dead_lettered - last.dead_lettered,
            handled_per_second=round(handled / seconds, 2),
            failed_per_second=round(failed / seconds, 2),
        )
        self._last, self._since = dataclasses.replace(totals), now  # a copy: totals may change

    async def every(self, seconds: float) -> None:
        """Report every `seconds`, until cancelled."""
        while True:
            await asyncio.sleep(seconds)
            self.report()
