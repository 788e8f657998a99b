"""Configuration: flags over environment over defaults, and one clear line for a bad value."""

from __future__ import annotations

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
        ([], {}, "no API key: set API_KEY (+ TENANT_NAME) or API_KEYS + TENANT_NAMES"),
        (
            [],
            {**ONE, "API_KEYS": "tk_2"},
            "set API_KEY (one tenant) or API_KEYS (several), not both",
        ),
        (
            [],
            {"API_KEYS": "a,b", "TENANT_NAMES": "x"},
            "API_KEYS has 2 entries but TENANT_NAMES has 1; they must pair up one to one",
        ),
        (
            [],
            {"API_KEYS": "a,", "TENANT_NAMES": "x,y"},
            "API_KEYS and TENANT_NAMES must not contain empty entries",
        ),
        ([], {"API_KEYS": "a,b", "TENANT_NAMES": "x,x"}, "TENANT_NAMES must not repeat a name"),
        ([], {"API_KEYS": "a,a", "TENANT_NAMES": "x,y"}, "API_KEYS must not repeat a key"),
        (
            ["--api-url", "localhost:8000"],
            ONE,
            "--api-url must be an http(s) URL, not 'localhost:8000'",
        ),
        ([], {**ONE, "API_URL": "ftp://x"}, "API_URL must be an http(s) URL, not 'ftp://x'"),
        (
            ["--concurrency", "0"],
            ONE,
            "--concurrency must be an integer between 1 and 1000, not '0'",
        ),
        (
            [],
            {**ONE, "WORKER_CONCURRENCY": "many"},
            "WORKER_CONCURRENCY must be an integer between 1 and 1000, not 'many'",
        ),
        (
            ["--lease-seconds", "43201"],
            ONE,
            "--lease-seconds must be an integer between 1 and 43200, not '43201'",
        ),
        (
            [],
            {**ONE, "WORKER_LEASE_SECONDS": "2.5"},
            "WORKER_LEASE_SECONDS must be an integer between 1 and 43200, not '2.5'",
        ),
        (
            ["--grace-seconds", "-1"],
            ONE,
            "--grace-seconds must be a number of seconds >= 0, not '-1'",
        ),
        (
            [],
            {**ONE, "POLL_INTERVAL": "inf"},
            "POLL_INTERVAL must be a number of seconds >= 0, not 'inf'",
        ),
        (
            ["--log-level", "loud"],
            ONE,
            "--log-level must be one of 'debug', 'info', 'warning', 'error', not 'loud'",
        ),
        (["--handler", ""], ONE, "--handler must be non-empty text, not ''"),
        (["--nope"], ONE, "unrecognized arguments: --nope"),
    ],
)
def test_bad_configuration_raises_one_line_naming_its_source(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(argv, environ)

    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("argv", "name", "value"),
    [
        (["--concurrency", "1"], "concurrency", 1),
        (["--concurrency", "1000"], "concurrency", 1000),
        (["--lease-seconds", "1"], "lease_seconds", 1),
        (["--lease-seconds", "43200"], "lease_seconds", 43200),
        (["--grace-seconds", "0"], "grace_seconds", 0),
    ],
)
def test_bounds_are_inclusive(argv: list[str], name: str, value: float) -> None:
    assert getattr(load_settings(argv, ONE), name) == value


def test_a_flag_overrides_a_bad_environment_variable() -> None:
    environ = {**ONE, "WORKER_CONCURRENCY": "many", "WORKER_LOG_LEVEL": "loud"}

    settings = load_settings(["--concurrency", "4", "--log-level", "error"], environ)

    assert (settings.concurrency, settings.log_level) == (4, "error")


def test_blank_variables_count_as_unset() -> None:
    environ = {**ONE, "API_URL": "  ", "WORKER_CONCURRENCY": ""}

    assert load_settings([], environ) == load_settings([], ONE)
