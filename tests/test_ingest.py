"""Creating events through HTTP: single, batch, and Idempotency-Key, on both stores."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.conftest import Api, assert_problem

KIB = 1024


async def all_ids(api: Api, headers: dict[str, str]) -> list[str]:
    page = (await api.client.get("/v1/events?limit=100", headers=headers)).json()
    return [e["id"] for e in page["events"]]


async def post(api: Api, path: str, body: bytes, **headers: str) -> httpx.Response:
    return await api.client.post(
        path, content=body, headers={**api.acme, "content-type": "application/json", **headers}
    )


# -- single events ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"a":}',
        b"[1, 2]",
        b'"text"',
        b"42",
        b"null",
        b'{"a": 1} trailing',
        b'{"a":"\xff"}',
    ],
)
async def test_bodies_that_are_not_one_json_object_are_422(api: Api, body: bytes) -> None:
    assert_problem(await post(api, "/v1/events", body), 422, "validation_error")
    assert await all_ids(api, api.acme) == []


async def test_an_event_of_exactly_256_kib_is_stored_and_one_byte_more_is_413(api: Api) -> None:
    def payload(size: int) -> bytes:
        prefix = b'{"pad": "'
        return prefix + b"x" * (size - len(prefix) - 2) + b'"}'

    stored = await post(api, "/v1/events", payload(256 * KIB))
    refused = await post(api, "/v1/events", payload(256 * KIB + 1))

    assert stored.status_code == 201
    assert_problem(refused, 413, "payload_too_large")
    assert await all_ids(api, api.acme) == [stored.json()["id"]]


async def test_oversized_body_without_content_length_is_413(api: Api) -> None:
    async def chunks() -> object:
        for _ in range(300):
            yield b" " * KIB

    response = await api.client.post("/v1/events", content=chunks(), headers=api.acme)  # type: ignore[arg-type]
    assert_problem(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic abc", "bearer tk_unknown", "Bearer tk_ü".encode()],
)
async def test_missing_malformed_or_unknown_keys_are_401(
    api: Api, authorization: str | None
) -> None:
    headers: dict[str, str | bytes] = {}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = await api.client.post("/v1/events", json={"a": 1}, headers=headers)

    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


# -- batches ----------------------------------------------------------------------------------


async def test_batch_stores_every_event_and_answers_ids_in_input_order(api: Api) -> None:
    events = [{"n": n, "text": "é" * n} for n in range(50)]

    response = await api.client.post("/v1/events/batch", json={"events": events}, headers=api.acme)

    assert response.status_code == 201
    created = response.json()["events"]
    assert len(created) == 50
    assert [c["status"] for c in created] == ["undelivered"] * 50
    ids = [c["id"] for c in created]
    assert ids == sorted(ids)  # ids sort in creation order, and creation is input order
    for event_id, sent in zip(ids[::7], events[::7], strict=False):
        got = (await api.client.get(f"/v1/events/{event_id}", headers=api.acme)).json()
        assert got["payload"] == sent


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"events": []}', 422, "validation_error"),
        (json.dumps({"events": [{"n": n} for n in range(51)]}).encode(), 422, "validation_error"),
        (b'{"events": [{"a": 1}, [2]]}', 422, "validation_error"),
        (b'{"events": [{"a": 1}, "x"]}', 422, "validation_error"),
        (b'{"events": [{"a": 1}, {"b": }]}', 422, "validation_error"),
        (b'{"events": {"a": 1}}', 422, "validation_error"),
        (b'{"evnets": [{"a": 1}]}', 422, "validation_error"),
        (b'{"events": [{"a": 1}], "extra": 1}', 422, "validation_error"),
        (b"[]", 422, "validation_error"),
        (b'{"events": [{"a": "\xff"}]}', 422, "validation_error"),
    ],
)
async def test_a_bad_batch_stores_nothing(api: Api, body: bytes, status: int, code: str) -> None:
    assert_problem(await post(api, "/v1/events/batch", body), status, code)
    assert await all_ids(api, api.acme) == []


async def test_batch_size_limits_are_413_and_store_nothing(api: Api) -> None:
    big_item = {"pad": "x" * (256 * KIB)}
    over_total = {"events": [{"pad": "x" * (200 * KIB)} for _ in range(6)]}

    item = await api.client.post(
        "/v1/events/batch", json={"events": [{"a": 1}, big_item]}, headers=api.acme
    )
    total = await api.client.post("/v1/events/batch", json=over_total, headers=api.acme)

    assert_problem(item, 413, "payload_too_large")
    assert "events[1]" in str(item.json()["detail"])
    assert_problem(total, 413, "payload_too_large")
    assert await all_ids(api, api.acme) == []


# -- idempotency ------------------------------------------------------------------------------


async def test_a_retry_with_the_same_key_replays_the_first_answer(api: Api) -> None:
    headers = {**api.acme, "Idempotency-Key": "order-42"}
    first = await api.client.post("/v1/events", json={"a": 1, "b": 2}, headers=headers)
    # Same body in another key order and spacing: the same request.
    retry = await api.client.post("/v1/events", content=b'{ "b": 2, "a": 1 }', headers=headers)

    assert first.status_code == retry.status_code == 201
    assert retry.content == first.content
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert retry.headers["location"] == first.headers["location"]
    assert await all_ids(api, api.acme) == [first.json()["id"]]


async def test_reusing_a_key_with_another_body_is_422(api: Api) -> None:
    headers = {**api.acme, "Idempotency-Key": "k-1"}
    await api.client.post("/v1/events", json={"a": 1}, headers=headers)

    other_body = await api.client.post("/v1/events", json={"a": 2}, headers=headers)
    other_route = await api.client.post(
        "/v1/events/batch", json={"events": [{"a": 1}]}, headers=headers
    )

    assert_problem(other_body, 422, "idempotency_key_reused")
    assert_problem(other_route, 422, "idempotency_key_reused")
    assert len(await all_ids(api, api.acme)) == 1


async def test_batches_replay_too(api: Api) -> None:
    headers = {**api.acme, "Idempotency-Key": "batch-7"}
    body = {"events": [{"n": n} for n in range(10)]}

    first = await api.client.post("/v1/events/batch", json=body, headers=headers)
    retry = await api.client.post("/v1/events/batch", json=body, headers=headers)

    assert retry.status_code == 201
    assert retry.content == first.content
    assert retry.headers["idempotent-replayed"] == "true"
    assert "location" not in first.headers
    assert "location" not in retry.headers
    assert len(await all_ids(api, api.acme)) == 10


async def test_idempotency_keys_belong_to_one_tenant(api: Api) -> None:
    acme = await api.client.post(
        "/v1/events", json={"a": 1}, headers={**api.acme, "Idempotency-Key": "shared"}
    )
    globex = await api.client.post(
        "/v1/events", json={"a": 1}, headers={**api.globex, "Idempotency-Key": "shared"}
    )

    assert acme.status_code == globex.status_code == 201
    assert "idempotent-replayed" not in globex.headers
    assert acme.json()["id"] != globex.json()["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\there", "é"])
async def test_malformed_idempotency_keys_are_400(api: Api, key: str) -> None:
    response = await api.client.post(
        "/v1/events",
        json={"a": 1},
        headers={**api.acme, "Idempotency-Key": key.encode()},
    )

    assert_problem(response, 400, "invalid_idempotency_key")
    assert await all_ids(api, api.acme) == []


async def test_a_255_character_key_is_accepted(api: Api) -> None:
    response = await api.client.post(
        "/v1/events", json={"a": 1}, headers={**api.acme, "Idempotency-Key": "k" * 255}
    )
    assert response.status_code == 201


async def test_concurrent_requests_with_one_key_create_exactly_one_event(api: Api) -> None:
    headers = {**api.acme, "Idempotency-Key": "burst"}

    responses = await asyncio.gather(
        *(api.client.post("/v1/events", json={"same": True}, headers=headers) for _ in range(32))
    )

    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    assert len(await all_ids(api, api.acme)) == 1


# -- I-JSON: nesting, duplicate names, exact numbers ------------------------------------------

DEEP = b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/events", DEEP),
        ("/v1/events/batch", b'{"events": [' + DEEP + b"]}"),
        ("/v1/events/claim", DEEP),
        ("/v1/events/ack", b'{"ids": ' + b"[" * 1000 + b"]" * 1000 + b"}"),
    ],
)
@pytest.mark.parametrize("idempotency_key", [None, "deep-1"])
async def test_a_body_nested_too_deep_is_422_and_stores_nothing(
    api: Api, path: str, body: bytes, idempotency_key: str | None
) -> None:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}

    problem = assert_problem(await post(api, path, body, **headers), 422, "validation_error")

    assert "more than 64 levels" in str(problem["detail"])
    assert await all_ids(api, api.acme) == []


async def test_a_payload_may_nest_64_levels_alone_or_in_a_batch(api: Api) -> None:
    payload = b'{"a":' * 63 + b"{}" + b"}" * 63
    deeper = b'{"a":' + payload + b"}"

    single = await post(api, "/v1/events", payload)
    batch = await post(api, "/v1/events/batch", b'{"events": [' + payload + b"]}")
    single_deeper = await post(api, "/v1/events", deeper)
    batch_deeper = await post(api, "/v1/events/batch", b'{"events": [{}, ' + deeper + b"]}")

    assert (single.status_code, batch.status_code) == (201, 201)
    assert_problem(single_deeper, 422, "validation_error")
    assert "events[1]" in str(assert_problem(batch_deeper, 422, "validation_error")["detail"])


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/events", b'{"a": 1, "a": 2}'),
        ("/v1/events", b'{"a": {"b": 1, "b": 1}}'),
        ("/v1/events/batch", b'{"events": [{"a": 1}], "events": [{"a": 2}]}'),
        ("/v1/events/batch", b'{"events": [{"a": 1, "a": 2}]}'),
        ("/v1/events/claim", b'{"limit": 1, "limit": 2}'),
    ],
)
async def test_a_repeated_member_name_is_422_and_stores_nothing(
    api: Api, path: str, body: bytes
) -> None:
    problem = assert_problem(await post(api, path, body), 422, "validation_error")

    assert "RFC 7493" in str(problem["detail"])
    assert await all_ids(api, api.acme) == []


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (b'{"x": 0.1}', b'{"x": 0.10000000000000000001}'),
        (b'{"x": 9007199254740993.0}', b'{"x": 9007199254740992.0}'),
        (b'{"x": 1e400}', b'{"x": 1e401}'),
    ],
)
async def test_bodies_that_differ_in_any_digit_are_different_requests(
    api: Api, first: bytes, second: bytes
) -> None:
    created = await post(api, "/v1/events", first, **{"Idempotency-Key": "exact"})
    reused = await post(api, "/v1/events", second, **{"Idempotency-Key": "exact"})

    assert created.status_code == 201
    assert_problem(reused, 422, "idempotency_key_reused")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (b'{"x":1e400}', b'{"x": 1e400}'),
        (b'{"x": 100, "y": 0.5}', b'{"y": 5E-1, "x": 1E2}'),
        (b'{"x": "\\u00e9"}', '{"x": "é"}'.encode()),
    ],
)
async def test_bodies_equal_as_json_are_the_same_request(
    api: Api, first: bytes, second: bytes
) -> None:
    created = await post(api, "/v1/events", first, **{"Idempotency-Key": "equal"})
    replayed = await post(api, "/v1/events", second, **{"Idempotency-Key": "equal"})

    assert created.status_code == replayed.status_code == 201
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.content == created.content
