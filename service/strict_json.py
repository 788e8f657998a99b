"""Request bodies read as I-JSON (RFC 7493), and the exact form that identifies a request.

`parse` is the one gate every body passes: a single pass of jiter (in Rust) checks the syntax and
the UTF-8, refuses an object that repeats a member name (RFC 7493 §2.3: the receiver cannot know
which one the sender meant, and msgspec or Python would silently keep the last), and keeps each
number's text instead of converting it to a float. Nesting is limited to `MAX_DEPTH` levels, so
no decoder recurses without bound.

`canonical` writes a parsed body in one form per JSON value: keys sorted, no whitespace, strings
as msgspec writes them, numbers by their exact decimal value (`100`, `1E2` and `100.0` are equal;
`0.1` and `0.10000000000000000001` are not).
"""

from __future__ import annotations

import re
from typing import Any

import jiter
import msgspec

from service.problems import validation_error

MAX_DEPTH = 64  # levels of objects and arrays, the body itself being level 1
MAX_DETAIL = 200  # characters of a parser's message quoted back to the client
TOO_DEEP = f"Objects and arrays nest more than {MAX_DEPTH} levels deep."

# What the depth check needs: strings removed (they may hold brackets), then only brackets.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_LEAF = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
# A string (left as it is), or a number whose integer part is too long for Python's int() (and
# so for jiter): first digit, other digits, fraction, exponent. Possessive: no backtracking.
_LONG_NUMBER = re.compile(
    rb'("[^"\\]*(?:\\.[^"\\]*)*")'
    rb"|(?<![\d.eE])(?<![eE][+-])([1-9])(\d{4300,}+)(\.\d++)?+([eE][+-]?\d++)?+"
)
_DUPLICATE = re.compile(r'^Detected duplicate key "(.*)" at (line \d+ column \d+)$', re.DOTALL)
_NUMBER = re.compile(r"(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?")
# Integers with up to this many digits are written as plain digits (as msgspec writes them, so
# records hashed before exact hashing still match); other numbers as digits `e` exponent.
_PLAIN_DIGITS = 20


def parse(body: bytes, *, check_depth: bool = True) -> Any:
    """The body as Python values (numbers other than integers as `jiter.LosslessFloat`), or 422.

    Without `check_depth` the caller checks the nesting itself (`too_deep`), say of each event of
    a batch; jiter refuses more than 200 levels regardless, so nothing recurses without bound."""
    try:
        try:
            value = _from_json(body)
        except ValueError as error:
            if not str(error).startswith("number out of range"):
                raise
            # An integer part of more than 4,300 digits, which Python will not read: the same
            # number with one digit before the point reads as a LosslessFloat, exactly.
            value = _from_json(_LONG_NUMBER.sub(_scientific, body))
    except ValueError as error:
        raise validation_error(_describe(str(error))) from None
    if check_depth and too_deep(body):
        raise validation_error(TOO_DEEP)
    return value


def _from_json(body: bytes) -> Any:
    return jiter.from_json(
        body,
        allow_inf_nan=False,
        cache_mode="keys",
        catch_duplicate_keys=True,
        float_mode="lossless-float",
    )


def _scientific(found: re.Match[bytes]) -> bytes:
    """`12345…` as `1.2345…e…`; a string unchanged."""
    string, first, rest, fraction, exponent = found.groups()
    if string is not None:
        return string
    try:
        power = len(rest) + (int(exponent[1:]) if exponent else 0)
    except ValueError:  # an exponent of more than 4,300 digits too: left for jiter to refuse
        return found.group(0)
    return b"%s.%s%se%d" % (first, rest, fraction[1:] if fraction else b"", power)


def too_deep(text: bytes) -> bool:
    """Whether valid JSON nests more than MAX_DEPTH levels."""
    # An object or array per opening bracket at most: most texts need no closer look.
    if text.count(b"{") + text.count(b"[") <= MAX_DEPTH:
        return False
    # Without escaped quotes, every other piece between quotes is a string's content: dropping
    # them so is several times cheaper than the regular expression.
    outside = b"".join(text.split(b'"')[::2]) if b'\\"' not in text else _STRING.sub(b"", text)
    brackets = outside.translate(None, _NOT_BRACKETS)
    for _ in range(MAX_DEPTH):  # each pass removes the innermost level
        if not brackets:
            return False
        brackets = _LEAF.sub(b"", brackets)
    return bool(brackets)


def _describe(message: str) -> str:
    if message.startswith("recursion limit exceeded"):
        return TOO_DEEP
    duplicate = _DUPLICATE.match(message)
    if duplicate:
        name, where = duplicate.groups()
        return (
            f"The body repeats the member name {_quote(name)} ({where}); names must be unique"
            " within an object (I-JSON, RFC 7493)."
        )
    return f"The body is not valid JSON: {_quote(message)}"


def _quote(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL] + "…"


# -- the canonical form -----------------------------------------------------------------------


def canonical(value: Any) -> bytes:
    """One text per JSON value: equal exactly when the values are equal as JSON."""
    out: list[bytes] = []
    _write(value, out)
    return b"".join(out)


def _write(value: Any, out: list[bytes]) -> None:
    if isinstance(value, dict):
        out.append(b"{")
        for index, key in enumerate(sorted(value)):
            if index:
                out.append(b",")
            out.append(msgspec.json.encode(key))
            out.append(b":")
            _write(value[key], out)
        out.append(b"}")
    elif isinstance(value, list):
        out.append(b"[")
        for index, item in enumerate(value):
            if index:
                out.append(b",")
            _write(item, out)
        out.append(b"]")
    elif isinstance(value, str) or value is None or isinstance(value, bool):
        out.append(msgspec.json.encode(value))
    else:  # an int, or a LosslessFloat whose str() is the number's text as sent
        out.append(canonical_number(str(value)).encode())


def canonical_number(text: str) -> str:
    """A JSON number's exact value in one spelling: `-0`, `0.0e5` → `0`; `1E2`, `100.0` → `100`;
    `0.50` → `5e-1`; `1e400` → `1e400`. No float is involved."""
    found = _NUMBER.fullmatch(text)
    if found is None:
        raise ValueError(f"not a JSON number: {text!r}")
    sign, whole, fraction, exponent = found.groups()
    fraction = fraction or ""
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return "0"
    significant = digits.rstrip("0")
    shift = len(digits) - len(significant) - len(fraction)
    exponent_sign = "-" if exponent and exponent.startswith("-") else ""
    exponent_digits = (exponent or "").lstrip("+-").lstrip("0") or "0"
    try:
        power = int(exponent_sign + exponent_digits) + shift
    except ValueError:  # an exponent of more than 4,300 digits: Python reads none; keep its text
        return f"{sign}{significant}e{exponent_sign}{exponent_digits}{shift:+d}"
    if power >= 0 and len(significant) + power <= _PLAIN_DIGITS:
        return f"{sign}{significant}{'0' * power}"
    return f"{sign}{significant}e{power}"
