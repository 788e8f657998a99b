"""Deployment settings, read from CDK context (`cdk.json`, or `cdk deploy -c key=value`).

Values given with `-c` arrive as strings, so every number and flag is parsed here; an invalid
value stops the synth with a one-line message naming the context key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from service.store.schema import DEFAULT_EVENTS_TABLE, DEFAULT_KEYS_TABLE

RemovalPolicyName = Literal["retain", "destroy"]

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)

# Fargate task sizes: CPU units -> allowed memory (MiB).
FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}


class SettingsError(ValueError):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploySettings:
    """Everything that differs between deployments; defaults suit a small production service."""

    region: str
    account: str | None = None
    stack_name: str = "TriggerApi"
    events_table_name: str = DEFAULT_EVENTS_TABLE
    keys_table_name: str = DEFAULT_KEYS_TABLE
    # "retain" keeps the tables (and their data) when the stack is deleted.
    removal_policy: RemovalPolicyName = "retain"
    nat_gateways: int = 1
    log_retention_days: int = 30
    certificate_arn: str | None = None
    domain_name: str | None = None
    api_cpu: int = 512
    api_memory_mib: int = 1024
    api_min_tasks: int = 2
    api_max_tasks: int = 10
    api_cpu_target_percent: int = 60
    api_requests_per_target: int = 1000
    worker_cpu: int = 256
    worker_memory_mib: int = 512
    worker_min_tasks: int = 1
    worker_max_tasks: int = 4
    worker_cpu_target_percent: int = 70

    def __post_init__(self) -> None:
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise SettingsError(
                f"logRetentionDays must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}"
            )
        for role, cpu, memory in (
            ("api", self.api_cpu, self.api_memory_mib),
            ("worker", self.worker_cpu, self.worker_memory_mib),
        ):
            if memory not in FARGATE_MEMORY.get(cpu, ()):
                raise SettingsError(
                    f"{role}Cpu={cpu} with {role}MemoryMiB={memory} is not a Fargate task size"
                )
        for role, low, high in (
            ("api", self.api_min_tasks, self.api_max_tasks),
            ("worker", self.worker_min_tasks, self.worker_max_tasks),
        ):
            if not 0 <= low <= high or high < 1:
                raise SettingsError(f"need 0 <= {role}MinTasks <= {role}MaxTasks and max >= 1")
        if self.certificate_arn and not self.domain_name:
            # The worker calls the API by URL; TLS only verifies against the certificate's name.
            raise SettingsError("certificateArn needs domainName (the name on the certificate)")

    @property
    def https(self) -> bool:
        return self.certificate_arn is not None

    @classmethod
    def context_keys(cls) -> list[str]:
        return [_camel(field.name) for field in fields(cls)]

    @classmethod
    def from_context(
        cls, context: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> DeploySettings:
        """Read settings from CDK context keys (camelCase names of the fields).

        Account and region fall back to CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION, which the
        CDK CLI sets from the current AWS profile, then to AWS_DEFAULT_REGION / AWS_REGION.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            key = _camel(field.name)
            raw = context.get(key)
            if raw is None or raw == "":
                continue
            parse: Callable[[Any], Any] = _PARSERS.get(field.name, _text)
            try:
                values[field.name] = parse(raw)
            except ValueError as error:
                raise SettingsError(f"context {key}={raw!r}: {error}") from None
        values.setdefault("account", environ.get("CDK_DEFAULT_ACCOUNT") or None)
        region = next(
            (
                environ[name]
                for name in ("CDK_DEFAULT_REGION", "AWS_DEFAULT_REGION", "AWS_REGION")
                if environ.get(name)
            ),
            None,
        )
        values.setdefault("region", region)
        if not values["region"]:
            # Load balancer access logging needs it (the log-delivery principal is per region).
            raise SettingsError(
                "no region: pass -c region=NAME or set AWS_DEFAULT_REGION / an AWS profile"
            )
        return cls(**values)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join("MiB" if part == "mib" else part.capitalize() for part in rest)


def _text(raw: Any) -> str:
    return str(raw)


def _integer(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected an integer")
    return int(str(raw))


def _choice(*allowed: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        value = str(raw).lower()
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return value

    return parse


_PARSERS: dict[str, Callable[[Any], Any]] = {
    field.name: _integer for field in fields(DeploySettings) if field.type == "int"
}
_PARSERS["removal_policy"] = _choice("retain", "destroy")
