"""batches.one_row: the same table as pyarrow's own conversion, without importing pandas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_export.batches import one_row
from batch_export.sync.layout import JOBS_SCHEMA

SCHEMA = pa.schema(
    [
        ("text", pa.string()),
        ("big", pa.int64()),
        ("small", pa.int32()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("tags", pa.list_(pa.string())),
    ],
    metadata={b"k": b"v"},
)

_texts = st.text(st.characters(blacklist_categories=["Cs"]))
_moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
_rows = st.fixed_dictionaries(
    {
        "text": st.none() | _texts,
        "big": st.none() | st.integers(-(2**63), 2**63 - 1),
        "small": st.none() | st.integers(-(2**31), 2**31 - 1),
        "at": st.none() | _moments,
        "tags": st.none() | st.lists(_texts, max_size=5),
    }
)


@settings(deadline=None)
@given(_rows)
def test_one_row_is_what_pyarrow_makes(row: dict[str, Any]) -> None:
    made = one_row(SCHEMA, row)
    made.validate(full=True)
    assert made.equals(pa.Table.from_pylist([row], schema=SCHEMA), check_metadata=True)


def test_one_row_of_the_jobs_schema() -> None:
    row = dict.fromkeys(JOBS_SCHEMA.names)
    row |= {"job_id": "j1", "rows": 3, "schema_version": 1, "invalid_urls": ["ftp://x"]}
    row["created_at"] = datetime(2026, 5, 26, 23, 30, tzinfo=UTC) - timedelta(microseconds=1)
    table = one_row(JOBS_SCHEMA, row)
    assert table.schema.equals(JOBS_SCHEMA, check_metadata=True)
    assert table.to_pylist() == [row]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("big", 2**63),
        ("small", -(2**31) - 1),
        ("big", True),
        ("big", "3"),
        ("text", "\ud800"),
        ("text", 5),
        ("tags", [None]),
        ("at", datetime(2026, 5, 26)),
    ],
)
def test_a_value_its_column_cannot_hold_is_a_value_error(column: str, value: object) -> None:
    row: dict[str, object] = dict.fromkeys(SCHEMA.names) | {column: value}
    with pytest.raises(ValueError, match=repr(column)):
        one_row(SCHEMA, row)
