"""Exponential backoff with jitter: for HTTP retries, and for when a failed event is retried.

Jitter spreads the retries of many workers that failed at the same moment (a service restart, a
downstream outage that failed a thousand events at once), so they do not all come back in the
same second.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

RETRY_BASE_SECONDS = 2.0  # a failed event's first retry comes 1-2 s later


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float = 0.1
    cap: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (0-based): half fixed, half random."""
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt, 30))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def retry_delay(attempts: int, cap: int) -> int:
    """Whole seconds before an event whose handler failed on its `attempts`-th claim may be
    claimed again: 1-2 s after the first, doubling with each claim, at most `cap`."""
    return round(Backoff(RETRY_BASE_SECONDS, cap).delay(max(attempts - 1, 0)))


def retry_after(header: str | None, cap: float = 60.0) -> float | None:
    """Seconds from a `Retry-After` header in its delay-seconds form, else None."""
    if header is None:
        return None
    try:
        seconds = float(header.strip())
    except ValueError:
        return None  # the HTTP-date form: fall back to our own backoff
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return min(seconds, cap)
