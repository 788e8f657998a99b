"""logfmt records: one line each, whatever the message, fields or traceback hold."""

from __future__ import annotations

import io
import logging

from service.logfmt import Formatter, logfmt, timestamp


def test_values_are_quoted_only_when_they_must_be_and_none_is_left_out() -> None:
    line = logfmt({"msg": "store unavailable", "route": "/v1/events/{event_id}", "gone": None})

    assert line == 'msg="store unavailable" route=/v1/events/{event_id}'
    assert logfmt({"text": 'a "b"\nc\\', "eq": "a=b"}) == 'text="a \\"b\\"\\nc\\\\" eq="a=b"'


def test_timestamps_are_utc_to_the_millisecond() -> None:
    assert timestamp(1764086400.1239) == "2025-11-25T16:00:00.123Z"


def test_a_record_is_one_line_with_its_fields_and_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(Formatter())
    logger = logging.getLogger("tests.logfmt")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("store unavailable", extra={"fields": {"request_id": "r-1"}})
        try:
            raise ValueError("boom")
        except ValueError as error:
            logger.error("unhandled error", exc_info=error)
    finally:
        logger.removeHandler(handler)

    first, second = stream.getvalue().splitlines()
    assert first.startswith("ts=")
    assert first.endswith(
        ' level=warning logger=tests.logfmt msg="store unavailable" request_id=r-1'
    )
    assert ' level=error logger=tests.logfmt msg="unhandled error" traceback="Traceback' in second
    assert "ValueError: boom" in second
