"""Bodies read as I-JSON: duplicate names and deep nesting refused, numbers compared exactly."""

from __future__ import annotations

import pytest

from service.problems import ApiError
from service.strict_json import MAX_DEPTH, canonical, canonical_number, parse


def nested(levels: int) -> bytes:
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


def refusal(body: bytes) -> str:
    with pytest.raises(ApiError) as raised:
        parse(body)
    assert (raised.value.status, raised.value.code) == (422, "validation_error")
    return raised.value.detail


def test_nesting_up_to_the_limit_is_accepted_and_one_level_more_is_refused() -> None:
    assert parse(nested(MAX_DEPTH)) is not None
    assert "more than 64 levels deep" in refusal(nested(MAX_DEPTH + 1))
    assert "more than 64 levels deep" in refusal(b"[" * 100_000 + b"]" * 100_000)


def test_depth_counts_arrays_and_objects_alike_and_ignores_brackets_in_strings() -> None:
    mixed = b'[{"a":' * 32 + b"1" + b"}]" * 32  # 64 levels
    assert parse(mixed) is not None
    assert "levels" in refusal(b"[" + mixed + b"]")
    assert parse(b'{"events": [' + mixed + b"]}", check_depth=False) is not None
    wide = b"[" + b",".join([b'[{"s": "[[[[{{{{"}]'] * 500) + b"]"  # 3 levels, many brackets
    assert parse(wide) is not None
    escaped = b"[" + b",".join([b'[{"s": "\\"[[[[{{{{"}]'] * 500) + b"]"
    assert parse(escaped) is not None
    assert "levels" in refusal(b'["\\"", ' * 70 + b"1" + b"]" * 70)


def test_a_repeated_member_name_is_refused_at_any_depth() -> None:
    for body in (
        b'{"a": 1, "a": 1}',
        b'{"x": {"b": 1, "b": 2}}',
        b'{"events": [{"c": 1, "c": 2}]}',
    ):
        assert "repeats the member name" in refusal(body)
    assert parse(b'{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}') is not None


def test_invalid_json_names_what_is_wrong() -> None:
    for body in (b"", b"{", b'{"a": NaN}', b'{"a": "\xff"}', b'{"a": 1} x', b'{"a": "\\ud800"}'):
        assert refusal(body).startswith("The body is not valid JSON: ")


def test_a_long_duplicate_name_is_not_echoed_whole() -> None:
    name = "n" * 10_000
    detail = refusal(f'{{"{name}": 1, "{name}": 2}}'.encode())
    assert len(detail) < 400


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", "0"),
        ("-0", "0"),
        ("-0.0e5", "0"),
        ("100", "100"),
        ("1E2", "100"),
        ("100.0", "100"),
        ("10e1", "100"),
        ("0.5", "5e-1"),
        ("0.50", "5e-1"),
        ("5E-1", "5e-1"),
        ("-12.340", "-1234e-2"),
        ("1e400", "1e400"),
        ("10e399", "1e400"),
        ("12345678901234567890", "12345678901234567890"),
        ("123456789012345678901", "123456789012345678901e0"),
        ("1e20", "1e20"),
        ("9007199254740993.0", "9007199254740993"),
        ("0.10000000000000000001", "10000000000000000001e-20"),
        ("1e+0005", "100000"),
    ],
)
def test_numbers_have_one_spelling_per_exact_value(text: str, expected: str) -> None:
    assert canonical_number(text) == expected


def test_an_exponent_python_cannot_read_keeps_its_text() -> None:
    exponent = "1" + "0" * 5000
    assert canonical_number(f"1e{exponent}") == f"1e{exponent}+0"
    assert canonical_number(f"10e{exponent}") == f"1e{exponent}+1"


def test_canonical_text_ignores_spacing_key_order_and_escapes_but_not_values() -> None:
    def same(a: bytes, b: bytes) -> bool:
        return canonical(parse(a)) == canonical(parse(b))

    assert same(b'{"a": 1, "b": [1E2, "\\u00e9"]}', '{ "b":[100.0,"é"],"a":1 }'.encode())
    assert same(b'{"x":1e400}', b'{"x": 1e400}')
    assert not same(b'{"x": 0.1}', b'{"x": 0.10000000000000000001}')
    assert not same(b'{"x": 9007199254740993.0}', b'{"x": 9007199254740992.0}')
    assert not same(b'{"x": 1}', b'{"x": "1"}')
    assert not same(b'{"x": [1, 2]}', b'{"x": [2, 1]}')
    assert not same(b'{"x": true}', b'{"x": 1}')


def test_canonical_text_of_plain_values_is_what_msgspec_writes() -> None:
    # Records hashed before exact hashing (msgspec, keys sorted) still match their retries.
    import msgspec

    body = b'{"b": [1, -20, "t\\n\xc3\xa9"], "a": {"z": null, "y": false}, "c": 123456789}'
    assert canonical(parse(body)) == msgspec.json.encode(msgspec.json.decode(body), order="sorted")


def test_numbers_too_long_for_python_are_read_exactly() -> None:
    long = "7" * 5000
    body = f'{{"n": {long}, "m": -{long}, "s": "{long}", "f": {long}.5, "e": {long}e-3}}'.encode()

    value = parse(body)

    assert canonical_number(str(value["n"])) == f"{long}e0"
    assert canonical_number(str(value["m"])) == f"-{long}e0"
    assert value["s"] == long
    assert canonical_number(str(value["f"])) == f"{long}5e-1"
    assert canonical_number(str(value["e"])) == f"{long}e-3"
    assert canonical(parse(f"[{long}]".encode())) == canonical(parse(f"[{long}.000]".encode()))
    assert canonical(parse(f"[{long}]".encode())) != canonical(parse(f"[{long}1]".encode()))
    for invalid in (f"[0{long}]", f"[{long}.]", f"[{long}e]"):
        assert refusal(invalid.encode()).startswith("The body is not valid JSON")


def test_finding_long_integers_takes_linear_time() -> None:
    import time

    started = time.perf_counter()
    for body in (
        b"[" + b"7" * 200_000 + b".5]",
        b'["' + b"7" * 200_000 + b'", ' + b"7" * 5000 + b"]",
        b"[" + b", ".join([b"1.7" + b"7" * 5000] * 40) + b", " + b"7" * 5000 + b"]",
    ):
        parse(body)
    assert time.perf_counter() - started < 1
