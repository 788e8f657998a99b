"""Latency histograms kept as plain numbers, for what happens too often for a lock per change:
the service's requests and store calls, the worker's handler runs."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

from prometheus_client.core import HistogramMetricFamily


class Timings:
    """Latency histograms by label values, kept as plain numbers.

    Every request and store call adds to one, so they skip prometheus_client's metrics, which take
    a lock per change: a request's count and latency cost ~1.2 µs that way, ~0.3 µs here. Only the
    event loop's thread changes them; a scrape, on the metrics server's thread, copies them with
    single C calls (`list(...)`), which the GIL keeps whole.
    """

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        # label values -> a count per bucket (the last one +Inf), then the sum of the seconds
        self.series: dict[tuple[object, ...], list[float]] = {}

    def observe(self, labels: tuple[object, ...], seconds: float) -> None:
        counts = self.series.get(labels)
        if counts is None:
            counts = self.series[labels] = [0.0] * (len(self.buckets) + 2)
        counts[bisect.bisect_left(self.buckets, seconds)] += 1
        counts[-1] += seconds

    def snapshot(self, width: int) -> dict[tuple[str, ...], list[float]]:
        """The series summed over all but the first `width` labels."""
        merged: dict[tuple[str, ...], list[float]] = {}
        for labels, counts in list(self.series.items()):
            key = tuple(str(label) for label in labels[:width])
            into = merged.setdefault(key, [0.0] * len(counts))
            for index, count in enumerate(list(counts)):
                into[index] += count
        return merged

    def family(self, name: str, help: str, labels: Sequence[str]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, help, labels=labels)
        self.add_to(family, len(labels))
        return family

    def add_to(
        self, family: HistogramMetricFamily, width: int, prefix: tuple[str, ...] = ()
    ) -> None:
        """Add the series, summed over all but their first `width` labels, each with `prefix`
        before its label values."""
        bounds = [str(float(bound)) for bound in self.buckets] + ["+Inf"]  # "1.0", as theirs
        for key, counts in self.snapshot(width).items():
            cumulative = itertools.accumulate(counts[:-1])
            family.add_metric(
                (*prefix, *key), list(zip(bounds, cumulative, strict=True)), counts[-1]
            )
