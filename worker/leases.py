"""A claimed event and the clock of its lease, plus the one log line per event outcome."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from worker.client import Refusal
from worker.decoding import Claimed
from worker.logs import log

RENEW_WITH_LEFT = 1 / 3  # the heartbeat extends a lease when this much of it is left


@dataclass(slots=True, eq=False)
class Lease:
    claimed: Claimed
    # When the lease ends, on our monotonic clock. Counted from when the claim (or the last
    # extension) was *sent*, so it is never later than the service's own `lease_expires_at`.
    expires: float
    renew_at: float  # when the heartbeat extends it
    lost: Refusal | None = None  # set when an extension found the lease no longer ours
    extensions: int = 0

    @classmethod
    def granted(cls, claimed: Claimed, sent: float, lease_seconds: float) -> Lease:
        return cls(claimed, sent + lease_seconds, _renew_at(sent, lease_seconds))

    def renewed(self, sent: float, lease_seconds: float) -> None:
        self.expires = sent + lease_seconds
        self.renew_at = _renew_at(sent, lease_seconds)
        self.extensions += 1

    @property
    def id(self) -> str:
        return self.claimed.id

    @property
    def token(self) -> str:
        return self.claimed.lease_token

    @property
    def attempts(self) -> int:
        return self.claimed.attempts


def _renew_at(sent: float, lease_seconds: float) -> float:
    return sent + lease_seconds - lease_seconds * RENEW_WITH_LEFT


def report(
    outcome: str, tenant: str, lease: Lease, exc_info: BaseException | None = None, **fields: Any
) -> None:
    """The one structured line of an event outcome: acked, failed, released or lost."""
    level = logging.INFO if outcome in ("acked", "released") else logging.WARNING
    log(
        level,
        "event " + outcome,
        exc_info=exc_info,
        outcome=outcome,
        tenant=tenant,
        event=lease.id,
        attempts=lease.attempts,
        extensions=lease.extensions or None,
        **fields,
    )
