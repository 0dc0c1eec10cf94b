"""flatten/scrub.py: the key hidden in Arrow batches exactly as in Python values.

Two engines apply one rule (RE2 over Arrow columns, after a numpy first look; Python's ``re``
over the job's fields and in errors): a property test holds them to the same text and the
same count, for runs of the key cut anywhere, put anywhere in a value, across values, in
sliced batches, in lists; a key made of common words (whose 4-character pieces are in any
text) takes the slow road to the same answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_export.fetch.secret import HIDDEN, Secret, key_patterns
from batch_export.flatten.scrub import BatchScrub
from batch_export.schema import ITEM_SCHEMA

KEYS = ["gk_3Zr8QwXy1LmN0pTv5sHj2KdF9bGcA7eU", "canary-7f3a9c1e-never-print-me", "the-main-street"]


@st.composite
def texts(draw: st.DrawFn, key: str) -> str | None:
    """A value: ordinary text with pieces of the key (any cut, maybe 8 or more) put in."""
    if draw(st.booleans()) and draw(st.booleans()):
        return None
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        parts.append(draw(st.text(alphabet="abcdefghij -_/é\n0123", max_size=12)))
        start = draw(st.integers(0, len(key) - 1))
        parts.append(key[start : draw(st.integers(start, len(key)))])
    return "".join(parts)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), key=st.sampled_from(KEYS), offset=st.integers(0, 3))
def test_batches_are_scrubbed_as_python_values_are(data: Any, key: str, offset: int) -> None:
    rows = [
        {
            "input_index": n,
            "url": data.draw(texts(key)),
            "markdown": data.draw(texts(key)),
            "extra": data.draw(texts(key)),
            "links": data.draw(st.none() | st.lists(texts(key), max_size=3)),
        }
        for n in range(data.draw(st.integers(1, 6)) + offset)
    ]
    batch = pa.RecordBatch.from_pylist(rows, schema=ITEM_SCHEMA).slice(offset)
    scrub = BatchScrub(key_patterns(key))
    out = scrub(batch)
    out.validate(full=True)
    expected, count = Secret(key).hide(batch.to_pylist())
    assert out.to_pylist() == expected
    assert scrub.hidden == count


def test_a_clean_batch_is_the_same_batch() -> None:
    batch = pa.RecordBatch.from_pylist(
        [{"input_index": 0, "markdown": "nothing to see " * 100}], schema=ITEM_SCHEMA
    )
    scrub = BatchScrub(key_patterns(KEYS[0]))
    assert scrub(batch) is batch and scrub.hidden == 0


def test_the_job_id_column_is_left_alone() -> None:
    key = KEYS[0]
    batch = pa.RecordBatch.from_pylist([{"job_id": key, "url": key}], schema=ITEM_SCHEMA)
    out = BatchScrub(key_patterns(key))(batch)
    assert out.column("job_id")[0].as_py() == key and out.column("url")[0].as_py() == HIDDEN


def batches_of(texts: list[str]) -> Iterator[pa.RecordBatch]:
    for n, text in enumerate(texts):
        yield pa.RecordBatch.from_pylist([{"input_index": n, "url": text}], schema=ITEM_SCHEMA)


@pytest.mark.parametrize("count", [0, 1, 2, 7])
def test_over_keeps_the_order_and_counts_every_batch(count: int) -> None:
    key = KEYS[0]
    scrub = BatchScrub(key_patterns(key))
    urls = [f"u{n}" if n % 2 else f"u{n} {key}" for n in range(count)]
    out = [batch.column("url")[0].as_py() for batch in scrub.over(batches_of(urls))]
    assert out == [Secret(key).hide(url)[0] for url in urls]
    assert scrub.hidden == (count + 1) // 2


def test_over_passes_an_error_of_the_source_on() -> None:
    def failing() -> Iterator[pa.RecordBatch]:
        yield from batches_of(["a", "b"])
        raise ValueError("page 3 is broken")

    scrub = BatchScrub(key_patterns(KEYS[0]))
    with pytest.raises(ValueError, match="page 3"):
        list(scrub.over(failing()))


def test_without_patterns_nothing_is_touched() -> None:
    scrub = BatchScrub(key_patterns("short"))
    batches = list(batches_of(["short short", "x"]))
    assert list(scrub.over(batches)) == batches and scrub.hidden == 0
