"""Leased delivery for competing workers: claim (with long poll), release, extend, and ack one
or many."""

from __future__ import annotations

import time

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from service.bodies import decode, json_response, read_body
from service.clock import now_ms
from service.context import Context
from service.ids import is_event_id
from service.models import (
    AckRequest,
    AckResult,
    ClaimedEvent,
    ClaimedEvents,
    ClaimRequest,
    ExtendRequest,
    LeaseEnd,
    ReleaseRequest,
    StatusBody,
)
from service.problems import ApiError, not_found
from service.store.base import Claim, Refusal

MAX_SMALL_BODY = 64 * 1024
MAX_ERROR_LENGTH = 2048  # characters of a release's `error` kept as `last_error`

_claim_decoder = msgspec.json.Decoder(ClaimRequest)
_release_decoder = msgspec.json.Decoder(ReleaseRequest)
_extend_decoder = msgspec.json.Decoder(ExtendRequest)
_ack_decoder = msgspec.json.Decoder(AckRequest)


async def claim(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    body = await read_body(request, MAX_SMALL_BODY)
    params = decode(_claim_decoder, body) if body.strip() else ClaimRequest()
    max_attempts = params.max_attempts or ctx.settings.max_attempts

    async def lease() -> Claim:
        now = now_ms()
        return await ctx.store.claim_events(
            tenant,
            limit=params.limit,
            lease_until=now + params.lease_seconds * 1000,
            max_attempts=max_attempts,
            now=now,
        )

    found = await lease()
    deadline = time.monotonic() + params.wait_seconds
    # A long poll: wait to be woken (`notifier.py`) and claim again, until the wait is over.
    while not found.leased:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not await ctx.notifier.wait(tenant, remaining):
            break
        if await request.is_disconnected():
            break  # leasing events to a client that has gone would only delay them
        found = await lease()
    return json_response(request, ClaimedEvents([ClaimedEvent.leased(e) for e in found.leased]))


async def release(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    event_id = event_id_of(request)
    params = decode(_release_decoder, await read_body(request, MAX_SMALL_BODY))
    now = now_ms()
    error = None if params.error is None else params.error[:MAX_ERROR_LENGTH]
    outcome = await ctx.store.release_event(
        tenant,
        event_id,
        token=params.lease_token,
        available_at=now + params.delay_seconds * 1000 if params.delay_seconds else 0,
        error=error,
        now=now,
    )
    if outcome != "released":
        raise _refused(outcome, "released")
    if not params.delay_seconds:
        ctx.notifier.notify(tenant)
    return json_response(request, StatusBody("released"))


async def extend(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    event_id = event_id_of(request)
    params = decode(_extend_decoder, await read_body(request, MAX_SMALL_BODY))
    now = now_ms()
    lease_until = now + params.lease_seconds * 1000
    outcome = await ctx.store.extend_lease(
        tenant, event_id, token=params.lease_token, lease_until=lease_until, now=now
    )
    if outcome != "extended":
        raise _refused(outcome, "extended")
    return json_response(request, LeaseEnd(lease_until))


def event_id_of(request: Request) -> str:
    """The path's event id, or 404 for one that cannot exist."""
    event_id: str = request.path_params["event_id"]
    if not is_event_id(event_id):
        raise not_found()
    return event_id


def already_delivered(verb: str) -> ApiError:
    return ApiError(409, "already_delivered", f"The event was delivered; it cannot be {verb}.")


def _refused(refusal: Refusal, verb: str) -> ApiError:
    if refusal == "not_found":
        return not_found()
    if refusal == "already_delivered":
        return already_delivered(verb)
    return ApiError(
        409,
        "lease_lost",
        "This lease token is not the event's current lease: the event was claimed again or"
        " released since.",
    )


async def ack_one(request: Request) -> Response:
    # A body (an ack may carry its lease token) is accepted and ignored: acking needs no token.
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    if not await _ack(ctx, tenant, [event_id_of(request)]):
        raise not_found()
    return json_response(request, StatusBody("acknowledged"))


async def ack_many(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    ids = list(dict.fromkeys(decode(_ack_decoder, await read_body(request, MAX_SMALL_BODY)).ids))
    found = await _ack(ctx, tenant, [i for i in ids if is_event_id(i)])
    return json_response(
        request,
        AckResult(
            acknowledged=[i for i in ids if i in found],
            not_found=[i for i in ids if i not in found],
        ),
    )


async def _ack(ctx: Context, tenant: str, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    now = now_ms()
    expires_at = now + ctx.settings.delivered_retention_ms
    return await ctx.store.ack_events(tenant, ids, now=now, expires_at=expires_at)
