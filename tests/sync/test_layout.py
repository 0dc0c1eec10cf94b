"""Paths, timestamps, the jobs row and the marker: the parts of the layout readers rely on."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from batch_export.errors import ResponseShapeError
from batch_export.job import JobStatus
from batch_export.schema import SCHEMA_VERSION
from batch_export.sync import layout
from batch_export.sync.layout import (
    JOBS_SCHEMA,
    LAYOUT_VERSION,
    Marker,
    fingerprint_token,
    items_path,
    job_id_of,
    job_row,
    jobs_path,
    marker_path,
    parse_timestamp,
    partition_date,
    token_of,
)


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2026-05-26T10:30:00Z", "2026-05-26"),
        ("2026-05-26T23:59:59.999Z", "2026-05-26"),
        ("2026-05-26T23:30:00-02:00", "2026-05-27"),
        ("2026-05-27T01:00:00+03:00", "2026-05-26"),
        ("2026-05-26T10:30:00", "2026-05-26"),  # no offset: UTC, as the API documents
    ],
)
def test_partition_date_is_the_utc_day(text: str, day: str) -> None:
    moment = parse_timestamp(text, name="created_at")
    assert moment is not None and moment.tzinfo is not None
    assert partition_date(moment) == day


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01T00:00:00Z", ""])
def test_an_unreadable_timestamp_names_the_field_and_the_job(text: str) -> None:
    with pytest.raises(ResponseShapeError) as caught:
        parse_timestamp(text, name="completed_at", job_id="j9")
    assert str(caught.value) == (
        f"Expected `completed_at` to be an ISO 8601 timestamp for job j9, got {text!r}."
    )


def test_paths_of_a_job() -> None:
    assert items_path("j-1", "2026-05-26") == "items/date=2026-05-26/j-1.parquet"
    assert jobs_path("j-1", "2026-05-26") == "jobs/date=2026-05-26/j-1.parquet"
    assert marker_path("j-1", "00ff") == "_markers/j-1.00ff.json"
    paths = (items_path("j-1", "2026-05-26"), jobs_path("j-1", "x"), marker_path("j-1", "00ff"))
    assert [job_id_of(path) for path in paths] == ["j-1"] * 3
    assert token_of(marker_path("j-1", "00ff")) == "00ff"


def test_the_token_changes_with_every_recorded_field_and_nothing_else() -> None:
    base = {"status": "completed", "completed_urls": 3, "completed_at": "2026-05-26T10:31:00Z"}
    tokens = {fingerprint_token(base)}
    for name, value in [("status", "failed"), ("completed_urls", 4), ("completed_at", None)]:
        tokens.add(fingerprint_token({**base, name: value}))
    assert len(tokens) == 4
    assert fingerprint_token(dict(reversed(base.items()))) == fingerprint_token(base)
    assert all(len(token) == 16 and int(token, 16) >= 0 for token in tokens)


@pytest.mark.parametrize("version", ["SCHEMA_VERSION", "LAYOUT_VERSION"])
def test_the_token_changes_with_the_schema_and_layout_versions(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = fingerprint_token({"status": "completed"})
    monkeypatch.setattr(layout, version, getattr(layout, version) + 1)
    assert fingerprint_token({"status": "completed"}) != before


def test_job_row_holds_every_figure_of_the_job() -> None:
    job = JobStatus(
        job_id="j1",
        status="completed",
        total_urls=3,
        completed_urls=2,
        failed_urls=1,
        cancelled_urls=0,
        pending_urls=0,
        invalid_urls=("ftp://x",),
        batch_config={"formats": ["markdown"], "render_js": False},
        tokens_charged_total=2,
        tokens_reserved=0,
        created_at="2026-05-26T10:30:00Z",
        completed_at="2026-05-26T10:31:00Z",
        extra={"region": "eu"},
    )
    exported = datetime(2026, 5, 27, 8, tzinfo=UTC)
    table = job_row(job, rows=3, exported_at=exported, tool_version="9.9.9")
    assert table.schema.equals(JOBS_SCHEMA, check_metadata=True)
    assert table.to_pylist() == [
        {
            "job_id": "j1",
            "status": "completed",
            "total_urls": 3,
            "completed_urls": 2,
            "failed_urls": 1,
            "cancelled_urls": 0,
            "pending_urls": 0,
            "invalid_urls": ["ftp://x"],
            "tokens_charged_total": 2,
            "tokens_reserved": 0,
            "config": '{"formats":["markdown"],"render_js":false}',
            "created_at": datetime(2026, 5, 26, 10, 30, tzinfo=UTC),
            "completed_at": datetime(2026, 5, 26, 10, 31, tzinfo=UTC),
            "exported_at": exported,
            "rows": 3,
            "tool_version": "9.9.9",
            "schema_version": SCHEMA_VERSION,
            "layout_version": LAYOUT_VERSION,
            "extra": '{"region":"eu"}',
        }
    ]


def test_job_row_keeps_nulls_null() -> None:
    job = JobStatus(job_id="j1", status="cancelled")
    row = job_row(job, rows=0, exported_at=datetime.now(UTC), tool_version="1").to_pylist()[0]
    assert row["config"] is None and row["created_at"] is None and row["extra"] is None
    assert row["invalid_urls"] == []
    assert JOBS_SCHEMA.field("created_at").type == pa.timestamp("us", tz="UTC")


def _marker(**fields: object) -> Marker:
    base: dict[str, object] = {
        "job_id": "j1",
        "fingerprint": {"status": "completed", "completed_urls": 3, "completed_at": None},
        "token": "0123456789abcdef",
        "rows": 3,
        "items_path": "items/date=2026-05-26/j1.parquet",
        "jobs_path": "jobs/date=2026-05-26/j1.parquet",
        "exported_at": "2026-05-27T00:00:00+00:00",
        "tool_version": "0.1.0",
    }
    return Marker(**{**base, **fields})  # type: ignore[arg-type]


def test_marker_round_trips() -> None:
    marker = _marker()
    assert Marker.from_json(marker.to_json()) == marker
    counted = _marker(counts={"failure_codes": {"TIMEOUT": {"items": 2}}, "api_key_hidden": 1})
    assert Marker.from_json(counted.to_json()) == counted != marker


def test_a_marker_of_an_earlier_version_reads_without_counts() -> None:
    earlier = json.loads(_marker().to_json())
    del earlier["counts"]
    assert Marker.from_json(json.dumps(earlier).encode()).counts == {}
    with pytest.raises(ValueError, match="not a sync marker: wrong field types"):
        Marker.from_json(json.dumps({**earlier, "counts": [1]}).encode())


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[]", b'{"job_id": "j1"}', b'{"job_id": "j1", "surprise": 1}'],
)
def test_a_damaged_marker_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a sync marker"):
        Marker.from_json(data)


def test_the_jobs_row_holds_strict_json_whatever_the_job_holds() -> None:
    job = JobStatus(
        job_id="j1",
        status="completed",
        batch_config={"ratio": float("nan"), "limits": [float("inf"), 1.5]},
        extra={"odd": float("-inf")},
    )
    row = job_row(job, rows=0, exported_at=datetime(2026, 5, 27, tzinfo=UTC), tool_version="x")
    assert row.column("config")[0].as_py() == '{"limits":[null,1.5],"ratio":null}'
    assert row.column("extra")[0].as_py() == '{"odd":null}'


def test_counters_past_64_bits_are_a_shape_error_naming_the_job() -> None:
    job = JobStatus(job_id="j1", status="completed", completed_urls=2**64)
    with pytest.raises(ResponseShapeError) as caught:
        job_row(job, rows=0, exported_at=datetime(2026, 5, 27, tzinfo=UTC), tool_version="x")
    assert str(caught.value).startswith(
        "The status of job j1 holds a value the jobs table cannot store ("
    )
    assert str(caught.value).endswith("expected counters and tokens that fit 64 bits.")


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"])
def test_a_timestamp_that_utc_cannot_hold_is_unreadable(text: str) -> None:
    with pytest.raises(ResponseShapeError, match="Expected `created_at` to be an ISO 8601"):
        parse_timestamp(text, name="created_at", job_id="j9")


def test_a_marker_is_strict_json() -> None:
    marker = Marker(
        job_id="j1",
        fingerprint={"status": float("nan")},
        token="00",
        rows=0,
        items_path="i",
        jobs_path="j",
        exported_at="t",
        tool_version="x",
    )
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        marker.to_json()
