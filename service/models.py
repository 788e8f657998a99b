"""Every request and response body, as msgspec Structs. The OpenAPI document is generated
from these same types (`service/openapi.py`), so the two cannot drift apart."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Raw, Struct

from service.store.base import Event as StoredEvent

EventStatus = Literal["undelivered", "delivered", "dead"]
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
    available_at: Annotated[
        Millis | None,
        Meta(description="Not claimable before this time (a release with a delay); else null."),
    ]
    last_error: Annotated[
        str | None, Meta(description="The last error a worker reported when releasing it.")
    ]

    @classmethod
    def of(cls, event: StoredEvent) -> Event:
        return cls(**_fields(event))


def _fields(event: StoredEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "created_at": event.created_at,
        "status": event.status,
        "payload": Raw(event.payload),
        "delivered_at": event.delivered_at,
        "attempts": event.attempts,
        "lease_expires_at": event.lease_expires_at,
        "available_at": event.available_at,
        "last_error": event.last_error,
    }


LeaseToken = Annotated[
    str,
    Meta(min_length=1, max_length=256, description="Names one lease; given in a claim's answer."),
]


class ClaimedEvent(Event, kw_only=True):
    lease_token: LeaseToken

    @classmethod
    def leased(cls, event: StoredEvent) -> ClaimedEvent:
        assert event.lease_token is not None
        return cls(**_fields(event), lease_token=event.lease_token)


class CreatedEvent(Struct):
    id: EventId
    created_at: Millis
    status: EventStatus = "undelivered"


class EventPage(Struct):
    events: list[Event]
    next_cursor: Annotated[str | None, Meta(description="Null on the last page.")]


class ClaimedEvents(Struct):
    events: list[ClaimedEvent]


class BatchRequest(Struct, forbid_unknown_fields=True):
    events: Annotated[list[Payload], Meta(min_length=1, max_length=50)]


class BatchCreated(Struct):
    events: list[CreatedEvent]


Ids = Annotated[list[str], Meta(min_length=1, max_length=100)]


class AckRequest(Struct, forbid_unknown_fields=True):
    ids: Ids
    lease_token: Annotated[str | None, Meta(description="Accepted and ignored.")] = None


class AckResult(Struct):
    acknowledged: list[EventId]
    not_found: list[str]


LeaseSeconds = Annotated[int, Meta(ge=1, le=43200)]


class ClaimRequest(Struct, forbid_unknown_fields=True):
    limit: Annotated[int, Meta(ge=1, le=100)] = 10
    lease_seconds: LeaseSeconds = 30
    wait_seconds: Annotated[int, Meta(ge=0, le=20)] = 0
    max_attempts: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=1000,
                description="An event claimed this many times already is made dead instead of"
                " leased; default TRIGGER_MAX_ATTEMPTS (10).",
            ),
        ]
        | None
    ) = None


class ReleaseRequest(Struct, forbid_unknown_fields=True):
    lease_token: LeaseToken
    delay_seconds: Annotated[
        int, Meta(ge=0, le=43200, description="Not claimable again for this long.")
    ] = 0
    error: Annotated[
        str | None, Meta(description="Kept (its first 2,048 characters) as `last_error`.")
    ] = None


class ExtendRequest(Struct, forbid_unknown_fields=True):
    lease_token: LeaseToken
    lease_seconds: LeaseSeconds


class LeaseEnd(Struct):
    lease_expires_at: Millis


class RedriveRequest(Struct, forbid_unknown_fields=True):
    ids: Ids


class RedriveResult(Struct):
    redriven: list[EventId]
    not_found: list[str]


class Stats(Struct):
    """A tenant's backlog: counts true at `as_of` (at most 60 s ago); the oldest is exact."""

    undelivered: Annotated[int, Meta(description="Undelivered events, leased or held back too.")]
    in_flight: Annotated[int, Meta(description="Undelivered events under an unexpired lease.")]
    dead: int
    oldest_undelivered_at: Annotated[
        Millis | None, Meta(description="The oldest undelivered event's created_at.")
    ]
    as_of: Millis


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
