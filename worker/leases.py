"""A claimed event and the clock of its lease, plus the one log line per event outcome."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from worker.logs import log


def safety_margin(lease_seconds: int) -> float:
    """Time kept back at the end of a lease to hand the event back before the lease ends.

    A tenth of the lease, at least a second, at most half of it: enough for a release request,
    without taking much from the handler.
    """
    return min(max(1.0, lease_seconds * 0.1), lease_seconds / 2)


@dataclass(slots=True)
class Lease:
    event: dict[str, Any]
    # When the lease ends, on our monotonic clock. Counted from when the claim was *sent*, so it
    # is never later than the service's own `lease_expires_at`.
    expires: float
    margin: float
    started: float = field(default_factory=time.monotonic)

    @property
    def id(self) -> str:
        return str(self.event["id"])

    @property
    def attempts(self) -> int:
        return int(self.event.get("attempts") or 0)

    @property
    def handler_deadline(self) -> float:
        """The handler must be done by then, so there is time left to release the event."""
        return self.expires - self.margin

    def elapsed_ms(self) -> int:
        return round((time.monotonic() - self.started) * 1000)


def report(outcome: str, tenant: str, lease: Lease, **fields: Any) -> None:
    """The one structured line of an event outcome: acked, failed, released or lost."""
    level = logging.INFO if outcome in ("acked", "released") else logging.WARNING
    log(
        level,
        "event " + outcome,
        outcome=outcome,
        tenant=tenant,
        event=lease.id,
        attempts=lease.attempts,
        **fields,
    )
