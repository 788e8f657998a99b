"""Exponential backoff with jitter, shared by HTTP retries and the hold on failed events.

Jitter spreads the retries of many workers that failed at the same moment (a service restart),
so they do not all come back in the same millisecond.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float = 0.1
    cap: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (0-based): half fixed, half random."""
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt, 30))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


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
