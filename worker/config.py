"""Worker configuration: command-line flags first, then environment variables, then defaults.

The environment names are the original mock worker's (`API_URL`, `API_KEY`/`TENANT_NAME`,
`API_KEYS`/`TENANT_NAMES`, `POLL_INTERVAL`) plus `WORKER_*` for what it did not have.
An invalid value raises `ConfigError` with a one-line message; the CLI prints it and exits 2.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlsplit

DEFAULT_HANDLER = "worker.handlers:log_event"
MAX_WAIT_SECONDS = 20  # the API's long-poll ceiling
MAX_LEASE_SECONDS = 43_200
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str
    api_key: str = field(repr=False)  # never in logs or tracebacks


@dataclass(frozen=True, slots=True)
class Settings:
    tenants: tuple[Tenant, ...]
    api_url: str = "http://localhost:8000"
    handler: str = DEFAULT_HANDLER
    concurrency: int = 32  # handlers running at once, per tenant
    lease_seconds: int = 30
    poll_interval: float = 5.0
    grace_seconds: float = 20.0
    once: bool = False
    log_level: str = "info"
    heartbeat_file: str | None = None  # touched every few seconds while the loop is alive

    @property
    def wait_seconds(self) -> int:
        """The long-poll wait of a claim: POLL_INTERVAL, within what the API accepts."""
        if self.once:
            return 0  # draining: an empty answer means done, so never wait for one
        return min(MAX_WAIT_SECONDS, math.floor(self.poll_interval))


# setting name -> (flag, environment variable)
OPTIONS = {
    "api_url": ("--api-url", "API_URL"),
    "handler": ("--handler", "WORKER_HANDLER"),
    "concurrency": ("--concurrency", "WORKER_CONCURRENCY"),
    "lease_seconds": ("--lease-seconds", "WORKER_LEASE_SECONDS"),
    "poll_interval": ("--poll-interval", "POLL_INTERVAL"),
    "grace_seconds": ("--grace-seconds", "WORKER_GRACE_SECONDS"),
    "log_level": ("--log-level", "WORKER_LOG_LEVEL"),
    "heartbeat_file": ("--heartbeat-file", "WORKER_HEARTBEAT_FILE"),
}


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
    helps = {
        "api_url": "base URL of the API (API_URL, default http://localhost:8000)",
        "handler": f"module:function to run per event (WORKER_HANDLER, default {DEFAULT_HANDLER})",
        "concurrency": "handlers running at once per tenant (WORKER_CONCURRENCY, default 32)",
        "lease_seconds": "lease per claimed event, 1-43200; a handler still running when it "
        "is about to end is cancelled (WORKER_LEASE_SECONDS, default 30)",
        "poll_interval": "long-poll wait per claim in seconds, at most 20; below 1 the worker "
        "pauses this long between empty claims instead (POLL_INTERVAL, default 5)",
        "grace_seconds": "on SIGTERM/SIGINT, how long running handlers may finish "
        "(WORKER_GRACE_SECONDS, default 20)",
        "log_level": "debug, info, warning or error (WORKER_LOG_LEVEL, default info)",
        "heartbeat_file": "a file touched every few seconds while the worker runs, for a "
        "container health check (WORKER_HEARTBEAT_FILE, default none)",
    }
    metavars = {
        "api_url": "URL",
        "handler": "MODULE:FUNCTION",
        "concurrency": "N",
        "log_level": "LEVEL",
        "heartbeat_file": "PATH",
    }
    for name, (flag, _variable) in OPTIONS.items():
        metavar = metavars.get(name, "SECONDS")
        parser.add_argument(flag, dest=name, default=None, metavar=metavar, help=helps[name])
    parser.add_argument(
        "--once",
        action="store_true",
        help="drain everything claimable for every tenant, then exit",
    )
    return parser


def load_settings(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from flags, then the environment, then defaults; raise `ConfigError`."""
    environ = os.environ if environ is None else environ
    args = _parser().parse_args(list(argv))
    raw: dict[str, tuple[str, str]] = {}
    for name, (flag, variable) in OPTIONS.items():
        value = getattr(args, name)
        if value is not None:
            raw[name] = (flag, value)
        elif environ.get(variable, "").strip():
            raw[name] = (variable, environ[variable].strip())
    return Settings(
        tenants=_tenants(environ),
        once=bool(args.once),
        **{name: _PARSERS[name](source, value) for name, (source, value) in raw.items()},
    )


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


def _url(source: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{source} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _text(source: str, value: str) -> str:
    return value


def _level(source: str, value: str) -> str:
    if value.lower() not in LOG_LEVELS:
        raise ConfigError(f"{source} must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return value.lower()


def _integer(low: int, high: int) -> Callable[[str, str], int]:
    def parse(source: str, value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{source} must be an integer, got {value!r}") from None
        if not low <= number <= high:
            raise ConfigError(f"{source} must be between {low} and {high}, got {number}")
        return number

    return parse


def _seconds(source: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{source} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"{source} must be a number of seconds >= 0, got {value!r}")
    return number


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "api_url": _url,
    "handler": _text,
    "concurrency": _integer(1, 1000),
    "lease_seconds": _integer(1, MAX_LEASE_SECONDS),
    "poll_interval": _seconds,
    "grace_seconds": _seconds,
    "log_level": _level,
    "heartbeat_file": _text,
}
