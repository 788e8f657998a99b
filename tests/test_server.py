"""The real `trigger-api serve` process over real HTTP: durability under SIGKILL, concurrent
idempotent retries, and 503 (never 500, never 201) when the store is unreachable."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.auth import generate_key
from tests.conftest import TRIGGER_API, Scrape, Server, free_port


@pytest.fixture
def demo_keys(tmp_path: Path) -> Iterator[tuple[Server, dict[str, str]]]:
    server = Server(tmp_path, "--db", str(tmp_path / "live.db"))
    yield server, server.keys()
    server.stop()


def test_serve_on_an_empty_store_prints_the_demo_keys_once(tmp_path: Path) -> None:
    db = str(tmp_path / "demo.db")
    first = Server(tmp_path, "--db", db)
    assert first.stop() == 0
    printed = first.stdout
    second = Server(tmp_path, "--db", db)
    assert second.stop() == 0

    assert printed.count("_API_KEY='tk_") == 3
    assert "TENANT_NAMES='acme,globex,initech'" in printed
    assert second.stdout == ""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_sent_while_serve_starts_always_stops_it(tmp_path: Path, sig: int) -> None:
    # Right after the store answered, serve tunes the collector and installs its handlers: a
    # signal that landed in a weakref callback during that collection used to be swallowed, and
    # serve ran on for ever.
    db = str(tmp_path / "starting.db")
    for attempt in range(4):
        process = subprocess.Popen(
            [TRIGGER_API, "serve", "--port", str(free_port()), "--db", db],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        for line in process.stderr:
            if "answered" in line:
                break
        process.send_signal(sig)
        process.communicate(timeout=30)
        # 0 once serve's handlers are in place; before that, the signal's default action.
        assert process.returncode in (0, -sig), attempt


async def test_a_stop_answers_waiting_long_polls_at_once(tmp_path: Path) -> None:
    metrics = free_port()
    server = Server(tmp_path, "--db", str(tmp_path / "polls.db"), "--metrics-port", str(metrics))
    auth = {"Authorization": f"Bearer {server.keys()['acme']}"}
    async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=60) as client:
        polls = [
            asyncio.create_task(client.post("/v1/events/claim", json={"wait_seconds": 20}))
            for _ in range(3)
        ]
        while Scrape(f"http://127.0.0.1:{metrics}/metrics")("trigger_long_poll_waiters") < 3:
            assert not any(poll.done() for poll in polls)
            await asyncio.sleep(0.05)
        stopped = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        answers = await asyncio.gather(*polls)
        answered_after = time.monotonic() - stopped

    assert [(a.status_code, a.json()) for a in answers] == [(200, {"events": []})] * 3
    assert answered_after < 10  # not the 20 s they asked to wait
    assert server.process.wait(timeout=30) == 0


async def test_every_201_survives_sigkill(tmp_path: Path) -> None:
    db = str(tmp_path / "durable.db")
    server = Server(tmp_path, "--db", db)
    key = server.keys()["acme"]
    headers = {"Authorization": f"Bearer {key}"}
    acknowledged: list[str] = []
    enough = asyncio.Event()

    async def producer(client: httpx.AsyncClient, n: int) -> None:
        for i in range(10_000):
            try:
                response = await client.post(
                    "/v1/events", json={"producer": n, "i": i}, headers=headers
                )
            except httpx.TransportError:
                return  # the server is gone
            if response.status_code == 201:
                acknowledged.append(response.json()["id"])
                if len(acknowledged) >= 300:
                    enough.set()

    async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
        producers = [asyncio.create_task(producer(client, n)) for n in range(16)]
        await asyncio.wait_for(enough.wait(), timeout=60)
        server.process.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
        await asyncio.gather(*producers)
    assert server.process.wait(timeout=10) == -signal.SIGKILL

    restarted = Server(tmp_path, "--db", db)
    try:
        found: set[str] = set()
        async with httpx.AsyncClient(base_url=restarted.url) as client:
            url: str | None = "/v1/events?limit=100"
            while url:
                page = (await client.get(url, headers=headers)).json()
                found |= {e["id"] for e in page["events"]}
                url = page["next_cursor"] and f"/v1/events?limit=100&cursor={page['next_cursor']}"
    finally:
        restarted.stop()

    assert len(acknowledged) >= 300
    assert set(acknowledged) <= found


async def test_32_concurrent_retries_with_one_key_create_one_event(
    demo_keys: tuple[Server, dict[str, str]],
) -> None:
    server, keys = demo_keys
    headers = {"Authorization": f"Bearer {keys['acme']}", "Idempotency-Key": "checkout-1"}
    limits = httpx.Limits(max_connections=32)

    async with httpx.AsyncClient(base_url=server.url, limits=limits) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/events", json={"order": 1}, headers=headers) for _ in range(32))
        )
        listed = (await client.get("/v1/events", headers=headers)).json()

    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert [e["id"] for e in listed["events"]] == [responses[0].json()["id"]]


async def test_an_unreachable_store_is_503_with_retry_after(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    server = Server(
        tmp_path,
        "--store",
        "dynamodb",
        env={"AWS_ENDPOINT_URL_DYNAMODB": dead, "AWS_MAX_ATTEMPTS": "1"},
    )
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            health = await client.get("/health")
            ready = await client.get("/ready")
            create = await client.post(
                "/v1/events", json={"a": 1}, headers={"Authorization": f"Bearer {generate_key()}"}
            )
    finally:
        assert server.stop() == 0

    assert health.status_code == 200
    for response in (ready, create):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["code"] == "unavailable"
    # It said so at start, naming the endpoint, and served regardless.
    log = server.stdout_path.with_suffix(".err").read_text()
    assert f"store: DynamoDB at {dead} (AWS_ENDPOINT_URL_DYNAMODB) could not be reached" in log
