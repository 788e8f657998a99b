"""Deployment settings from CDK context (no synthesis here)."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import pytest

from infra.settings import LOG_RETENTION_DAYS, DeploySettings, SettingsError
from service.store.schema import DEFAULT_EVENTS_TABLE, DEFAULT_KEYS_TABLE
from tests.infra.conftest import CDK_JSON, cdk_json_context

NO_ENV: dict[str, str] = {}


def settings(**context: Any) -> DeploySettings:
    return DeploySettings.from_context({"region": "eu-west-1", **context}, NO_ENV)


def test_cdk_json_context_spells_out_the_defaults() -> None:
    assert settings(**cdk_json_context()) == DeploySettings(region="eu-west-1")
    assert set(cdk_json_context()) <= set(DeploySettings.context_keys())


def test_cdk_json_runs_the_app_module() -> None:
    assert "app.py" in json.loads(CDK_JSON.read_text())["app"]


def test_defaults_use_the_service_table_names_and_keep_data() -> None:
    defaults = settings()
    assert (defaults.events_table_name, defaults.keys_table_name) == (
        DEFAULT_EVENTS_TABLE,
        DEFAULT_KEYS_TABLE,
    )
    assert defaults.removal_policy == "retain"
    assert not defaults.https


def test_command_line_context_strings_are_parsed() -> None:
    parsed = settings(apiMinTasks="3", apiMaxTasks="6", removalPolicy="DESTROY", natGateways="2")
    assert (parsed.api_min_tasks, parsed.api_max_tasks) == (3, 6)
    assert parsed.removal_policy == "destroy"
    assert parsed.nat_gateways == 2


def test_region_falls_back_to_the_cli_then_the_aws_environment() -> None:
    assert DeploySettings.from_context({}, {"CDK_DEFAULT_REGION": "ap-south-1"}).region == (
        "ap-south-1"
    )
    assert DeploySettings.from_context({}, {"AWS_DEFAULT_REGION": "eu-north-1"}).region == (
        "eu-north-1"
    )
    with pytest.raises(SettingsError, match="no region"):
        DeploySettings.from_context({}, NO_ENV)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"apiMinTasks": "two"}, "context apiMinTasks must be an integer >= 0, not 'two'"),
        ({"apiMinTasks": True}, "context apiMinTasks must be an integer >= 0, not True"),
        ({"apiMaxTasks": "0"}, "context apiMaxTasks must be an integer >= 1, not '0'"),
        ({"natGateways": 3}, "context natGateways must be an integer between 1 and 2, not 3"),
        (
            {"apiCpuTargetPercent": "101"},
            "context apiCpuTargetPercent must be an integer between 1 and 100, not '101'",
        ),
        (
            {"workerBacklogPerTask": "0"},
            "context workerBacklogPerTask must be an integer >= 1, not '0'",
        ),
        (
            {"alarm5xxPercent": "0.5"},
            "context alarm5xxPercent must be an integer between 1 and 100, not '0.5'",
        ),
        (
            {"removalPolicy": "snapshot"},
            "context removalPolicy must be 'retain' or 'destroy', not 'snapshot'",
        ),
        (
            {"logRetentionDays": 10},
            "context logRetentionDays must be one of "
            + ", ".join(map(str, LOG_RETENTION_DAYS))
            + ", not 10",
        ),
        (
            {"stackName": "trigger api"},
            "context stackName must be a stack name: a letter, then letters, digits or '-', "
            "not 'trigger api'",
        ),
        (
            {"eventsTableName": "ev"},
            "context eventsTableName must be a table name: 3 to 255 letters, digits, '_', '-' "
            "or '.', not 'ev'",
        ),
        (
            {"certificateArn": "events.example.com"},
            "context certificateArn must be an ACM certificate ARN, not 'events.example.com'",
        ),
        ({"account": "1234"}, "context account must be a 12-digit account id, not '1234'"),
        ({"region": "Ireland"}, "context region must be an AWS region name, not 'Ireland'"),
        (
            {"apiCpu": 256, "apiMemoryMiB": 4096},
            "apiCpu=256 with apiMemoryMiB=4096 is not a Fargate task size",
        ),
        (
            {"workerMinTasks": 5, "workerMaxTasks": 2},
            "workerMinTasks=5 is more than workerMaxTasks=2",
        ),
        (
            {"certificateArn": "arn:aws:acm:eu-west-1:1:certificate/x"},
            "certificateArn needs domainName (the name on the certificate)",
        ),
    ],
)
def test_invalid_settings_stop_the_synth_with_the_key_named(
    context: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        settings(**context)

    assert str(raised.value) == message


def test_a_bad_account_from_the_environment_names_the_variable() -> None:
    with pytest.raises(SettingsError) as raised:
        DeploySettings.from_context({"region": "eu-west-1"}, {"CDK_DEFAULT_ACCOUNT": "me"})

    assert str(raised.value) == "CDK_DEFAULT_ACCOUNT must be a 12-digit account id, not 'me'"


@pytest.mark.parametrize(
    "context",
    [
        {"natGateways": 1},
        {"natGateways": "2"},
        {"apiCpuTargetPercent": 1, "alarm5xxPercent": "100"},
        {"workerBacklogPerTask": "1", "alarmOldestAgeSeconds": 1, "alarm5xxMinRequests": 1},
        {"apiMinTasks": 0, "apiMaxTasks": 1},
        {"workerMinTasks": "3", "workerMaxTasks": " 3 "},
        {"logRetentionDays": "1"},
        {"logRetentionDays": 3653},
    ],
)
def test_values_at_the_bounds_are_accepted(context: dict[str, Any]) -> None:
    parsed = settings(**context)

    keys = DeploySettings.context_keys()
    names = dict(zip(keys, (field.name for field in fields(DeploySettings)), strict=True))
    for key, value in context.items():
        assert getattr(parsed, names[key]) == int(value)


def test_every_accepted_log_retention_has_a_cloudwatch_value() -> None:
    from infra.stack import retention_days

    assert [retention_days(days) for days in LOG_RETENTION_DAYS]


def test_docs_deploy_lists_every_context_key() -> None:
    table = (CDK_JSON.parent.parent / "docs" / "DEPLOY.md").read_text().split("## Settings")[1]
    table = table.split("\n## ")[0]
    assert all(f"`{key}`" in table for key in DeploySettings.context_keys())
