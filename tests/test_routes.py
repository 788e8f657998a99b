"""Reading, listing, acknowledging and deleting events through HTTP, on both stores."""

from __future__ import annotations

import pytest

from service.ids import new_event_id
from tests.conftest import Api, assert_problem, create


async def test_health_needs_no_key_and_ready_checks_the_store(api: Api) -> None:
    health = await api.client.get("/health")
    ready = await api.client.get("/ready")

    assert (health.status_code, health.json()) == (200, {"status": "healthy"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_created_event_reads_back_exactly(api: Api) -> None:
    raw = b'{"event_type": "customer.created", "amount": 10.50, "name": "Ren\\u00e9 \xc3\xa9"}'
    response = await api.client.post(
        "/v1/events", content=raw, headers={**api.acme, "content-type": "application/json"}
    )

    assert response.status_code == 201
    created = response.json()
    assert response.headers["location"] == f"/v1/events/{created['id']}"
    assert created["status"] == "undelivered"
    got = await api.client.get(f"/v1/events/{created['id']}", headers=api.acme)
    assert got.status_code == 200
    # The payload is embedded byte for byte: same keys, same number text, same escapes.
    assert raw in got.content
    assert got.json() == {
        "id": created["id"],
        "created_at": created["created_at"],
        "status": "undelivered",
        "payload": {"event_type": "customer.created", "amount": 10.5, "name": "René é"},
        "delivered_at": None,
        "attempts": 0,
        "lease_expires_at": None,
        "available_at": None,
        "last_error": None,
    }


async def test_ack_delivers_and_is_idempotent(api: Api) -> None:
    event_id = await create(api, {"n": 1})

    first = await api.client.post(f"/v1/events/{event_id}/ack", headers=api.acme)
    again = await api.client.post(f"/v1/events/{event_id}/ack", headers=api.acme)

    assert (first.status_code, first.json()) == (200, {"status": "acknowledged"})
    assert (again.status_code, again.json()) == (200, {"status": "acknowledged"})
    event = (await api.client.get(f"/v1/events/{event_id}", headers=api.acme)).json()
    assert event["status"] == "delivered"
    assert isinstance(event["delivered_at"], int)
    undelivered = await api.client.get("/v1/events?status=undelivered", headers=api.acme)
    assert undelivered.json() == {"events": [], "next_cursor": None}


async def test_delete_answers_204_then_404(api: Api) -> None:
    event_id = await create(api, {"n": 1})

    deleted = await api.client.delete(f"/v1/events/{event_id}", headers=api.acme)
    again = await api.client.delete(f"/v1/events/{event_id}", headers=api.acme)

    assert (deleted.status_code, deleted.content) == (204, b"")
    assert_problem(again, 404, "not_found")
    assert_problem(
        await api.client.get(f"/v1/events/{event_id}", headers=api.acme), 404, "not_found"
    )


@pytest.mark.parametrize("event_id", ["nope", "evt_" + "0" * 40, "evt_01jd3y8z4q9w2m7k5r6t1v0xbc"])
async def test_malformed_and_unknown_ids_are_404(api: Api, event_id: str) -> None:
    for method, path in [
        ("GET", f"/v1/events/{event_id}"),
        ("DELETE", f"/v1/events/{event_id}"),
        ("POST", f"/v1/events/{event_id}/ack"),
        ("POST", f"/v1/events/{event_id}/release"),
        ("POST", f"/v1/events/{event_id}/extend"),
        ("POST", f"/v1/events/{event_id}/redrive"),
    ]:
        assert_problem(await api.client.request(method, path, headers=api.acme), 404, "not_found")
    unknown = new_event_id(0)
    assert_problem(
        await api.client.get(f"/v1/events/{unknown}", headers=api.acme), 404, "not_found"
    )


async def test_another_tenants_event_is_indistinguishable_from_a_missing_one(api: Api) -> None:
    event_id = await create(api, {"secret": "acme's"})

    [leased] = (await api.client.post("/v1/events/claim", headers=api.acme)).json()["events"]
    lease = {"lease_token": leased["lease_token"], "lease_seconds": 60}

    for method, path, body in [
        ("GET", f"/v1/events/{event_id}", None),
        ("DELETE", f"/v1/events/{event_id}", None),
        ("POST", f"/v1/events/{event_id}/ack", None),
        ("POST", f"/v1/events/{event_id}/release", {"lease_token": lease["lease_token"]}),
        ("POST", f"/v1/events/{event_id}/extend", lease),
        ("POST", f"/v1/events/{event_id}/redrive", None),
    ]:
        response = await api.client.request(method, path, json=body, headers=api.globex)
        assert_problem(response, 404, "not_found")
    listed = await api.client.get("/v1/events", headers=api.globex)
    assert listed.json() == {"events": [], "next_cursor": None}
    mine = await api.client.get(f"/v1/events/{event_id}", headers=api.acme)
    # globex's ack, release and extend changed nothing
    assert (mine.json()["status"], mine.json()["lease_expires_at"]) == (
        "undelivered",
        leased["lease_expires_at"],
    )


# -- listing ----------------------------------------------------------------------------------


async def test_following_cursors_visits_every_event_once(api: Api) -> None:
    ids = [await create(api, {"n": n}) for n in range(7)]

    seen: list[str] = []
    url = "/v1/events?limit=3"
    pages = 0
    while url:
        page = (await api.client.get(url, headers=api.acme)).json()
        seen += [e["id"] for e in page["events"]]
        pages += 1
        url = page["next_cursor"] and f"/v1/events?limit=3&cursor={page['next_cursor']}"

    assert seen == ids[::-1]
    assert pages == 3


async def test_status_filter_lists_oldest_first(api: Api) -> None:
    ids = [await create(api, {"n": n}) for n in range(4)]
    await api.client.post(f"/v1/events/{ids[1]}/ack", headers=api.acme)

    undelivered = (await api.client.get("/v1/events?status=undelivered", headers=api.acme)).json()
    delivered = (await api.client.get("/v1/events?status=delivered", headers=api.acme)).json()

    assert [e["id"] for e in undelivered["events"]] == [ids[0], ids[2], ids[3]]
    assert [e["id"] for e in delivered["events"]] == [ids[1]]


async def test_limit_is_clamped_to_100(api: Api) -> None:
    await api.client.post(
        "/v1/events/batch", json={"events": [{"n": n} for n in range(50)]}, headers=api.acme
    )
    await api.client.post(
        "/v1/events/batch", json={"events": [{"n": n} for n in range(51, 101)]}, headers=api.acme
    )
    await create(api, {"n": 101})

    page = (await api.client.get("/v1/events?limit=1000", headers=api.acme)).json()
    huge = await api.client.get("/v1/events?limit=" + "9" * 5000, headers=api.acme)
    padded = (await api.client.get("/v1/events?limit=0003", headers=api.acme)).json()
    default = (await api.client.get("/v1/events", headers=api.acme)).json()

    assert len(page["events"]) == 100
    assert page["next_cursor"] is not None
    assert len(huge.json()["events"]) == 100
    assert len(padded["events"]) == 3
    assert len(default["events"]) == 50


@pytest.mark.parametrize(
    "query",
    [
        "status=pending",
        "status=",
        "limit=0",
        "limit=000",
        "limit=-5",
        "limit=ten",
        "limit=1.5",
        "limit=1_0",
        "limit=%2B5",
        "limit=+5",
        "limit=%201",
        "limit=1%20",
        "limit=%D9%A3",  # ARABIC-INDIC DIGIT THREE, which int() reads as 3
        "limit=",
        "limit=0x10",
    ],
)
async def test_bad_list_parameters_are_422(api: Api, query: str) -> None:
    assert_problem(
        await api.client.get(f"/v1/events?{query}", headers=api.acme), 422, "validation_error"
    )


async def test_bad_cursors_are_400_never_another_tenants_data(api: Api) -> None:
    for n in range(3):
        await create(api, {"n": n})
    page = (await api.client.get("/v1/events?limit=1", headers=api.acme)).json()
    cursor = page["next_cursor"]
    body, _, signature = cursor.partition(".")
    tampered = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature

    for url, headers in [
        (f"/v1/events?cursor={cursor}", api.globex),  # another tenant's cursor
        (f"/v1/events?cursor={cursor}&status=undelivered", api.acme),  # another status
        (f"/v1/events?cursor={tampered}", api.acme),
        ("/v1/events?cursor=garbage", api.acme),
        ("/v1/events?cursor=", api.acme),
        ("/v1/events?cursor=%F0%9F%98%80.x", api.acme),
    ]:
        assert_problem(await api.client.get(url, headers=headers), 400, "invalid_cursor")
    following = await api.client.get(f"/v1/events?limit=1&cursor={cursor}", headers=api.acme)
    assert following.status_code == 200


async def test_listing_changes_nothing(api: Api) -> None:
    event_id = await create(api, {"n": 1})
    for _ in range(3):
        await api.client.get("/v1/events?status=undelivered", headers=api.acme)

    event = (await api.client.get(f"/v1/events/{event_id}", headers=api.acme)).json()
    assert (event["status"], event["attempts"], event["lease_expires_at"]) == (
        "undelivered",
        0,
        None,
    )


# -- routing and conventions ------------------------------------------------------------------


async def test_request_id_is_echoed_or_generated(api: Api) -> None:
    echoed = await api.client.get("/health", headers={"X-Request-ID": "trace-123"})
    generated = await api.client.get("/health")
    refused = await api.client.get("/health", headers={"X-Request-ID": "x" * 500})

    assert echoed.headers["x-request-id"] == "trace-123"
    assert len(generated.headers["x-request-id"]) == 32
    assert refused.headers["x-request-id"] != "x" * 500
    problem = await api.client.get("/v1/events", headers={"X-Request-ID": "trace-9"})
    assert assert_problem(problem, 401, "unauthorized")["request_id"] == "trace-9"


async def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    assert_problem(await api.client.get("/v2/events"), 404, "not_found")
    put = await api.client.put("/v1/events", headers=api.acme)
    post = await api.client.post(f"/v1/events/{new_event_id(0)}", headers=api.acme)

    assert_problem(put, 405, "method_not_allowed")
    assert set(put.headers["allow"].split(", ")) == {"POST", "GET", "HEAD"}
    assert_problem(post, 405, "method_not_allowed")
    assert set(post.headers["allow"].split(", ")) == {"GET", "DELETE", "HEAD"}


async def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_clients_host(api: Api) -> None:
    response = await api.client.get(
        "/v1/events/", headers={**api.acme, "Host": "evil.example", "X-Request-ID": "slash-1"}
    )

    assert_problem(response, 404, "not_found")
    assert "location" not in response.headers
    assert response.headers["x-request-id"] == "slash-1"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope"), ("GET", "/v1/events/"), ("POST", "/health"), ("GET", "/v1/events/x/y")],
)
async def test_every_answer_carries_a_request_id(api: Api, method: str, path: str) -> None:
    response = await api.client.request(method, path, headers=api.acme)

    assert response.status_code in (404, 405)
    assert response.headers["x-request-id"]
