"""`GET /v1/stats` through HTTP on both stores: a tenant's own backlog, at once after a change."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import Api, assert_problem, create


async def stats(api: Api, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await api.client.get("/v1/stats", headers=headers or api.acme)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


async def test_a_new_tenant_has_an_empty_backlog(api: Api) -> None:
    before = int(time.time() * 1000)
    body = await stats(api)

    assert {k: v for k, v in body.items() if k != "as_of"} == {
        "undelivered": 0,
        "in_flight": 0,
        "dead": 0,
        "oldest_undelivered_at": None,
    }
    assert before - 60_000 <= body["as_of"] <= int(time.time() * 1000)


async def test_the_backlog_counts_creates_leases_and_deaths_of_its_tenant_only(api: Api) -> None:
    first = await create(api, {"n": 1})
    await create(api, {"n": 2})
    await create(api, {"n": 3})
    claimed = await api.client.post("/v1/events/claim", json={"limit": 2}, headers=api.acme)
    [one, _] = claimed.json()["events"]
    released = await api.client.post(
        f"/v1/events/{one['id']}/release",
        json={"lease_token": one["lease_token"]},
        headers=api.acme,
    )
    assert released.status_code == 200
    killer = await api.client.post(
        "/v1/events/claim", json={"limit": 1, "max_attempts": 1}, headers=api.acme
    )
    assert killer.json()["events"] != []  # the first is dead; the third is leased instead

    body = await stats(api)
    got = await api.client.get(f"/v1/events/{first}", headers=api.acme)

    assert (body["undelivered"], body["in_flight"], body["dead"]) == (2, 2, 1)
    assert (
        body["oldest_undelivered_at"]
        == (
            await api.client.get(
                f"/v1/events/{claimed.json()['events'][1]['id']}", headers=api.acme
            )
        ).json()["created_at"]
    )
    assert got.json()["status"] == "dead"
    other = await stats(api, api.globex)
    assert (other["undelivered"], other["dead"]) == (0, 0)


async def test_the_backlog_needs_a_key(api: Api) -> None:
    assert_problem(await api.client.get("/v1/stats"), 401, "unauthorized")
