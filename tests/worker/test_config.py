"""Configuration: flags over environment over defaults, and one clear line for a bad value."""

from __future__ import annotations

import re

import pytest

from worker.config import ConfigError, Settings, Tenant, load_settings

ONE = {"API_KEY": "tk_1", "TENANT_NAME": "acme"}


def test_defaults_for_a_single_tenant() -> None:
    settings = load_settings([], ONE)

    assert settings == Settings(tenants=(Tenant("acme", "tk_1"),))
    assert settings.api_url == "http://localhost:8000"
    assert settings.wait_seconds == 5


def test_tenant_name_defaults_when_only_a_key_is_given() -> None:
    assert load_settings([], {"API_KEY": "tk_1"}).tenants == (Tenant("default", "tk_1"),)


def test_several_tenants_pair_keys_and_names_in_order() -> None:
    settings = load_settings(
        [], {"API_KEYS": "tk_a, tk_b,tk_c", "TENANT_NAMES": "acme,globex , initech"}
    )

    assert settings.tenants == (
        Tenant("acme", "tk_a"),
        Tenant("globex", "tk_b"),
        Tenant("initech", "tk_c"),
    )


def test_flags_win_over_the_environment() -> None:
    environ = {
        **ONE,
        "API_URL": "http://env:1",
        "WORKER_CONCURRENCY": "3",
        "POLL_INTERVAL": "2",
        "WORKER_HANDLER": "worker.handlers:noop",
        "WORKER_LOG_LEVEL": "DEBUG",
        "WORKER_GRACE_SECONDS": "7.5",
    }
    settings = load_settings(
        ["--api-url", "https://flag:2/", "--concurrency", "9", "--once", "--lease-seconds", "60"],
        environ,
    )

    assert settings.api_url == "https://flag:2"
    assert settings.concurrency == 9
    assert settings.lease_seconds == 60
    assert settings.poll_interval == 2.0
    assert settings.handler == "worker.handlers:noop"
    assert settings.log_level == "debug"
    assert settings.grace_seconds == 7.5
    assert settings.once
    assert settings.wait_seconds == 0  # --once never long-polls


@pytest.mark.parametrize(
    ("poll", "wait"), [("0", 0), ("0.5", 0), ("1.9", 1), ("20", 20), ("90", 20)]
)
def test_poll_interval_becomes_the_long_poll_wait(poll: str, wait: int) -> None:
    assert load_settings([], {**ONE, "POLL_INTERVAL": poll}).wait_seconds == wait


def test_api_key_never_shows_in_repr() -> None:
    assert "tk_1" not in repr(load_settings([], ONE))


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        ([], {}, "no API key"),
        ([], {**ONE, "API_KEYS": "tk_2"}, "not both"),
        ([], {"API_KEYS": "a,b", "TENANT_NAMES": "x"}, "API_KEYS has 2 entries"),
        ([], {"API_KEYS": "a,", "TENANT_NAMES": "x,y"}, "empty entries"),
        ([], {"API_KEYS": "a,b", "TENANT_NAMES": "x,x"}, "repeat a name"),
        ([], {"API_KEYS": "a,a", "TENANT_NAMES": "x,y"}, "repeat a key"),
        (["--api-url", "localhost:8000"], ONE, "http(s) URL"),
        (["--concurrency", "0"], ONE, "between 1 and 1000"),
        (["--concurrency", "many"], ONE, "must be an integer"),
        (["--lease-seconds", "43201"], ONE, "between 1 and 43200"),
        (["--grace-seconds", "-1"], ONE, ">= 0"),
        (["--poll-interval", "inf"], ONE, ">= 0"),
        (["--log-level", "loud"], ONE, "must be one of"),
        (["--nope"], ONE, "unrecognized arguments"),
    ],
)
def test_bad_configuration_raises_one_line(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        load_settings(argv, environ)

    assert "\n" not in str(raised.value)
