"""A setting declared once is a flag, an environment variable and a checked, typed value."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec
import pytest

from service.typed_settings import Text, add_flags, convert, read, setting


class ExampleError(ValueError):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Example:
    attempts: Annotated[int, msgspec.Meta(ge=1, le=1000)] = setting(
        10, env="EXAMPLE_ATTEMPTS", help="tries per event"
    )
    ratio: Annotated[float, msgspec.Meta(gt=0, lt=1)] = setting(
        0.5, env="EXAMPLE_RATIO", metavar="R", help="share kept"
    )
    mode: Literal["fast", "safe", "off"] = setting("safe", env="EXAMPLE_MODE", help="how")
    label: Text | None = setting(None, env="EXAMPLE_LABEL", help="a name for logs")
    dry_run: bool = setting(False, help="change nothing")
    audit: bool = setting(True, env="EXAMPLE_AUDIT", help="log each change")
    batch: int = setting(25, help="events per call")  # a flag with no variable
    fixed: str = "from the program"

    def __post_init__(self) -> None:
        if self.mode == "off" and self.attempts > 1:
            raise ExampleError("mode off allows only one attempt")


def load(argv: list[str], environ: dict[str, str]) -> Example:
    parser = argparse.ArgumentParser()
    add_flags(parser, Example)
    flags = vars(parser.parse_args(argv))
    return convert(Example, read(Example, flags, environ), ExampleError)


def test_flags_and_variables_become_typed_values() -> None:
    example = load(["--attempts", "3", "--dry-run"], {"EXAMPLE_RATIO": "0.25"})

    assert example == Example(attempts=3, ratio=0.25, dry_run=True)


def test_a_flag_wins_over_its_variable() -> None:
    assert load(["--mode", "fast"], {"EXAMPLE_MODE": "off"}).mode == "fast"


@pytest.mark.parametrize(("value", "attempts"), [("1", 1), ("1000", 1000)])
def test_bounds_are_inclusive(value: str, attempts: int) -> None:
    assert load([], {"EXAMPLE_ATTEMPTS": value}).attempts == attempts


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--attempts", "0"], {}, "--attempts must be an integer between 1 and 1000, not '0'"),
        (
            [],
            {"EXAMPLE_ATTEMPTS": "ten"},
            "EXAMPLE_ATTEMPTS must be an integer between 1 and 1000, not 'ten'",
        ),
        ([], {"EXAMPLE_RATIO": "1"}, "EXAMPLE_RATIO must be a finite number > 0 and < 1, not '1'"),
        (
            [],
            {"EXAMPLE_MODE": "slow"},
            "EXAMPLE_MODE must be one of 'fast', 'safe', 'off', not 'slow'",
        ),
        (["--label", " "], {}, "--label must be non-empty text, not ''"),
        (["--mode", "off"], {}, "mode off allows only one attempt"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_source(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ExampleError) as raised:
        load(argv, environ)

    assert str(raised.value) == message


def test_help_shows_the_variable_and_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load(["--help"], {})

    help_text = " ".join(capsys.readouterr().out.split())
    assert "--attempts ATTEMPTS tries per event (EXAMPLE_ATTEMPTS, default 10)" in help_text
    assert "--ratio R share kept (EXAMPLE_RATIO, default 0.5)" in help_text
    assert "--label LABEL a name for logs (EXAMPLE_LABEL, default none)" in help_text
    assert "--dry-run change nothing" in help_text
    assert "--audit, --no-audit log each change (EXAMPLE_AUDIT, default True)" in help_text
    assert "--batch BATCH events per call (default 25)" in help_text
    assert "--fixed" not in help_text


@pytest.mark.parametrize(
    ("argv", "environ", "audit"),
    [
        ([], {}, True),
        (["--no-audit"], {}, False),
        ([], {"EXAMPLE_AUDIT": "false"}, False),
        (["--audit"], {"EXAMPLE_AUDIT": "false"}, True),
    ],
)
def test_a_setting_on_by_default_is_turned_off_by_a_no_flag_or_its_variable(
    argv: list[str], environ: dict[str, str], audit: bool
) -> None:
    assert load(argv, environ).audit is audit
