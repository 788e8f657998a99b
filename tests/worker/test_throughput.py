"""The throughput line says what was done since the previous one, and at what rate."""

from __future__ import annotations

import logging

import pytest

from worker.tally import Tally
from worker.throughput import Throughput


def test_each_line_counts_only_its_own_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    totals = Tally()
    throughput = Throughput(
        lambda: Tally(totals.handled, totals.failed, totals.dead_lettered), clock=lambda: now[0]
    )

    with caplog.at_level(logging.INFO, logger="worker"):
        totals.handled, totals.failed = 120, 3
        now[0] = 160.0
        throughput.report()
        totals.handled, totals.failed, totals.dead_lettered = 150, 4, 1
        now[0] = 170.0
        throughput.report()

    first, second = (record.getMessage() for record in caplog.records)
    assert first == (
        "msg=throughput seconds=60.0 handled=120 failed=3 dead_lettered=0"
        " handled_per_second=2.0 failed_per_second=0.05"
    )
    assert second == (
        "msg=throughput seconds=10.0 handled=30 failed=1 dead_lettered=1"
        " handled_per_second=3.0 failed_per_second=0.1"
    )
