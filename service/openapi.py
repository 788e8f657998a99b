"""The OpenAPI 3.1 document, generated once from the same Structs the routes encode and decode."""

from __future__ import annotations

from typing import Any

import msgspec

from service import ids, models

REF = "#/components/schemas/{name}"
SCHEMAS: tuple[Any, ...] = (
    models.Event,
    models.CreatedEvent,
    models.EventPage,
    models.ClaimedEvent,
    models.ClaimedEvents,
    models.BatchRequest,
    models.BatchCreated,
    models.AckRequest,
    models.AckResult,
    models.ClaimRequest,
    models.ReleaseRequest,
    models.ExtendRequest,
    models.LeaseEnd,
    models.RedriveRequest,
    models.RedriveResult,
    models.Stats,
    models.StatusBody,
    models.Problem,
)
ERRORS = {
    400: "Bad request (`invalid_cursor`, `invalid_idempotency_key`).",
    401: "Missing, malformed, unknown or revoked API key (`unauthorized`).",
    404: "No such event for this tenant (`not_found`).",
    409: "The event was delivered (`already_delivered`), or the lease token is no longer the"
    " event's current lease (`lease_lost`).",
    413: "Body too large (`payload_too_large`).",
    422: "Invalid body or parameters (`validation_error`, `idempotency_key_reused`).",
    503: "The store is unavailable (`unavailable`); retry after `Retry-After` seconds.",
}
EVENT_ID = {
    "name": "event_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^" + ids.EVENT_ID.pattern + "$"},
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "1-255 visible ASCII characters; same key and body within 24 h replays.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
LIST_PARAMETERS = [
    {"name": "status", "in": "query", "schema": {"enum": ["undelivered", "delivered", "dead"]}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 50}},
    {"name": "cursor", "in": "query", "schema": {"type": "string", "minLength": 1}},
]


def _ref(model: Any) -> dict[str, str]:
    return {"$ref": REF.format(name=model.__name__)}


def _operation(
    operation_id: str,
    summary: str,
    status: int,
    response: Any | None,
    *,
    body: Any | None = None,
    errors: tuple[int, ...] = (),
    parameters: list[dict[str, Any]] | None = None,
    public: bool = False,
    body_required: bool = True,
) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": summary}
    if response is not None:
        ok["content"] = {"application/json": {"schema": _ref(response)}}
    responses: dict[str, Any] = {str(status): ok}
    for code in (*errors, *(() if public else (401, 503))):
        responses[str(code)] = {
            "description": ERRORS[code],
            "content": {"application/problem+json": {"schema": _ref(models.Problem)}},
        }
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "responses": responses,
    }
    if body is not None:
        schema = body if isinstance(body, dict) else _ref(body)
        operation["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": schema}},
        }
    if parameters:
        operation["parameters"] = parameters
    operation["security"] = [] if public else [{"bearer": []}]
    return operation


def openapi_document() -> bytes:
    _, components = msgspec.json.schema_components(SCHEMAS, ref_template=REF)
    payload = {"type": "object", "additionalProperties": True}
    paths = {
        "/health": {"get": _operation("health", "Liveness", 200, models.StatusBody, public=True)},
        "/ready": {
            "get": _operation(
                "ready", "Readiness", 200, models.StatusBody, errors=(503,), public=True
            )
        },
        "/openapi.json": {"get": _operation("openapi", "This document", 200, None, public=True)},
        "/v1/events": {
            "post": _operation(
                "createEvent",
                "Create an event",
                201,
                models.CreatedEvent,
                body=payload,
                errors=(400, 413, 422),
                parameters=[IDEMPOTENCY_KEY],
            ),
            "get": _operation(
                "listEvents",
                "List events",
                200,
                models.EventPage,
                errors=(400, 422),
                parameters=LIST_PARAMETERS,
            ),
        },
        "/v1/events/batch": {
            "post": _operation(
                "createBatch",
                "Create 1-50 events atomically",
                201,
                models.BatchCreated,
                body=models.BatchRequest,
                errors=(400, 413, 422),
                parameters=[IDEMPOTENCY_KEY],
            )
        },
        "/v1/events/claim": {
            "post": _operation(
                "claim",
                "Lease undelivered events",
                200,
                models.ClaimedEvents,
                body=models.ClaimRequest,
                body_required=False,
                errors=(422,),
            )
        },
        "/v1/events/ack": {
            "post": _operation(
                "acknowledgeMany",
                "Acknowledge up to 100 events",
                200,
                models.AckResult,
                body=models.AckRequest,
                errors=(413, 422),
            )
        },
        "/v1/events/{event_id}": {
            "get": _operation(
                "getEvent", "Get an event", 200, models.Event, errors=(404,), parameters=[EVENT_ID]
            ),
            "delete": _operation(
                "deleteEvent", "Delete an event", 204, None, errors=(404,), parameters=[EVENT_ID]
            ),
        },
        "/v1/events/{event_id}/ack": {
            "post": _operation(
                "acknowledge",
                "Acknowledge an event",
                200,
                models.StatusBody,
                errors=(404,),
                parameters=[EVENT_ID],
            )
        },
        "/v1/events/{event_id}/release": {
            "post": _operation(
                "release",
                "End a lease, at once or with a delay, reporting an error",
                200,
                models.StatusBody,
                body=models.ReleaseRequest,
                errors=(404, 409, 413, 422),
                parameters=[EVENT_ID],
            )
        },
        "/v1/events/{event_id}/extend": {
            "post": _operation(
                "extend",
                "Extend a lease",
                200,
                models.LeaseEnd,
                body=models.ExtendRequest,
                errors=(404, 409, 413, 422),
                parameters=[EVENT_ID],
            )
        },
        "/v1/events/{event_id}/redrive": {
            "post": _operation(
                "redrive",
                "Make a dead event claimable again",
                200,
                models.StatusBody,
                errors=(404, 409),
                parameters=[EVENT_ID],
            )
        },
        "/v1/stats": {"get": _operation("stats", "The tenant's backlog", 200, models.Stats)},
        "/v1/events/redrive": {
            "post": _operation(
                "redriveMany",
                "Redrive up to 100 dead events",
                200,
                models.RedriveResult,
                body=models.RedriveRequest,
                errors=(413, 422),
            )
        },
    }
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Trigger API", "version": "1.1.0"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    return msgspec.json.encode(document)
