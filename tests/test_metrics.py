"""The Prometheus metrics of a real `trigger-api serve`, scraped from its metrics port after known
traffic: every count is exact, whatever the machine's speed."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.metrics import Metrics
from tests.conftest import TRIGGER_API, Scrape, Server, free_port

UNKNOWN_KEY = "tk_" + "A" * 43  # shaped like a key, belongs to no one


def test_request_latencies_are_cumulative_buckets_summed_over_statuses() -> None:
    metrics = Metrics()
    metrics.request("/v1/events", "POST", 201, 0.002)
    metrics.request("/v1/events", "POST", 201, 0.02)
    metrics.request("/v1/events", "POST", 503, 30.0)
    metrics.request("/v1/events", "BREW", 405, 0.0)  # an unknown method is one label: OTHER

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
    }

    post = (("method", "POST"), ("route", "/v1/events"))
    bucket = "trigger_http_request_duration_seconds_bucket"
    assert samples[(bucket, (("le", "0.001"), *post))] == 0
    assert samples[(bucket, (("le", "0.0025"), *post))] == 1
    assert samples[(bucket, (("le", "0.025"), *post))] == 2
    assert samples[(bucket, (("le", "25.0"), *post))] == 2
    assert samples[(bucket, (("le", "+Inf"), *post))] == 3
    assert samples[("trigger_http_request_duration_seconds_count", post)] == 3
    assert samples[("trigger_http_request_duration_seconds_sum", post)] == pytest.approx(30.022)
    requests = "trigger_http_requests_total"
    assert samples[(requests, (*post, ("status", "201")))] == 2
    assert samples[(requests, (*post, ("status", "503")))] == 1
    assert (
        samples[(requests, (("method", "OTHER"), ("route", "/v1/events"), ("status", "405")))] == 1
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    metrics_port = free_port()
    server = Server(tmp_path, "--db", str(tmp_path / "m.db"), "--metrics-port", str(metrics_port))
    yield server, f"http://127.0.0.1:{metrics_port}/metrics"
    server.stop()


def test_a_scrape_counts_the_requests_events_store_calls_and_key_lookups_before_it(
    served: tuple[Server, str],
) -> None:
    server, metrics = served
    auth = {"Authorization": f"Bearer {server.keys()['acme']}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
        for n in range(3):
            assert client.post("/v1/events", json={"n": n}).status_code == 201
        batch = client.post("/v1/events/batch", json={"events": [{"b": 1}, {"b": 2}]})
        assert batch.status_code == 201
        first, second = client.post(
            "/v1/events/claim", json={"limit": 2, "lease_seconds": 600}
        ).json()["events"]
        assert client.post(f"/v1/events/{first['id']}/ack").status_code == 200
        token = {"lease_token": second["lease_token"]}
        assert client.post(f"/v1/events/{second['id']}/release", json=token).status_code == 200
        # The released event was claimed once: at max_attempts 1 this claim makes it dead, and
        # leases the three never claimed.
        rest = client.post("/v1/events/claim", json={"limit": 10, "max_attempts": 1}).json()
        assert len(rest["events"]) == 3
        assert client.post(f"/v1/events/{second['id']}/redrive").status_code == 200
        for _ in range(2):
            refused = client.get(
                "/v1/events/evt_x", headers={"Authorization": f"Bearer {UNKNOWN_KEY}"}
            )
            assert refused.status_code == 401
        assert client.get("/no/such/route").status_code == 404

    scrape = Scrape(metrics)

    requests = "trigger_http_requests_total"
    assert scrape(requests, route="/v1/events", method="POST", status="201") == 3
    assert scrape(requests, route="/v1/events/batch", method="POST", status="201") == 1
    assert scrape(requests, route="/v1/events/claim", method="POST", status="200") == 2
    assert scrape(requests, route="/v1/events/{event_id}/ack", method="POST", status="200") == 1
    assert scrape(requests, route="/v1/events/{event_id}/release", method="POST", status="200") == 1
    assert scrape(requests, route="/v1/events/{event_id}/redrive", method="POST", status="200") == 1
    assert scrape(requests, route="/v1/events/{event_id}", method="GET", status="401") == 2
    assert scrape(requests, route="unmatched", method="GET", status="404") == 1
    # Route templates only: no raw path (or event id) ever becomes a label.
    assert all(
        dict(labels)["route"].startswith("/v1/")
        or dict(labels)["route"] in ("/health", "unmatched")
        for labels in scrape.labelled(requests)
    )
    latency = "trigger_http_request_duration_seconds"
    assert scrape(f"{latency}_count", route="/v1/events", method="POST") == 3
    assert scrape(f"{latency}_bucket", route="/v1/events", method="POST", le="+Inf") == 3

    assert scrape("trigger_events_created_total") == 5
    assert scrape("trigger_events_claimed_total") == 5
    assert scrape("trigger_events_acked_total") == 1
    assert scrape("trigger_events_released_total") == 1
    assert scrape("trigger_events_dead_lettered_total") == 1
    assert scrape("trigger_events_redriven_total") == 1

    store = "trigger_store_call_duration_seconds_count"
    assert scrape(store, operation="insert_events") == 4
    assert scrape(store, operation="claim_events") == 2
    assert scrape(store, operation="ack_events") == 1
    assert scrape(store, operation="release_event") == 1
    assert scrape(store, operation="redrive_events") == 1
    assert not any(scrape.labelled("trigger_store_errors_total").values())

    # 11 requests presented a key. Each miss is one store read; the unknown key is read once,
    # then its refusal is cached too.
    hits = scrape("trigger_api_key_lookups_total", cache="hit")
    misses = scrape("trigger_api_key_lookups_total", cache="miss")
    assert hits + misses == 11
    assert misses == scrape(store, operation="get_api_key")
    assert misses >= 2
    assert scrape("trigger_long_poll_waiters") == 0


async def test_long_poll_waiters_are_counted_while_they_wait(
    served: tuple[Server, str],
) -> None:
    server, metrics = served
    auth = {"Authorization": f"Bearer {server.keys()['globex']}"}
    async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=60) as client:
        polls = [
            asyncio.create_task(
                client.post("/v1/events/claim", json={"limit": 1, "wait_seconds": 20})
            )
            for _ in range(2)
        ]
        while Scrape(metrics)("trigger_long_poll_waiters") < 2:
            assert not any(poll.done() for poll in polls)
            await asyncio.sleep(0.05)
        await client.post("/v1/events/batch", json={"events": [{"n": 1}, {"n": 2}]})
        answers = await asyncio.gather(*polls)

    assert sum(len(answer.json()["events"]) for answer in answers) == 2
    assert Scrape(metrics)("trigger_long_poll_waiters") == 0


async def test_store_faults_are_counted_by_operation(tmp_path: Path) -> None:
    metrics_port = free_port()
    server = Server(
        tmp_path,
        "--store",
        "dynamodb",
        "--metrics-port",
        str(metrics_port),
        env={
            "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{free_port()}",
            "AWS_MAX_ATTEMPTS": "1",
        },
    )
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            assert (await client.get("/ready")).status_code == 503
            for _ in range(2):
                create = await client.post(
                    "/v1/events", json={"a": 1}, headers={"Authorization": f"Bearer {UNKNOWN_KEY}"}
                )
                assert create.status_code == 503
        scrape = Scrape(f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        server.stop()

    errors = "trigger_store_errors_total"
    assert scrape(errors, operation="ping", error="unavailable") == 1
    # A failed key lookup is not cached: each request tried the store again.
    assert scrape(errors, operation="get_api_key", error="unavailable") == 2
    assert scrape("trigger_store_call_duration_seconds_count", operation="get_api_key") == 2
    requests = "trigger_http_requests_total"
    assert scrape(requests, route="/v1/events", method="POST", status="503") == 2
    assert scrape(requests, route="/ready", method="GET", status="503") == 1


def test_metrics_are_not_served_on_the_service_port(served: tuple[Server, str]) -> None:
    server, metrics = served

    assert httpx.get(f"{server.url}/metrics").status_code == 404
    assert "trigger_http_requests_total" in Scrape(metrics).names()


def test_without_a_metrics_port_serve_opens_none(tmp_path: Path) -> None:
    server = Server(tmp_path, "--db", str(tmp_path / "none.db"))
    try:
        assert "serving metrics" not in server.stderr
    finally:
        server.stop()


def test_a_metrics_port_in_use_stops_serve_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [TRIGGER_API, "serve", "--port", str(free_port()), "--metrics-port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )

    assert result.returncode == 2  # a misconfiguration, like a taken --port
    assert result.stderr.splitlines() == [
        f"trigger-api: cannot serve metrics on 127.0.0.1:{port}"
        " (--metrics-port/TRIGGER_METRICS_PORT): Address already in use"
    ]
