"""The route table, and the routes that read and remove events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import dead_letters, delivery, ingest
from service.bodies import empty_response, json_response, raw_json_response
from service.clock import now_ms
from service.context import Context
from service.ids import is_event_id
from service.models import Event, EventPage, Stats, StatusBody
from service.problems import not_found, validation_error
from service.queries import positive_int

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
STATUSES = ("undelivered", "delivered", "dead")


async def health(request: Request) -> Response:
    return json_response(request, StatusBody("healthy"))


async def ready(request: Request) -> Response:
    ctx: Context = request.state.ctx
    await ctx.store.ping()
    return json_response(request, StatusBody("ready"))


async def openapi(request: Request) -> Response:
    ctx: Context = request.state.ctx
    return raw_json_response(request, ctx.openapi)


async def list_events(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    query = request.query_params
    status = query.get("status")
    if status is not None and status not in STATUSES:
        raise validation_error("status must be 'undelivered', 'delivered' or 'dead'.")
    limit = positive_int("limit", query.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    cursor = query.get("cursor")
    after = None
    if cursor is not None:
        after = (await ctx.cursor_codec()).decode(cursor, tenant, status)
    events, more = await ctx.store.list_events(
        tenant,
        status=status,  # type: ignore[arg-type]  # checked against STATUSES above
        limit=limit,
        after=after,
        now=now_ms(),
    )
    next_cursor = None
    if more:
        next_cursor = (await ctx.cursor_codec()).encode(tenant, status, events[-1].id)
    return json_response(request, EventPage([Event.of(e) for e in events], next_cursor))


async def stats(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    backlog = await ctx.store.backlog(tenant, now=now_ms())
    return json_response(
        request,
        Stats(
            undelivered=backlog.undelivered,
            in_flight=backlog.in_flight,
            dead=backlog.dead,
            oldest_undelivered_at=backlog.oldest_undelivered_at,
            as_of=backlog.as_of,
        ),
    )


async def get_event(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    event_id = request.path_params["event_id"]
    event = (
        await ctx.store.get_event(tenant, event_id, now=now_ms()) if is_event_id(event_id) else None
    )
    if event is None:
        raise not_found()
    return json_response(request, Event.of(event))


async def delete_event(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    event_id = request.path_params["event_id"]
    if not (is_event_id(event_id) and await ctx.store.delete_event(tenant, event_id, now=now_ms())):
        raise not_found()
    return empty_response(request)


def _route(path: str, **handlers: Callable[[Request], Awaitable[Response]]) -> Route:
    """One route per path, dispatching on the method, so a 405's `Allow` names every method
    the path supports (one Starlette route per method would name only its own)."""
    if "GET" in handlers:
        handlers["HEAD"] = handlers["GET"]

    async def dispatch(request: Request) -> Response:
        return await handlers[request.method](request)

    return Route(path, dispatch, methods=list(handlers))


# Starlette tries routes in order: the busiest (ingest, then delivery) come first.
ROUTES = [
    _route("/v1/events", POST=ingest.create_event, GET=list_events),
    _route("/v1/events/batch", POST=ingest.create_batch),
    _route("/v1/events/claim", POST=delivery.claim),
    _route("/v1/events/ack", POST=delivery.ack_many),
    _route("/v1/events/{event_id}/ack", POST=delivery.ack_one),
    _route("/v1/events/{event_id}/release", POST=delivery.release),
    _route("/v1/events/{event_id}/extend", POST=delivery.extend),
    _route("/v1/events/redrive", POST=dead_letters.redrive_many),
    _route("/v1/events/{event_id}/redrive", POST=dead_letters.redrive_one),
    _route("/v1/events/{event_id}", GET=get_event, DELETE=delete_event),
    _route("/v1/stats", GET=stats),
    _route("/health", GET=health),
    _route("/ready", GET=ready),
    _route("/openapi.json", GET=openapi),
]
