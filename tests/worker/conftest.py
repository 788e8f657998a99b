"""A real `trigger-api serve` (embedded store, tmp db, free port) for the worker tests, plus
helpers to mint keys, store events and look at them through the API."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, create_key, unique_tenant
from worker.backoff import Backoff
from worker.client import TenantApi
from worker.config import Tenant

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
WORKER_VARIABLES = (
    "API_URL",
    "API_KEY",
    "API_KEYS",
    "TENANT_NAME",
    "TENANT_NAMES",
    "POLL_INTERVAL",
    "WORKER_HANDLER",
    "WORKER_CONCURRENCY",
    "WORKER_LEASE_SECONDS",
    "WORKER_GRACE_SECONDS",
    "WORKER_LOG_LEVEL",
)


@dataclass
class LiveService:
    url: str
    db: Path

    def new_tenant(self, prefix: str = "t") -> tuple[str, str]:
        """A fresh tenant and its key, minted with `trigger-api keys create`."""
        name = unique_tenant(prefix)
        return name, create_key(self.db, name)

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def create_events(self, key: str, count: int) -> list[str]:
        ids: list[str] = []
        with self.client(key) as client:
            for start in range(0, count, 50):
                batch = [{"n": n, "kind": "test"} for n in range(start, min(count, start + 50))]
                response = client.post("/v1/events/batch", json={"events": batch})
                assert response.status_code == 201, response.text
                ids += [event["id"] for event in response.json()["events"]]
        return ids

    def undelivered(self, key: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        cursor: str | None = None
        with self.client(key) as client:
            while True:
                params = {"status": "undelivered", "limit": "100"}
                if cursor:
                    params["cursor"] = cursor
                page = client.get("/v1/events", params=params).json()
                events += page["events"]
                cursor = page["next_cursor"]
                if cursor is None:
                    return events

    def claim(self, key: str, limit: int = 100) -> list[dict[str, Any]]:
        with self.client(key) as client:
            response = client.post("/v1/events/claim", json={"limit": limit, "lease_seconds": 30})
            assert response.status_code == 200, response.text
            events: list[dict[str, Any]] = response.json()["events"]
            return events


@pytest.fixture(scope="session")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """One service process for the whole worker suite; each test uses its own tenants."""
    home = tmp_path_factory.mktemp("service")
    db = home / "events.db"
    server = Server(home, "--db", str(db))
    try:
        yield LiveService(server.url, db)
    finally:
        server.stop()


def worker_env(
    service: LiveService, tenants: list[tuple[str, str]], **extra: str
) -> dict[str, str]:
    """The environment of a `trigger-worker` process for `tenants` ((name, key) pairs)."""
    env = {name: value for name, value in os.environ.items() if name not in WORKER_VARIABLES}
    env.update(
        API_URL=service.url,
        API_KEYS=",".join(key for _name, key in tenants),
        TENANT_NAMES=",".join(name for name, _key in tenants),
        PYTHONPATH=str(ROOT),  # so `tests.worker.handlers` imports in the worker process
    )
    env.update(extra)
    return env


def read_record(path: Path) -> list[tuple[int, str]]:
    """The `(pid, event id)` lines the test handlers appended."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [(int(pid), event_id) for pid, event_id in (line.split() for line in lines)]


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


Answer = httpx.Response | Exception
Script = Callable[..., tuple[TenantApi, list[httpx.Request]]]


@pytest.fixture
async def scripted() -> AsyncIterator[Script]:
    """Makes clients (tenant `acme`) whose successive requests get the answers given, in order,
    on a virtual clock (`clock=`), with retries that back off for milliseconds."""
    opened: list[httpx.AsyncClient] = []

    def make(
        *answers: Answer, clock: VirtualClock | None = None
    ) -> tuple[TenantApi, list[httpx.Request]]:
        requests: list[httpx.Request] = []
        pending = list(answers)

        def respond(request: httpx.Request) -> httpx.Response:
            requests.append(request)
            assert pending, f"unexpected request: {request.method} {request.url.path}"
            answer = pending.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

        transport = httpx.MockTransport(respond)
        http = httpx.AsyncClient(base_url="http://api.test", transport=transport)
        opened.append(http)
        clock = clock or VirtualClock()
        fast = Backoff(base=0.001, cap=0.01)
        api = TenantApi(http, Tenant("acme", "tk_secret"), fast, clock=clock, sleep=clock.sleep)
        return api, requests

    yield make
    for http in opened:
        await http.aclose()
