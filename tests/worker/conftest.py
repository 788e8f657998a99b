"""A real `trigger-api serve` on each store (a SQLite file; DynamoDB tables in the moto server)
for the worker tests, helpers to mint keys, store events and look at them through the API, and
scripted HTTP answers on a virtual clock for what the real service cannot be made to do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import STORE_KINDS, TRIGGER_API, Server, unique_tables, unique_tenant
from worker.backoff import Backoff
from worker.client import TenantApi
from worker.config import Tenant

BIN = Path(sys.executable).parent
WORKER = BIN / "trigger-worker"
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
    "WORKER_HEARTBEAT_FILE",
    "MAX_ATTEMPTS",
    "RETRY_MAX_SECONDS",
    "WORKER_METRICS_PORT",
    "WORKER_METRICS_HOST",
    "WORKER_THROUGHPUT_SECONDS",
)


@dataclass
class LiveService:
    url: str
    store: str
    env: dict[str, str]  # what `trigger-api` needs to reach the service's store

    def new_tenant(self, prefix: str = "t") -> tuple[str, str]:
        """A fresh tenant and its key, minted with `trigger-api keys create`."""
        name = unique_tenant(prefix)
        return name, _trigger_api(self.env, "keys", "create", "--tenant", name)

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def create_events(self, key: str, count: int) -> list[str]:
        return self.send_events(
            key, [f'{{"n": {n}, "kind": "test"}}'.encode() for n in range(count)]
        )

    def send_events(self, key: str, payloads: list[bytes]) -> list[str]:
        """Store events whose JSON text is `payloads` (as sent: numbers no float can hold,
        too); return their ids, in order."""
        ids: list[str] = []
        with self.client(key) as client:
            for start in range(0, len(payloads), 50):
                body = b'{"events": [' + b", ".join(payloads[start : start + 50]) + b"]}"
                response = client.post(
                    "/v1/events/batch", content=body, headers={"Content-Type": "application/json"}
                )
                assert response.status_code == 201, response.text
                ids += [event["id"] for event in response.json()["events"]]
        return ids

    def events(self, key: str, status: str) -> list[dict[str, Any]]:
        """Every event of the tenant with `status`, oldest first."""
        events: list[dict[str, Any]] = []
        cursor: str | None = None
        with self.client(key) as client:
            while True:
                params = {"status": status, "limit": "100"}
                if cursor:
                    params["cursor"] = cursor
                response = client.get("/v1/events", params=params)
                assert response.status_code == 200, response.text
                page = response.json()
                events += page["events"]
                cursor = page["next_cursor"]
                if cursor is None:
                    return events

    def undelivered(self, key: str) -> list[dict[str, Any]]:
        return self.events(key, "undelivered")

    def claim(self, key: str, limit: int = 100) -> list[dict[str, Any]]:
        with self.client(key) as client:
            response = client.post("/v1/events/claim", json={"limit": limit, "lease_seconds": 30})
            assert response.status_code == 200, response.text
            events: list[dict[str, Any]] = response.json()["events"]
            return events


def _trigger_api(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [TRIGGER_API, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@contextmanager
def _serving(home: Path, store: str, env: dict[str, str]) -> Iterator[LiveService]:
    server = Server(home, env=env)
    try:
        yield LiveService(server.url, store, env)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """`trigger-api serve` on a SQLite file, for the whole session; each test has its own
    tenants."""
    home = tmp_path_factory.mktemp("sqlite-service")
    env = {"TRIGGER_STORE": "sqlite", "TRIGGER_DB": str(home / "events.db")}
    with _serving(home, "sqlite", env) as service:
        yield service


@pytest.fixture(scope="session")
def dynamodb_service(
    tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str
) -> Iterator[LiveService]:
    """`trigger-api serve --store dynamodb` on tables of its own in the moto server."""
    events_table, keys_table = unique_tables()
    env = {
        "TRIGGER_STORE": "dynamodb",
        "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint,
        "TRIGGER_EVENTS_TABLE": events_table,
        "TRIGGER_KEYS_TABLE": keys_table,
    }
    _trigger_api(env, "tables", "create")
    with _serving(tmp_path_factory.mktemp("dynamodb-service"), "dynamodb", env) as service:
        yield service


@pytest.fixture(scope="session")
def live_service(sqlite_service: LiveService) -> LiveService:
    """The service, for tests where the store makes no difference to the worker."""
    return sqlite_service


@pytest.fixture(params=STORE_KINDS)
def each_service(request: pytest.FixtureRequest) -> LiveService:
    """The service on each store in turn: SQLite, then DynamoDB."""
    service: LiveService = request.getfixturevalue(f"{request.param}_service")
    return service


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


@dataclass
class Workers:
    """`trigger-worker` processes started by `workers_running`, and how they ended."""

    logs: list[Path]
    statuses: list[int] = field(default_factory=list)

    def texts(self) -> list[str]:
        return [log.read_text() for log in self.logs]


@contextmanager
def workers_running(
    env: dict[str, str], logs_in: Path, count: int, *args: str
) -> Iterator[Workers]:
    """`count` worker daemons with `args`, their stderr in files; stopped with SIGTERM on exit."""
    workers = Workers([logs_in / f"worker-{n}.log" for n in range(count)])
    processes: list[subprocess.Popen[bytes]] = []
    for log in workers.logs:
        with log.open("w") as stderr:
            processes.append(subprocess.Popen([WORKER, *args], env=env, stderr=stderr))
    try:
        yield workers
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        workers.statuses = [process.wait(timeout=30) for process in processes]


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def read_record(path: Path) -> list[tuple[int, str]]:
    """The `(pid, event id)` lines the test handlers appended."""
    return [(int(pid), event_id) for pid, event_id, *_more in _record_lines(path)]


def read_amounts(path: Path) -> dict[str, str]:
    """{event id: repr of its payload's amount}, from `handlers.record_amount`."""
    return {event_id: amount for _pid, event_id, amount in _record_lines(path)}


def _record_lines(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split(" ", 2) for line in path.read_text().splitlines()]


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
