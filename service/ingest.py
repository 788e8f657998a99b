"""Creating events: one at a time or in atomic batches, each safe to retry with an
Idempotency-Key.

The idempotency record is written in the same atomic write as the events it answers for, so
concurrent requests with one key cannot both create: the loser finds the winner's record and
replays its answer. There is no in-flight state, so no 409 is ever needed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from service.clock import now_ms
from service.context import Context
from service.http import decode, describe, raw_json_response, read_body, require_utf8
from service.ids import new_event_id
from service.models import BatchCreated, BatchRequest, CreatedEvent, encode
from service.problems import ApiError, too_large, validation_error
from service.store.base import IdempotencyRecord, NewEvent

MAX_EVENT_BYTES = 256 * 1024
MAX_BATCH_BYTES = 1024 * 1024
IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000
MAX_IDEMPOTENCY_KEY_LENGTH = 255

_payload_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_batch_decoder = msgspec.json.Decoder(BatchRequest)
_created_decoder = msgspec.json.Decoder(CreatedEvent)
_any_decoder = msgspec.json.Decoder()


async def create_event(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    key = idempotency_key(request)
    body = await read_body(request, MAX_EVENT_BYTES)
    _check_object(body)
    now = now_ms()
    event = NewEvent(new_event_id(now), now, body, now + ctx.settings.undelivered_retention_ms)
    answer = encode(CreatedEvent(event.id, now))
    return await _store(request, tenant, [event], key, "event", body, answer, now)


async def create_batch(request: Request) -> Response:
    ctx: Context = request.state.ctx
    tenant = await ctx.auth.tenant_of(request)
    key = idempotency_key(request)
    body = await read_body(request, MAX_BATCH_BYTES)
    batch = decode(_batch_decoder, body)
    payloads = [bytes(item) for item in batch.events]
    for index, payload in enumerate(payloads):
        if len(payload) > MAX_EVENT_BYTES:
            raise too_large(f"events[{index}] exceeds {MAX_EVENT_BYTES} bytes.")
        if not payload.startswith(b"{"):
            raise validation_error(f"events[{index}] must be a JSON object.")
    require_utf8(body)
    now = now_ms()
    expires_at = now + ctx.settings.undelivered_retention_ms
    events = [NewEvent(new_event_id(now), now, payload, expires_at) for payload in payloads]
    answer = encode(BatchCreated([CreatedEvent(e.id, now) for e in events]))
    return await _store(request, tenant, events, key, "batch", body, answer, now)


def _check_object(body: bytes) -> None:
    """A single event's body must be one JSON object; its bytes are then stored as they are."""
    try:
        _payload_decoder.decode(body)
    except msgspec.ValidationError:
        raise validation_error("The body must be a JSON object.") from None
    except msgspec.DecodeError as error:
        raise validation_error(describe(error)) from None
    require_utf8(body)


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


def body_hash(route: str, body: bytes) -> str:
    """Hash of the request's canonical form: key order and whitespace do not matter."""
    try:
        canonical = msgspec.json.encode(_any_decoder.decode(body), order="sorted")
    except msgspec.DecodeError:  # valid JSON msgspec cannot hold (e.g. 1e400): use the bytes
        canonical = body
    return hashlib.sha256(route.encode() + b"\n" + canonical).hexdigest()


async def _store(
    request: Request,
    tenant: str,
    events: Sequence[NewEvent],
    key: str | None,
    route: str,
    body: bytes,
    answer: bytes,
    now: int,
) -> Response:
    ctx: Context = request.state.ctx
    record = None
    if key is not None:
        record = IdempotencyRecord(
            key, body_hash(route, body), 201, answer, now + IDEMPOTENCY_WINDOW_MS
        )
    existing = await ctx.store.insert_events(tenant, events, idempotency=record, now=now)
    if existing is None:
        ctx.notifier.notify(tenant)
        return _created(request, route, 201, answer, {}, events[0].id)
    assert record is not None
    if existing.body_hash != record.body_hash:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body.",
        )
    first_id = _created_decoder.decode(existing.response).id if route == "event" else ""
    replayed = {"Idempotent-Replayed": "true"}
    return _created(request, route, existing.status, existing.response, replayed, first_id)


def _created(
    request: Request,
    route: str,
    status: int,
    answer: bytes,
    headers: dict[str, str],
    event_id: str,
) -> Response:
    if route == "event":
        headers["Location"] = f"/v1/events/{event_id}"
    return raw_json_response(request, answer, status, headers)
