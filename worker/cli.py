"""`trigger-worker`: read the configuration, install the signal handlers, run the worker."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence

from worker import logs
from worker.config import ConfigError, Settings, load_settings
from worker.handlers import Handler, HandlerError, load_handler
from worker.runner import run
from worker.shutdown import Shutdown


async def _serve(settings: Settings, handler: Handler) -> int:
    shutdown = Shutdown(settings.grace_seconds)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, shutdown.trigger, signal.Signals(signum).name)
    try:
        return await run(settings, handler, shutdown)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv)
        handler = load_handler(settings.handler)
    except (ConfigError, HandlerError) as error:
        print(f"trigger-worker: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.configure(settings.log_level)
    raise SystemExit(asyncio.run(_serve(settings, handler)))
