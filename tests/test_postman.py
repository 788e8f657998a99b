"""docs/postman_collection.json, run by newman against a real `trigger-api serve`: every request's
`pm.test` assertions must pass, top to bottom, on a fresh service."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, create_key

ROOT = Path(__file__).resolve().parents[1]
COLLECTION = ROOT / "docs" / "postman_collection.json"
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    tmp = tmp_path_factory.mktemp("postman")
    db = tmp / "postman.db"
    server = Server(tmp, "--db", str(db))
    try:
        yield server, db
    finally:
        server.stop()


def test_the_collection_covers_every_route_with_assertions() -> None:
    collection = json.loads(COLLECTION.read_text())
    assert collection["info"]["schema"].endswith("/v2.1.0/collection.json")
    assert {v["key"] for v in collection["variable"]} >= {"api_url", "api_key", "other_api_key"}

    def requests(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in items:
            if "item" in item:
                yield from requests(item["item"])
            else:
                yield item

    routes = set()
    for item in requests(collection["item"]):
        request = item["request"]
        path = re.sub(r"\?.*", "", request["url"].removeprefix("{{api_url}}"))
        routes.add(f"{request['method']} {re.sub(r'{{[^}]+}}|not-an-event-id', '{id}', path)}")
        tests = [e["script"]["exec"] for e in item["event"] if e["listen"] == "test"]
        assert any("pm.test(" in line for script in tests for line in script), item["name"]
    assert routes == {
        "GET /health",
        "GET /ready",
        "GET /openapi.json",
        "POST /v1/events",
        "POST /v1/events/batch",
        "GET /v1/events",
        "GET /v1/events/{id}",
        "POST /v1/events/{id}/ack",
        "POST /v1/events/ack",
        "DELETE /v1/events/{id}",
        "POST /v1/events/claim",
        "POST /v1/events/{id}/release",
        "POST /v1/events/{id}/extend",
        "POST /v1/events/{id}/redrive",
        "POST /v1/events/redrive",
        "GET /v1/stats",
    }


def test_newman_runs_the_collection_green(service: tuple[Server, Path], tmp_path: Path) -> None:
    if not NEWMAN.exists():
        pytest.fail(
            f"{NEWMAN.relative_to(ROOT)} is missing: run `npm ci` in {ROOT} "
            "(./scripts/test does it when package-lock.json exists)"
        )
    server, db = service
    api_key = create_key(db, "postman-acme")
    other_api_key = create_key(db, "postman-globex")
    summary = tmp_path / "newman.json"

    done = subprocess.run(
        [
            str(NEWMAN),
            "run",
            str(COLLECTION),
            "--env-var",
            f"api_url={server.url}",
            "--env-var",
            f"api_key={api_key}",
            "--env-var",
            f"other_api_key={other_api_key}",
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(summary),
            "--color",
            "off",
            "--timeout-request",
            "30000",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )

    report = ANSI.sub("", done.stdout + done.stderr)
    assert done.returncode == 0, f"newman exit status {done.returncode}:\n{report}"
    stats = json.loads(summary.read_text())["run"]["stats"]
    assert stats["assertions"]["failed"] == 0, report
    assert stats["requests"]["total"] >= 50  # the whole collection ran, not just a part
    assert stats["assertions"]["total"] >= 2 * stats["requests"]["total"]
