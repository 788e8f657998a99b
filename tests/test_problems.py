"""Errors the routes do not expect still answer as problem documents, without internals."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.problems import EXCEPTION_HANDLERS
from tests.conftest import Api


async def explode(request: Request) -> Response:
    raise RuntimeError("password=hunter2 at /srv/secret.py line 12")


async def test_an_unexpected_error_is_a_bare_500_with_the_request_id() -> None:
    app = Starlette(
        routes=[Route("/explode", explode)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/explode", headers={"X-Request-ID": "r-1"})

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "r-1"
    assert response.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "An internal error occurred.",
        "code": "internal_error",
        "request_id": "r-1",
    }
    assert "hunter2" not in response.text


async def test_a_client_leaving_mid_body_stores_nothing_and_logs_no_error(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[dict[str, object]] = []
    messages = iter(
        [
            {"type": "http.request", "body": b'{"half": ', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, object]:
        return next(messages)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "query_string": b"",
        "headers": [(b"authorization", api.acme["Authorization"].encode())],
    }
    with caplog.at_level(logging.ERROR):
        await api.app(scope, receive, send)

    assert sent[0]["status"] == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    listed = await api.client.get("/v1/events", headers=api.acme)
    assert listed.json()["events"] == []
