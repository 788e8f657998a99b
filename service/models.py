"""Every request and response body, as msgspec Structs. The OpenAPI document is generated
from these same types (`service/openapi.py`), so the two cannot drift apart."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Raw, Struct

from service.store.base import Event as StoredEvent

EventStatus = Literal["undelivered", "delivered"]
Payload = Annotated[
    Raw,
    Meta(
        description="The event's JSON object, exactly as the producer sent it.",
        extra_json_schema={"type": "object", "additionalProperties": True},
    ),
]
Millis = Annotated[int, Meta(description="Milliseconds since the epoch (UTC).")]
EventId = Annotated[
    str, Meta(description="`evt_` followed by a ULID.", examples=["evt_01JD3Y8Z4Q9W2M7K5R6T1V0XBC"])
]


class Event(Struct, kw_only=True):
    id: EventId
    created_at: Millis
    status: EventStatus
    payload: Payload
    delivered_at: Millis | None
    attempts: Annotated[int, Meta(description="How many times the event has been claimed.")]
    lease_expires_at: Millis | None

    @classmethod
    def of(cls, event: StoredEvent) -> Event:
        return cls(
            id=event.id,
            created_at=event.created_at,
            status=event.status,
            payload=Raw(event.payload),
            delivered_at=event.delivered_at,
            attempts=event.attempts,
            lease_expires_at=event.lease_expires_at,
        )


class CreatedEvent(Struct):
    id: EventId
    created_at: Millis
    status: EventStatus = "undelivered"


class EventPage(Struct):
    events: list[Event]
    next_cursor: Annotated[str | None, Meta(description="Null on the last page.")]


class EventList(Struct):
    events: list[Event]


class BatchRequest(Struct, forbid_unknown_fields=True):
    events: Annotated[list[Payload], Meta(min_length=1, max_length=50)]


class BatchCreated(Struct):
    events: list[CreatedEvent]


class AckRequest(Struct, forbid_unknown_fields=True):
    ids: Annotated[list[str], Meta(min_length=1, max_length=100)]


class AckResult(Struct):
    acknowledged: list[EventId]
    not_found: list[str]


class ClaimRequest(Struct, forbid_unknown_fields=True):
    limit: Annotated[int, Meta(ge=1, le=100)] = 10
    lease_seconds: Annotated[int, Meta(ge=1, le=43200)] = 30
    wait_seconds: Annotated[int, Meta(ge=0, le=20)] = 0


class StatusBody(Struct):
    status: str


class Problem(Struct):
    """RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str


encoder = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    return encoder.encode(value)
