"""Deployment settings from CDK context (no synthesis here)."""

from __future__ import annotations

import json
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
        ({"apiMinTasks": "two"}, "apiMinTasks"),
        ({"apiMinTasks": True}, "apiMinTasks"),
        ({"removalPolicy": "snapshot"}, "removalPolicy"),
        ({"logRetentionDays": 10}, "logRetentionDays"),
        ({"apiCpu": 256, "apiMemoryMiB": 4096}, "not a Fargate task size"),
        ({"workerMinTasks": 5, "workerMaxTasks": 2}, "workerMinTasks"),
        ({"certificateArn": "arn:aws:acm:eu-west-1:1:certificate/x"}, "domainName"),
    ],
)
def test_invalid_settings_stop_the_synth_with_the_key_named(
    context: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        settings(**context)


def test_every_accepted_log_retention_has_a_cloudwatch_value() -> None:
    from infra.stack import retention_days

    assert [retention_days(days) for days in LOG_RETENTION_DAYS]
