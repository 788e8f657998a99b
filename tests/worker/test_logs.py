"""One logfmt line per record, whatever the values hold."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable, Iterator

import pytest

from worker import logs


def test_logfmt_quotes_only_what_needs_it_and_skips_none() -> None:
    line = logs.logfmt(
        {"msg": "event acked", "tenant": "acme", "n": 3, "gone": None, "text": 'a "b"\nc\\'}
    )

    assert line == 'msg="event acked" tenant=acme n=3 text="a \\"b\\"\\nc\\\\"'


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], io.StringIO]]:
    """Configure the worker's logger at a level; returns what it writes to stderr. The logger is
    put back afterwards."""
    saved = (logs.logger.handlers[:], logs.logger.level, logs.logger.propagate)

    def configure(level: str) -> io.StringIO:
        stream = io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        logs.configure(level)
        return stream

    yield configure
    logs.logger.handlers[:], logs.logger.level, logs.logger.propagate = saved


def test_configured_records_are_single_lines_with_time_and_level(
    configure: Callable[[str], io.StringIO],
) -> None:
    stderr = configure("debug")
    logs.log(logging.DEBUG, "hello", tenant="acme")
    try:
        raise ValueError("boom")
    except ValueError:
        logs.logger.exception("crashed")

    first, second = stderr.getvalue().splitlines()
    assert first.startswith("ts=")
    assert first.endswith("Z level=debug msg=hello tenant=acme")
    assert ' level=error crashed traceback="Traceback' in second
    assert "ValueError: boom" in second


def test_a_record_with_an_exception_carries_its_traceback_in_one_field(
    configure: Callable[[str], io.StringIO],
) -> None:
    stderr = configure("info")
    empty: dict[str, int] = {}
    try:
        empty["missing"]
    except KeyError as error:
        caught = error
    logs.log(logging.WARNING, "event failed", exc_info=caught, error="KeyError: 'missing'")

    [line] = stderr.getvalue().splitlines()
    assert 'msg="event failed" error="KeyError: \'missing\'" traceback="Traceback' in line
    assert "test_logs.py" in line
    assert line.endswith("KeyError: 'missing'\"")
