"""Dead events back to work: redrive one, or up to 100 by id.

A claim makes an event dead when it has been claimed `max_attempts` times already; `?status=dead`
lists them with their `last_error`. Redriving makes one claimable again at once, with its
attempts back at 0.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from service.bodies import decode, json_response, read_body
from service.clock import now_ms
from service.context import Context
from service.delivery import MAX_SMALL_BODY, already_delivered, event_id_of
from service.ids import is_event_id
from service.models import RedriveRequest, RedriveResult, StatusBody
from service.problems import not_found

_redrive_decoder = msgspec.json.Decoder(RedriveRequest)


async def redrive_one(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    event_id = event_id_of(request)
    outcomes = await ctx.store.redrive_events(tenant, [event_id], now=now_ms())
    outcome = outcomes[event_id]
    if outcome == "not_found":
        raise not_found()
    if outcome == "already_delivered":
        raise already_delivered("redriven")
    ctx.notifier.notify(tenant)
    return json_response(request, StatusBody("undelivered"))


async def redrive_many(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    body = decode(_redrive_decoder, await read_body(request, MAX_SMALL_BODY))
    ids = list(dict.fromkeys(body.ids))
    known = [i for i in ids if is_event_id(i)]
    outcomes = await ctx.store.redrive_events(tenant, known, now=now_ms()) if known else {}
    redriven = [i for i in ids if outcomes.get(i) == "redriven"]
    ctx.notifier.notify(tenant, len(redriven))
    # A delivered event cannot be redriven: like an unknown one, it is reported as not found.
    not_found = [i for i in ids if outcomes.get(i) != "redriven"]
    return json_response(request, RedriveResult(redriven=redriven, not_found=not_found))
