"""Leased delivery through HTTP on both stores: claim, long poll, batch ack."""

from __future__ import annotations

import asyncio
import time

import pytest

from service.ids import new_event_id
from tests.conftest import Api, assert_problem, create


async def claim(
    api: Api, body: dict[str, object] | None = None, headers: dict[str, str] | None = None
) -> list[dict[str, object]]:
    response = await api.client.post("/v1/events/claim", json=body, headers=headers or api.acme)
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert isinstance(events, list)
    return events


async def test_claim_leases_the_oldest_events_with_defaults(api: Api) -> None:
    ids = [await create(api, {"n": n}) for n in range(12)]
    before = int(time.time() * 1000)

    response = await api.client.post("/v1/events/claim", headers=api.acme)  # no body at all

    events = response.json()["events"]
    assert [e["id"] for e in events] == ids[:10]
    for event in events:
        assert event["attempts"] == 1
        assert event["status"] == "undelivered"
        assert before + 29_000 <= event["lease_expires_at"] <= before + 31_000 + 5_000
    listed = (await api.client.get("/v1/events?status=undelivered", headers=api.acme)).json()
    assert [e["id"] for e in listed["events"]] == ids  # listing still shows leased events
    assert listed["events"][0]["lease_expires_at"] == events[0]["lease_expires_at"]


async def test_claims_see_only_their_tenant(api: Api) -> None:
    await create(api, {"n": 1})

    assert await claim(api, headers=api.globex) == []
    assert len(await claim(api)) == 1


@pytest.mark.parametrize(
    "body",
    [
        b'{"limit": 0}',
        b'{"limit": 101}',
        b'{"limit": "10"}',
        b'{"lease_seconds": 0}',
        b'{"lease_seconds": 43201}',
        b'{"wait_seconds": -1}',
        b'{"wait_seconds": 21}',
        b'{"wait_seconds": 1.5}',
        b'{"max_attempts": 0}',
        b'{"max_attempts": 1001}',
        b'{"limt": 5}',
        b"[1]",
        b"{",
    ],
)
async def test_claim_parameters_out_of_range_are_422(api: Api, body: bytes) -> None:
    response = await api.client.post("/v1/events/claim", content=body, headers=api.acme)
    assert_problem(response, 422, "validation_error")


async def test_long_poll_returns_as_soon_as_an_event_arrives(api: Api) -> None:
    async def produce_later() -> str:
        await asyncio.sleep(0.3)
        return await create(api, {"late": True})

    started = time.monotonic()
    events, event_id = await asyncio.gather(claim(api, {"wait_seconds": 10}), produce_later())
    elapsed = time.monotonic() - started

    assert [e["id"] for e in events] == [event_id]
    assert elapsed < 9  # the arrival ended the wait, not the 10 s


async def test_long_poll_returns_empty_after_the_wait(api: Api) -> None:
    started = time.monotonic()
    events = await claim(api, {"wait_seconds": 1})
    elapsed = time.monotonic() - started

    assert events == []
    assert elapsed >= 1  # it waited (pytest-timeout stops one that never answers)


async def test_long_poll_finds_events_stored_by_another_process(api: Api) -> None:
    # An insert that bypasses this process's notifier, as another service task's would.
    from service.store.base import NewEvent

    async def insert_elsewhere() -> str:
        await asyncio.sleep(0.2)
        now = int(time.time() * 1000)
        event = NewEvent(new_event_id(now), now, b'{"elsewhere": 1}', now + 60_000)
        await api.ctx.store.insert_events(api.tenant, [event], idempotency=None, now=now)
        return event.id

    events, event_id = await asyncio.gather(claim(api, {"wait_seconds": 5}), insert_elsewhere())

    assert [e["id"] for e in events] == [event_id]


async def test_batch_ack_reports_what_it_acknowledged_and_what_it_did_not_find(api: Api) -> None:
    mine = [await create(api, {"n": n}) for n in range(3)]
    theirs = await create(api, {"n": 9}, headers=api.globex)
    unknown = new_event_id(0)
    ids = [mine[0], unknown, mine[1], theirs, mine[0], "garbage", mine[2]]

    response = await api.client.post("/v1/events/ack", json={"ids": ids}, headers=api.acme)
    again = await api.client.post("/v1/events/ack", json={"ids": mine}, headers=api.acme)

    assert response.status_code == 200
    assert response.json() == {
        "acknowledged": mine,
        "not_found": [unknown, theirs, "garbage"],
    }
    assert again.json() == {"acknowledged": mine, "not_found": []}
    still = (await api.client.get(f"/v1/events/{theirs}", headers=api.globex)).json()
    assert still["status"] == "undelivered"


@pytest.mark.parametrize(
    "body",
    [b'{"ids": []}', b'{"ids": "evt_x"}', b'{"ids": [1]}', b"{}", b'{"ids": ["a"], "x": 1}'],
)
async def test_bad_batch_acks_are_422(api: Api, body: bytes) -> None:
    response = await api.client.post("/v1/events/ack", content=body, headers=api.acme)
    assert_problem(response, 422, "validation_error")


async def test_batch_ack_takes_at_most_100_ids(api: Api) -> None:
    hundred = [new_event_id(0) for _ in range(100)]

    ok = await api.client.post("/v1/events/ack", json={"ids": hundred}, headers=api.acme)
    over = await api.client.post("/v1/events/ack", json={"ids": [*hundred, "x"]}, headers=api.acme)

    assert ok.status_code == 200
    assert len(ok.json()["not_found"]) == 100
    assert_problem(over, 422, "validation_error")
