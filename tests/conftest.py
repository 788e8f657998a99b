"""Shared fixtures: a moto DynamoDB server over real HTTP, and a started store of each kind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

# Fake AWS settings, so nothing here can reach a real account.
for _name, _value in {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}.items():
    os.environ[_name] = _value
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_SESSION_TOKEN", None)

from service.app import create_app  # noqa: E402
from service.auth import mint_key  # noqa: E402
from service.context import Context  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.store import open_store  # noqa: E402
from service.store.base import Store  # noqa: E402
from service.store.tables import create_tables  # noqa: E402

STORE_KINDS = ["sqlite", "dynamodb"]
TRIGGER_API = str(Path(sys.executable).parent / "trigger-api")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


MOTO_SERVER = Path(__file__).with_name("moto_server.py")


@contextmanager
def moto_server(*options: str) -> Iterator[str]:
    """tests/moto_server.py in its own process on a free loopback port, started with `options`
    (e.g. `"--meter"`, or `"--partition-wcu", "50"`); yields its endpoint."""
    port = free_port()
    # Not measured for coverage (it is none of ours), so not slowed by its tracer either.
    unmeasured = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_PROCESS_")}
    process = subprocess.Popen(
        [sys.executable, str(MOTO_SERVER), str(port), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=unmeasured,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(endpoint)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's DynamoDB server in its own process, on a free loopback port."""
    with moto_server() as endpoint:
        yield endpoint


def unique_tables() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:12]
    return f"Events-{suffix}", f"Keys-{suffix}"


def unique_tenant(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def create_dynamo_tables(endpoint: str) -> tuple[str, str]:
    """A fresh pair of tables (events, keys) on the moto server."""
    events_table, keys_table = unique_tables()
    await create_tables(events_table, keys_table, endpoint_url=endpoint, region="us-east-1")
    return events_table, keys_table


async def fresh_dynamodb_settings(endpoint: str) -> Settings:
    """Settings for a fresh pair of tables on the moto server at `endpoint`."""
    events_table, keys_table = await create_dynamo_tables(endpoint)
    return Settings(
        store="dynamodb",
        events_table=events_table,
        keys_table=keys_table,
        dynamodb_endpoint=endpoint,
        region="us-east-1",
    )


# -- one store of each kind per session; every test has tenants of its own -------------------
#
# Tables are created once per session (per xdist worker), and every test works as tenants no
# other test uses, which the store's tenant isolation keeps apart (tested in its own right).


@pytest.fixture(scope="session")
async def dynamodb_settings(moto_endpoint: str) -> Settings:
    return await fresh_dynamodb_settings(moto_endpoint)


@pytest.fixture(scope="session")
def sqlite_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(store="sqlite", db=str(tmp_path_factory.mktemp("sqlite") / "events.db"))


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_settings(store_kind: str, request: pytest.FixtureRequest) -> Settings:
    settings: Settings = request.getfixturevalue(f"{store_kind}_settings")
    return settings


@pytest.fixture
def store_factory(store_settings: Settings) -> Callable[[], Store]:
    """Opens (unstarted) stores on the session's file or tables: call it twice for two
    processes' worth of clients on the same data."""
    return lambda: open_store(store_settings)


@pytest.fixture(scope="session")
async def sqlite_store(sqlite_settings: Settings) -> AsyncIterator[Store]:
    async with open_store(sqlite_settings) as store:
        yield store


@pytest.fixture(scope="session")
async def dynamodb_store(dynamodb_settings: Settings) -> AsyncIterator[Store]:
    async with open_store(dynamodb_settings) as store:
        yield store


@pytest.fixture
def store(store_kind: str, request: pytest.FixtureRequest) -> Store:
    shared: Store = request.getfixturevalue(f"{store_kind}_store")
    return shared


@pytest.fixture
def acme() -> str:
    """A tenant name of this test's own."""
    return unique_tenant("acme")


@pytest.fixture
def globex() -> str:
    """Another tenant name of this test's own."""
    return unique_tenant("globex")


# -- the HTTP API, in process, on either store -----------------------------------------------


@dataclass
class Api:
    """A client for an app running on one store, with keys for two tenants of the test's own."""

    client: httpx.AsyncClient
    ctx: Context
    acme: dict[str, str]
    globex: dict[str, str]
    app: Any  # the ASGI app itself, for messages httpx cannot send
    tenant: str  # the tenant `acme`'s key belongs to


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@asynccontextmanager
async def running_api(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, Context, Any]]:
    """The app with its lifespan run, reached through httpx's ASGI transport."""
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:
        assert state is not None

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state)  # what a server does with lifespan state
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client, state["ctx"], with_state


@pytest.fixture(scope="session")
async def sqlite_api(
    sqlite_settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, Context, Any]]:
    async with running_api(sqlite_settings) as running:
        yield running


@pytest.fixture(scope="session")
async def dynamodb_api(
    dynamodb_settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, Context, Any]]:
    async with running_api(dynamodb_settings) as running:
        yield running


@pytest.fixture
def running(
    store_kind: str, request: pytest.FixtureRequest
) -> tuple[httpx.AsyncClient, Context, Any]:
    running: tuple[httpx.AsyncClient, Context, Any] = request.getfixturevalue(f"{store_kind}_api")
    return running


@pytest.fixture
async def api(running: tuple[httpx.AsyncClient, Context, Any], acme: str, globex: str) -> Api:
    """The session's app on one store, with keys for two tenants of this test's own."""
    client, ctx, app = running
    acme_key = bearer(await mint_key(ctx.store, acme))
    globex_key = bearer(await mint_key(ctx.store, globex))
    return Api(client, ctx, acme_key, globex_key, app, acme)


async def create(
    api: Api, payload: dict[str, object], headers: dict[str, str] | None = None
) -> str:
    response = await api.client.post("/v1/events", json=payload, headers=headers or api.acme)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    assert set(body) == {"type", "title", "status", "detail", "code", "request_id"}
    return dict(body)


# -- a real `trigger-api serve` process ----------------------------------------------------


def create_key(db: Path, tenant: str) -> str:
    """A key for a service running in another process on the SQLite file `db`, made the way an
    operator makes one: `trigger-api keys create`."""
    done = subprocess.run(
        [TRIGGER_API, "keys", "create", "--tenant", tenant, "--db", str(db)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.strip()


class Server:
    """`trigger-api serve` on a free port; stdout and stderr go to files beside the test."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = tmp_path / f"server-{self.port}.out"
        with (
            open(self.stdout_path, "w") as out,
            open(tmp_path / f"server-{self.port}.err", "w") as err,
        ):
            self.process = subprocess.Popen(
                [TRIGGER_API, "serve", "--port", str(self.port), *args],
                stdout=out,
                stderr=err,
                env={**os.environ, **(env or {})},
            )
        wait_for_http(f"{self.url}/health")

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stdout_path.with_suffix(".err").read_text()

    def keys(self) -> dict[str, str]:
        """The demo keys `serve` printed: {"acme": "tk_…", …}."""
        return {
            line.split("_API_KEY=")[0].removeprefix("export ").lower(): line.split("'")[1]
            for line in self.stdout.splitlines()
            if "_API_KEY=" in line
        }

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=30)


class Scrape:
    """One scrape's samples, looked up by name and labels; a series not there counts 0."""

    def __init__(self, url: str) -> None:
        text = httpx.get(url, timeout=10).text
        self.samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def __call__(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def names(self) -> set[str]:
        return {name for name, _labels in self.samples}

    def labelled(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {labels: value for (found, labels), value in self.samples.items() if found == name}
