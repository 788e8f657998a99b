"""The worker's entry point run in-process against the real service: every path of the loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import free_port
from tests.worker.conftest import LiveService
from worker import runner as runner_module
from worker import tenant as tenant_module
from worker.config import Settings, Tenant
from worker.handlers import Handler, current_tenant, noop
from worker.runner import run
from worker.shutdown import Shutdown


def settings(service: LiveService, *tenants: tuple[str, str], **options: Any) -> Settings:
    return Settings(
        tenants=tuple(Tenant(name, key) for name, key in tenants),
        api_url=service.url,
        **options,
    )


def outcomes(caplog: pytest.LogCaptureFixture, outcome: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if f"outcome={outcome} " in r.getMessage()]


def messages(caplog: pytest.LogCaptureFixture, message: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if f'msg="{message}"' in r.getMessage()]


async def eventually(condition: Callable[[], bool], within: float = 15.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - often state in another process: poll it
            await asyncio.sleep(0.02)


def recorder(seen: list[tuple[str, str]], sleep: float = 0.0) -> Handler:
    async def handle(event: dict[str, Any]) -> None:
        seen.append((current_tenant.get(), event["id"]))
        await asyncio.sleep(sleep)

    return handle


async def test_once_drains_every_tenant_and_returns_0(live_service: LiveService) -> None:
    tenants = [live_service.new_tenant("inproc") for _ in range(3)]
    created = {name: live_service.create_events(key, 25) for name, key in tenants}
    seen: list[tuple[str, str]] = []

    status = await run(
        settings(live_service, *tenants, once=True, concurrency=7),
        recorder(seen),
        Shutdown(grace_seconds=5),
    )

    assert status == 0
    assert sorted(seen) == sorted((name, i) for name, ids in created.items() for i in ids)
    for _name, key in tenants:
        assert live_service.undelivered(key) == []


async def test_once_dead_letters_a_failure_on_the_last_attempt_and_returns_1(
    live_service: LiveService, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = live_service.new_tenant("poison")
    poison, *rest = live_service.create_events(tenant[1], 5)
    calls: list[str] = []

    async def handle(event: dict[str, Any]) -> None:
        calls.append(event["id"])
        if event["id"] == poison:
            raise ValueError("bad payload")

    caplog.set_level(logging.INFO, logger="worker")
    status = await run(
        settings(live_service, tenant, once=True, max_attempts=1), handle, Shutdown(5)
    )

    assert status == 1
    assert calls.count(poison) == 1
    assert sorted(set(calls) - {poison}) == sorted(rest)
    [failed] = outcomes(caplog, "failed")
    assert 'error="ValueError: bad payload"' in failed
    assert "dead_letter=true" in failed
    assert (
        caplog.records[-1]
        .getMessage()
        .endswith(
            "exit_status=1 handled=4 failed=1 dead_lettered=1 lease_extensions=0 leases_lost=0"
        )
    )
    [dead] = live_service.events(tenant[1], "dead")
    assert (dead["id"], dead["attempts"], dead["last_error"]) == (
        poison,
        1,
        "ValueError: bad payload",
    )


async def test_failed_event_is_retried_after_a_backoff(live_service: LiveService) -> None:
    tenant = live_service.new_tenant("retry")
    live_service.create_events(tenant[1], 1)
    attempts: list[int] = []

    async def flaky(event: dict[str, Any]) -> None:
        attempts.append(event["attempts"])
        if len(attempts) == 1:
            raise RuntimeError("try again later")

    shutdown = Shutdown(5)
    options = settings(live_service, tenant, poll_interval=1, retry_max_seconds=1)
    worker = asyncio.create_task(run(options, flaky, shutdown))
    await eventually(lambda: len(attempts) == 2)
    shutdown.trigger()

    assert await worker == 0
    assert attempts == [1, 2]
    assert live_service.undelivered(tenant[1]) == []


async def test_long_poll_picks_up_a_new_event_at_once(live_service: LiveService) -> None:
    tenant = live_service.new_tenant("poll")
    seen: list[tuple[str, str]] = []
    shutdown = Shutdown(5)
    worker = asyncio.create_task(
        run(settings(live_service, tenant, poll_interval=15), recorder(seen), shutdown)
    )
    await asyncio.sleep(0.5)  # the worker is now inside a long poll
    loop = asyncio.get_running_loop()
    [event_id] = await loop.run_in_executor(None, live_service.create_events, tenant[1], 1)

    await eventually(lambda: len(seen) == 1, within=5)
    shutdown.trigger()  # cuts the next long poll short

    assert await asyncio.wait_for(worker, 5) == 0
    assert seen == [(tenant[0], event_id)]


async def test_short_poll_interval_pauses_between_empty_claims(
    live_service: LiveService,
) -> None:
    tenant = live_service.new_tenant("short")
    seen: list[tuple[str, str]] = []
    shutdown = Shutdown(5)
    options = settings(live_service, tenant, poll_interval=0.1)
    assert options.wait_seconds == 0
    worker = asyncio.create_task(run(options, recorder(seen), shutdown))
    await asyncio.sleep(0.3)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, live_service.create_events, tenant[1], 3)

    await eventually(lambda: len(seen) == 3)
    shutdown.trigger()

    assert await worker == 0


async def test_stop_lets_running_handlers_finish_within_the_grace_period(
    live_service: LiveService, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = live_service.new_tenant("grace")
    created = live_service.create_events(tenant[1], 2)
    seen: list[tuple[str, str]] = []
    shutdown = Shutdown(grace_seconds=10)
    caplog.set_level(logging.INFO, logger="worker")
    worker = asyncio.create_task(
        run(settings(live_service, tenant, poll_interval=1), recorder(seen, sleep=0.3), shutdown)
    )
    await eventually(lambda: len(seen) == 2)
    shutdown.trigger()

    assert await worker == 0
    assert live_service.undelivered(tenant[1]) == []
    assert sorted(event_id for _t, event_id in seen) == sorted(created)
    assert len(outcomes(caplog, "acked")) == 2


async def test_stop_releases_handlers_still_running_after_the_grace_period(
    live_service: LiveService,
) -> None:
    tenant = live_service.new_tenant("cut")
    created = live_service.create_events(tenant[1], 4)
    seen: list[tuple[str, str]] = []
    shutdown = Shutdown(grace_seconds=0.2)
    worker = asyncio.create_task(
        run(settings(live_service, tenant, concurrency=2), recorder(seen, sleep=60), shutdown)
    )
    await eventually(lambda: len(seen) == 2)
    shutdown.trigger()

    assert await asyncio.wait_for(worker, 10) == 0
    claimed = live_service.claim(tenant[1])
    assert sorted(event["id"] for event in claimed) == sorted(created)
    assert sorted(e["attempts"] for e in claimed) == [1, 1, 2, 2]


async def test_second_stop_signal_ends_the_grace_period_at_once(
    live_service: LiveService,
) -> None:
    tenant = live_service.new_tenant("hurry")
    live_service.create_events(tenant[1], 1)
    seen: list[tuple[str, str]] = []
    shutdown = Shutdown(grace_seconds=60)
    worker = asyncio.create_task(
        run(settings(live_service, tenant), recorder(seen, sleep=60), shutdown)
    )
    await eventually(lambda: len(seen) == 1)
    shutdown.trigger("SIGINT")
    await asyncio.sleep(0.1)
    shutdown.trigger("SIGINT")

    assert await asyncio.wait_for(worker, 10) == 0
    assert len(live_service.claim(tenant[1])) == 1


async def test_a_handler_slower_than_its_lease_keeps_it_until_done(
    live_service: LiveService, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = live_service.new_tenant("lease")
    [event_id] = live_service.create_events(tenant[1], 1)
    calls: list[str] = []
    done = asyncio.Event()

    async def slow(event: dict[str, Any]) -> None:
        calls.append(event["id"])
        await done.wait()

    caplog.set_level(logging.DEBUG, logger="worker")
    worker = asyncio.create_task(
        run(settings(live_service, tenant, once=True, lease_seconds=2), slow, Shutdown(5))
    )
    await eventually(lambda: len(messages(caplog, "lease extended")) >= 2)
    loop = asyncio.get_running_loop()
    claimed_meanwhile = await loop.run_in_executor(None, live_service.claim, tenant[1])
    done.set()

    assert await worker == 0
    assert claimed_meanwhile == []  # two leases later, still ours
    assert calls == [event_id]
    [delivered] = live_service.events(tenant[1], "delivered")
    assert delivered["attempts"] == 1
    [acked] = outcomes(caplog, "acked")
    assert "extensions=" in acked


async def test_refused_key_stops_only_that_tenant(
    live_service: LiveService, caplog: pytest.LogCaptureFixture
) -> None:
    good = live_service.new_tenant("good")
    live_service.create_events(good[1], 3)
    caplog.set_level(logging.INFO, logger="worker")

    status = await run(
        settings(live_service, good, ("gone", "tk_unknown"), once=True), noop, Shutdown(5)
    )

    assert status == 1
    assert live_service.undelivered(good[1]) == []
    assert any(
        "tenant stopped" in r.getMessage() and "tenant=gone" in r.getMessage()
        for r in caplog.records
    )


async def test_once_gives_up_on_an_unreachable_api(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tenant_module, "ONCE_RETRY_FOR", 0.5)
    options = Settings(
        tenants=(Tenant("t", "k"),), api_url=f"http://127.0.0.1:{free_port()}", once=True
    )

    status = await run(options, noop, Shutdown(5))

    assert status == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("retrying request" in m and "ConnectError" in m for m in messages)
    assert any("tenant stopped: API unavailable" in m for m in messages)


async def test_claim_refused_for_good_stops_the_tenant(
    live_service: LiveService, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = live_service.new_tenant("misrouted")
    options = settings(live_service, tenant, once=True)
    options = Settings(tenants=options.tenants, api_url=f"{live_service.url}/nowhere", once=True)

    status = await run(options, noop, Shutdown(5))

    assert status == 1
    assert any("tenant stopped: claim refused" in r.getMessage() for r in caplog.records)


async def test_handler_that_ignores_cancellation_is_not_waited_for_forever(
    live_service: LiveService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tenant_module, "WIND_DOWN_CAP", 0.2)
    tenant = live_service.new_tenant("stubborn")
    live_service.create_events(tenant[1], 1)
    started = asyncio.Event()

    async def stubborn(event: dict[str, Any]) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(0.5)  # carries on regardless

    shutdown = Shutdown(grace_seconds=0)
    worker = asyncio.create_task(run(settings(live_service, tenant), stubborn, shutdown))
    await started.wait()
    shutdown.trigger()

    assert await asyncio.wait_for(worker, 5) == 0
    assert any("reason=handler_ignored_cancellation" in r.getMessage() for r in caplog.records)
    await asyncio.sleep(0.5)  # let the stubborn handler end before the loop moves on


async def test_heartbeat_file_is_touched_while_the_worker_runs(
    live_service: LiveService, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "HEARTBEAT_SECONDS", 0.05)
    tenant = live_service.new_tenant("heartbeat")
    beat = tmp_path / "worker.heartbeat"
    shutdown = Shutdown(grace_seconds=1)
    worker = asyncio.create_task(
        run(
            settings(live_service, tenant, poll_interval=1, heartbeat_file=str(beat)),
            noop,
            shutdown,
        )
    )
    await eventually(beat.exists)
    first = beat.stat().st_mtime_ns
    beat.unlink()
    await eventually(beat.exists, within=10)  # touched again while the worker idles

    shutdown.trigger()
    assert await worker == 0
    assert beat.stat().st_mtime_ns >= first


async def test_a_handler_raising_cancelled_error_itself_fails_like_any_other(
    live_service: LiveService, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = live_service.new_tenant("cancels")
    odd, *rest = live_service.create_events(tenant[1], 3)
    seen: list[str] = []

    async def handle(event: dict[str, Any]) -> None:
        seen.append(event["id"])
        if event["id"] == odd:
            raise asyncio.CancelledError  # not the worker's doing: the handler's own

    caplog.set_level(logging.INFO, logger="worker")
    status = await run(
        settings(live_service, tenant, once=True, max_attempts=1), handle, Shutdown(5)
    )

    assert status == 1
    assert sorted(seen) == sorted([odd, *rest])
    [failed] = outcomes(caplog, "failed")
    assert "error=CancelledError" in failed
    [dead] = live_service.events(tenant[1], "dead")
    assert (dead["id"], dead["last_error"]) == (odd, "CancelledError")


async def test_a_failure_after_the_lease_was_lost_is_not_handed_back(
    live_service: LiveService, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = live_service.new_tenant("gone")
    [event_id] = live_service.create_events(tenant[1], 1)
    go_on = asyncio.Event()

    async def handle(event: dict[str, Any]) -> None:
        await go_on.wait()
        raise RuntimeError("too late")

    caplog.set_level(logging.INFO, logger="worker")
    worker = asyncio.create_task(
        run(settings(live_service, tenant, once=True, lease_seconds=1), handle, Shutdown(5))
    )
    await eventually(lambda: bool(live_service.events(tenant[1], "undelivered")[0]["attempts"]))
    with live_service.client(tenant[1]) as client:  # deleted while its handler runs
        assert client.delete(f"/v1/events/{event_id}").status_code == 204
    await eventually(lambda: bool(messages(caplog, "lease lost")))
    go_on.set()

    assert await worker == 1
    [lost] = messages(caplog, "lease lost")
    assert "reason=not_found" in lost
    [failed] = outcomes(caplog, "failed")
    assert "retry_in" not in failed
    [gone] = outcomes(caplog, "lost")
    assert "reason=not_found" in gone
    assert outcomes(caplog, "released") == []
