"""One logfmt line per record, whatever the values hold."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from worker import logs


def test_logfmt_quotes_only_what_needs_it_and_skips_none() -> None:
    line = logs.logfmt(
        {"msg": "event acked", "tenant": "acme", "n": 3, "gone": None, "text": 'a "b"\nc\\'}
    )

    assert line == 'msg="event acked" tenant=acme n=3 text="a \\"b\\"\\nc\\\\"'


def test_configured_records_are_single_lines_with_time_and_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    saved = (logs.logger.handlers[:], logs.logger.level, logs.logger.propagate)
    try:
        logs.configure("debug")
        logs.log(logging.DEBUG, "hello", tenant="acme")
        try:
            raise ValueError("boom")
        except ValueError:
            logs.logger.exception("crashed")
    finally:
        logs.logger.handlers[:], logs.logger.level, logs.logger.propagate = saved

    first, second = stream.getvalue().splitlines()
    assert first.startswith("ts=")
    assert first.endswith("Z level=debug msg=hello tenant=acme")
    assert ' level=error crashed traceback="Traceback' in second
    assert "ValueError: boom" in second
