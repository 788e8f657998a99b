"""What the test server counts (write units, calls, items, refusals) per table, index and
partition-key value, and the token buckets of its partition-limit double.

The server reports the counts as JSON at `GET /_meter` (the shape is `Meter.report`'s).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dynamo_units import Charge

Bucket = tuple[str, str | None, str]  # table, index (None: the table itself), partition key value


@dataclass
class Usage:
    """Counts for one table, index or partition; `calls`, `items` and `throttled` by operation."""

    wcu: int = 0  # write units billed
    calls: Counter[str] = field(default_factory=Counter)  # requests
    items: Counter[str] = field(default_factory=Counter)  # items written, or returned by reads
    throttled: Counter[str] = field(default_factory=Counter)  # refusals by the partition limit

    def report(self) -> dict[str, Any]:
        return {
            "wcu": self.wcu,
            "calls": dict(self.calls),
            "items": dict(self.items),
            "throttled": dict(self.throttled),
        }


@dataclass
class Scope(Usage):
    """A table or an index, with the usage of each of its partition-key values."""

    partitions: defaultdict[str, Usage] = field(default_factory=lambda: defaultdict(Usage))

    def report(self) -> dict[str, Any]:
        partitions = {value: usage.report() for value, usage in sorted(self.partitions.items())}
        return {**super().report(), "partitions": partitions}


class Meter:
    """Counts every request the server answers; `report()` is what `GET /_meter` shows."""

    def __init__(self, partition_wcu: float | None = None) -> None:
        self._partition_wcu = partition_wcu
        self._scopes: defaultdict[tuple[str, str | None], Scope] = defaultdict(Scope)

    def reset(self) -> None:
        self._scopes.clear()

    def requested(self, operation: str, tables: Iterable[str]) -> None:
        """A request naming `tables` (each counted once, whatever became of the request)."""
        for table in set(tables):
            self._scopes[table, None].calls[operation] += 1

    def billed(self, operation: str, charges: Iterable[Charge]) -> None:
        """The writes of one request that DynamoDB would bill."""
        reached: dict[int, Usage] = {}
        for charge in charges:
            scope = self._scopes[charge.table, charge.index]
            partition = scope.partitions[charge.partition]
            for usage in (scope, partition):
                usage.wcu += charge.units
                usage.items[operation] += 1
            reached[id(partition)] = partition
            if charge.index is not None:  # a table's own calls are counted by `requested`
                reached[id(scope)] = scope
        for usage in reached.values():
            usage.calls[operation] += 1

    def refused(self, operation: str, buckets: Iterable[Bucket]) -> None:
        """One refusal by the partition-limit double, for want of units in `buckets`."""
        usages: dict[int, Usage] = {}
        for table, index, partition in buckets:
            for usage in (
                self._scopes[table, None],
                self._scopes[table, index],
                self._scopes[table, index].partitions[partition],
            ):
                usages[id(usage)] = usage
        for usage in usages.values():
            usage.throttled[operation] += 1

    def returned(self, operation: str, table: str, index: str | None, items: int) -> None:
        """A read of `table` (through `index`, if given) that returned `items` items."""
        self._scopes[table, None].items[operation] += items
        if index is not None:
            scope = self._scopes[table, index]
            scope.calls[operation] += 1
            scope.items[operation] += items

    def report(self) -> dict[str, Any]:
        tables: dict[str, dict[str, Any]] = {}
        for (table, index), scope in sorted(
            self._scopes.items(), key=lambda named: (named[0][0], named[0][1] or "")
        ):
            if index is None:  # sorted first
                tables[table] = {**scope.report(), "indexes": {}}
            else:
                entry = tables.setdefault(table, {**Scope().report(), "indexes": {}})
                entry["indexes"][index] = scope.report()
        return {
            "partition_wcu": self._partition_wcu,
            "wcu": sum(scope.wcu for scope in self._scopes.values()),
            "tables": tables,
        }


class Buckets:
    """A token bucket per partition-key value of every table and index: `rate` write units a
    second, refilled continuously, holding at most `rate` (a burst of one second's worth)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._clock = clock
        self._levels: dict[Bucket, tuple[float, float]] = {}  # units, and when they were

    def reset(self) -> None:
        self._levels.clear()

    def admit(self, charges: Iterable[Charge]) -> set[Bucket]:
        """Take the units `charges` need, all or none: the buckets that lack them, or nothing.

        A bucket admits a need larger than it can hold once it is full, and goes into debt (so
        that budgets smaller than an item still pass writes, at their average rate)."""
        needs: Counter[Bucket] = Counter()
        for charge in charges:
            needs[charge.bucket] += charge.units
        now = self._clock()
        levels = {bucket: self._level(bucket, now) for bucket in needs}
        short = {bucket for bucket, need in needs.items() if levels[bucket] < min(need, self._rate)}
        if not short:
            for bucket, need in needs.items():
                self._levels[bucket] = (levels[bucket] - need, now)
        return short

    def _level(self, bucket: Bucket, now: float) -> float:
        units, then = self._levels.get(bucket, (self._rate, now))
        return min(self._rate, units + (now - then) * self._rate)
