"""The worker's HTTP client: final answers from the real service, transient failures scripted
with httpx.MockTransport (the real service cannot be made to answer 503 on demand)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.worker.conftest import LiveService
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


class VirtualClock:
    """Time that passes only when the client sleeps, so deadlines are exact on any machine."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(
    *answers: httpx.Response | Exception, clock: VirtualClock | None = None
) -> tuple[TenantApi, list[httpx.Request]]:
    """A client whose successive requests get `answers` in order."""
    requests: list[httpx.Request] = []
    pending = list(answers)

    def respond(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        answer = pending.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    http = httpx.AsyncClient(base_url="http://api.test", transport=httpx.MockTransport(respond))
    OPENED.append(http)
    clock = clock or VirtualClock()
    api = TenantApi(http, Tenant("acme", "tk_secret"), FAST, clock=clock, sleep=clock.sleep)
    return api, requests


def live(service: LiveService, key: str) -> TenantApi:
    http = httpx.AsyncClient(base_url=service.url)
    OPENED.append(http)
    return TenantApi(http, Tenant("t", key), FAST)


CLAIMED = httpx.Response(200, json={"events": [{"id": "evt_1", "attempts": 1}]})


async def test_claim_retries_503_honouring_retry_after() -> None:
    api, requests = scripted(
        httpx.Response(503, headers={"Retry-After": "0"}, json={"code": "unavailable"}),
        httpx.Response(429),
        httpx.ConnectError("refused"),
        CLAIMED,
    )

    events = await api.claim(limit=5, lease_seconds=30, wait_seconds=0)

    assert events == [{"id": "evt_1", "attempts": 1}]
    assert len(requests) == 4
    assert requests[0].headers["Authorization"] == "Bearer tk_secret"
    assert requests[0].read() == b'{"limit":5,"lease_seconds":30,"wait_seconds":0}'


async def test_retries_stop_at_the_deadline() -> None:
    clock = VirtualClock()
    api, requests = scripted(*[httpx.Response(500)] * 50, clock=clock)

    with pytest.raises(Unavailable, match="HTTP 500"):
        await api.ack(["evt_1"], deadline=0.05)

    # It retried while a backoff still ended before the deadline, and no further.
    assert len(requests) == len(clock.sleeps) + 1 > 2
    assert clock.now <= 0.05 < clock.now + FAST.cap


async def test_a_4xx_answer_is_final() -> None:
    api, requests = scripted(
        httpx.Response(422, json={"code": "validation_error", "detail": "limit too big"})
    )

    with pytest.raises(ApiError, match="422 validation_error: limit too big"):
        await api.claim(limit=500, lease_seconds=30, wait_seconds=0)

    assert len(requests) == 1


async def test_an_answer_that_is_not_the_contract_is_an_error() -> None:
    api, _requests = scripted(httpx.Response(200, text="<html>proxy</html>"))

    with pytest.raises(ApiError, match="invalid_response"):
        await api.claim(limit=1, lease_seconds=30, wait_seconds=0)


async def test_an_error_body_that_is_not_a_problem_document_still_raises() -> None:
    api, _requests = scripted(httpx.Response(401, text="denied"))

    with pytest.raises(Unauthorized):
        await api.release("evt_1", deadline=None)


async def test_release_reports_unknown_and_delivered_events(live_service: LiveService) -> None:
    _name, key = live_service.new_tenant("release")
    [event_id] = live_service.create_events(key, 1)
    api = live(live_service, key)
    [event] = await api.claim(limit=1, lease_seconds=30, wait_seconds=0)

    assert await api.release(event["id"], deadline=None) == "released"
    assert await api.release("evt_01JD3Y8Z4Q9W2M7K5R6T1V0XBC", deadline=None) == "not_found"
    assert await api.ack([event_id], deadline=None) == ([event_id], [])
    assert await api.release(event_id, deadline=None) == "already_delivered"


async def test_refused_key_raises_unauthorized(live_service: LiveService) -> None:
    api = live(live_service, "tk_nobody")

    with pytest.raises(Unauthorized) as raised:
        await api.claim(limit=1, lease_seconds=30, wait_seconds=0)

    assert raised.value.status == 401
    assert raised.value.code == "unauthorized"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("2", 2.0),
        ("0.5", 0.5),
        ("9999", 60.0),
        ("-1", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_retry_after_header(header: str | None, expected: float | None) -> None:
    from worker.backoff import retry_after

    assert retry_after(header) == expected


def test_backoff_grows_exponentially_with_jitter_up_to_its_cap() -> None:
    backoff = Backoff(base=1.0, cap=8.0)

    def delays(attempt: int) -> list[float]:
        return [backoff.delay(attempt) for _ in range(200)]

    assert all(0.5 <= d <= 1.0 for d in delays(0))
    assert all(2.0 <= d <= 4.0 for d in delays(2))
    assert all(4.0 <= d <= 8.0 for d in delays(100))
    assert len(set(delays(1))) > 1
