"""Leased delivery for competing workers: claim (with long poll), release, ack one or many."""

from __future__ import annotations

import time

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from service.bodies import decode, json_response, read_body
from service.clock import now_ms
from service.context import Context
from service.ids import is_event_id
from service.models import AckRequest, AckResult, ClaimRequest, Event, EventList, StatusBody
from service.problems import ApiError, not_found

RECHECK_SECONDS = 1.0  # how often a long poll looks at the store for other tasks' events
MAX_SMALL_BODY = 64 * 1024

_claim_decoder = msgspec.json.Decoder(ClaimRequest)
_ack_decoder = msgspec.json.Decoder(AckRequest)


async def claim(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    body = await read_body(request, MAX_SMALL_BODY)
    params = decode(_claim_decoder, body) if body.strip() else ClaimRequest()
    deadline = time.monotonic() + params.wait_seconds
    while True:
        now = now_ms()
        events = await ctx.store.claim_events(
            tenant, limit=params.limit, lease_until=now + params.lease_seconds * 1000, now=now
        )
        remaining = deadline - time.monotonic()
        if events or remaining <= 0:
            break
        await ctx.notifier.wait(tenant, min(remaining, RECHECK_SECONDS))
        if await request.is_disconnected():
            break  # leasing events to a client that has gone would only delay them
    return json_response(request, EventList([Event.of(e) for e in events]))


async def release(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    event_id = request.path_params["event_id"]
    outcome = "not_found"
    if is_event_id(event_id):
        outcome = await ctx.store.release_event(tenant, event_id, now=now_ms())
    if outcome == "not_found":
        raise not_found()
    if outcome == "already_delivered":
        raise ApiError(409, "already_delivered", "The event was delivered; it cannot be released.")
    ctx.notifier.notify(tenant)
    return json_response(request, StatusBody("released"))


async def ack_one(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    event_id = request.path_params["event_id"]
    if not (is_event_id(event_id) and await _ack(ctx, tenant, [event_id])):
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
