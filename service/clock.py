"""The one clock: every store call takes `now` from here, so tests can pass their own."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return time.time_ns() // 1_000_000
