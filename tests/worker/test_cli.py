"""`trigger-worker` as a real process against a real `trigger-api serve`."""

from __future__ import annotations

import collections
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.worker.conftest import (
    WORKER,
    LiveService,
    read_record,
    wait_until,
    worker_env,
    workers_running,
)


def test_once_drains_three_tenants(live_service: LiveService, tmp_path: Path) -> None:
    tenants = [live_service.new_tenant(prefix) for prefix in ("acme", "globex", "initech")]
    created = {key: live_service.create_events(key, 30) for _name, key in tenants}
    record = tmp_path / "record"

    done = subprocess.run(
        [WORKER, "--once", "--handler", "tests.worker.handlers:record"],
        env=worker_env(live_service, tenants, WORKER_TEST_RECORD=str(record)),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    handled = [event_id for _pid, event_id in read_record(record)]
    assert sorted(handled) == sorted(i for ids in created.values() for i in ids)
    for _name, key in tenants:
        assert live_service.undelivered(key) == []
    assert done.stderr.count("outcome=acked") == 90


def test_default_handler_logs_tenant_id_and_payload(
    live_service: LiveService, tmp_path: Path
) -> None:
    tenant = live_service.new_tenant("mock")
    [event_id] = live_service.create_events(tenant[1], 1)

    done = subprocess.run(
        [sys.executable, "-m", "worker", "--once"],
        env=worker_env(live_service, [tenant]),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stderr.splitlines() if 'msg="processing event"' in line]
    assert f"tenant={tenant[0]}" in line
    assert f"event={event_id}" in line
    assert 'payload="{\\"n\\":0,\\"kind\\":\\"test\\"}"' in line


def test_three_workers_on_one_tenant_never_share_an_event(
    live_service: LiveService, tmp_path: Path
) -> None:
    tenant = live_service.new_tenant("shared")
    record = tmp_path / "record"
    env = worker_env(
        live_service,
        [tenant],
        WORKER_TEST_RECORD=str(record),
        WORKER_TEST_SLEEP="0.02",
        POLL_INTERVAL="2",
        WORKER_CONCURRENCY="4",
    )
    with workers_running(env, tmp_path, 3, "--handler", "tests.worker.handlers:record") as ran:
        created = live_service.create_events(tenant[1], 200)
        wait_until(lambda: live_service.undelivered(tenant[1]) == [], timeout=60)

    assert ran.statuses == [0, 0, 0], ran.texts()
    handled = read_record(record)
    counts = collections.Counter(event_id for _pid, event_id in handled)
    assert sorted(counts) == sorted(created)
    assert set(counts.values()) == {1}, "an event was handled twice"
    assert len({pid for pid, _event_id in handled}) >= 2, "the work was not shared"


def test_failing_handler_releases_the_event_with_a_delay_and_its_error(
    live_service: LiveService, tmp_path: Path
) -> None:
    tenant = live_service.new_tenant("poison")
    [event_id] = live_service.create_events(tenant[1], 1)

    done = subprocess.run(
        [WORKER, "--once", "--handler", "tests.worker.handlers:fail"],
        env=worker_env(live_service, [tenant], WORKER_TEST_RECORD=str(tmp_path / "record")),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1, done.stderr  # --once: a handler failed
    [failed] = [line for line in done.stderr.splitlines() if "outcome=failed" in line]
    assert 'error="RuntimeError: this handler refuses every event"' in failed
    assert 'traceback="Traceback' in failed
    assert re.search(r" retry_in=[12] ", failed)  # the first retry waits 1-2 s
    assert "outcome=released" in done.stderr
    [event] = live_service.undelivered(tenant[1])
    assert event["id"] == event_id
    assert event["attempts"] == 1  # --once did not wait for the retry
    assert event["last_error"] == "RuntimeError: this handler refuses every event"


def test_sigterm_releases_unfinished_events_and_exits_0(
    live_service: LiveService, tmp_path: Path
) -> None:
    tenant = live_service.new_tenant("slow")
    created = live_service.create_events(tenant[1], 6)
    record = tmp_path / "record"
    worker = subprocess.Popen(
        [WORKER, "--handler", "tests.worker.handlers:record", "--concurrency", "3"],
        env=worker_env(
            live_service,
            [tenant],
            WORKER_TEST_RECORD=str(record),
            WORKER_TEST_SLEEP="60",
            WORKER_GRACE_SECONDS="0.5",
        ),
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: len(read_record(record)) == 3)

    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    _out, log = worker.communicate(timeout=30)

    assert worker.returncode == 0, log
    assert time.monotonic() - started < 10
    assert log.count("outcome=released") == 3
    claimed = live_service.claim(tenant[1])
    assert sorted(event["id"] for event in claimed) == sorted(created)
    running = {event_id for _pid, event_id in read_record(record)}
    assert {event["id"] for event in claimed if event["attempts"] == 2} == running


def test_refused_key_stops_that_tenant_and_the_others_drain(
    live_service: LiveService, tmp_path: Path
) -> None:
    good = [live_service.new_tenant("good"), live_service.new_tenant("good")]
    for _name, key in good:
        live_service.create_events(key, 5)
    tenants = [good[0], ("revoked", "tk_this-key-does-not-exist"), good[1]]

    done = subprocess.run(
        [WORKER, "--once", "--handler", "worker.handlers:noop"],
        env=worker_env(live_service, tenants),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1
    [stopped] = [line for line in done.stderr.splitlines() if "tenant stopped" in line]
    assert "tenant=revoked" in stopped
    assert "401" in stopped
    for _name, key in good:
        assert live_service.undelivered(key) == []


@pytest.mark.parametrize(
    ("environment", "args", "message"),
    [
        ({}, [], "no API key"),
        ({"API_KEYS": "a,b", "TENANT_NAMES": "x"}, [], "API_KEYS has 2 entries"),
        (
            {"API_KEY": "k"},
            ["--lease-seconds", "0"],
            "--lease-seconds must be an integer between 1 and 43200, not '0'",
        ),
        (
            {"API_KEY": "k", "POLL_INTERVAL": "soon"},
            [],
            "POLL_INTERVAL must be a number of seconds >= 0, not 'soon'",
        ),
        ({"API_KEY": "k"}, ["--handler", "tests.worker.handlers:not_async"], "async function"),
        ({"API_KEY": "k"}, ["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_configuration_exits_2_with_one_line(
    live_service: LiveService, environment: dict[str, str], args: list[str], message: str
) -> None:
    env = worker_env(live_service, [], **environment)

    done = subprocess.run([WORKER, *args], env=env, capture_output=True, text=True, timeout=30)

    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("trigger-worker: error: ")
    assert message in done.stderr
