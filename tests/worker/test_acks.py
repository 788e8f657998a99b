"""Batched acknowledgements against the real service, including the answers that are not a
plain success."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.worker.conftest import LiveService
from worker.acks import AckBatcher
from worker.backoff import Backoff
from worker.client import TenantApi
from worker.config import Tenant
from worker.decoding import Claimed
from worker.leases import Lease


@pytest.fixture
async def http(live_service: LiveService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_service.url) as client:
        yield client


def batcher(http: httpx.AsyncClient, key: str) -> AckBatcher:
    api = TenantApi(http, Tenant("t", key), Backoff(base=0.001, cap=0.01))
    return AckBatcher(api, "t", retry_for=5, linger=0.01)


def lease(event_id: str) -> Lease:
    claimed = Claimed(event_id, "lt_unused", 1, {"id": event_id, "attempts": 1})
    return Lease.granted(claimed, time.monotonic(), 30)


def outcome_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "outcome=" in r.getMessage()]


async def test_ack_250_events_in_batches_of_at_most_100(
    live_service: LiveService, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    _name, key = live_service.new_tenant("acks")
    ids = live_service.create_events(key, 250)
    live_service.claim(key, 100), live_service.claim(key, 100), live_service.claim(key, 100)
    acks = batcher(http, key)
    caplog.set_level(logging.INFO, logger="worker")

    acks.start()
    for event_id in ids:
        acks.add(lease(event_id), duration_ms=1)
    await acks.close(time.monotonic() + 10)

    assert live_service.undelivered(key) == []
    assert len([line for line in outcome_lines(caplog) if "outcome=acked" in line]) == 250


async def test_ack_of_a_vanished_event_is_reported_lost(
    live_service: LiveService, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    _name, key = live_service.new_tenant("vanished")
    acks = batcher(http, key)

    acks.start()
    acks.add(lease("evt_01JD3Y8Z4Q9W2M7K5R6T1V0XBC"), duration_ms=1)
    await acks.close(time.monotonic() + 10)

    [line] = outcome_lines(caplog)
    assert "outcome=lost" in line
    assert "reason=not_found" in line


async def test_ack_with_a_refused_key_is_reported_lost(
    live_service: LiveService, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    acks = batcher(http, "tk_refused")

    acks.start()
    acks.add(lease("evt_01JD3Y8Z4Q9W2M7K5R6T1V0XBC"), duration_ms=1)
    await acks.close(time.monotonic() + 10)

    [line] = outcome_lines(caplog)
    assert "outcome=lost" in line
    assert "reason=unauthorized" in line
