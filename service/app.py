"""The ASGI application, built by `create_app`; `trigger-api serve` runs it under uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp

from service.auth import Authenticator
from service.clock import now_ms
from service.context import Context
from service.housekeeping import Housekeeping
from service.metrics import Metrics
from service.notifier import Notifier
from service.observed import AccessLog, Observed
from service.openapi import openapi_document
from service.problems import EXCEPTION_HANDLERS
from service.routes import ROUTES
from service.settings import Settings, load_settings
from service.store import open_store
from service.store.observed import ObservedStore


class App(Starlette):
    """Starlette, observed from outside all its layers (`service/observed.py`); `metrics` holds
    its own registry, which `trigger-api serve` serves on the metrics port."""

    def __init__(self, metrics: Metrics, access_log: AccessLog | None, **options: Any) -> None:
        self.metrics = metrics
        self._access_log = access_log
        self.notifier: Notifier | None = None  # the long polls' (set while the app runs)
        super().__init__(**options)

    def stop_waiting(self) -> None:
        """The server is shutting down: long polls answer now rather than wait it out."""
        if self.notifier is not None:
            self.notifier.stop_waiting()

    def build_middleware_stack(self) -> ASGIApp:
        return Observed(super().build_middleware_stack(), self.metrics, self._access_log)


def create_app(settings: Settings | None = None) -> App:
    settings = settings or load_settings()
    document = openapi_document()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        async with open_store(settings) as opened:
            store = ObservedStore(opened, metrics)
            auth = Authenticator(store, ttl=settings.api_key_cache_seconds)

            async def count_claimable(tenant: str, up_to: int) -> int:
                return await store.count_claimable(tenant, up_to=up_to, now=now_ms())

            notifier = app.notifier = Notifier(count_claimable)
            metrics.watch(auth, notifier)
            housekeeping = Housekeeping(store, service=settings.metrics_service)
            housekeeping.start()
            try:
                yield {"ctx": Context(settings, store, auth, notifier, housekeeping, document)}
            finally:
                await housekeeping.close()
                await notifier.close()

    app = App(
        metrics,
        AccessLog() if settings.access_log else None,
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    # Starlette answers `/v1/events/` with a 307 to a URL built from the client's Host header:
    # a path that is not a route is a 404 problem document here, like any other.
    app.router.redirect_slashes = False
    return app
