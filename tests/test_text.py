"""The package's encodings of untrusted text: strict JSON, and lines safe for a terminal."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_export import text
from batch_export.text import encode_json, printable, strict_json

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
