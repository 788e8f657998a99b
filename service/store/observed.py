"""A store that times and counts the calls of another: latency and errors by operation, and the
events each call created, claimed, acknowledged, released, made dead or redrove.

It wraps whichever adapter the settings chose, in the app's lifespan, so the adapters stay free of
metrics and the routes of counting: the store's answers already say what happened.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from service.metrics import Metrics
from service.store.base import (
    ApiKey,
    Backlog,
    Claim,
    Event,
    ExtendOutcome,
    IdempotencyRecord,
    NewEvent,
    RedriveOutcome,
    ReleaseOutcome,
    Status,
    Store,
    StoreUnavailable,
)

T = TypeVar("T")


class ObservedStore(Store):
    def __init__(self, store: Store, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics
        self._events = metrics.events

    async def _timed(self, operation: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await call
        except (StoreUnavailable, TimeoutError):
            self._metrics.store_errors.labels(operation, "unavailable").inc()
            raise
        except Exception:
            self._metrics.store_errors.labels(operation, "other").inc()
            raise
        finally:
            self._metrics.store_calls.observe((operation,), time.perf_counter() - started)

    async def start(self) -> None:
        await self._store.start()

    async def close(self) -> None:
        await self._store.close()

    async def ping(self) -> None:
        await self._timed("ping", self._store.ping())

    async def insert_events(
        self,
        tenant: str,
        events: Sequence[NewEvent],
        *,
        idempotency: IdempotencyRecord | None,
        now: int,
    ) -> IdempotencyRecord | None:
        held = await self._timed(
            "insert_events",
            self._store.insert_events(tenant, events, idempotency=idempotency, now=now),
        )
        if held is None:
            self._events["created"] += len(events)
        return held

    async def get_event(self, tenant: str, event_id: str, *, now: int) -> Event | None:
        return await self._timed("get_event", self._store.get_event(tenant, event_id, now=now))

    async def list_events(
        self, tenant: str, *, status: Status | None, limit: int, after: str | None, now: int
    ) -> tuple[list[Event], bool]:
        return await self._timed(
            "list_events",
            self._store.list_events(tenant, status=status, limit=limit, after=after, now=now),
        )

    async def ack_events(
        self, tenant: str, event_ids: Sequence[str], *, now: int, expires_at: int
    ) -> set[str]:
        found = await self._timed(
            "ack_events",
            self._store.ack_events(tenant, event_ids, now=now, expires_at=expires_at),
        )
        self._events["acked"] += len(found)
        return found

    async def delete_event(self, tenant: str, event_id: str, *, now: int) -> bool:
        return await self._timed(
            "delete_event", self._store.delete_event(tenant, event_id, now=now)
        )

    async def claim_events(
        self, tenant: str, *, limit: int, lease_until: int, max_attempts: int, now: int
    ) -> Claim:
        claim = await self._timed(
            "claim_events",
            self._store.claim_events(
                tenant, limit=limit, lease_until=lease_until, max_attempts=max_attempts, now=now
            ),
        )
        self._events["claimed"] += len(claim.leased)
        self._events["dead_lettered"] += len(claim.dead)
        return claim

    async def count_claimable(self, tenant: str, *, up_to: int, now: int) -> int:
        return await self._timed(
            "count_claimable", self._store.count_claimable(tenant, up_to=up_to, now=now)
        )

    async def release_event(
        self,
        tenant: str,
        event_id: str,
        *,
        token: str,
        available_at: int,
        error: str | None,
        now: int,
    ) -> ReleaseOutcome:
        outcome = await self._timed(
            "release_event",
            self._store.release_event(
                tenant, event_id, token=token, available_at=available_at, error=error, now=now
            ),
        )
        if outcome == "released":
            self._events["released"] += 1
        return outcome

    async def extend_lease(
        self, tenant: str, event_id: str, *, token: str, lease_until: int, now: int
    ) -> ExtendOutcome:
        return await self._timed(
            "extend_lease",
            self._store.extend_lease(
                tenant, event_id, token=token, lease_until=lease_until, now=now
            ),
        )

    async def redrive_events(
        self, tenant: str, event_ids: Sequence[str], *, now: int
    ) -> dict[str, RedriveOutcome]:
        outcomes = await self._timed(
            "redrive_events", self._store.redrive_events(tenant, event_ids, now=now)
        )
        self._events["redriven"] += sum(outcome == "redriven" for outcome in outcomes.values())
        return outcomes

    async def backlog(self, tenant: str, *, now: int) -> Backlog:
        return await self._timed("backlog", self._store.backlog(tenant, now=now))

    async def sweep_expired(self, tenant: str, *, now: int) -> int:
        return await self._timed("sweep_expired", self._store.sweep_expired(tenant, now=now))

    async def take_lease(self, name: str, holder: str, until: int, *, now: int) -> bool:
        return await self._timed("take_lease", self._store.take_lease(name, holder, until, now=now))

    async def put_api_key(self, key: ApiKey) -> None:
        await self._timed("put_api_key", self._store.put_api_key(key))

    async def get_api_key(self, key_hash: str) -> ApiKey | None:
        return await self._timed("get_api_key", self._store.get_api_key(key_hash))

    async def list_api_keys(self) -> list[ApiKey]:
        return await self._timed("list_api_keys", self._store.list_api_keys())

    async def revoke_api_key(self, key_hash: str) -> bool:
        return await self._timed("revoke_api_key", self._store.revoke_api_key(key_hash))

    async def shared_secret(self) -> bytes:
        return await self._timed("shared_secret", self._store.shared_secret())
