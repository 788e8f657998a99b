"""Event handlers: the built-in ones and loading one from a `module:function` spec.

A handler is `async def handle(event: dict) -> None`, called with the event object of the API;
returning means done (the event is acknowledged), raising means failed (it is released for a
later retry). The tenant an event belongs to is not part of the event object, so the runner puts
it in `current_tenant` for handlers that need it.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import msgspec

from worker.logs import log

Handler = Callable[[dict[str, Any]], Awaitable[None]]

current_tenant: ContextVar[str] = ContextVar("current_tenant", default="")


async def log_event(event: dict[str, Any]) -> None:
    """The default: log each event (tenant, id and payload) at INFO, one line per event."""
    log(
        logging.INFO,
        "processing event",
        tenant=current_tenant.get(),
        event=event.get("id"),
        payload=msgspec.json.encode(event.get("payload")).decode(),
    )


async def noop(event: dict[str, Any]) -> None:
    """Do nothing: for benchmarks, where only the delivery machinery should cost time."""


class HandlerError(ValueError):
    pass


def load_handler(spec: str) -> Handler:
    """Import `module:function`; raise `HandlerError` with a one-line reason if it is unusable."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise HandlerError(f"handler must look like module:function, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure of user code is a config error
        raise HandlerError(f"cannot import handler module {module_name!r}: {exc}") from None
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise HandlerError(f"module {module_name!r} has no attribute {attribute!r}")
    if not inspect.iscoroutinefunction(target):
        raise HandlerError(f"handler {spec!r} must be an async function (async def)")
    handler: Handler = target
    return handler
