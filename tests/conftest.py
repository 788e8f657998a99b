"""Shared fixtures: a moto DynamoDB server over real HTTP, and a started store of each kind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

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

from service.store.base import Store  # noqa: E402

STORE_KINDS = ["sqlite", "dynamodb"]


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


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's DynamoDB server in its own process, on a free loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(endpoint)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def unique_tables() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:12]
    return f"Events-{suffix}", f"Keys-{suffix}"


async def make_store_factory(
    kind: str, tmp_path: Path, moto_endpoint: str | None
) -> Callable[[], Store]:
    """A function that opens (unstarted) stores on one fresh file or pair of tables: call it
    twice for two processes' worth of clients on the same data."""
    if kind == "sqlite":
        from service.store.sqlite import SqliteStore

        path = str(tmp_path / "events.db")
        return lambda: SqliteStore(path)
    from service.store.dynamodb import DynamoStore

    events_table, keys_table = unique_tables()

    def factory() -> Store:
        return DynamoStore(
            events_table=events_table, keys_table=keys_table, endpoint_url=moto_endpoint
        )

    setup = DynamoStore(
        events_table=events_table, keys_table=keys_table, endpoint_url=moto_endpoint
    )
    await setup.start()
    await setup.create_tables()
    await setup.close()
    return factory


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store_factory(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[], Store]:
    endpoint = request.getfixturevalue("moto_endpoint") if store_kind == "dynamodb" else None
    return await make_store_factory(store_kind, tmp_path, endpoint)


@pytest.fixture
async def store(store_factory: Callable[[], Store]) -> AsyncIterator[Store]:
    store = store_factory()
    await store.start()
    try:
        yield store
    finally:
        await store.close()
