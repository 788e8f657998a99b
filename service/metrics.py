"""The service's Prometheus metrics: a registry of their own per app, served on a port of its own.

The metrics port (`TRIGGER_METRICS_PORT`) is never the application's: the load balancer routes
every path of the application port to the public. It is served by prometheus_client's WSGI server
on a daemon thread; a scrape costs that thread a few milliseconds with the GIL, and nothing else
is shared with the event loop but the counters themselves, which are thread-safe.

Labels are bounded: route templates (never raw paths), methods, statuses, store operations. There
is no tenant label: tenants are unbounded, so a request's tenant is in its access-log line instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from service.auth import Authenticator
from service.notifier import Notifier

# Seconds. A request's latency includes a claim's long poll (up to 20 s by design).
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """Every series the service exports, in `registry`."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "trigger_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=registry,
        )
        self.request_seconds = Histogram(
            "trigger_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template and method.",
            ("route", "method"),
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.store_seconds = Histogram(
            "trigger_store_call_duration_seconds",
            "Time of each store call, failed ones included, by operation.",
            ("operation",),
            buckets=STORE_BUCKETS,
            registry=registry,
        )
        self.store_errors = Counter(
            "trigger_store_errors",
            "Store calls that raised, by operation and error: unavailable (answered 503) or other.",
            ("operation", "error"),
            registry=registry,
        )
        self.created = self._events("created", "Events stored (each event of a batch counts).")
        self.claimed = self._events("claimed", "Events leased to a claim.")
        self.acked = self._events("acked", "Events acknowledged (an idempotent repeat counts).")
        self.released = self._events("released", "Leases ended by a release.")
        self.dead_lettered = self._events(
            "dead_lettered", "Events a claim made dead: claimed max_attempts times already."
        )
        self.redriven = self._events("redriven", "Events redriven (dead or undelivered).")
        self._watched = _Watched()
        registry.register(self._watched)
        # (route, method, status) -> the two series one request adds to; labels() costs more
        # than the observation itself.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def watch(self, auth: Authenticator, notifier: Notifier) -> None:
        """Export the key cache's counters and the long-poll waiters of these."""
        self._watched.auth, self._watched.notifier = auth, notifier

    def _events(self, outcome: str, help: str) -> Counter:
        return Counter(f"trigger_events_{outcome}", help, registry=self.registry)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            if method not in METHODS:
                return self.request(route, "OTHER", status, seconds)
            children = self._children[key] = (
                self.requests.labels(route, method, str(status)),
                self.request_seconds.labels(route, method),
            )
        children[0].inc()
        children[1].observe(seconds)


class _Watched:
    """Series read at scrape time from what the app's lifespan made: the key cache's counters and
    the long-poll waiters."""

    def __init__(self) -> None:
        self.auth: Authenticator | None = None
        self.notifier: Notifier | None = None

    def describe(self) -> Iterable[Metric]:
        return self._families(0, 0, 0)

    def collect(self) -> Iterable[Metric]:
        auth, notifier = self.auth, self.notifier
        return self._families(
            auth.hits if auth else 0,
            auth.misses if auth else 0,
            notifier.waiting if notifier else 0,
        )

    @staticmethod
    def _families(hits: int, misses: int, waiting: int) -> list[Metric]:
        lookups = CounterMetricFamily(
            "trigger_api_key_lookups",
            "API key lookups, by whether the key cache answered (hit) or the store (miss).",
            labels=("cache",),
        )
        lookups.add_metric(("hit",), hits)
        lookups.add_metric(("miss",), misses)
        waiters = GaugeMetricFamily(
            "trigger_long_poll_waiters",
            "Claims waiting for an event to arrive (long poll).",
            value=waiting,
        )
        return [lookups, waiters]


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> WSGIServer:
    """Serve `registry` at http://host:port/metrics from a daemon thread; the port is bound when
    this returns (OSError if it cannot be)."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
