"""Backoff with jitter: for HTTP retries, and the schedule of a failed event's retries."""

from __future__ import annotations

import pytest

from worker.backoff import Backoff, retry_after, retry_delay


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("2", 2.0),
        ("0.5", 0.5),
        ("9999", 60.0),
        ("-1", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_retry_after_header(header: str | None, expected: float | None) -> None:
    assert retry_after(header) == expected


def test_backoff_grows_exponentially_with_jitter_up_to_its_cap() -> None:
    backoff = Backoff(base=1.0, cap=8.0)

    def delays(attempt: int) -> list[float]:
        return [backoff.delay(attempt) for _ in range(200)]

    assert all(0.5 <= d <= 1.0 for d in delays(0))
    assert all(2.0 <= d <= 4.0 for d in delays(2))
    assert all(4.0 <= d <= 8.0 for d in delays(100))
    assert len(set(delays(1))) > 1


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [(1, 1, 2), (2, 2, 4), (3, 4, 8), (5, 16, 32), (9, 256, 512), (10, 450, 900), (1000, 450, 900)],
)
def test_a_failed_event_waits_longer_after_each_attempt(attempts: int, low: int, high: int) -> None:
    delays = {retry_delay(attempts, cap=900) for _ in range(300)}

    assert all(isinstance(d, int) for d in delays)
    assert min(delays) >= low
    assert max(delays) <= high
    assert len(delays) > 1  # jittered: failures of one moment do not come back together


def test_the_retry_delay_never_passes_its_cap() -> None:
    assert {retry_delay(attempts, cap=0) for attempts in range(1, 20)} == {0}
    assert max(retry_delay(attempts, cap=5) for attempts in range(1, 20) for _ in range(50)) == 5
