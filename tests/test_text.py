"""The package's encodings of untrusted text: strict JSON, and lines safe for a terminal."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_export import text
from batch_export.text import (
    MAX_DEPTH,
    JsonTooDeep,
    NotJson,
    encode_json,
    printable,
    read_json,
    strict_json,
    too_deep,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_encode_json_is_always_strict_json(value: object) -> None:
    decoded = json.loads(encode_json(value), parse_constant=_refuse)
    assert decoded == _nulled(value)


@settings(max_examples=150, deadline=None)
@given(json_values.filter(lambda v: not _has_big_int(v)))
def test_both_encoders_give_the_same_values_and_bytes_but_for_float_spelling(
    value: object,
) -> None:
    stdlib, fast = text._encode_stdlib(value), text._encode_orjson(value)
    assert json.loads(stdlib) == json.loads(fast)
    if not _has_float(value):
        assert stdlib == fast


def test_big_integers_are_written_exactly() -> None:
    assert encode_json({"n": 2**70, "x": float("inf")}) == b'{"n":1180591620717411303424,"x":null}'


def test_strict_json_refuses_nothing_and_writes_no_nan() -> None:
    assert strict_json({"a": float("nan"), "b": [float("-inf")]}) == '{"a":null,"b":[null]}'
    assert json.loads(strict_json({"a": 1}, indent=2)) == {"a": 1}


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text, é", "plain text, é"),
        ("two\nlines", "two\\nlines"),
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
        ("cr\rtab\t", "cr\\rtab\\t"),
        ("c1\x9bcontrol", "c1\\x9bcontrol"),
        ("bidi\u202eevil", "bidi\\u202eevil"),
        ("line\u2028sep", "line\\u2028sep"),
    ],
)
def test_printable_escapes_control_characters(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert "\n" not in printable(raw) and "\x1b" not in printable(raw)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_what_was_written_reads_back_whole_big_integers_included(value: object) -> None:
    parsed = read_json(encode_json({"v": value}))
    assert _typed(parsed.value) == _typed({"v": _nulled(value)})  # 2**70 stays no float
    assert parsed.changed == {}  # encode_json wrote null for NaN: nothing left to change


@pytest.mark.parametrize(
    ("content", "value", "changed"),
    [
        (b"[1180591620717411303424, -0, 1.5]", [2**70, 0, 1.5], {}),
        (
            b'{"a": NaN, "b": {"c": [Infinity, 1e309]}}',
            {"a": None, "b": {"c": [None, None]}},
            {"a": 1, "b": 2},
        ),
        (b'["\\udc80", "ok"]', ["\ufffd", "ok"], {"": 1}),
        (b'{"k\\ud800": "\xff\xff"}', {"k\ufffd": "\ufffd\ufffd"}, {"k\ufffd": 2}),
    ],
)
def test_read_json_changes_by_its_rules_and_counts(
    content: bytes, value: object, changed: dict[str, int]
) -> None:
    parsed = read_json(content)
    assert (parsed.value, parsed.changed) == (value, changed)


@pytest.mark.parametrize("levels", [65, 490, 1000, 100_000])
def test_read_json_refuses_past_the_bound_without_recursion_errors(levels: int) -> None:
    with pytest.raises(JsonTooDeep):
        read_json(b"[" * levels + b"]" * levels)
    with pytest.raises(JsonTooDeep):  # the lenient road too
        read_json(b'[NaN, "\xff", ' + b"[" * levels + b"]" * levels + b"]")
    assert read_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH).changed == {}


@pytest.mark.parametrize("content", [b"", b"[1", b"{} {}", b"\xef\xbb\xbf[]", b"[1,]", b"'a'"])
def test_read_json_refuses_what_is_not_json(content: bytes) -> None:
    with pytest.raises(NotJson):
        read_json(content)


nested = st.recursive(
    st.integers(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=2), children, max_size=3)
    ),
    max_leaves=30,
)


@given(nested, st.integers(min_value=1, max_value=8))
def test_too_deep_agrees_with_a_plain_recursive_depth(value: object, limit: int) -> None:
    assert (too_deep(value, limit=limit) is None) == (_depth(value) <= limit)


def _typed(value: object) -> object:
    """``value`` with each number paired with its type: 2**70 and float(2**70) differ."""
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    return (type(value).__name__, value)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _refuse(name: str) -> None:
    raise AssertionError(f"non-strict JSON constant {name}")


def _nulled(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_nulled(v) for v in value]
    if isinstance(value, dict):
        return {k: _nulled(v) for k, v in value.items()}
    return value


def _has_big_int(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -(2**63) <= value < 2**64
    if isinstance(value, list):
        return any(_has_big_int(v) for v in value)
    if isinstance(value, dict):
        return any(_has_big_int(v) for v in value.values())
    return False


def _has_float(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    return False
