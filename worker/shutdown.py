"""The stop signal shared by every tenant: SIGTERM/SIGINT start a grace period, a second one
ends it at once (an operator pressing Ctrl-C twice means "now")."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

from worker.logs import log


class Shutdown:
    def __init__(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self.requested = asyncio.Event()
        self.hurried = asyncio.Event()
        self.deadline: float | None = None

    def trigger(self, reason: str = "requested") -> None:
        if not self.requested.is_set():
            self.deadline = time.monotonic() + self.grace_seconds
            log(logging.INFO, "stopping", reason=reason, grace_seconds=self.grace_seconds)
            self.requested.set()
        elif not self.hurried.is_set():
            self.deadline = time.monotonic()
            log(logging.WARNING, "stopping now: grace period cut short", reason=reason)
            self.hurried.set()


async def wait_first(*waits: Awaitable[object], within: float | None = None) -> None:
    """Return as soon as any of `waits` finishes (or `within` seconds pass).

    Coroutines are wrapped in tasks and cancelled on return; futures and tasks passed in belong
    to the caller and are left alone.
    """
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    ours = [task for task, wait in zip(tasks, waits, strict=True) if task is not wait]
    try:
        await asyncio.wait(tasks, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in ours:
            task.cancel()
