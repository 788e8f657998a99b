"""A real `trigger-worker`'s metrics, scraped from its own port, and its throughput lines: every
count is exact (or checked against the worker's own log lines), whatever the machine's speed."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import httpx

from tests.conftest import Scrape, free_port
from tests.worker.conftest import WORKER, LiveService, wait_until, worker_env, workers_running

HANDLERS = "tests.worker.handlers:"


def throughput_lines(log: str) -> list[dict[str, str]]:
    return [
        dict(re.findall(r"(\w+)=(\S+)", line))
        for line in log.splitlines()
        if " msg=throughput " in line
    ]


def test_a_scrape_counts_each_tenants_handled_failed_dead_and_extended_events(
    live_service: LiveService, tmp_path: Path
) -> None:
    first, second = live_service.new_tenant("mfirst"), live_service.new_tenant("msecond")
    live_service.send_events(
        first[1],
        [
            b'{"n": 0}',
            b'{"n": 1}',
            b'{"n": 2, "sleep": 2.5}',  # outlives its 2 s lease unless extended
            b'{"n": 3, "poison": true}',
            b'{"n": 4, "poison": true}',
        ],
    )
    live_service.send_events(second[1], [b'{"n": 0}', b'{"n": 1}'])
    port = free_port()
    metrics = f"http://127.0.0.1:{port}/metrics"
    env = worker_env(
        live_service,
        [first, second],
        WORKER_TEST_RECORD=str(tmp_path / "record"),
        WORKER_METRICS_PORT=str(port),
        WORKER_LEASE_SECONDS="2",
        MAX_ATTEMPTS="1",  # a failure is the last attempt: dead-lettered
        POLL_INTERVAL="1",
        WORKER_THROUGHPUT_SECONDS="0.5",
        WORKER_LOG_LEVEL="debug",
    )

    def done() -> bool:
        try:
            scrape = Scrape(metrics)
        except httpx.TransportError:
            return False  # not listening yet
        handled = "trigger_worker_events_handled_total"
        return (
            scrape(handled, tenant=first[0]) == 3
            and scrape("trigger_worker_events_failed_total", tenant=first[0]) == 2
            and scrape(handled, tenant=second[0]) == 2
        )

    with workers_running(
        env, tmp_path, 1, "--handler", HANDLERS + "sleep_then_refuse_poison"
    ) as ran:
        wait_until(done, 60)
        scrape = Scrape(metrics)

    [log] = ran.texts()
    assert ran.statuses == [0], log
    one, two = first[0], second[0]
    assert scrape("trigger_worker_events_dead_lettered_total", tenant=one) == 2
    assert scrape("trigger_worker_events_dead_lettered_total", tenant=two) == 0
    assert scrape("trigger_worker_events_failed_total", tenant=two) == 0
    assert scrape("trigger_worker_leases_lost_total", tenant=one) == 0
    extended = scrape("trigger_worker_lease_extensions_total", tenant=one)
    assert extended >= 1
    assert extended == log.count('msg="lease extended"')
    latency = "trigger_worker_handler_duration_seconds"
    assert scrape(f"{latency}_count", tenant=one, outcome="handled") == 3
    assert scrape(f"{latency}_count", tenant=one, outcome="failed") == 2
    assert scrape(f"{latency}_bucket", tenant=two, outcome="handled", le="+Inf") == 2
    # The slow handler's 2.5 s are in the sum, and in no bucket below it.
    assert scrape(f"{latency}_sum", tenant=one, outcome="handled") >= 2.5
    assert scrape(f"{latency}_bucket", tenant=one, outcome="handled", le="1.0") == 2

    # Periodic lines, then one at exit: between them they count everything once.
    lines = throughput_lines(log)
    assert len(lines) >= 2
    assert sum(int(line["handled"]) for line in lines) == 5
    assert sum(int(line["failed"]) for line in lines) == 2
    assert sum(int(line["dead_lettered"]) for line in lines) == 2
    assert all(float(line["handled_per_second"]) >= 0 for line in lines)
    assert 'msg="worker stopped"' in log.splitlines()[-1]
    assert "msg=throughput" in log.splitlines()[-2]


def test_once_logs_one_throughput_line_at_exit(live_service: LiveService, tmp_path: Path) -> None:
    tenant = live_service.new_tenant("monce")
    live_service.create_events(tenant[1], 3)

    done = subprocess.run(
        [WORKER, "--once", "--handler", "worker.handlers:noop"],
        env=worker_env(live_service, [tenant]),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    [line] = throughput_lines(done.stderr)
    assert (line["handled"], line["failed"], line["dead_lettered"]) == ("3", "0", "0")


def test_a_metrics_port_in_use_stops_the_worker_with_one_line(
    live_service: LiveService, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [WORKER, "--metrics-port", str(port)],
            env=worker_env(live_service, [("acme", "tk_unused")]),
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"trigger-worker: error: cannot serve metrics on 127.0.0.1:{port}"
        " (--metrics-port/WORKER_METRICS_PORT, --metrics-host/WORKER_METRICS_HOST):"
        " Address already in use"
    ]
