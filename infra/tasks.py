"""What the API and worker task definitions share: one image, one platform, awslogs."""

from __future__ import annotations

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
