"""Creating events: one at a time or in atomic batches, each safe to retry with an
Idempotency-Key.

The idempotency record is written in the same atomic write as the events it answers for, so
concurrent requests with one key cannot both create: the loser finds the winner's record and
replays its answer. There is no in-flight state, so no 409 is ever needed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from service.bodies import parse_and_decode, raw_json_response, read_body
from service.clock import now_ms
from service.context import Context
from service.ids import new_event_id
from service.models import BatchCreated, BatchRequest, CreatedEvent, encode
from service.problems import ApiError, too_large, validation_error
from service.store.base import IdempotencyRecord, NewEvent
from service.strict_json import TOO_DEEP, canonical, parse, too_deep

MAX_EVENT_BYTES = 256 * 1024
MAX_BATCH_BYTES = 1024 * 1024
IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000
MAX_IDEMPOTENCY_KEY_LENGTH = 255

_batch_decoder = msgspec.json.Decoder(BatchRequest)


async def create_event(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    key = idempotency_key(request)
    body = await read_body(request, MAX_EVENT_BYTES)
    payload = parse(body)
    if not isinstance(payload, dict):
        raise validation_error("The body must be a JSON object.")
    now = now_ms()
    event = NewEvent(new_event_id(now), now, body, now + ctx.settings.undelivered_retention_ms)
    answer = encode(CreatedEvent(event.id, now))
    location = f"/v1/events/{event.id}"
    record = _record(key, "event", payload, answer, now, location=location)
    replayed = await _insert(ctx, tenant, [event], record, now)
    if replayed is not None:
        return _replay(request, replayed)
    return raw_json_response(request, answer, 201, {"Location": location})


async def create_batch(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    key = idempotency_key(request)
    body = await read_body(request, MAX_BATCH_BYTES)
    # Each event may nest as deep as one sent alone; checked below, where it is cheap.
    parsed, batch = parse_and_decode(_batch_decoder, body, check_depth=False)
    payloads = [bytes(item) for item in batch.events]
    for index, payload in enumerate(payloads):
        if len(payload) > MAX_EVENT_BYTES:
            raise too_large(f"events[{index}] exceeds {MAX_EVENT_BYTES} bytes.")
        if not payload.startswith(b"{"):
            raise validation_error(f"events[{index}] must be a JSON object.")
        if too_deep(payload):
            raise validation_error(f"events[{index}]: {TOO_DEEP}")
    now = now_ms()
    expires_at = now + ctx.settings.undelivered_retention_ms
    events = [NewEvent(new_event_id(now), now, payload, expires_at) for payload in payloads]
    answer = encode(BatchCreated([CreatedEvent(e.id, now) for e in events]))
    record = _record(key, "batch", parsed, answer, now)
    replayed = await _insert(ctx, tenant, events, record, now)
    if replayed is not None:
        return _replay(request, replayed)
    return raw_json_response(request, answer, 201)


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or not all(
        "\x21" <= c <= "\x7e" for c in key
    ):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-255 visible ASCII characters.",
        )
    return key


def body_hash(route: str, body: Any) -> str:
    """Hash of the request's canonical form (`strict_json.canonical`): the same exactly when the
    bodies are equal as JSON, numbers compared by their exact decimal value."""
    return hashlib.sha256(route.encode() + b"\n" + canonical(body)).hexdigest()


def _record(
    key: str | None,
    route: str,
    body: Any,
    answer: bytes,
    now: int,
    *,
    location: str | None = None,
) -> IdempotencyRecord | None:
    """What a retry with the same Idempotency-Key is answered with; None without a key."""
    if key is None:
        return None
    expires_at = now + IDEMPOTENCY_WINDOW_MS
    return IdempotencyRecord(key, body_hash(route, body), 201, answer, expires_at, location)


async def _insert(
    ctx: Context,
    tenant: str,
    events: Sequence[NewEvent],
    record: IdempotencyRecord | None,
    now: int,
) -> IdempotencyRecord | None:
    """Store the events, or return the record a request with the same key left already."""
    held = await ctx.store.insert_events(tenant, events, idempotency=record, now=now)
    if held is None:
        ctx.notifier.notify(tenant, len(events))
        ctx.housekeeping.created += len(events)
        return None
    assert record is not None
    if held.body_hash != record.body_hash:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body.",
        )
    return held


def _replay(request: Request, record: IdempotencyRecord) -> Response:
    headers = {"Idempotent-Replayed": "true"}
    if record.location is not None:
        headers["Location"] = record.location
    return raw_json_response(request, record.response, record.status, headers)
