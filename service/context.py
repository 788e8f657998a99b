"""What the routes share for the life of the process, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.auth import Authenticator
from service.cursors import CursorCodec
from service.housekeeping import Housekeeping
from service.notifier import Notifier
from service.settings import Settings
from service.store.base import Store


@dataclass(slots=True)
class Context:
    settings: Settings
    store: Store
    auth: Authenticator
    notifier: Notifier
    housekeeping: Housekeeping
    openapi: bytes
    _cursors: CursorCodec | None = field(default=None, init=False)

    async def cursor_codec(self) -> CursorCodec:
        # Fetched on first use rather than at start-up, so the service starts (and /ready
        # reports 503) while the store is down.
        if self._cursors is None:
            self._cursors = CursorCodec(await self.store.shared_secret())
        return self._cursors
