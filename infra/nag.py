"""Every acknowledged cdk-nag finding, with its reason, in one place.

Each acknowledgment names one construct (by its path under the stack) and one rule, with the
finding's detail in brackets where the rule reports several; a construct that no longer exists
fails the synth, so nothing here outlives what it excuses.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import Construct


@dataclass(frozen=True, slots=True)
class Finding:
    path: str
    rule: str
    reason: str


# cdk-nag reports its findings to CDK's validation framework under the pack's name.
PACK = "AwsSolutions::"

# tests/infra assert that this stays true.
_EXECUTION_ROLE = (
    "The only statement on Resource * is ecr:GetAuthorizationToken, which AWS does not scope "
    "to a resource; image pulls and log writes name their repository and log group."
)

FINDINGS: tuple[Finding, ...] = (
    Finding(
        "Api/Service/LB/SecurityGroup/Resource",
        "AwsSolutions-EC23",
        "A public API: producers on the internet call the load balancer on 80/443. The tasks "
        "accept traffic only from this security group.",
    ),
    Finding(
        "Api/AccessLogs/Resource",
        "AwsSolutions-S1",
        "This bucket receives the load balancer's access logs; logging access to it would need "
        "another log bucket, and that one another.",
    ),
    Finding(
        "Api/Task/Resource",
        "AwsSolutions-ECS2",
        "Plain environment variables carry only non-secret settings (store kind, table names, "
        "region, proxy trust, metrics dimension); API keys are stored hashed in DynamoDB.",
    ),
    Finding(
        "Worker/Task/Resource",
        "AwsSolutions-ECS2",
        "The only plain environment variable is the API URL; the worker's API keys are ECS "
        "secrets from Secrets Manager.",
    ),
    Finding(
        "Api/Task/ExecutionRole/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::*]",
        _EXECUTION_ROLE,
    ),
    Finding(
        "Worker/Task/ExecutionRole/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::*]",
        _EXECUTION_ROLE,
    ),
    Finding(
        "Worker/ApiKeys/Resource",
        "AwsSolutions-SMG4",
        "The secret holds tenant API keys issued by `trigger-api keys create`; they are rotated "
        "by issuing a new key, updating the secret and revoking the old key (docs/DEPLOY.md), "
        "which a rotation Lambda cannot do.",
    ),
)


def acknowledge_findings(stack: Stack) -> None:
    for finding in FINDINGS:
        Validations.of(_find(stack, finding.path)).acknowledge(
            Acknowledgment(id=PACK + finding.rule, reason=finding.reason)
        )


def _find(stack: Stack, path: str) -> Construct:
    node: Construct = stack
    for part in path.split("/"):
        child = node.node.try_find_child(part)
        if child is None:
            raise LookupError(f"cdk-nag acknowledgment for a missing construct: {path}")
        node = child  # type: ignore[assignment]
    return node
