"""The worker's side of the HTTP contract (`API.md`, "Leased delivery"), for one tenant.

Transient failures — connection errors, timeouts, 429 and 5xx — are retried with backoff and
jitter (honouring `Retry-After`) until the call's deadline; everything else is final. The
`httpx.AsyncClient` is shared by every tenant and owned by the runner, which opens and closes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import httpx
import msgspec

from worker.backoff import Backoff, retry_after
from worker.config import Tenant
from worker.decoding import Claimed, decode_claim
from worker.logs import log

T = TypeVar("T")
# Answers about a lease that are outcomes, not errors: someone else has the event now, it is
# gone, or it was delivered.
Refusal = Literal["lease_lost", "not_found", "already_delivered"]
ReleaseOutcome = Literal["released"] | Refusal
ExtendOutcome = Literal["extended"] | Refusal

CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 10.0  # beyond any long-poll wait
ERROR_LIMIT = 2048  # the service keeps this much of a release's `error`; why send more


class ApiError(Exception):
    """A final (non-retryable) error answer from the API."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"HTTP {status} {code}: {detail}")
        self.status = status
        self.code = code


class Unauthorized(ApiError):
    """401: the key is unknown or revoked. Retrying cannot help."""


class Unavailable(Exception):
    """Transient failures went on past the call's deadline."""


class _Claim(msgspec.Struct):
    limit: int
    lease_seconds: int
    wait_seconds: int
    max_attempts: int


class _Release(msgspec.Struct, omit_defaults=True):
    lease_token: str
    delay_seconds: int = 0
    error: str | None = None


class _Extend(msgspec.Struct):
    lease_token: str
    lease_seconds: int


class _Extended(msgspec.Struct):
    lease_expires_at: int


class _Ack(msgspec.Struct):
    ids: list[str]


class _Acked(msgspec.Struct):
    acknowledged: list[str]
    not_found: list[str] = msgspec.field(default_factory=list)


class _Problem(msgspec.Struct):
    code: str = ""
    detail: str = ""
    title: str = ""


_encode = msgspec.json.Encoder().encode
_extended = msgspec.json.Decoder(_Extended)
_acked = msgspec.json.Decoder(_Acked)
_problem = msgspec.json.Decoder(_Problem)
_REFUSALS: dict[tuple[int, str], Refusal] = {
    (409, "lease_lost"): "lease_lost",
    (409, "already_delivered"): "already_delivered",
}


def _is_transient(status: int) -> bool:
    return status == 429 or status >= 500


class TenantApi:
    """Claim, extend, acknowledge and release one tenant's events."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        tenant: Tenant,
        backoff: Backoff,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._tenant = tenant.name
        self._headers = {
            "Authorization": f"Bearer {tenant.api_key}",
            "Content-Type": "application/json",
        }
        self._backoff = backoff
        # Deadlines are on `clock`; tests give both a virtual clock.
        self._clock = clock
        self._sleep = sleep

    async def claim(
        self,
        *,
        limit: int,
        lease_seconds: int,
        wait_seconds: int,
        max_attempts: int,
        deadline: float | None = None,
    ) -> list[Claimed]:
        """Lease up to `limit` events; with `wait_seconds`, long-poll for the first one.

        An event claimed `max_attempts` times already is made `dead` by the service instead.
        """
        body = _Claim(limit, lease_seconds, wait_seconds, max_attempts)
        timeout = httpx.Timeout(REQUEST_TIMEOUT + wait_seconds, connect=CONNECT_TIMEOUT)
        response = await self._send("/v1/events/claim", _encode(body), deadline, timeout)
        try:
            claimed, nameless = decode_claim(response.content)
        except msgspec.DecodeError as exc:
            raise ApiError(response.status_code, "invalid_response", str(exc)) from None
        for problem in nameless:
            # Not even its id can be read, so it cannot be handed back: its lease runs out, and
            # after MAX_ATTEMPTS claims the service makes it dead.
            log(logging.ERROR, "claimed an unreadable event", tenant=self._tenant, error=problem)
        return claimed

    async def ack(self, ids: list[str], *, deadline: float | None) -> tuple[list[str], list[str]]:
        """Deliver `ids` (1-100); return (acknowledged, not_found)."""
        response = await self._send("/v1/events/ack", _encode(_Ack(ids)), deadline)
        acked = _decode(_acked, response)
        return acked.acknowledged, acked.not_found

    async def release(
        self,
        event_id: str,
        lease_token: str,
        *,
        delay_seconds: int = 0,
        error: str | None = None,
        deadline: float | None,
    ) -> ReleaseOutcome:
        """End our lease so the event can be claimed again, at once or after `delay_seconds`;
        `error` says why, for the event's `last_error`."""
        body = _Release(lease_token, delay_seconds, None if error is None else error[:ERROR_LIMIT])
        answer = await self._on_lease(f"/v1/events/{event_id}/release", _encode(body), deadline)
        return "released" if isinstance(answer, httpx.Response) else answer

    async def extend(
        self, event_id: str, lease_token: str, *, lease_seconds: int, deadline: float | None
    ) -> ExtendOutcome:
        """Make our lease end `lease_seconds` from now."""
        body = _encode(_Extend(lease_token, lease_seconds))
        answer = await self._on_lease(f"/v1/events/{event_id}/extend", body, deadline)
        if not isinstance(answer, httpx.Response):
            return answer
        _decode(_extended, answer)  # an answer that is not the contract's is an error
        return "extended"

    async def _on_lease(
        self, path: str, body: bytes, deadline: float | None
    ) -> httpx.Response | Refusal:
        try:
            return await self._send(path, body, deadline)
        except Unauthorized:
            raise
        except ApiError as error:
            if error.status == 404:
                return "not_found"
            refusal = _REFUSALS.get((error.status, error.code))
            if refusal is None:
                raise
            return refusal

    async def _send(
        self,
        path: str,
        body: bytes,
        deadline: float | None,
        request_timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        attempt = 0
        while True:
            wait: float | None = None
            try:
                response = await self._http.post(
                    path,
                    content=body,
                    headers=self._headers,
                    timeout=request_timeout
                    or httpx.Timeout(REQUEST_TIMEOUT, connect=CONNECT_TIMEOUT),
                )
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status < 400:
                    return response
                if not _is_transient(status):
                    raise _error(response)
                problem = f"HTTP {status}"
                wait = retry_after(response.headers.get("Retry-After"))
            if wait is None:
                wait = self._backoff.delay(attempt)
            if deadline is not None and self._clock() + wait > deadline:
                raise Unavailable(f"POST {path}: {problem} (gave up after {attempt + 1} tries)")
            log(
                logging.WARNING,
                "retrying request",
                tenant=self._tenant,
                path=path,
                error=problem,
                attempt=attempt + 1,
                retry_in=round(wait, 3),
            )
            await self._sleep(wait)
            attempt += 1


def _decode(decoder: msgspec.json.Decoder[T], response: httpx.Response) -> T:
    try:
        return decoder.decode(response.content)
    except msgspec.DecodeError as exc:
        raise ApiError(response.status_code, "invalid_response", str(exc)) from None


def _error(response: httpx.Response) -> ApiError:
    try:
        problem = _problem.decode(response.content)
    except msgspec.DecodeError:
        problem = _Problem()
    kind = Unauthorized if response.status_code == 401 else ApiError
    return kind(response.status_code, problem.code, problem.detail or problem.title)
