"""The access log of a real `trigger-api serve`: one logfmt line per request on stderr, with the
request id the client saw, the tenant once its key was accepted, and what was sent."""

from __future__ import annotations

import io
import logging
import re
import shlex
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.metrics import Metrics
from service.observed import AccessLog, Observed
from service.problems import EXCEPTION_HANDLERS
from tests.conftest import Server, free_port

UNKNOWN_KEY = "tk_" + "A" * 43
FIELDS = [
    "ts",
    "level",
    "msg",
    "request_id",
    "tenant",
    "method",
    "route",
    "status",
    "duration_ms",
    "bytes",
]


def records(stderr: str) -> list[dict[str, str]]:
    """Every stderr line, as logfmt fields (each line must be logfmt)."""
    return [dict(part.split("=", 1) for part in shlex.split(line)) for line in stderr.splitlines()]


def access_lines(server: Server) -> dict[str, dict[str, str]]:
    """The access lines by request id; each id must have exactly one."""
    lines = [record for record in records(server.stderr) if record["msg"] == "request"]
    by_id = {line["request_id"]: line for line in lines}
    assert len(by_id) == len(lines)
    return by_id


def test_each_request_has_one_line_with_its_id_tenant_route_status_duration_and_bytes(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path, "--db", str(tmp_path / "log.db"))
    auth = {"Authorization": f"Bearer {server.keys()['acme']}"}
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            created = client.post(
                "/v1/events", json={"a": 1}, headers={**auth, "X-Request-ID": "client-id-1"}
            )
            event_id = created.json()["id"]
            fetched = client.get(f"/v1/events/{event_id}", headers=auth)
            refused = client.get(
                f"/v1/events/{event_id}", headers={"Authorization": f"Bearer {UNKNOWN_KEY}"}
            )
            deleted = client.delete(f"/v1/events/{event_id}", headers=auth)
    finally:
        assert server.stop() == 0

    lines = access_lines(server)
    assert created.headers["x-request-id"] == "client-id-1"
    first = lines["client-id-1"]
    assert list(first) == FIELDS
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert first["level"] == "info"
    assert (first["tenant"], first["method"], first["route"], first["status"]) == (
        "acme",
        "POST",
        "/v1/events",
        "201",
    )
    assert float(first["duration_ms"]) >= 0
    assert int(first["bytes"]) == len(created.content)

    got = lines[fetched.headers["x-request-id"]]
    assert (got["tenant"], got["method"], got["route"], got["status"]) == (
        "acme",
        "GET",
        "/v1/events/{event_id}",
        "200",
    )
    assert int(got["bytes"]) == len(fetched.content)

    # A refused key: no tenant, and the id is the one in the problem document.
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    denied = lines[refused.headers["x-request-id"]]
    assert "tenant" not in denied
    assert (denied["route"], denied["status"]) == ("/v1/events/{event_id}", "401")

    gone = lines[deleted.headers["x-request-id"]]
    assert (gone["method"], gone["status"], gone["bytes"]) == ("DELETE", "204", "0")
    # Every line on stderr is logfmt with a time and a level: uvicorn's own too.
    assert all({"ts", "level", "msg"} <= set(record) for record in records(server.stderr))


def test_a_503_and_its_store_fault_warning_carry_the_problems_request_id(tmp_path: Path) -> None:
    server = Server(
        tmp_path,
        "--store",
        "dynamodb",
        env={
            "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{free_port()}",
            "AWS_MAX_ATTEMPTS": "1",
        },
    )
    try:
        answer = httpx.post(
            f"{server.url}/v1/events",
            json={"a": 1},
            headers={"Authorization": f"Bearer {UNKNOWN_KEY}"},
            timeout=30,
        )
    finally:
        assert server.stop() == 0

    assert answer.status_code == 503
    request_id = answer.json()["request_id"]
    assert access_lines(server)[request_id]["status"] == "503"
    warnings = [r for r in records(server.stderr) if r["msg"] == "store unavailable"]
    assert [w["request_id"] for w in warnings] == [request_id]
    warning = warnings[0]
    assert (warning["level"], warning["method"], warning["route"]) == (
        "warning",
        "POST",
        "/v1/events",
    )
    assert "StoreUnavailable" in warning["error"]


def test_the_access_log_can_be_turned_off(tmp_path: Path) -> None:
    server = Server(
        tmp_path, "--db", str(tmp_path / "quiet.db"), env={"TRIGGER_ACCESS_LOG": "false"}
    )
    try:
        assert httpx.get(f"{server.url}/health").status_code == 200
    finally:
        assert server.stop() == 0

    assert not [r for r in records(server.stderr) if r["msg"] == "request"]
    assert any(r["msg"] == "Application startup complete." for r in records(server.stderr))


async def test_an_unexpected_error_is_logged_and_counted_as_the_500_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def explode(request: Request) -> Response:
        raise RuntimeError("boom")

    app = Starlette(
        routes=[Route("/things/{name}", explode)], exception_handlers=EXCEPTION_HANDLERS
    )
    stream, metrics = io.StringIO(), Metrics()
    access_log = AccessLog(stream)
    observed = Observed(app, metrics, access_log)
    transport = httpx.ASGITransport(app=observed, raise_app_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="trigger_api"):
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/things/x", headers={"X-Request-ID": "r-500"})

    assert response.status_code == 500
    access_log.flush()  # else at the end of the event loop's turn
    [line] = records(stream.getvalue())
    assert (line["request_id"], line["route"], line["status"]) == ("r-500", "/things/{name}", "500")
    assert int(line["bytes"]) == len(response.content)
    [error] = caplog.records
    assert error.fields["request_id"] == "r-500"  # type: ignore[attr-defined]
    [(labels, counts)] = metrics.requests.snapshot(3).items()
    assert labels == ("/things/{name}", "GET", "500")
    assert sum(counts[:-1]) == 1  # one observation, in whichever bucket
