"""Query parameters read strictly: an integer is ASCII digits and nothing else.

`int()` also takes `+5`, ` 1`, `1_0` and non-ASCII digits such as `٣`; a client that sends those
has a bug worth hearing about (422) rather than a guess.
"""

from __future__ import annotations

import re

from service.problems import validation_error

_DIGITS = re.compile(r"[0-9]+")
# Beyond this many significant digits a value is only "very large": callers clamp it anyway, and
# Python refuses to read integers of more than 4,300 digits.
_MAX_DIGITS = 18


def positive_int(name: str, text: str | None, default: int, maximum: int) -> int:
    """The parameter as an integer from 1 up (clamped to `maximum`), `default` when absent."""
    if text is None:
        return default
    if _DIGITS.fullmatch(text) is None:
        raise validation_error(f"{name} must be an integer written in ASCII digits.")
    digits = text.lstrip("0")
    if not digits:
        raise validation_error(f"{name} must be at least 1.")
    return maximum if len(digits) > _MAX_DIGITS else min(int(digits), maximum)
