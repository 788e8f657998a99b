"""Configuration: command-line flags first, then environment variables, then defaults.

An invalid value raises `SettingsError` with a one-line message; the CLI prints it and exits 2.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from service.store.schema import DEFAULT_EVENTS_TABLE, DEFAULT_KEYS_TABLE

StoreKind = Literal["sqlite", "dynamodb"]


class SettingsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Settings:
    store: StoreKind = "sqlite"
    db: str = "trigger-api.db"
    events_table: str = DEFAULT_EVENTS_TABLE
    keys_table: str = DEFAULT_KEYS_TABLE
    host: str = "127.0.0.1"
    port: int = 8000
    delivered_retention_days: float = 7
    undelivered_retention_days: float = 30
    dynamodb_endpoint: str | None = None
    region: str | None = None
    api_key_cache_seconds: float = 10.0

    @property
    def delivered_retention_ms(self) -> int:
        return int(self.delivered_retention_days * 86_400_000)

    @property
    def undelivered_retention_ms(self) -> int:
        return int(self.undelivered_retention_days * 86_400_000)


# setting name -> environment variable
ENVIRONMENT = {
    "store": "TRIGGER_STORE",
    "db": "TRIGGER_DB",
    "events_table": "TRIGGER_EVENTS_TABLE",
    "keys_table": "TRIGGER_KEYS_TABLE",
    "host": "TRIGGER_HOST",
    "port": "TRIGGER_PORT",
    "delivered_retention_days": "TRIGGER_DELIVERED_RETENTION_DAYS",
    "undelivered_retention_days": "TRIGGER_UNDELIVERED_RETENTION_DAYS",
    "dynamodb_endpoint": "AWS_ENDPOINT_URL_DYNAMODB",
}


def load_settings(
    flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from flags (None means "not given"), then the environment, then defaults."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    for name, variable in ENVIRONMENT.items():
        value = environ.get(variable)
        if value not in (None, ""):
            raw[name] = (variable, value)
    for name, value in (flags or {}).items():
        if value is not None:
            raw[name] = (f"--{name.replace('_', '-')}", value)
    region = environ.get("AWS_DEFAULT_REGION") or environ.get("AWS_REGION")
    values: dict[str, Any] = {"region": region or None}
    for name, (source, value) in raw.items():
        values[name] = _parse(name, source, value)
    return Settings(**values)


def _parse(name: str, source: str, value: Any) -> Any:
    field_type = {f.name: f.type for f in dataclasses.fields(Settings)}[name]
    text = str(value).strip()
    if name == "store":
        if text not in ("sqlite", "dynamodb"):
            raise SettingsError(f"{source} must be 'sqlite' or 'dynamodb', not {text!r}")
        return text
    if field_type == "int":
        try:
            number = int(text)
        except ValueError:
            raise SettingsError(f"{source} must be an integer, not {text!r}") from None
        if name == "port" and not 0 <= number <= 65535:
            raise SettingsError(f"{source} must be a port number (0-65535), not {number}")
        return number
    if field_type == "float":
        try:
            days = float(text)
        except ValueError:
            raise SettingsError(f"{source} must be a number of days, not {text!r}") from None
        if not days > 0 or days == float("inf"):
            raise SettingsError(f"{source} must be a positive number of days, not {text!r}")
        return days
    if not text:
        raise SettingsError(f"{source} must not be empty")
    return text
