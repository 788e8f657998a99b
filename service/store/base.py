"""The storage port. Every adapter implements `Store`; `tests/store/test_contract.py` proves it.

Every call names the tenant it acts for and the current time (`now`, ms since the epoch), so
expiry and leases are decided by one clock the caller owns — and tests can move it.
"""

from __future__ import annotations

import abc
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Self

Status = Literal["undelivered", "delivered", "dead"]
# What a lease operation found, when it did not apply: the event is absent (or expired), the
# token is no longer current, or the event was delivered.
Refusal = Literal["not_found", "lease_lost", "already_delivered"]
ReleaseOutcome = Literal["released"] | Refusal
ExtendOutcome = Literal["extended"] | Refusal
RedriveOutcome = Literal["redriven", "not_found", "already_delivered"]


class StoreError(Exception):
    """Base of every error a store raises on purpose."""


class StoreUnavailable(StoreError):
    """The store failed or timed out; the caller may retry later (HTTP 503)."""


class DuplicateEventId(StoreError):
    """An event id already exists; the whole write was rolled back."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    id: str
    created_at: int
    payload: bytes  # the exact JSON text of an object, as the producer sent it
    expires_at: int  # when it expires if never delivered


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    created_at: int
    status: Status
    payload: bytes
    delivered_at: int | None
    attempts: int
    lease_expires_at: int | None  # None unless a lease holds at `now`
    available_at: int | None = None  # None unless a delayed release holds it back at `now`
    last_error: str | None = None
    lease_token: str | None = None  # only in a claim's answer


@dataclass(frozen=True, slots=True)
class Claim:
    """What one claim did: the events it leased (oldest first, each with its lease token) and
    the ids of the events it found at `max_attempts` and made dead instead."""

    leased: list[Event]
    dead: list[str]


@dataclass(frozen=True, slots=True)
class Backlog:
    """A tenant's backlog (`GET /v1/stats`): the counts were true at `as_of`; the oldest
    undelivered event's `created_at` is exact."""

    undelivered: int
    in_flight: int
    dead: int
    oldest_undelivered_at: int | None
    as_of: int


def new_lease_token() -> str:
    """An opaque name for one lease: 128 random bits, never shown outside a claim's answer."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The answer first given to a request with an Idempotency-Key."""

    key: str
    body_hash: str
    status: int
    response: bytes
    expires_at: int
    location: str | None = None  # the answer's Location header, when it had one


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_hash: str  # SHA-256 hex of the key; the key itself is never stored
    tenant: str
    active: bool
    created_at: int


class Store(abc.ABC):
    """Events and API keys. Open with `async with store:` (or `start()`, then `close()`)."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections and clients."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release everything `start` opened."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the store answers."""

    # -- events -------------------------------------------------------------------------------

    @abc.abstractmethod
    async def insert_events(
        self,
        tenant: str,
        events: Sequence[NewEvent],
        *,
        idempotency: IdempotencyRecord | None,
        now: int,
    ) -> IdempotencyRecord | None:
        """Store every event and the idempotency record in one atomic write.

        If the tenant already holds an unexpired record under the same key, nothing is written
        and that record is returned instead. Returns None when the write happened.
        """

    @abc.abstractmethod
    async def get_event(self, tenant: str, event_id: str, *, now: int) -> Event | None: ...

    @abc.abstractmethod
    async def list_events(
        self, tenant: str, *, status: Status | None, limit: int, after: str | None, now: int
    ) -> tuple[list[Event], bool]:
        """One page of unexpired events and whether more follow.

        With a status, oldest first (ids above `after`); without, newest first (ids below).
        """

    @abc.abstractmethod
    async def ack_events(
        self, tenant: str, event_ids: Sequence[str], *, now: int, expires_at: int
    ) -> set[str]:
        """Mark events delivered (ending any lease; dead ones too); returns the ids found,
        delivered already or now. A newly delivered event expires at `expires_at`."""

    @abc.abstractmethod
    async def delete_event(self, tenant: str, event_id: str, *, now: int) -> bool: ...

    @abc.abstractmethod
    async def claim_events(
        self, tenant: str, *, limit: int, lease_until: int, max_attempts: int, now: int
    ) -> Claim:
        """Lease up to `limit` claimable events (undelivered, no unexpired lease, available),
        oldest first: each gets a new lease token and 1 more attempt. An event found already
        claimed `max_attempts` times is made dead instead of leased."""

    @abc.abstractmethod
    async def count_claimable(self, tenant: str, *, up_to: int, now: int) -> int:
        """How many events a claim could lease now, counting no further than `up_to`."""

    @abc.abstractmethod
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
        """End the lease named by `token`: claimable again from `available_at` (0: at once),
        keeping `error` as the event's last error when given."""

    @abc.abstractmethod
    async def extend_lease(
        self, tenant: str, event_id: str, *, token: str, lease_until: int, now: int
    ) -> ExtendOutcome:
        """Move the end of the lease named by `token` to `lease_until`."""

    @abc.abstractmethod
    async def redrive_events(
        self, tenant: str, event_ids: Sequence[str], *, now: int
    ) -> dict[str, RedriveOutcome]:
        """Make dead events claimable again with 0 attempts; undelivered ones are left as they
        are (and count as redriven)."""

    @abc.abstractmethod
    async def backlog(self, tenant: str, *, now: int) -> Backlog:
        """The tenant's backlog, at O(1) cost whatever its size."""

    @abc.abstractmethod
    async def sweep_expired(self, tenant: str, *, now: int) -> int:
        """Delete the tenant's expired undelivered and dead events, counting them out of the
        backlog; how many went."""

    @abc.abstractmethod
    async def take_lease(self, name: str, holder: str, until: int, *, now: int) -> bool:
        """Hold lease `name` until `until` if it is free, ran out, or `holder` holds it: a
        chore one process of a deployment does at a time."""

    # -- API keys -----------------------------------------------------------------------------

    @abc.abstractmethod
    async def put_api_key(self, key: ApiKey) -> None: ...

    @abc.abstractmethod
    async def get_api_key(self, key_hash: str) -> ApiKey | None: ...

    @abc.abstractmethod
    async def list_api_keys(self) -> list[ApiKey]: ...

    @abc.abstractmethod
    async def revoke_api_key(self, key_hash: str) -> bool:
        """Returns False when no such key exists."""

    @abc.abstractmethod
    async def shared_secret(self) -> bytes:
        """A random secret made once per store and the same for every process using it."""
