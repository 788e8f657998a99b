"""The OpenAPI 3.1 document, generated once from the same Structs the routes encode and decode."""

from __future__ import annotations

from typing import Any

import msgspec

from service import models

REF = "#/components/schemas/{name}"
SCHEMAS: tuple[Any, ...] = (
    models.Event,
    models.CreatedEvent,
    models.EventPage,
    models.EventList,
    models.BatchRequest,
    models.BatchCreated,
    models.AckRequest,
    models.AckResult,
    models.ClaimRequest,
    models.StatusBody,
    models.Problem,
)
ERRORS = {
    400: "Bad request (`invalid_cursor`, `invalid_idempotency_key`).",
    401: "Missing, malformed, unknown or revoked API key (`unauthorized`).",
    404: "No such event for this tenant (`not_found`).",
    409: "The event was already delivered (`already_delivered`).",
    413: "Body too large (`payload_too_large`).",
    422: "Invalid body or parameters (`validation_error`, `idempotency_key_reused`).",
    503: "The store is unavailable (`unavailable`); retry after `Retry-After` seconds.",
}
EVENT_ID = {"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "1-255 visible ASCII characters; same key and body within 24 h replays.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
LIST_PARAMETERS = [
    {"name": "status", "in": "query", "schema": {"enum": ["undelivered", "delivered"]}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 50}},
    {"name": "cursor", "in": "query", "schema": {"type": "string", "minLength": 1}},
]


def _ref(model: Any) -> dict[str, str]:
    return {"$ref": REF.format(name=model.__name__)}


def _operation(
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
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
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
        "/health": {"get": _operation("Liveness", 200, models.StatusBody, public=True)},
        "/ready": {
            "get": _operation("Readiness", 200, models.StatusBody, errors=(503,), public=True)
        },
        "/openapi.json": {"get": _operation("This document", 200, None, public=True)},
        "/v1/events": {
            "post": _operation(
                "Create an event",
                201,
                models.CreatedEvent,
                body=payload,
                errors=(400, 413, 422),
                parameters=[IDEMPOTENCY_KEY],
            ),
            "get": _operation(
                "List events",
                200,
                models.EventPage,
                errors=(400, 422),
                parameters=LIST_PARAMETERS,
            ),
        },
        "/v1/events/batch": {
            "post": _operation(
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
                "Lease undelivered events",
                200,
                models.EventList,
                body=models.ClaimRequest,
                body_required=False,
                errors=(422,),
            )
        },
        "/v1/events/ack": {
            "post": _operation(
                "Acknowledge up to 100 events",
                200,
                models.AckResult,
                body=models.AckRequest,
                errors=(413, 422),
            )
        },
        "/v1/events/{event_id}": {
            "get": _operation(
                "Get an event", 200, models.Event, errors=(404,), parameters=[EVENT_ID]
            ),
            "delete": _operation(
                "Delete an event", 204, None, errors=(404,), parameters=[EVENT_ID]
            ),
        },
        "/v1/events/{event_id}/ack": {
            "post": _operation(
                "Acknowledge an event", 200, models.StatusBody, errors=(404,), parameters=[EVENT_ID]
            )
        },
        "/v1/events/{event_id}/release": {
            "post": _operation(
                "Release an event's lease",
                200,
                models.StatusBody,
                errors=(404, 409),
                parameters=[EVENT_ID],
            )
        },
    }
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Trigger API", "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    return msgspec.json.encode(document)
