"""Service settings: flags over environment over defaults, read into typed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import ENVIRONMENT, SettingsError, load_settings


def test_a_flag_wins_over_its_environment_variable() -> None:
    settings = load_settings(
        {"port": "9001", "store": None}, {"TRIGGER_PORT": "9002", "TRIGGER_STORE": "dynamodb"}
    )

    assert settings.port == 9001
    assert settings.store == "dynamodb"


def test_environment_text_is_stripped_and_a_blank_variable_is_unset() -> None:
    settings = load_settings({}, {"TRIGGER_PORT": " 8001\n", "TRIGGER_HOST": "   "})

    assert settings.port == 8001
    assert settings.host == load_settings({}, {}).host


def test_the_store_kind_matches_in_any_case() -> None:
    assert load_settings({"store": "DynamoDB"}, {}).store == "dynamodb"


@pytest.mark.parametrize("port", ["0", "65535"])
def test_port_bounds_are_inclusive(port: str) -> None:
    assert load_settings({}, {"TRIGGER_PORT": port}).port == int(port)


@pytest.mark.parametrize("port", ["-1", "65536", "80.5", "0x50"])
def test_a_port_outside_the_range_is_refused(port: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({}, {"TRIGGER_PORT": port})

    assert str(raised.value) == (
        f"TRIGGER_PORT must be an integer between 0 and 65535, not {port!r}"
    )


def test_retention_days_may_be_fractional() -> None:
    settings = load_settings({}, {"TRIGGER_DELIVERED_RETENTION_DAYS": "0.5"})

    assert settings.delivered_retention_ms == 43_200_000


@pytest.mark.parametrize("days", ["0", "-3", "inf", "nan", "1e400"])
def test_retention_days_must_be_positive_and_finite(days: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({}, {"TRIGGER_UNDELIVERED_RETENTION_DAYS": days})

    assert str(raised.value) == (
        f"TRIGGER_UNDELIVERED_RETENTION_DAYS must be a positive number of days, not {days!r}"
    )


def test_region_comes_from_either_aws_variable() -> None:
    assert load_settings({}, {"AWS_REGION": "eu-west-1"}).region == "eu-west-1"
    both = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "eu-west-1"}
    assert load_settings({}, both).region == "us-east-1"


def test_no_two_settings_read_the_same_variable() -> None:
    assert len(set(ENVIRONMENT.values())) == len(ENVIRONMENT)


def test_the_readme_lists_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme[readme.index("## Configuration") :]

    assert [env for env in ENVIRONMENT.values() if f"| `{env}` |" not in table] == []


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TRIGGER_HEADER_TIMEOUT", "0", "a number of seconds above 0, at most 3600"),
        ("TRIGGER_BODY_TIMEOUT", "-1", "a number of seconds above 0, at most 3600"),
        ("TRIGGER_MAX_HEADER_BYTES", "100", "an integer between 1024 and 1048576"),
    ],
)
def test_connection_limits_are_bounded(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({}, {variable: value})

    assert str(raised.value) == f"{variable} must be {message}, not {value!r}"


def test_connection_limits_default_to_at_most_10_seconds() -> None:
    settings = load_settings({}, {})

    assert 0 < settings.header_timeout <= 10
    assert 0 < settings.body_timeout <= 10


def test_metrics_are_off_unless_given_a_port() -> None:
    assert load_settings({}, {}).metrics_port is None
    assert load_settings({}, {"TRIGGER_METRICS_PORT": "9100"}).metrics_port == 9100


def test_the_metrics_port_cannot_be_the_service_port() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"metrics_port": "8000"}, {})

    assert str(raised.value) == (
        "TRIGGER_METRICS_PORT must not be the service's port (8000):"
        " metrics are never served on the public port"
    )


@pytest.mark.parametrize(("value", "on"), [("false", False), ("0", False), ("TRUE", True)])
def test_the_access_log_is_on_unless_turned_off(value: str, on: bool) -> None:
    assert load_settings({}, {}).access_log is True
    assert load_settings({}, {"TRIGGER_ACCESS_LOG": value}).access_log is on
