"""Configuration: command-line flags first, then environment variables, then defaults.

An invalid value raises `SettingsError` with a one-line message; the CLI prints it and exits 2.
A new setting is one field below (`service/typed_settings.py` says how); `service/cli.py` lists
the ones it also offers as flags.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from service.store.schema import DEFAULT_EVENTS_TABLE, DEFAULT_KEYS_TABLE
from service.store.shards import MAX_SHARDS
from service.typed_settings import HttpUrl, Text, convert, declared, read, setting

StoreKind = Literal["sqlite", "dynamodb"]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Days = Annotated[float, msgspec.Meta(gt=0, description="a positive number of days")]
Seconds = Annotated[
    float, msgspec.Meta(gt=0, le=3600, description="a number of seconds above 0, at most 3600")
]
HeadBytes = Annotated[int, msgspec.Meta(ge=1024, le=1_048_576)]
Attempts = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Shards = Annotated[int, msgspec.Meta(ge=1, le=MAX_SHARDS)]
TenantShards = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\s*([a-z0-9][a-z0-9_-]{0,62}=\d+\s*(,\s*|$))*$",
        description="tenant=count pairs separated by commas (acme=16,globex=8)",
    ),
]


class SettingsError(ValueError):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    store: StoreKind = setting("sqlite", env="TRIGGER_STORE", help="sqlite or dynamodb")
    db: Text = setting("trigger-api.db", env="TRIGGER_DB", help="the SQLite file")
    events_table: Text = setting(
        DEFAULT_EVENTS_TABLE, env="TRIGGER_EVENTS_TABLE", help="DynamoDB events table"
    )
    keys_table: Text = setting(
        DEFAULT_KEYS_TABLE, env="TRIGGER_KEYS_TABLE", help="DynamoDB API keys table"
    )
    host: Text = setting("127.0.0.1", env="TRIGGER_HOST", help="bind address")
    port: Port = setting(8000, env="TRIGGER_PORT", help="port")
    metrics_port: Port | None = setting(
        None,
        env="TRIGGER_METRICS_PORT",
        metavar="PORT",
        help="serve Prometheus metrics on this port of the same address, never the service's",
    )
    access_log: bool = setting(
        True, env="TRIGGER_ACCESS_LOG", help="one logfmt line per request on stderr"
    )
    delivered_retention_days: Days = setting(
        7, env="TRIGGER_DELIVERED_RETENTION_DAYS", help="days an event is kept after delivery"
    )
    undelivered_retention_days: Days = setting(
        30, env="TRIGGER_UNDELIVERED_RETENTION_DAYS", help="days an undelivered event is kept"
    )
    max_attempts: Attempts = setting(
        10,
        env="TRIGGER_MAX_ATTEMPTS",
        help="claims an event may have before a claim makes it dead, when a claim names none",
    )
    shards: Shards = setting(
        1,
        env="TRIGGER_SHARDS",
        help="DynamoDB partition keys a tenant's events spread over (raise it, never lower it)",
    )
    tenant_shards: TenantShards = setting(
        "",
        env="TRIGGER_TENANT_SHARDS",
        help="per-tenant shard counts over TRIGGER_SHARDS, e.g. acme=16,globex=8",
    )
    metrics_service: str = setting(
        "",
        env="TRIGGER_METRICS_SERVICE",
        help="the Service dimension of the backlog metrics written for CloudWatch (EMF) every"
        " minute; none are written when empty",
    )
    dynamodb_endpoint: HttpUrl | None = setting(
        None, env="AWS_ENDPOINT_URL_DYNAMODB", help="DynamoDB Local or a test server"
    )
    header_timeout: Seconds = setting(
        10.0, env="TRIGGER_HEADER_TIMEOUT", help="seconds to send a request head"
    )
    body_timeout: Seconds = setting(
        10.0, env="TRIGGER_BODY_TIMEOUT", help="seconds to send a request body"
    )
    max_header_bytes: HeadBytes = setting(
        16_384, env="TRIGGER_MAX_HEADER_BYTES", help="request head limit (431)"
    )
    region: str | None = None  # AWS_DEFAULT_REGION or AWS_REGION
    api_key_cache_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.metrics_port == self.port and self.port != 0:
            # The load balancer routes every path of the service's port to the public.
            raise ValueError(
                f"TRIGGER_METRICS_PORT must not be the service's port ({self.port}):"
                " metrics are never served on the public port"
            )

    @property
    def shards_by_tenant(self) -> dict[str, int]:
        pairs = (pair.split("=") for pair in self.tenant_shards.replace(" ", "").split(",") if pair)
        counts = {tenant: int(count) for tenant, count in pairs}
        for tenant, count in counts.items():
            if not 1 <= count <= MAX_SHARDS:
                raise SettingsError(
                    f"TRIGGER_TENANT_SHARDS: {tenant}'s count must be 1-{MAX_SHARDS}, not {count}"
                )
        return counts

    @property
    def delivered_retention_ms(self) -> int:
        return int(self.delivered_retention_days * 86_400_000)

    @property
    def undelivered_retention_ms(self) -> int:
        return int(self.undelivered_retention_days * 86_400_000)


# setting name -> environment variable
ENVIRONMENT = {field.name: field.metadata["env"] for field in declared(Settings)}


def load_settings(
    flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from flags (None means "not given"), then the environment, then defaults."""
    environ = os.environ if environ is None else environ
    # boto reads only AWS_DEFAULT_REGION; ECS sets both.
    region = environ.get("AWS_DEFAULT_REGION") or environ.get("AWS_REGION") or None
    return convert(Settings, read(Settings, flags or {}, environ), SettingsError, region=region)
