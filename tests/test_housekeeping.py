"""Housekeeping: one task of a deployment sweeps expired events out of the backlog and writes
the backlog metrics the worker service scales on (EMF lines on stdout); every task writes the
events it created."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

import service.housekeeping as housekeeping
from infra import metrics
from service.auth import mint_key
from service.housekeeping import Housekeeping
from service.settings import Settings
from service.store import open_store
from service.store.base import NewEvent, Store, StoreUnavailable
from tests.conftest import bearer, fresh_dynamodb_settings, running_api
from tests.store.helpers import NOW, claim, insert

MINUTE = 60_000


@pytest.fixture(params=["sqlite", "dynamodb"])
async def fresh_settings(
    request: pytest.FixtureRequest, tmp_path: Any, moto_endpoint: str
) -> Settings:
    """Settings for a deployment of this test's own: its lease and its tenants are its alone."""
    if request.param == "sqlite":
        return Settings(store="sqlite", db=str(tmp_path / "events.db"))
    return await fresh_dynamodb_settings(moto_endpoint)


@pytest.fixture
async def fresh_store(fresh_settings: Settings) -> AsyncIterator[Store]:
    async with open_store(fresh_settings) as store:
        yield store


def lines_of(emitted: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in emitted]


def by_dimensions(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Backlog lines by tenant ("" for the deployment's line)."""
    return {line.get("Tenant", ""): line for line in lines if "Undelivered" in line}


async def test_one_task_of_a_deployment_does_the_chores(fresh_settings: Settings) -> None:
    async with open_store(fresh_settings) as one, open_store(fresh_settings) as other:
        first = Housekeeping(one, service="", holder="task-1")
        second = Housekeeping(other, service="", holder="task-2")

        assert await first.round(NOW)
        assert not await second.round(NOW)
        assert await first.round(NOW + MINUTE)  # the holder renews
        assert not await second.round(NOW + MINUTE + 1)
        # The holder stopped: its lease runs out 90 s after its last round.
        assert await second.round(NOW + MINUTE + 90_001)
        assert not await first.round(NOW + 2 * MINUTE + 90_001)


async def test_the_backlog_lines_are_the_metric_contract_the_stack_reads(
    fresh_store: Store,
) -> None:
    await mint_key(fresh_store, "acme")
    await mint_key(fresh_store, "globex")
    await insert(fresh_store, "acme", 3, now=NOW - 2 * MINUTE)
    await claim(fresh_store, "acme", limit=1, lease_ms=5 * MINUTE, now=NOW - MINUTE)
    await insert(fresh_store, "globex", 1, now=NOW - MINUTE)
    emitted: list[bytes] = []
    task = Housekeeping(fresh_store, service="trigger-api", emit=emitted.append)
    task.created = 4

    assert await task.round(NOW)

    created, *backlog = lines_of(emitted)
    assert created == {
        "_aws": {
            "Timestamp": NOW,
            "CloudWatchMetrics": [
                {
                    "Namespace": metrics.NAMESPACE,
                    "Dimensions": [[metrics.SERVICE]],
                    "Metrics": [{"Name": metrics.EVENTS_CREATED, "Unit": "Count"}],
                }
            ],
        },
        metrics.SERVICE: "trigger-api",
        metrics.EVENTS_CREATED: 4,
    }
    lines = by_dimensions(backlog)
    assert set(lines) == {"acme", "globex", ""}
    for tenant, line in lines.items():
        [directive] = line["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == metrics.NAMESPACE
        assert directive["Dimensions"] == (
            [[metrics.SERVICE, metrics.TENANT]] if tenant else [[metrics.SERVICE]]
        )
        names = [metric["Name"] for metric in directive["Metrics"]]
        assert names == [metrics.UNDELIVERED, metrics.IN_FLIGHT, metrics.DEAD, metrics.OLDEST_AGE]
        assert line[metrics.SERVICE] == "trigger-api"

    def gauges(line: dict[str, Any]) -> tuple[int, int, int, int]:
        return (
            line[metrics.UNDELIVERED],
            line[metrics.IN_FLIGHT],
            line[metrics.DEAD],
            line[metrics.OLDEST_AGE],
        )

    assert gauges(lines["acme"]) == (3, 1, 0, 120)
    assert gauges(lines["globex"]) == (1, 0, 0, 60)
    assert gauges(lines[""]) == (4, 1, 0, 120)  # sums, and the oldest age of all
    assert task.created == 0  # counted once


async def test_expired_events_leave_the_counts_and_nothing_is_written_without_a_service(
    fresh_store: Store,
) -> None:
    await mint_key(fresh_store, "acme")
    brief = [NewEvent(f"evt_{'0' * 10}{n:016d}", 1_000, b"{}", 2_000) for n in range(2)]
    await fresh_store.insert_events("acme", brief, idempotency=None, now=1_000)
    await insert(fresh_store, "acme", 1)
    emitted: list[bytes] = []

    assert await Housekeeping(fresh_store, service="", emit=emitted.append).round(NOW)

    assert emitted == []
    backlog = await fresh_store.backlog("acme", now=NOW)
    assert (backlog.undelivered, backlog.oldest_undelivered_at) == (1, NOW)
    assert await fresh_store.get_event("acme", brief[0].id, now=1_500) is None


async def test_a_store_fault_skips_one_round_and_the_next_goes_ahead(
    fresh_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping, "PERIOD_SECONDS", 0.01)
    await mint_key(fresh_store, "acme")
    backlog_written = asyncio.Event()

    def emit(line: bytes) -> None:
        if b'"Tenant":"acme"' in line:
            backlog_written.set()

    task = Housekeeping(fresh_store, service="trigger-api", emit=emit)
    take_lease = fresh_store.take_lease
    faults = [StoreUnavailable("throttled")]

    async def flaky_take_lease(*args: Any, **kwargs: Any) -> bool:
        if faults:
            raise faults.pop()
        return await take_lease(*args, **kwargs)

    monkeypatch.setattr(fresh_store, "take_lease", flaky_take_lease)
    task.start()
    try:
        await asyncio.wait_for(backlog_written.wait(), 10)
    finally:
        await task.close()
    assert faults == []


async def test_a_running_service_writes_what_it_created_and_its_backlog(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(housekeeping, "PERIOD_SECONDS", 0.05)
    settings = dataclasses.replace(
        Settings(store="sqlite", db=str(tmp_path / "events.db")), metrics_service="svc"
    )
    async with running_api(settings) as (client, ctx, _):
        key = bearer(await mint_key(ctx.store, "acme"))
        for n in range(2):
            response = await client.post("/v1/events", json={"n": n}, headers=key)
            assert response.status_code == 201
        seen: list[dict[str, Any]] = []

        def created() -> int:
            return sum(line.get(metrics.EVENTS_CREATED, 0) for line in seen)

        def undelivered() -> int:
            return int(by_dimensions(seen).get("acme", {}).get(metrics.UNDELIVERED, 0))

        # Rounds may come before, between or after the creates: wait for lines that add up.
        async with asyncio.timeout(10):
            while (created(), undelivered()) != (2, 2):
                await asyncio.sleep(0.05)
                out = capfd.readouterr().out
                seen += [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
