"""What a worker did, counted: the `--once` summary, and the metrics to come."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(slots=True)
class Tally:
    handled: int = 0  # handler runs that returned (the event is then acknowledged)
    failed: int = 0  # handler runs that raised, and events that could not be read
    dead_lettered: int = 0  # failures on an event's last allowed attempt
    extended: int = 0  # lease extensions the service granted
    leases_lost: int = 0  # extensions refused because the event was claimed again

    def __add__(self, other: Tally) -> Tally:
        mine, theirs = dataclasses.astuple(self), dataclasses.astuple(other)
        return Tally(*(a + b for a, b in zip(mine, theirs, strict=True)))
