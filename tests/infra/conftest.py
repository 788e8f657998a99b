"""Synthesize the CDK app once per session, offline, the way `cdk synth` would (cdk.json context),
into a temporary directory. cdk-nag runs during synthesis, so a fixture that returns at all has
already passed the AwsSolutions checks.

CDK is imported only when an infra test runs (it takes ~20 s of CPU): every pytest-xdist worker
collects every module, and these tests all run on one worker (the `infra` xdist group).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from infra.settings import DeploySettings
from service.store import schema

# jsii prints an end-of-life banner for Node 20 on every start without this.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

    from infra.stack import TriggerApiStack

CDK_JSON = Path(__file__).resolve().parents[2] / "infra" / "cdk.json"
ACCOUNT = "123456789012"
REGION = "us-east-1"
AZS = ["us-east-1a", "us-east-1b"]
CERTIFICATE_ARN = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/00000000-0000-0000-0000-000000000000"
DOMAIN_NAME = "events.example.com"


@dataclass(frozen=True)
class Synth:
    stack: TriggerApiStack
    outdir: Path
    template: Template
    # The raw template, for walking references between resources.
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    validation_report: dict[str, Any]

    @property
    def template_path(self) -> Path:
        return self.outdir / f"{self.stack.artifact_id}.template.json"


def cdk_json_context() -> dict[str, Any]:
    return dict(json.loads(CDK_JSON.read_text())["context"])


# What the `synth` fixture deploys: cdk.json's context.
DEPLOYED = DeploySettings.from_context({**cdk_json_context(), "region": REGION}, {})


def synthesize(outdir: Path, **extra: Any) -> Synth:
    from aws_cdk.assertions import Template

    from infra.app import build_app

    context: dict[str, Any] = {
        **cdk_json_context(),
        "account": ACCOUNT,
        "region": REGION,
        # What `cdk synth` caches in cdk.context.json: no lookup, deterministic AZs.
        f"availability-zones:account={ACCOUNT}:region={REGION}": AZS,
        **extra,
    }
    app, stack = build_app(context, outdir=str(outdir))
    app.synth()
    raw = json.loads((outdir / f"{stack.artifact_id}.template.json").read_text())
    return Synth(
        stack=stack,
        outdir=outdir,
        template=Template.from_json(raw),
        resources=raw["Resources"],
        outputs=raw.get("Outputs", {}),
        validation_report=json.loads((outdir / "validation-report.json").read_text()),
    )


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The app as `cdk deploy` builds it from cdk.json: HTTP only."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def synth_scale_to_zero(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The same app with a worker allowed to scale down to no task at all."""
    return synthesize(tmp_path_factory.mktemp("cdk.out.zero"), workerMinTasks=0)


@pytest.fixture(scope="session")
def synth_https(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The same app with a certificate in context: HTTPS plus a redirect from HTTP; and more
    shards."""
    return synthesize(
        tmp_path_factory.mktemp("cdk.out.https"),
        certificateArn=CERTIFICATE_ARN,
        domainName=DOMAIN_NAME,
        shards="4",  # as `-c shards=4` gives it
        tenantShards="acme=16",
    )


class _Match:
    """`aws_cdk.assertions.Match`, imported on first use rather than when tests are collected."""

    def __getattr__(self, name: str) -> Any:
        from aws_cdk.assertions import Match as match

        return getattr(match, name)


Match = _Match()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # One worker synthesizes (and imports CDK) for every infra test.
    for item in items:
        if "tests/infra/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("infra"))


def of_type(synth: Synth, resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in synth.resources.items() if v["Type"] == resource_type}


def only(items: Mapping[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    assert len(items) == 1, sorted(items)
    return next(iter(items.items()))


def task_definition(synth: Synth, container: str) -> dict[str, Any]:
    properties = only(
        {
            k: v
            for k, v in of_type(synth, "AWS::ECS::TaskDefinition").items()
            if [c["Name"] for c in v["Properties"]["ContainerDefinitions"]] == [container]
        }
    )[1]["Properties"]
    assert isinstance(properties, dict)
    return properties


def container_environment(synth: Synth, container: str) -> dict[str, Any]:
    definition = task_definition(synth, container)["ContainerDefinitions"][0]
    return {e["Name"]: e["Value"] for e in definition["Environment"]}


def statements_of_role(synth: Synth, role_ref: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = role_ref["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in of_type(synth, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    role = synth.resources[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    for inline in role.get("Policies", []):
        statements += inline["PolicyDocument"]["Statement"]
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def table_id(synth: Synth, name: str) -> str:
    return only(
        {
            k: v
            for k, v in of_type(synth, "AWS::DynamoDB::Table").items()
            if v["Properties"]["TableName"] == name
        }
    )[0]


def key_schema(table: schema.TableSchema) -> list[dict[str, str]]:
    return [
        {"AttributeName": table.partition_key, "KeyType": "HASH"},
        {"AttributeName": table.sort_key, "KeyType": "RANGE"},
    ]
