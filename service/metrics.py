"""The service's Prometheus metrics: a registry of their own per app, served on a port of its own.

The metrics port (`TRIGGER_METRICS_PORT`) is never the application's: the load balancer routes
every path of the application port to the public. It is served by prometheus_client's WSGI server
on a daemon thread; a scrape costs that thread a few milliseconds with the GIL.

Labels are bounded: route templates (never raw paths), methods, statuses, store operations. There
is no tenant label: tenants are unbounded, so a request's tenant is in its access-log line instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from service.auth import Authenticator
from service.notifier import Notifier
from service.timings import Timings

# Seconds. A request's latency includes a claim's long poll (up to 20 s by design).
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# trigger_events_<outcome>_total: what the store's answers said happened to events
EVENT_OUTCOMES = {
    "created": "Events stored (each event of a batch counts).",
    "claimed": "Events leased to a claim.",
    "acked": "Events acknowledged (an idempotent repeat counts).",
    "released": "Leases ended by a release.",
    "dead_lettered": "Events a claim made dead: claimed max_attempts times already.",
    "redriven": "Events redriven (dead or undelivered).",
}


class Metrics:
    """Every series the service exports, in `registry`."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Timings(REQUEST_BUCKETS)  # by (route, method, status)
        self.store_calls = Timings(STORE_BUCKETS)  # by (operation,)
        self.store_errors = Counter(
            "trigger_store_errors",
            "Store calls that raised, by operation and error: unavailable (answered 503) or other.",
            ("operation", "error"),
            registry=registry,
        )
        # outcome -> events; plain numbers like the timings: one goes up on most requests
        self.events = dict.fromkeys(EVENT_OUTCOMES, 0)
        self._exported = _Exported(self)
        registry.register(self._exported)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.observe((route, method if method in METHODS else "OTHER", status), seconds)

    def watch(self, auth: Authenticator, notifier: Notifier) -> None:
        """Export the key cache's counters and the long-poll waiters of these."""
        self._exported.auth, self._exported.notifier = auth, notifier


class _Exported:
    """The series made at scrape time: from the timings, and from what the app's lifespan made
    (the key cache's counters, the long-poll waiters)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self.auth: Authenticator | None = None
        self.notifier: Notifier | None = None

    def collect(self) -> Iterable[Metric]:
        metrics, auth, notifier = self._metrics, self.auth, self.notifier
        requests = CounterMetricFamily(
            "trigger_http_requests",
            "HTTP requests answered, by route template, method and status.",
            labels=("route", "method", "status"),
        )
        for key, counts in metrics.requests.snapshot(3).items():
            requests.add_metric(key, sum(counts[:-1]))
        events = [
            CounterMetricFamily(f"trigger_events_{outcome}", help, value=metrics.events[outcome])
            for outcome, help in EVENT_OUTCOMES.items()
        ]
        lookups = CounterMetricFamily(
            "trigger_api_key_lookups",
            "API key lookups, by whether the key cache answered (hit) or the store (miss).",
            labels=("cache",),
        )
        lookups.add_metric(("hit",), auth.hits if auth else 0)
        lookups.add_metric(("miss",), auth.misses if auth else 0)
        return [
            requests,
            metrics.requests.family(
                "trigger_http_request_duration_seconds",
                "Time from a request reaching the app to the end of its answer, by route template"
                " and method.",
                ("route", "method"),
            ),
            metrics.store_calls.family(
                "trigger_store_call_duration_seconds",
                "Time of each store call, failed ones included, by operation.",
                ("operation",),
            ),
            *events,
            lookups,
            GaugeMetricFamily(
                "trigger_long_poll_waiters",
                "Claims waiting for an event to arrive (long poll).",
                value=notifier.waiting if notifier else 0,
            ),
        ]


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> WSGIServer:
    """Serve `registry` at http://host:port/metrics from a daemon thread; the port is bound when
    this returns (OSError if it cannot be)."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
