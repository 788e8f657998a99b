"""Deployment settings, read from CDK context (`cdk.json`, or `cdk deploy -c key=value`).

A setting is one field of `DeploySettings`: its camelCase name is the context key and its type
says what is valid. Values given with `-c` arrive as strings and are converted to that type; an
invalid value stops the synth with a one-line message naming the context key.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Annotated, Any, Literal

import msgspec

from service.settings import Shards, TenantShards
from service.store.schema import DEFAULT_EVENTS_TABLE, DEFAULT_KEYS_TABLE
from service.typed_settings import Given, Text, convert

RemovalPolicyName = Literal["retain", "destroy"]
# CloudWatch Logs accepts only these retention periods (days).
LogRetentionDays = Literal[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653
]
LOG_RETENTION_DAYS: tuple[int, ...] = typing.get_args(LogRetentionDays)

Region = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$", description="an AWS region name")
]
Account = Annotated[str, msgspec.Meta(pattern=r"^\d{12}$", description="a 12-digit account id")]
StackName = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$",
        description="a stack name: a letter, then letters, digits or '-'",
    ),
]
TableName = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9_.-]{3,255}$",
        description="a table name: 3 to 255 letters, digits, '_', '-' or '.'",
    ),
]
CertificateArn = Annotated[
    str, msgspec.Meta(pattern=r"^arn:aws[a-z-]*:acm:", description="an ACM certificate ARN")
]
# The VPC spans two availability zones; its task subnets need a NAT gateway for egress.
NatGateways = Annotated[int, msgspec.Meta(ge=1, le=2)]
MinTasks = Annotated[int, msgspec.Meta(ge=0)]
MaxTasks = Annotated[int, msgspec.Meta(ge=1)]
Percent = Annotated[int, msgspec.Meta(ge=1, le=100)]
Positive = Annotated[int, msgspec.Meta(ge=1)]

# Fargate task sizes: CPU units -> allowed memory (MiB).
FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}

# Account and region when the context does not give them, in order (see from_context).
ENVIRONMENT_FALLBACKS = {
    "account": ("CDK_DEFAULT_ACCOUNT",),
    "region": ("CDK_DEFAULT_REGION", "AWS_DEFAULT_REGION", "AWS_REGION"),
}


class SettingsError(ValueError):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploySettings:
    """Everything that differs between deployments; defaults suit a small production service."""

    region: Region
    account: Account | None = None
    stack_name: StackName = "TriggerApi"
    events_table_name: TableName = DEFAULT_EVENTS_TABLE
    keys_table_name: TableName = DEFAULT_KEYS_TABLE
    # "retain" keeps the tables (and their data) when the stack is deleted.
    removal_policy: RemovalPolicyName = "retain"
    nat_gateways: NatGateways = 1
    log_retention_days: LogRetentionDays = 30
    certificate_arn: CertificateArn | None = None
    domain_name: Text | None = None
    api_cpu: int = 512
    api_memory_mib: int = 1024
    api_min_tasks: MinTasks = 2
    api_max_tasks: MaxTasks = 10
    api_cpu_target_percent: Percent = 60
    api_requests_per_target: Positive = 1000
    worker_cpu: int = 256
    worker_memory_mib: int = 512
    worker_min_tasks: MinTasks = 1
    worker_max_tasks: MaxTasks = 4
    # Undelivered events per running worker task that auto scaling aims at (docs/DEPLOY.md).
    worker_backlog_per_task: Positive = 100
    # Alarms: the oldest undelivered event's age; the API's share of 5xx answers over 5 minutes,
    # counted only from this many requests in those 5 minutes on.
    alarm_oldest_age_seconds: Positive = 900
    alarm_5xx_percent: Percent = 1
    alarm_5xx_min_requests: Positive = 300
    # DynamoDB partition keys per tenant (TRIGGER_SHARDS, TRIGGER_TENANT_SHARDS): raise them
    # for a tenant whose writes approach one partition's limit; never lower them.
    shards: Shards = 1
    tenant_shards: TenantShards = ""

    def __post_init__(self) -> None:
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
            if low > high:
                raise SettingsError(f"{role}MinTasks={low} is more than {role}MaxTasks={high}")
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
        given: dict[str, Given] = {}
        for field in fields(cls):
            key = _camel(field.name)
            if context.get(key) not in (None, ""):
                given[field.name] = Given(f"context {key}", context[key])
        for name, variables in ENVIRONMENT_FALLBACKS.items():
            variable = next((v for v in variables if environ.get(v)), None)
            if name not in given and variable is not None:
                given[name] = Given(variable, environ[variable])
        if "region" not in given:
            # Load balancer access logging needs it (the log-delivery principal is per region).
            raise SettingsError(
                "no region: pass -c region=NAME or set AWS_DEFAULT_REGION / an AWS profile"
            )
        return convert(cls, given, SettingsError)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join("MiB" if part == "mib" else part.capitalize() for part in rest)
