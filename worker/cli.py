"""`trigger-worker`: read the configuration, install the signal handlers, run the worker."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence

from prometheus_client import disable_created_metrics, start_http_server

from worker import logs
from worker.config import ConfigError, Settings, load_settings
from worker.handlers import Handler, HandlerError, load_handler
from worker.metrics import WorkerMetrics
from worker.runner import run
from worker.shutdown import Shutdown


async def _serve(settings: Settings, handler: Handler, metrics: WorkerMetrics) -> int:
    shutdown = Shutdown(settings.grace_seconds)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, shutdown.trigger, signal.Signals(signum).name)
    try:
        return await run(settings, handler, shutdown, metrics)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv)
        handler = load_handler(settings.handler)
        metrics = WorkerMetrics()
        if settings.metrics_port is not None:
            _serve_metrics(metrics, settings.metrics_host, settings.metrics_port)
    except (ConfigError, HandlerError) as error:
        print(f"trigger-worker: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.configure(settings.log_level)
    raise SystemExit(asyncio.run(_serve(settings, handler, metrics)))


def _serve_metrics(metrics: WorkerMetrics, host: str, port: int) -> None:
    """Serve the metrics from prometheus_client's thread, bound before the worker starts."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` twin per series
    try:
        start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as error:
        raise ConfigError(
            f"cannot serve metrics on {host}:{port} (--metrics-port/WORKER_METRICS_PORT,"
            f" --metrics-host/WORKER_METRICS_HOST): {error.strerror or error}"
        ) from None
