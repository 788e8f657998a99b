"""Delivery you can trust, shown by `trigger-worker` as a real process on each store: a poison
event is dead-lettered and its neighbours handled, a slow handler runs once, and numbers no
float can hold reach the handler. Assertions are on outcomes and counts, never on how long
something took."""

from __future__ import annotations

import collections
import re
import subprocess
from decimal import Decimal
from pathlib import Path

from tests.worker.conftest import (
    WORKER,
    LiveService,
    read_amounts,
    read_record,
    wait_until,
    worker_env,
    workers_running,
)

HANDLERS = "tests.worker.handlers:"
HUGE = "9" * 400
BEYOND_LIMIT = "7" * 5000  # past Python's 4,300-digit limit on int(text)


def summary(log: str) -> dict[str, int]:
    """The counts of the worker's last line, `msg="worker stopped" … handled=N …`."""
    last = log.splitlines()[-1]
    assert 'msg="worker stopped"' in last, log
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", last)}


def test_a_poison_event_is_dead_after_max_attempts_and_its_neighbours_are_handled(
    each_service: LiveService, tmp_path: Path
) -> None:
    tenant = each_service.new_tenant("poison")
    key = tenant[1]
    ids = each_service.send_events(
        key, [b'{"n": 0}', b'{"n": 1, "poison": true}', b'{"n": 2}', b'{"n": 3}']
    )
    poison = ids[1]
    record = tmp_path / "record"
    env = worker_env(
        each_service,
        [tenant],
        WORKER_TEST_RECORD=str(record),
        MAX_ATTEMPTS="3",
        RETRY_MAX_SECONDS="1",
        POLL_INTERVAL="1",
    )
    with workers_running(env, tmp_path, 1, "--handler", HANDLERS + "refuse_poison") as ran:
        wait_until(lambda: [e["id"] for e in each_service.events(key, "dead")] == [poison], 90)

    [text] = ran.texts()
    assert ran.statuses == [0], text
    [dead] = each_service.events(key, "dead")
    assert dead["attempts"] == 3
    assert dead["last_error"] == f"ValueError: poison event {poison}"
    assert each_service.undelivered(key) == []
    assert [e["id"] for e in each_service.events(key, "delivered")] == [ids[0], *ids[2:]]
    handled = collections.Counter(event_id for _pid, event_id in read_record(record))
    assert handled == {poison: 3, ids[0]: 1, ids[2]: 1, ids[3]: 1}
    failed = [line for line in text.splitlines() if "outcome=failed" in line]
    assert len(failed) == 3
    assert all('traceback="Traceback' in line for line in failed)
    assert [line for line in failed if "dead_letter=true" in line] == failed[-1:]
    assert summary(text)["dead_lettered"] == 1


def test_once_retries_a_poison_event_until_dead_then_exits_1_with_a_summary(
    each_service: LiveService, tmp_path: Path
) -> None:
    tenant = each_service.new_tenant("once")
    ids = each_service.send_events(tenant[1], [b'{"n": 0}', b'{"poison": true}', b'{"n": 2}'])

    done = subprocess.run(
        [WORKER, "--once", "--handler", HANDLERS + "refuse_poison"],
        env=worker_env(
            each_service,
            [tenant],
            WORKER_TEST_RECORD=str(tmp_path / "record"),
            MAX_ATTEMPTS="2",
            RETRY_MAX_SECONDS="0",  # retried at once, so within this run
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1, done.stderr
    counts = summary(done.stderr)
    assert (counts["handled"], counts["failed"], counts["dead_lettered"]) == (2, 2, 1), done.stderr
    assert [e["id"] for e in each_service.events(tenant[1], "dead")] == [ids[1]]
    assert each_service.undelivered(tenant[1]) == []


def test_a_handler_slower_than_its_lease_runs_once_while_another_worker_competes(
    each_service: LiveService, tmp_path: Path
) -> None:
    tenant = each_service.new_tenant("slow")
    [event_id] = each_service.create_events(tenant[1], 1)
    record = tmp_path / "record"
    # The handler takes more than two leases; the other worker asks for events every second.
    env = worker_env(
        each_service,
        [tenant],
        WORKER_TEST_RECORD=str(record),
        WORKER_TEST_SLEEP="7",
        WORKER_LEASE_SECONDS="3",
        POLL_INTERVAL="1",
    )
    with workers_running(env, tmp_path, 2, "--handler", HANDLERS + "record") as ran:
        wait_until(lambda: each_service.events(tenant[1], "delivered") != [], timeout=90)

    texts = ran.texts()
    assert ran.statuses == [0, 0], texts
    assert [event_id for _pid, event_id in read_record(record)] == [event_id]
    [delivered] = each_service.events(tenant[1], "delivered")
    assert delivered["attempts"] == 1  # never claimed again
    assert sum(summary(text)["lease_extensions"] for text in texts) >= 2
    assert all(summary(text)["leases_lost"] == 0 for text in texts)


def test_numbers_no_float_can_hold_reach_the_handler_exactly(
    each_service: LiveService, tmp_path: Path
) -> None:
    tenant = each_service.new_tenant("numbers")
    amounts = ["1e400", "-1e400", HUGE, BEYOND_LIMIT, "12.5", "3"]
    ids = each_service.send_events(
        tenant[1], [f'{{"amount": {amount}}}'.encode() for amount in amounts] + [b'{"n": 1}']
    )
    record = tmp_path / "record"

    done = subprocess.run(
        [WORKER, "--once", "--handler", HANDLERS + "record_amount"],
        env=worker_env(each_service, [tenant], WORKER_TEST_RECORD=str(record)),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert read_amounts(record) == dict(
        zip(
            ids,
            [
                repr(Decimal("1e400")),
                repr(Decimal("-1e400")),
                repr(int(HUGE)),
                repr(Decimal(BEYOND_LIMIT)),
                "12.5",
                "3",
                "None",
            ],
            strict=True,
        )
    )
    assert summary(done.stderr)["handled"] == 7
    assert each_service.undelivered(tenant[1]) == []
