"""logfmt: what the service and the worker write to stderr, one `key=value` line per record.

Values are bare unless they hold spaces, quotes, `=` or backslashes; then they are quoted with
`\\`, `"` and newlines escaped, so a record never spans two lines and a log search for
`request_id=…` or `event=…` finds it.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any

_BARE = re.compile(r'[^\s="\\]+')  # values that need no quotes


def value(item: object) -> str:
    text = str(item)
    if _BARE.fullmatch(text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def logfmt(fields: Mapping[str, Any]) -> str:
    """The fields as one line, skipping those whose value is None."""
    return " ".join(f"{key}={value(item)}" for key, item in fields.items() if item is not None)


def timestamp(seconds: float) -> str:
    """UTC with milliseconds: `2026-11-25T12:00:00.123Z`."""
    whole = int(seconds)
    return f"{utc_second(whole)}.{int((seconds - whole) * 1000):03d}Z"


def utc_second(whole: int) -> str:
    """`2026-11-25T12:00:00`: a timestamp to the second, without its zone."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


class Formatter(logging.Formatter):
    """`ts=… level=… logger=… msg=…`, then the fields a caller passed as
    `extra={"fields": {...}}`, then any traceback as one quoted field."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            fields["traceback"] = self.formatException(record.exc_info)
        return logfmt(fields)


def configure(level: int = logging.INFO) -> None:
    """Send every record (the service's, uvicorn's, botocore's) to stderr as logfmt."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
