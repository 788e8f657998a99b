"""What the API and worker services share: one platform, awslogs, rolling deployments."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from constructs import Construct


def fargate_task(scope: Construct, *, cpu: int, memory_mib: int) -> ecs.FargateTaskDefinition:
    return ecs.FargateTaskDefinition(
        scope,
        "Task",
        cpu=cpu,
        memory_limit_mib=memory_mib,
        # The image is built for amd64 (see the asset's platform in the stack).
        runtime_platform=ecs.RuntimePlatform(
            cpu_architecture=ecs.CpuArchitecture.X86_64,
            operating_system_family=ecs.OperatingSystemFamily.LINUX,
        ),
    )


def log_driver(
    scope: Construct,
    *,
    stream_prefix: str,
    retention: logs.RetentionDays,
    removal_policy: RemovalPolicy,
) -> tuple[logs.LogGroup, ecs.LogDriver]:
    group = logs.LogGroup(scope, "Logs", retention=retention, removal_policy=removal_policy)
    return group, ecs.LogDrivers.aws_logs(stream_prefix=stream_prefix, log_group=group)


def rolling_deployment() -> dict[str, Any]:
    """Start new tasks before stopping old ones; roll back a deployment that never gets healthy."""
    return {
        "min_healthy_percent": 100,
        "max_healthy_percent": 200,
        "circuit_breaker": ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
    }
