"""Leases through HTTP on both stores: tokens, release (with a delay and an error), extend, dead
letters and redrive, and their problem documents."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from service.auth import mint_key
from service.ids import new_event_id
from service.settings import load_settings
from tests.conftest import Api, assert_problem, bearer, create, running_api


async def claim(api: Api, **body: Any) -> list[dict[str, Any]]:
    response = await api.client.post("/v1/events/claim", json=body, headers=api.acme)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def post(api: Api, path: str, body: Any = None) -> Any:
    return await api.client.post(path, json=body, headers=api.acme)


async def get(api: Api, event_id: str) -> dict[str, Any]:
    event: dict[str, Any] = (
        await api.client.get(f"/v1/events/{event_id}", headers=api.acme)
    ).json()
    return event


# -- release and extend ---------------------------------------------------------------------------


async def test_a_claim_names_each_lease_with_a_token_seen_nowhere_else(api: Api) -> None:
    event_id = await create(api, {"n": 1})

    [leased] = await claim(api)

    assert leased["id"] == event_id
    assert isinstance(leased["lease_token"], str)
    assert len(leased["lease_token"]) >= 16
    assert "lease_token" not in await get(api, event_id)
    listed = (await api.client.get("/v1/events", headers=api.acme)).json()["events"]
    assert "lease_token" not in listed[0]


async def test_release_with_the_token_makes_the_event_claimable_again(api: Api) -> None:
    first_id, second_id = await create(api, {"n": 1}), await create(api, {"n": 2})
    [first] = await claim(api, limit=1, lease_seconds=600)
    [second] = await claim(api, limit=5)

    nothing = await claim(api, limit=5)
    released = await post(
        api, f"/v1/events/{first_id}/release", {"lease_token": first["lease_token"]}
    )
    again = await claim(api, limit=5)

    assert (first["id"], second["id"], nothing) == (first_id, second_id, [])
    assert (released.status_code, released.json()) == (200, {"status": "released"})
    assert [(e["id"], e["attempts"]) for e in again] == [(first_id, 2)]
    assert again[0]["lease_token"] != first["lease_token"]


async def test_a_stale_token_is_409_lease_lost_and_changes_nothing(api: Api) -> None:
    event_id = await create(api, {"n": 1})
    [first] = await claim(api, lease_seconds=1)
    await asyncio.sleep(1.01)  # the first lease runs out
    [second] = await claim(api, lease_seconds=600)

    release = await post(
        api, f"/v1/events/{event_id}/release", {"lease_token": first["lease_token"], "error": "x"}
    )
    extend = await post(
        api,
        f"/v1/events/{event_id}/extend",
        {"lease_token": first["lease_token"], "lease_seconds": 1},
    )

    assert_problem(release, 409, "lease_lost")
    assert_problem(extend, 409, "lease_lost")
    event = await get(api, event_id)
    assert (event["lease_expires_at"], event["last_error"]) == (second["lease_expires_at"], None)


async def test_release_with_a_delay_and_an_error_holds_the_event_back(api: Api) -> None:
    event_id = await create(api, {"n": 1})
    [leased] = await claim(api)
    before = int(time.time() * 1000)

    released = await post(
        api,
        f"/v1/events/{event_id}/release",
        {"lease_token": leased["lease_token"], "delay_seconds": 60, "error": "E" * 3000},
    )

    assert released.json() == {"status": "released"}
    event = await get(api, event_id)
    assert event["lease_expires_at"] is None
    assert before + 60_000 <= event["available_at"] <= before + 60_000 + 5_000
    assert event["last_error"] == "E" * 2048  # the first 2,048 characters are kept
    assert await claim(api) == []


async def test_extend_moves_the_lease_and_answers_its_new_end(api: Api) -> None:
    event_id = await create(api, {"n": 1})
    [leased] = await claim(api, lease_seconds=5)
    before = int(time.time() * 1000)

    extended = await post(
        api,
        f"/v1/events/{event_id}/extend",
        {"lease_token": leased["lease_token"], "lease_seconds": 600},
    )

    assert extended.status_code == 200
    lease_end = extended.json()["lease_expires_at"]
    assert extended.json() == {"lease_expires_at": lease_end}
    assert before + 600_000 <= lease_end <= before + 600_000 + 5_000
    assert (await get(api, event_id))["lease_expires_at"] == lease_end


async def test_ack_needs_no_token_and_then_release_and_extend_are_409(api: Api) -> None:
    event_id = await create(api, {"n": 1})
    [leased] = await claim(api)

    acked = await post(api, f"/v1/events/{event_id}/ack", {"lease_token": "ignored"})
    batch = await post(api, "/v1/events/ack", {"ids": [event_id], "lease_token": "ignored"})
    token = leased["lease_token"]
    release = await post(api, f"/v1/events/{event_id}/release", {"lease_token": token})
    extend = await post(
        api, f"/v1/events/{event_id}/extend", {"lease_token": token, "lease_seconds": 5}
    )

    assert acked.json() == {"status": "acknowledged"}
    assert batch.json() == {"acknowledged": [event_id], "not_found": []}
    assert_problem(release, 409, "already_delivered")
    assert_problem(extend, 409, "already_delivered")
    assert await claim(api) == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("release", None),
        ("release", {}),
        ("release", {"lease_token": ""}),
        ("release", {"lease_token": "t", "delay_seconds": -1}),
        ("release", {"lease_token": "t", "delay_seconds": 43201}),
        ("release", {"lease_token": "t", "error": 5}),
        ("release", {"lease_token": "t", "later": True}),
        ("extend", {"lease_token": "t"}),
        ("extend", {"lease_token": "t", "lease_seconds": 0}),
        ("extend", {"lease_token": "t", "lease_seconds": 43201}),
        ("extend", {"lease_seconds": 5}),
    ],
)
async def test_bad_release_and_extend_bodies_are_422(
    api: Api, path: str, body: dict[str, Any] | None
) -> None:
    event_id = await create(api, {"n": 1})
    response = await post(api, f"/v1/events/{event_id}/{path}", body)
    assert_problem(response, 422, "validation_error")


# -- dead letters and redrive -----------------------------------------------------------------


async def exhaust(api: Api, event_id: str, attempts: int) -> None:
    """Claim the event and release it with an error, `attempts` times."""
    for n in range(attempts):
        [leased] = await claim(api, limit=1)
        assert leased["id"] == event_id
        body = {"lease_token": leased["lease_token"], "error": f"ValueError: try {n}"}
        assert (await post(api, f"/v1/events/{event_id}/release", body)).status_code == 200


async def test_a_claim_past_max_attempts_makes_the_event_dead_and_lists_it(api: Api) -> None:
    poison = await create(api, {"poison": True})
    fine = await create(api, {"poison": False})
    await exhaust(api, poison, 3)

    leased = await claim(api, max_attempts=3)

    assert [e["id"] for e in leased] == [fine]
    dead = await get(api, poison)
    assert (dead["status"], dead["attempts"], dead["last_error"]) == (
        "dead",
        3,
        "ValueError: try 2",
    )
    listed = (await api.client.get("/v1/events?status=dead", headers=api.acme)).json()
    assert [e["id"] for e in listed["events"]] == [poison]


async def test_max_attempts_defaults_to_the_service_setting(api: Api) -> None:
    event_id = await create(api, {"n": 1})
    await exhaust(api, event_id, api.ctx.settings.max_attempts)

    assert await claim(api) == []
    assert (await get(api, event_id))["status"] == "dead"


async def test_redrive_brings_a_dead_event_back_with_no_attempts(api: Api) -> None:
    event_id = await create(api, {"n": 1})
    await exhaust(api, event_id, 1)
    assert await claim(api, max_attempts=1) == []

    redriven = await post(api, f"/v1/events/{event_id}/redrive")
    again = await post(api, f"/v1/events/{event_id}/redrive")  # undelivered: no change

    assert (redriven.status_code, redriven.json()) == (200, {"status": "undelivered"})
    assert (again.status_code, again.json()) == (200, {"status": "undelivered"})
    event = await get(api, event_id)
    assert (event["status"], event["attempts"], event["last_error"]) == (
        "undelivered",
        0,
        "ValueError: try 0",
    )
    [leased] = await claim(api, max_attempts=1)
    assert (leased["id"], leased["attempts"]) == (event_id, 1)


async def test_a_delivered_event_cannot_be_redriven(api: Api) -> None:
    event_id = await create(api, {"n": 1})
    await post(api, f"/v1/events/{event_id}/ack")

    response = await post(api, f"/v1/events/{event_id}/redrive")

    assert_problem(response, 409, "already_delivered")


async def test_batch_redrive_reports_what_it_redrove(api: Api) -> None:
    dead = await create(api, {"n": 0})
    live = await create(api, {"n": 1})
    acked = await create(api, {"n": 2})
    await exhaust(api, dead, 1)
    await claim(api, max_attempts=1)  # dead dies; live and acked are leased
    await post(api, f"/v1/events/{acked}/ack")
    theirs = await api.client.post("/v1/events", json={"n": 9}, headers=api.globex)
    unknown = new_event_id(0)
    ids = [dead, live, acked, unknown, theirs.json()["id"], "garbage", dead]

    response = await post(api, "/v1/events/redrive", {"ids": ids})

    assert response.json() == {
        "redriven": [dead, live],
        "not_found": [acked, unknown, theirs.json()["id"], "garbage"],
    }
    assert (await get(api, dead))["status"] == "undelivered"


@pytest.mark.parametrize(
    "body", [b'{"ids": []}', b'{"ids": "evt_x"}', b"{}", b'{"ids": ["a"], "x": 1}', b"["]
)
async def test_bad_batch_redrives_are_422(api: Api, body: bytes) -> None:
    response = await api.client.post("/v1/events/redrive", content=body, headers=api.acme)
    assert_problem(response, 422, "validation_error")


async def test_trigger_max_attempts_sets_the_default_for_claims(tmp_path: Path) -> None:
    settings = load_settings({"db": str(tmp_path / "attempts.db")}, {"TRIGGER_MAX_ATTEMPTS": "2"})
    async with running_api(settings) as (client, ctx, _):
        auth = bearer(await mint_key(ctx.store, "acme"))
        event_id = (await client.post("/v1/events", json={"n": 1}, headers=auth)).json()["id"]
        for _ in range(2):
            [leased] = (await client.post("/v1/events/claim", headers=auth)).json()["events"]
            body = {"lease_token": leased["lease_token"]}
            await client.post(f"/v1/events/{event_id}/release", json=body, headers=auth)

        third = await client.post("/v1/events/claim", headers=auth)

        assert third.json() == {"events": []}
        dead = (await client.get(f"/v1/events/{event_id}", headers=auth)).json()
        assert (dead["status"], dead["attempts"]) == ("dead", 2)
