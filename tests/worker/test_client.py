"""The worker's HTTP client: final answers from the real service, transient failures scripted
with httpx.MockTransport (the real service cannot be made to answer 503 on demand)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from tests.worker.conftest import LiveService, Script, VirtualClock
from worker.backoff import Backoff
from worker.client import ApiError, TenantApi, Unauthorized, Unavailable
from worker.config import Tenant

FAST = Backoff(base=0.001, cap=0.01)
OPENED: list[httpx.AsyncClient] = []


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    while OPENED:
        await OPENED.pop().aclose()


def live(service: LiveService, key: str) -> TenantApi:
    http = httpx.AsyncClient(base_url=service.url)
    OPENED.append(http)
    return TenantApi(http, Tenant("t", key), FAST)


EVENT = {"id": "evt_1", "attempts": 1, "payload": {"n": 1}}
CLAIMED = httpx.Response(200, json={"events": [{**EVENT, "lease_token": "lt_1"}]})


def problem(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"status": status, "code": code, "detail": code})


async def test_claim_retries_503_honouring_retry_after(scripted: Script) -> None:
    api, requests = scripted(
        httpx.Response(503, headers={"Retry-After": "0"}, json={"code": "unavailable"}),
        httpx.Response(429),
        httpx.ConnectError("refused"),
        CLAIMED,
    )

    [claimed] = await api.claim(limit=5, lease_seconds=30, wait_seconds=0, max_attempts=3)

    assert (claimed.id, claimed.lease_token, claimed.event) == ("evt_1", "lt_1", EVENT)
    assert len(requests) == 4
    assert requests[0].headers["Authorization"] == "Bearer tk_secret"
    assert json.loads(requests[0].read()) == {
        "limit": 5,
        "lease_seconds": 30,
        "wait_seconds": 0,
        "max_attempts": 3,
    }


async def test_retries_stop_at_the_deadline(scripted: Script) -> None:
    clock = VirtualClock()
    api, requests = scripted(*[httpx.Response(500)] * 50, clock=clock)

    with pytest.raises(Unavailable, match="HTTP 500"):
        await api.ack(["evt_1"], deadline=0.05)

    # It retried while a backoff still ended before the deadline, and no further.
    assert len(requests) == len(clock.sleeps) + 1 > 2
    assert clock.now <= 0.05 < clock.now + FAST.cap


async def test_a_4xx_answer_is_final(scripted: Script) -> None:
    api, requests = scripted(
        httpx.Response(422, json={"code": "validation_error", "detail": "limit too big"})
    )

    with pytest.raises(ApiError, match="422 validation_error: limit too big"):
        await api.claim(limit=500, lease_seconds=30, wait_seconds=0, max_attempts=10)

    assert len(requests) == 1


async def test_an_answer_that_is_not_the_contract_is_an_error(scripted: Script) -> None:
    api, _requests = scripted(httpx.Response(200, text="<html>proxy</html>"))

    with pytest.raises(ApiError, match="invalid_response"):
        await api.claim(limit=1, lease_seconds=30, wait_seconds=0, max_attempts=10)


async def test_a_claimed_event_that_cannot_be_read_comes_back_without_its_body(
    caplog: pytest.LogCaptureFixture, scripted: Script
) -> None:
    deep = "[" * 5000 + "]" * 5000
    body = (
        '{"events": [{"id": "evt_1", "attempts": 1, "lease_token": "lt_1",'
        ' "payload": {"x": 1e400}},'
        f' {{"id": "evt_2", "attempts": 2, "lease_token": "lt_2", "payload": {{"x": {deep}}}}},'
        ' {"payload": {}}]}'
    )
    api, _requests = scripted(httpx.Response(200, text=body))

    first, second = await api.claim(limit=3, lease_seconds=30, wait_seconds=0, max_attempts=10)

    assert first.event is not None
    assert first.event["payload"] == {"x": Decimal("1e400")}
    assert (second.id, second.lease_token, second.attempts, second.event) == (
        "evt_2",
        "lt_2",
        2,
        None,
    )
    assert "RecursionError" in str(second.problem)
    [unreadable] = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert "tenant=acme" in unreadable


async def test_release_sends_the_token_the_delay_and_the_error_cut_to_what_is_kept(
    scripted: Script,
) -> None:
    api, requests = scripted(httpx.Response(200, json={"status": "released"}))

    outcome = await api.release(
        "evt_1", "lt_1", delay_seconds=4, error="ValueError: " + "x" * 5000, deadline=None
    )

    assert outcome == "released"
    assert requests[0].url.path == "/v1/events/evt_1/release"
    body = json.loads(requests[0].read())
    assert body == {"lease_token": "lt_1", "delay_seconds": 4, "error": body["error"]}
    assert len(body["error"]) == 2048
    assert body["error"].startswith("ValueError: xxx")


async def test_a_plain_release_sends_only_the_token(scripted: Script) -> None:
    api, requests = scripted(httpx.Response(200, json={"status": "released"}))

    assert await api.release("evt_1", "lt_1", deadline=None) == "released"
    assert requests[0].read() == b'{"lease_token":"lt_1"}'


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (problem(409, "lease_lost"), "lease_lost"),
        (problem(409, "already_delivered"), "already_delivered"),
        (problem(404, "not_found"), "not_found"),
    ],
)
async def test_refusals_of_a_lease_are_outcomes_not_errors(
    answer: httpx.Response, outcome: str, scripted: Script
) -> None:
    release, release_requests = scripted(answer)
    extend, _ = scripted(httpx.Response(answer.status_code, content=answer.content))

    assert await release.release("evt_1", "lt_1", deadline=None) == outcome
    assert await extend.extend("evt_1", "lt_1", lease_seconds=30, deadline=None) == outcome
    assert len(release_requests) == 1  # not retried


async def test_an_unknown_conflict_is_an_error(scripted: Script) -> None:
    api, _requests = scripted(problem(409, "something_new"))

    with pytest.raises(ApiError, match="409 something_new"):
        await api.release("evt_1", "lt_1", deadline=None)


async def test_extend_sends_the_token_and_the_new_lease(scripted: Script) -> None:
    api, requests = scripted(
        httpx.Response(503, headers={"Retry-After": "0"}),
        httpx.Response(200, json={"lease_expires_at": 1764086430000}),
    )

    assert await api.extend("evt_1", "lt_1", lease_seconds=45, deadline=None) == "extended"
    assert requests[-1].url.path == "/v1/events/evt_1/extend"
    assert json.loads(requests[-1].read()) == {"lease_token": "lt_1", "lease_seconds": 45}


async def test_extend_answered_outside_the_contract_is_an_error(scripted: Script) -> None:
    api, _requests = scripted(httpx.Response(200, json={"status": "extended"}))

    with pytest.raises(ApiError, match="invalid_response"):
        await api.extend("evt_1", "lt_1", lease_seconds=45, deadline=None)


async def test_an_error_body_that_is_not_a_problem_document_still_raises(scripted: Script) -> None:
    api, _requests = scripted(httpx.Response(401, text="denied"))

    with pytest.raises(Unauthorized):
        await api.release("evt_1", "lt_1", deadline=None)


async def test_lease_answers_from_the_real_service(live_service: LiveService) -> None:
    _name, key = live_service.new_tenant("release")
    [event_id] = live_service.create_events(key, 1)
    api = live(live_service, key)
    [first] = await api.claim(limit=1, lease_seconds=30, wait_seconds=0, max_attempts=10)

    assert await api.extend(event_id, first.lease_token, lease_seconds=60, deadline=None) == (
        "extended"
    )
    assert await api.release(event_id, first.lease_token, deadline=None) == "released"
    assert await api.release(event_id, first.lease_token, deadline=None) == "lease_lost"
    [second] = await api.claim(limit=1, lease_seconds=30, wait_seconds=0, max_attempts=10)
    assert second.attempts == 2
    assert await api.extend(event_id, first.lease_token, lease_seconds=9, deadline=None) == (
        "lease_lost"
    )
    gone = "evt_01JD3Y8Z4Q9W2M7K5R6T1V0XBC"
    assert await api.release(gone, second.lease_token, deadline=None) == "not_found"
    assert await api.ack([event_id], deadline=None) == ([event_id], [])
    assert await api.release(event_id, second.lease_token, deadline=None) == "already_delivered"
    assert await api.extend(event_id, second.lease_token, lease_seconds=9, deadline=None) == (
        "already_delivered"
    )


async def test_refused_key_raises_unauthorized(live_service: LiveService) -> None:
    api = live(live_service, "tk_nobody")

    with pytest.raises(Unauthorized) as raised:
        await api.claim(limit=1, lease_seconds=30, wait_seconds=0, max_attempts=10)

    assert raised.value.status == 401
    assert raised.value.code == "unauthorized"
