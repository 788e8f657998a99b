"""Worker configuration: command-line flags first, then environment variables, then defaults.

The environment variables are `API_URL`, `API_KEY` with `TENANT_NAME` (one tenant) or `API_KEYS`
with `TENANT_NAMES` (several), `POLL_INTERVAL`, and `WORKER_*` for the rest. A new setting is one
field of `Settings` (`service/typed_settings.py` says how). An invalid value raises `ConfigError`
with a one-line message; the CLI prints it and exits 2.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal, NoReturn

import msgspec

from service.settings import Port
from service.typed_settings import HttpUrl, Text, add_flags, convert, read, setting

DEFAULT_HANDLER = "worker.handlers:log_event"
MAX_WAIT_SECONDS = 20  # the API's long-poll ceiling
MAX_LEASE_SECONDS = 43_200
MAX_DELAY_SECONDS = 43_200  # the API's longest release delay

Concurrency = Annotated[int, msgspec.Meta(ge=1, le=1000)]
LeaseSeconds = Annotated[int, msgspec.Meta(ge=1, le=MAX_LEASE_SECONDS)]
MaxAttempts = Annotated[int, msgspec.Meta(ge=1, le=1000)]
DelaySeconds = Annotated[int, msgspec.Meta(ge=0, le=MAX_DELAY_SECONDS)]
Seconds = Annotated[float, msgspec.Meta(ge=0, description="a number of seconds >= 0")]
LogLevel = Literal["debug", "info", "warning", "error"]


class ConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str
    api_key: str = field(repr=False)  # never in logs or tracebacks


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    tenants: tuple[Tenant, ...]
    api_url: HttpUrl = setting(
        "http://localhost:8000", env="API_URL", metavar="URL", help="base URL of the API"
    )
    handler: Text = setting(
        DEFAULT_HANDLER,
        env="WORKER_HANDLER",
        metavar="MODULE:FUNCTION",
        help="module:function to run per event",
    )
    concurrency: Concurrency = setting(
        32, env="WORKER_CONCURRENCY", metavar="N", help="handlers running at once per tenant"
    )
    lease_seconds: LeaseSeconds = setting(
        30,
        env="WORKER_LEASE_SECONDS",
        metavar="SECONDS",
        help=f"lease per claimed event, 1-{MAX_LEASE_SECONDS}; extended by as much while the "
        "handler runs",
    )
    max_attempts: MaxAttempts = setting(
        10,
        env="MAX_ATTEMPTS",
        metavar="N",
        help="claims of an event before the service makes it dead, 1-1000 (sent on every claim)",
    )
    retry_max_seconds: DelaySeconds = setting(
        900,
        env="RETRY_MAX_SECONDS",
        metavar="SECONDS",
        help=f"longest wait before a failed event is retried, 0-{MAX_DELAY_SECONDS}",
    )
    poll_interval: Seconds = setting(
        5,
        env="POLL_INTERVAL",
        metavar="SECONDS",
        help=f"long-poll wait per claim in seconds, at most {MAX_WAIT_SECONDS}; below 1 the "
        "worker pauses this long between empty claims instead",
    )
    grace_seconds: Seconds = setting(
        20,
        env="WORKER_GRACE_SECONDS",
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, how long running handlers may finish",
    )
    log_level: LogLevel = setting(
        "info", env="WORKER_LOG_LEVEL", metavar="LEVEL", help="debug, info, warning or error"
    )
    metrics_port: Port | None = setting(
        None,
        env="WORKER_METRICS_PORT",
        metavar="PORT",
        help="serve Prometheus metrics on this port",
    )
    metrics_host: Text = setting(
        "127.0.0.1",
        env="WORKER_METRICS_HOST",
        metavar="HOST",
        help="the metrics port's address (0.0.0.0 to reach it from outside a container)",
    )
    throughput_seconds: Seconds = setting(
        60,
        env="WORKER_THROUGHPUT_SECONDS",
        metavar="SECONDS",
        help="how often to log what was handled and failed, and at what rate; 0: only at exit",
    )
    heartbeat_file: Text | None = setting(
        None,
        env="WORKER_HEARTBEAT_FILE",
        metavar="PATH",
        help="a file touched every few seconds while the worker runs, for a container health check",
    )
    once: bool = setting(False, help="drain everything claimable for every tenant, then exit")

    def __post_init__(self) -> None:
        # One spelling of the base URL, for the logs.
        object.__setattr__(self, "api_url", self.api_url.rstrip("/"))

    @property
    def wait_seconds(self) -> int:
        """The long-poll wait of a claim: POLL_INTERVAL, within what the API accepts."""
        if self.once:
            return 0  # draining: an empty answer means done, so never wait for one
        return min(MAX_WAIT_SECONDS, math.floor(self.poll_interval))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints usage plus the error; we promise one line.
        raise ConfigError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trigger-worker",
        allow_abbrev=False,
        description="Claim events from the Trigger API, run a handler on each, acknowledge them.",
        epilog="API keys come from the environment only: API_KEY (+ TENANT_NAME) or "
        "API_KEYS + TENANT_NAMES (comma-separated, same count).",
    )
    add_flags(parser, Settings)
    return parser


def load_settings(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from flags, then the environment, then defaults; raise `ConfigError`."""
    environ = os.environ if environ is None else environ
    flags = vars(_parser().parse_args(list(argv)))
    given = read(Settings, flags, environ)
    return convert(Settings, given, ConfigError, tenants=_tenants(environ))


def _tenants(environ: Mapping[str, str]) -> tuple[Tenant, ...]:
    key = environ.get("API_KEY", "").strip()
    keys = environ.get("API_KEYS", "").strip()
    if key and keys:
        raise ConfigError("set API_KEY (one tenant) or API_KEYS (several), not both")
    if key:
        return (Tenant(environ.get("TENANT_NAME", "").strip() or "default", key),)
    if not keys:
        raise ConfigError("no API key: set API_KEY (+ TENANT_NAME) or API_KEYS + TENANT_NAMES")
    key_list = [part.strip() for part in keys.split(",")]
    names = [part.strip() for part in environ.get("TENANT_NAMES", "").split(",")]
    if len(key_list) != len(names):
        raise ConfigError(
            f"API_KEYS has {len(key_list)} entries but TENANT_NAMES has {len(names)};"
            " they must pair up one to one"
        )
    if not all(key_list) or not all(names):
        raise ConfigError("API_KEYS and TENANT_NAMES must not contain empty entries")
    if len(set(names)) != len(names):
        raise ConfigError("TENANT_NAMES must not repeat a name")
    if len(set(key_list)) != len(key_list):
        raise ConfigError("API_KEYS must not repeat a key")
    return tuple(Tenant(name, k) for name, k in zip(names, key_list, strict=True))
