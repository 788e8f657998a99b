"""How a tenant's events spread over partition keys (shards), and how the spread can grow.

An event's shard is its id's random bits modulo the shard count in force when the id was made,
so get, ack and delete find it from the id alone. The count is `TRIGGER_SHARDS` (and
`TRIGGER_TENANT_SHARDS` per tenant). Raising it must never hide an event, so every count a
deployment has used is kept in a plan all tasks share (an item of the keys table): each entry
says from which millisecond a count applies. A raise takes effect `LEAD_MS` after the first task
saw it: every task re-reads the plan each `REFRESH_SECONDS`, so all of them know the new count
before any id is made under it, and a task whose plan is older than half the lead refuses to
create events rather than guess. Listing and claiming go over every shard the plan has ever
used (its largest count), so nothing is missed. A count is never lowered: a smaller setting is
ignored, with a warning.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from service.ids import id_random, id_time

log = logging.getLogger("trigger_api")

LEAD_MS = 10 * 60_000
REFRESH_SECONDS = 60.0
MAX_SHARDS = 256
DEFAULT = "*"  # the plan's key for tenants without a count of their own

Entries = tuple[tuple[int, int], ...]  # (from ms, count), ascending, the first from 0


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """Every tenant's shard counts over time."""

    plans: Mapping[str, Entries] = field(default_factory=lambda: {DEFAULT: ((0, 1),)})

    def entries(self, tenant: str) -> Entries:
        return self.plans.get(tenant) or self.plans[DEFAULT]

    def count_at(self, tenant: str, ms: int) -> int:
        entries = self.entries(tenant)
        position = bisect.bisect_right([start for start, _ in entries], ms) - 1
        return entries[max(position, 0)][1]

    def shard_of(self, tenant: str, event_id: str) -> int:
        return id_random(event_id) % self.count_at(tenant, id_time(event_id))

    def widest(self, tenant: str) -> int:
        """How many shards the tenant's events may be in: every count ever used."""
        return max(count for _, count in self.entries(tenant))

    def raised(
        self, counts: Mapping[str, int], now: int, *, lead_ms: int = LEAD_MS
    ) -> ShardPlan | None:
        """This plan with `counts` (tenant or DEFAULT -> count) taking effect from now + lead
        where they are higher than the latest count; None when nothing is raised."""
        plans = dict(self.plans)
        for tenant, count in counts.items():
            entries = self.entries(tenant)
            last_start, last_count = entries[-1]
            if count < last_count:
                log.warning(
                    "shard count for %s stays %d: a count is never lowered (%d asked)",
                    tenant,
                    last_count,
                    count,
                )
            if count > last_count:
                start = max(now + lead_ms, last_start + 1)
                plans[tenant] = (*entries, (start, count))
        return None if plans == dict(self.plans) else ShardPlan(plans)

    def encode(self) -> str:
        return msgspec.json.encode(
            {t: [list(e) for e in es] for t, es in self.plans.items()}
        ).decode()

    @classmethod
    def decode(cls, text: str) -> ShardPlan:
        raw = msgspec.json.decode(text, type=dict[str, list[tuple[int, int]]])
        return cls({tenant: tuple(entries) for tenant, entries in raw.items()})

    @classmethod
    def first(cls, counts: Mapping[str, int]) -> ShardPlan:
        """The plan of a deployment that has none yet: its counts apply from the beginning."""
        plans: dict[str, Entries] = {DEFAULT: ((0, counts.get(DEFAULT, 1)),)}
        for tenant, count in counts.items():
            plans[tenant] = ((0, count),)
        return cls(plans)
