"""Handlers the worker tests load by `module:function`, in real `trigger-worker` processes.

They record what they saw by appending `<pid> <event id>` lines to the file named by
`WORKER_TEST_RECORD` (O_APPEND: lines from several processes never interleave).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any


def _record(event: dict[str, Any]) -> None:
    fd = os.open(os.environ["WORKER_TEST_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{os.getpid()} {event['id']}\n".encode())
    finally:
        os.close(fd)


async def record(event: dict[str, Any]) -> None:
    _record(event)
    await asyncio.sleep(float(os.environ.get("WORKER_TEST_SLEEP", "0")))


async def fail(event: dict[str, Any]) -> None:
    _record(event)
    raise RuntimeError("this handler refuses every event")


def not_async(event: dict[str, Any]) -> None:
    """A plain function: the worker must refuse it as a handler."""
