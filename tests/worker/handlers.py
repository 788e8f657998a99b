"""Handlers the worker tests load by `module:function`, in real `trigger-worker` processes.

They record what they saw by appending `<pid> <event id>` lines to the file named by
`WORKER_TEST_RECORD` (O_APPEND: lines from several processes never interleave).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any


def _record(event: dict[str, Any], *more: str) -> None:
    fd = os.open(os.environ["WORKER_TEST_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (" ".join([str(os.getpid()), event["id"], *more]) + "\n").encode())
    finally:
        os.close(fd)


async def record(event: dict[str, Any]) -> None:
    _record(event)
    await asyncio.sleep(float(os.environ.get("WORKER_TEST_SLEEP", "0")))


async def fail(event: dict[str, Any]) -> None:
    _record(event)
    raise RuntimeError("this handler refuses every event")


async def refuse_poison(event: dict[str, Any]) -> None:
    """Fail on events whose payload says `"poison": true`; take the others."""
    _record(event)
    if event["payload"].get("poison"):
        raise ValueError(f"poison event {event['id']}")


async def sleep_then_refuse_poison(event: dict[str, Any]) -> None:
    """Take the payload's `sleep` seconds (a lease may need extending meanwhile), then act as
    `refuse_poison`."""
    await asyncio.sleep(float(event["payload"].get("sleep", 0)))
    await refuse_poison(event)


async def record_amount(event: dict[str, Any]) -> None:
    """Record how the payload's `amount` arrived: `<pid> <id> <repr of the amount>`."""
    _record(event, repr(event["payload"].get("amount")))


def not_async(event: dict[str, Any]) -> None:
    """A plain function: the worker must refuse it as a handler."""
