"""Settings as a typed dataclass, read from named sources: flags, environment variables, context.

One field per setting. Its type says what is valid — `Annotated[int, msgspec.Meta(ge=1, le=10)]`,
a `Literal` of choices, a `pattern` with a `description` to name it in messages — and
`setting(...)` says where the value comes from and what it is for. `convert` builds the dataclass
with `msgspec.convert(strict=False)`, so text becomes numbers, and turns a bad value into one line
that names where it came from: "TRIGGER_PORT must be an integer between 0 and 65535, not '70000'".
Checks across fields belong in the dataclass's `__post_init__`; their `ValueError` comes out as it
is. Text is stripped, choices match in any case, and numbers must be finite.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, TypeVar

import msgspec

T = TypeVar("T")

Text = Annotated[str, msgspec.Meta(min_length=1)]
HttpUrl = Annotated[
    str, msgspec.Meta(pattern=r"(?i)^https?://[^/?#]+", description="an http(s) URL")
]

# msgspec names the field in its message: "Expected `int` >= 0 - at `$.port`".
_FIELD = re.compile(r" - at `\$\.(\w+)")
_CONSTRAINTS = ("gt", "ge", "lt", "le", "pattern", "min_length", "max_length", "description")


@dataclasses.dataclass(frozen=True, slots=True)
class Given:
    """A raw value and where it came from: a flag, an environment variable, a context key."""

    source: str
    value: Any


def setting(default: T, *, help: str, env: str | None = None, metavar: str | None = None) -> T:
    """A field that `--its-name` (where a program offers the flag) or `env` can set."""
    field: T = dataclasses.field(
        default=default, metadata={"help": help, "env": env, "metavar": metavar}
    )
    return field


def declared(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields of `cls` made with `setting(...)`."""
    return [field for field in dataclasses.fields(cls) if "help" in field.metadata]


def add_flags(
    parser: argparse.ArgumentParser, cls: type, names: Iterable[str] | None = None
) -> None:
    """Offer the declared settings (or those named) as flags, each None when not given."""
    fields = {field.name: field for field in declared(cls)}
    for name in fields if names is None else names:
        field = fields[name]
        help, env = field.metadata["help"], field.metadata["env"]
        default = "none" if field.default is None else field.default
        origin = f"{env}, default {default}" if env else f"default {default}"
        if field.default is False:
            parser.add_argument(
                _flag(name), dest=name, action="store_true", default=None, help=help
            )
        elif field.default is True:  # `--name`, and `--no-name` to turn it off
            parser.add_argument(
                _flag(name),
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{help} ({origin})",
            )
        else:
            parser.add_argument(
                _flag(name),
                dest=name,
                default=None,
                metavar=field.metadata["metavar"],
                help=f"{help} ({origin})",
            )


def read(cls: type, flags: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Given]:
    """The declared settings that were set: a flag (not None) wins over its variable; an empty
    variable counts as unset."""
    found: dict[str, Given] = {}
    for field in declared(cls):
        value, env = flags.get(field.name), field.metadata["env"]
        if value is not None:
            found[field.name] = Given(_flag(field.name), value)
        elif env is not None and environ.get(env, "").strip():
            found[field.name] = Given(env, environ[env])
    return found


def convert(cls: type[T], values: Mapping[str, Given], error: type[Exception], **fixed: Any) -> T:
    """`cls` from the values given by a user and `fixed` ones given by the program; raise
    `error` with one line for the first bad value."""
    hints = typing.get_type_hints(cls, include_extras=True)
    values = {name: _tidy(hints[name], given) for name, given in values.items()}
    raw = {name: given.value for name, given in values.items()}
    try:
        result = msgspec.convert({**raw, **fixed}, cls, strict=False)
    except msgspec.ValidationError as invalid:
        found = _FIELD.search(str(invalid))
        if found is None or found[1] not in values:
            raise error(str(invalid)) from None  # a check across fields says it all
        raise error(_must(values[found[1]], hints[found[1]])) from None
    for name in values:
        # msgspec accepts "inf", and a bound cannot be infinite to exclude it.
        number = getattr(result, name)
        if isinstance(number, float) and not math.isfinite(number):
            raise error(_must(values[name], hints[name]))
    return result


def describe(hint: Any) -> str:
    """What a value of this type must be, as a phrase: "an integer between 1 and 1000"."""
    base, meta = _unwrap(hint)
    if meta.description:
        return meta.description
    if typing.get_origin(base) is Literal:
        choices = typing.get_args(base)
        if len(choices) == 2:
            return f"{choices[0]!r} or {choices[1]!r}"
        return "one of " + ", ".join(map(repr, choices))
    if base is bool:
        return "true or false"
    if base is int:
        return "an integer" + _bounds(meta)
    if base is float:
        return "a finite number" + _bounds(meta)
    if base is str and meta.pattern:
        return f"text matching {meta.pattern!r}"
    if base is str:
        return "non-empty text" if meta.min_length else "text"
    return f"a valid {getattr(base, '__name__', base)}"


def _unwrap(hint: Any) -> tuple[Any, msgspec.Meta]:
    """The type under `Annotated` and `| None`, and its constraints."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        # None is the default, which a source leaves by giving nothing.
        hint, *_ = (arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) is not Annotated:
        return hint, msgspec.Meta()
    base, *extras = typing.get_args(hint)
    merged = {
        name: getattr(meta, name)
        for meta in extras
        if isinstance(meta, msgspec.Meta)
        for name in _CONSTRAINTS
        if getattr(meta, name) is not None
    }
    return base, msgspec.Meta(**merged)


def _bounds(meta: msgspec.Meta) -> str:
    if meta.ge is not None and meta.le is not None:
        return f" between {meta.ge} and {meta.le}"
    limits = [(">", meta.gt), (">=", meta.ge), ("<", meta.lt), ("<=", meta.le)]
    phrases = [f"{op} {bound}" for op, bound in limits if bound is not None]
    return " " + " and ".join(phrases) if phrases else ""


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _tidy(hint: Any, given: Given) -> Given:
    if not isinstance(given.value, str):
        return given
    text = given.value.strip()
    base, _ = _unwrap(hint)
    if typing.get_origin(base) is Literal:
        text = next(
            (c for c in typing.get_args(base) if isinstance(c, str) and c.lower() == text.lower()),
            text,
        )
    return Given(given.source, text)


def _must(given: Given, hint: Any) -> str:
    return f"{given.source} must be {describe(hint)}, not {given.value!r}"
