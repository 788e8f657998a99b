"""Structured logging: one `key=value` line per record on stderr (logfmt), easy to grep and parse.

Every event outcome is one line: `outcome=acked|failed|released|lost tenant=… event=…
attempts=… duration_ms=…`, so a log search for an event id tells its whole story.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from service.logfmt import logfmt, timestamp, value

__all__ = ["configure", "log", "logfmt", "logger"]

logger = logging.getLogger("worker")


def log(level: int, msg: str, *, exc_info: BaseException | None = None, **fields: Any) -> None:
    """Log `msg` with `fields` as one logfmt line (skipping fields whose value is None); with
    `exc_info`, its traceback follows as one more field."""
    if logger.isEnabledFor(level):
        logger.log(level, logfmt({"msg": msg, **fields}), exc_info=exc_info)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"ts={timestamp(record.created)} level={record.levelname.lower()} "
        line += record.getMessage()
        if record.exc_info:
            # A traceback would break one-line-per-record; keep it as one quoted field.
            line += " traceback=" + value(self.formatException(record.exc_info))
        return line


def configure(level: str) -> None:
    """Send the worker's records to stderr at `level`; called once by the CLI."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
