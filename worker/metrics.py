"""The worker's Prometheus metrics, on a port of its own (`--metrics-port`, off by default).

Read at scrape time from what each tenant's loop counts anyway (its `Tally`) and from its handler
timings. The `tenant` label is bounded: a worker's tenants are the ones it was configured with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

if TYPE_CHECKING:
    from worker.tenant import TenantWorker

# Seconds. A handler may run for many leases: its lease is extended while it runs.
HANDLER_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# series name -> (help, the Tally field it counts)
COUNTERS = {
    "trigger_worker_events_handled": (
        "Handler runs that returned (the event is then acknowledged).",
        "handled",
    ),
    "trigger_worker_events_failed": (
        "Handler runs that raised, and claimed events that could not be read.",
        "failed",
    ),
    "trigger_worker_events_dead_lettered": (
        "Failures on an event's last allowed attempt: the next claim makes it dead.",
        "dead_lettered",
    ),
    "trigger_worker_lease_extensions": (
        "Lease extensions the service granted while handlers ran.",
        "extended",
    ),
    "trigger_worker_leases_lost": (
        "Extensions refused because the event was claimed again meanwhile.",
        "leases_lost",
    ),
}


class WorkerMetrics:
    """The worker's registry; `tenants` are the loops the runner started."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.tenants: Sequence[TenantWorker] = ()
        self.registry.register(self)

    def collect(self) -> Iterable[Metric]:
        tenants = list(self.tenants)
        for name, (help, field) in COUNTERS.items():
            family = CounterMetricFamily(name, help, labels=("tenant",))
            for tenant in tenants:
                family.add_metric((tenant.name,), getattr(tenant.tally, field))
            yield family
        latency = HistogramMetricFamily(
            "trigger_worker_handler_duration_seconds",
            "Time of each handler run, by tenant and outcome (handled or failed).",
            labels=("tenant", "outcome"),
        )
        for tenant in tenants:
            tenant.handler_seconds.add_to(latency, 1, prefix=(tenant.name,))
        yield latency
