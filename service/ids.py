"""Event ids: `evt_` + a ULID (48-bit ms timestamp, 80 random bits), monotonic within a process
so that ids made in one millisecond still sort in creation order."""

from __future__ import annotations

import re

from ulid import ULIDGenerator

_generator = ULIDGenerator()
EVENT_ID = re.compile(r"evt_[0-9A-HJKMNP-TV-Z]{26}")


def new_event_id(now_ms: int) -> str:
    return f"evt_{_generator.generate(now_ms)}"


def is_event_id(text: str) -> bool:
    return EVENT_ID.fullmatch(text) is not None
