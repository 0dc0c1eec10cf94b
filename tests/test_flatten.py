from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_export.errors import ResponseShapeError
from batch_export.flatten.items import flatten_items
from batch_export.schema import COLUMN_NAMES, ITEM_SCHEMA
from tests.scripted import item


def test_one_row_per_item_in_schema_order() -> None:
    batch = flatten_items("j1", [item(0), item(1)], page=1)
    assert batch.schema == ITEM_SCHEMA
    assert batch.schema.names == list(COLUMN_NAMES)
    rows = batch.to_pylist()
    assert [row["input_index"] for row in rows] == [0, 1]
    assert rows[0] == {
        "job_id": "j1",
        "input_index": 0,
        "url": "https://example.com/0",
        "status": "completed",
        "error_code": None,
        "error_message": None,
        "markdown": "# Page 0",
        "html": None,
        "links": None,
        "http_status": 200,
        "duration_ms": 100,
        "retry_count": 0,
        "tokens_charged": 1,
        "extra": None,
    }


def test_failed_item_without_data_or_metadata_becomes_nulls() -> None:
    failed = {
        "input_index": 3,
        "url": "https://x.test/",
        "status": "failed",
        "error_code": "dns_resolution_failed",
        "error_message": "no such host",
    }
    row = flatten_items("j1", [failed]).to_pylist()[0]
    assert row["error_code"] == "dns_resolution_failed"
    assert row["markdown"] is None and row["links"] is None and row["http_status"] is None


def test_unknown_fields_go_to_extra_at_every_level() -> None:
    odd = item(0, region="eu")
    odd["data"]["screenshot"] = "b64..."
    odd["metadata"]["cache"] = {"hit": True}
    extra = flatten_items("j1", [odd]).column("extra")[0].as_py()
    assert json.loads(extra) == {
        "region": "eu",
        "data": {"screenshot": "b64..."},
        "metadata": {"cache": {"hit": True}},
    }


def test_links_stay_a_list() -> None:
    linked = item(0)
    linked["data"]["links"] = ["https://a.test/", "https://b.test/"]
    assert flatten_items("j1", [linked]).column("links")[0].as_py() == [
        "https://a.test/",
        "https://b.test/",
    ]


def test_empty_page_is_an_empty_batch() -> None:
    batch = flatten_items("j1", [])
    assert batch.num_rows == 0
    assert batch.schema == ITEM_SCHEMA


def _with(section: str, name: str, value: Any) -> dict[str, Any]:
    bad = item(7)
    if section:
        bad[section][name] = value
    else:
        bad[name] = value
    return bad


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            _with("metadata", "http_status", "OK"),
            "Expected `metadata.http_status` to be an integer that fits int32 in item "
            "input_index 7 (url 'https://example.com/7') on page 2 of job j1, got 'OK'.",
        ),
        (
            _with("data", "links", "https://a.test/"),
            "Expected `data.links` to be a list of strings in item input_index 7 "
            "(url 'https://example.com/7') on page 2 of job j1, got 'https://a.test/'.",
        ),
        (
            _with("", "url", 42),
            "Expected `url` to be a string in item input_index 7 (url 42) on page 2 of job j1, "
            "got 42.",
        ),
        (
            _with("", "data", "oops"),
            "Expected `data` to be an object in item input_index 7 "
            "(url 'https://example.com/7') on page 2 of job j1, got 'oops'.",
        ),
        (
            _with("metadata", "retry_count", 2**40),
            "Expected `metadata.retry_count` to be an integer that fits int32 in item "
            "input_index 7 (url 'https://example.com/7') on page 2 of job j1, got 1099511627776.",
        ),
    ],
)
def test_wrong_types_are_clear_errors(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ResponseShapeError) as caught:
        flatten_items("j1", [item(6), bad], page=2)
    assert str(caught.value) == message


text = st.none() | st.text()
integer = st.none() | st.integers(min_value=0, max_value=2**31 - 1)
api_items = st.lists(
    st.fixed_dictionaries(
        {
            "url": text,
            "status": st.sampled_from(["completed", "failed", "cancelled"]),
            "error_code": text,
            "error_message": text,
            "data": st.none()
            | st.fixed_dictionaries(
                {"markdown": text, "html": text, "links": st.none() | st.lists(st.text())}
            ),
            "metadata": st.none()
            | st.fixed_dictionaries(
                {
                    "http_status": integer,
                    "duration_ms": integer,
                    "retry_count": integer,
                    "tokens_charged": integer,
                }
            ),
        },
        optional={"surprise": st.text() | st.integers()},
    ),
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(api_items)
def test_every_value_survives_flattening(items: list[dict[str, Any]]) -> None:
    items = [{**it, "input_index": i} for i, it in enumerate(items)]
    rows = flatten_items("j1", items).to_pylist()
    assert len(rows) == len(items)
    for row, it in zip(rows, items, strict=True):
        data, metadata = it["data"] or {}, it["metadata"] or {}
        assert row["url"] == it["url"]
        assert row["markdown"] == data.get("markdown")
        assert row["links"] == data.get("links")
        assert row["duration_ms"] == metadata.get("duration_ms")
        expected_extra = {"surprise": it["surprise"]} if "surprise" in it else None
        assert (json.loads(row["extra"]) if row["extra"] else None) == expected_extra
    assert pa.RecordBatch.from_pylist(rows, schema=ITEM_SCHEMA).num_rows == len(items)
