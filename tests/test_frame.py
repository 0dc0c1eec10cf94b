"""The notebook API end to end: the emulator serves jobs, frames come back typed and whole."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from batch_export.errors import InvalidInputError, JobNotFinishedError
from batch_export.export import export
from batch_export.frame import iter_batches, read_export, read_job, read_jobs, summarize
from batch_export.pipeline import JOINED_ROWS
from batch_export.schema import COLUMN_NAMES, ITEM_SCHEMA
from batch_export.testing import Emulator, generate_job
from tests.conftest import CANARY_KEY, SAMPLE_DATA, SMALL_JOB
from tests.test_export import expected_rows

SAMPLE_JOBS = {
    json.loads(path.read_text())["job_id"]: json.loads(path.read_text())
    for path in sorted(SAMPLE_DATA.glob("*.json"))
}

# The documented dtypes of every frame (README "In a notebook").
DTYPES = {
    "job_id": "string[pyarrow]",
    "input_index": "int64[pyarrow]",
    "url": "string[pyarrow]",
    "status": "string[pyarrow]",
    "error_code": "string[pyarrow]",
    "error_message": "string[pyarrow]",
    "markdown": "large_string[pyarrow]",
    "html": "large_string[pyarrow]",
    "links": "list<item: string>[pyarrow]",
    "http_status": "int32[pyarrow]",
    "duration_ms": "int64[pyarrow]",
    "retry_count": "int32[pyarrow]",
    "tokens_charged": "int64[pyarrow]",
    "extra": "string[pyarrow]",
}


def tricky_job() -> dict[str, Any]:
    """A job with every value CSV and JSONL must carry exactly: "" versus null, [] versus
    null, newlines, quotes, commas, non-ASCII, a 2 MB page and a field the schema lacks."""
    doc = generate_job(job_id="tricky", items=12, links_per_item=3, failure_rate=0.25, seed=11)
    first, second, third = [it for it in doc["results"] if it["status"] == "completed"][:3]
    first["data"].update(markdown="", links=[])
    second["data"].update(markdown='line 1\nline "2", ü ☃\r\n=1+1', links=None)
    second["region"] = {"name": "eu"}
    third["data"]["markdown"] = "x" * (2 << 20)
    third["metadata"]["http_status"] = None
    return doc


def connect(emulator: Emulator) -> dict[str, Any]:
    return {"base_url": emulator.base_url, "api_key": CANARY_KEY, "progress": False}


@pytest.mark.parametrize("job_id", sorted(SAMPLE_JOBS))
def test_read_job_is_one_typed_row_per_item(sample_api: Emulator, job_id: str) -> None:
    df = read_job(job_id, **connect(sample_api))
    assert {name: str(dtype) for name, dtype in df.dtypes.items()} == DTYPES
    assert list(df.columns) == list(COLUMN_NAMES)
    doc = SAMPLE_JOBS[job_id]
    assert len(df) == len(doc["results"])
    rows = pa.Table.from_pandas(df, schema=ITEM_SCHEMA, preserve_index=False).to_pylist()
    assert rows == expected_rows(doc)
    assert df.attrs["job"]["status"] == doc["status"]
    assert df.attrs["job"]["tokens_charged_total"] == doc["token_summary"]["tokens_charged_total"]
    assert df.attrs["job"]["invalid_urls"] == doc["invalid_urls"]
    assert df.attrs["summary"]["by_status"] == dict(Counter(it["status"] for it in doc["results"]))


def test_nulls_stay_nulls_and_types_stay_types(sample_api: Emulator) -> None:
    df = read_job(SMALL_JOB, **connect(sample_api))
    failed = df[df["status"] == "failed"]
    assert failed["http_status"].dtype == pd.ArrowDtype(pa.int32())
    assert failed["markdown"].isna().all()
    assert df["links"].map(lambda links: links is not pd.NA and len(links) == 0).sum() == 4


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
@pytest.mark.parametrize("source", ["sample", "tricky"])
def test_read_export_equals_read_job(tmp_path: Path, fmt: str, source: str) -> None:
    doc = SAMPLE_JOBS[SMALL_JOB] if source == "sample" else tricky_job()
    with Emulator(jobs=[doc], api_key=CANARY_KEY) as emulator:
        expected = read_job(doc["job_id"], **connect(emulator))
        export(doc["job_id"], tmp_path / f"out.{fmt}", base_url=emulator.base_url,
               api_key=CANARY_KEY)  # fmt: skip
    got = read_export(tmp_path / f"out.{fmt}")
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_read_jobs_is_job_after_job_with_each_jobs_figures(sample_api: Emulator) -> None:
    # The finished sample jobs, the largest first: the frame keeps the order asked for.
    ids = sorted(
        (job_id for job_id, doc in SAMPLE_JOBS.items() if "emulator" not in doc),
        key=lambda job_id: -len(SAMPLE_JOBS[job_id]["results"]),
    )
    df = read_jobs(ids, **connect(sample_api))
    assert len(ids) == 2 and df["job_id"].drop_duplicates().tolist() == ids
    assert len(df) == sum(len(SAMPLE_JOBS[job_id]["results"]) for job_id in ids)
    assert df.index.tolist() == list(range(len(df)))
    assert list(df.attrs["jobs"]) == list(df.attrs["summaries"]) == ids
    for job_id in ids:
        assert df.attrs["summaries"][job_id]["rows"] == len(SAMPLE_JOBS[job_id]["results"])


def test_read_jobs_refuses_a_job_twice() -> None:
    with pytest.raises(InvalidInputError, match=r"^Job ids given more than once: a; "):
        read_jobs(["a", "b", "a"], base_url="http://127.0.0.1:9", api_key="k")


def test_iter_batches_yields_pages_joined_in_order(sample_api: Emulator) -> None:
    job_id = max(SAMPLE_JOBS, key=lambda job_id: len(SAMPLE_JOBS[job_id]["results"]))
    batches = list(iter_batches(job_id, page_size=10, **connect(sample_api)))
    total = len(SAMPLE_JOBS[job_id]["results"])
    assert sum(batch.num_rows for batch in batches) == total
    assert all(batch.num_rows <= JOINED_ROWS + 10 for batch in batches)
    assert all(batch.schema == ITEM_SCHEMA for batch in batches)
    indexes = [i for batch in batches for i in batch.column("input_index").to_pylist()]
    assert indexes == sorted(indexes)


def test_iter_batches_checks_its_arguments_before_iterating() -> None:
    with pytest.raises(InvalidInputError, match="not a plain identifier"):
        iter_batches("../jobs", base_url="http://127.0.0.1:9", api_key="k")


def test_an_unfinished_job_is_refused_without_wait(tmp_path: Path) -> None:
    doc = generate_job(job_id="slow", items=5, processing_polls=3)
    with Emulator(jobs=[doc], api_key=CANARY_KEY) as emulator:
        with pytest.raises(JobNotFinishedError):
            read_job("slow", wait=False, **connect(emulator))


def test_attrs_survive_filtering_copying_and_parquet(sample_api: Emulator, tmp_path: Path) -> None:
    df = read_job(SMALL_JOB, **connect(sample_api))
    for derived in (df[df["status"] == "failed"], df.head(3), df.copy(), df.sort_values("url")):
        assert derived.attrs == df.attrs
    failed = df[df["status"] == "failed"]
    failed.to_parquet(tmp_path / "mine.parquet")
    back = read_export(tmp_path / "mine.parquet")
    pd.testing.assert_frame_equal(back, failed.reset_index(drop=True))
    assert back.attrs == df.attrs
    other = df.assign(job_id="other")
    other.attrs = {"job": {"job_id": "other"}}
    assert pd.concat([df, other]).attrs == {}


def test_summarize_a_frame_gives_the_exports_summary(sample_api: Emulator, tmp_path: Path) -> None:
    df = read_job(SMALL_JOB, **connect(sample_api))
    exported = export(SMALL_JOB, tmp_path / "o.jsonl", base_url=sample_api.base_url,
                      api_key=CANARY_KEY).to_dict()  # fmt: skip
    summary = summarize(df).to_dict()
    for name in ("requests", "output"):
        del exported[name], summary[name]
    assert summary == exported
    from_file = summarize(tmp_path / "o.jsonl")
    assert from_file.job_status is None and from_file.output == {
        "path": str(tmp_path / "o.jsonl"),
        "format": "jsonl",
    }
    assert (from_file.failure_codes, from_file.duration_histogram) == (
        exported["failure_codes"],
        exported["duration_histogram"],
    )


def test_summarize_filtered_rows_keeps_the_jobs_figures(sample_api: Emulator) -> None:
    df = read_job(SMALL_JOB, **connect(sample_api))
    failed = df[df["status"] == "failed"][["job_id", "url", "status", "error_code",
                                           "error_message", "http_status", "duration_ms",
                                           "retry_count", "tokens_charged"]]  # fmt: skip
    summary = summarize(failed)
    assert summary.rows == summary.failed_items == 5
    assert summary.job_status == "completed"
    assert summary.tokens["charged_total"] == df.attrs["job"]["tokens_charged_total"]
    assert summary.tokens["charged_items"] == 0


def test_summarize_names_the_columns_it_needs() -> None:
    frame = pd.DataFrame({"job_id": ["j1"], "status": ["failed"]})
    with pytest.raises(InvalidInputError) as caught:
        summarize(frame)
    assert str(caught.value).startswith(
        "Cannot summarize a frame without the column(s) url, error_code, error_message, "
        "http_status, duration_ms, retry_count, tokens_charged:"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "There is no export file at"),
        ("other.csv", "a,b\n1,2\n", "is not an export of batch-export's item schema: expected"),
        ("bad.jsonl", '{"job_id": "j", "surprise": 1}\n', "is not a jsonl export"),
        ("links.csv", ",".join(COLUMN_NAMES) + '\n"j",0,,,,,,,"not json",,,,,\n',
         "is not a csv export"),
        ("links2.csv", ",".join(COLUMN_NAMES) + '\n"j",0,,,,,,,"[1, 2]",,,,,\n',
         "is not a csv export"),
        ("out.txt", "", "Cannot tell the output format from"),
    ],
)  # fmt: skip
def test_read_export_explains_what_is_wrong(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(InvalidInputError, match=message):
        read_export(tmp_path / name)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_an_empty_job_reads_back_empty(tmp_path: Path, fmt: str) -> None:
    doc = generate_job(job_id="none", items=0)
    with Emulator(jobs=[doc], api_key=CANARY_KEY) as emulator:
        expected = read_job("none", **connect(emulator))
        export("none", tmp_path / f"o.{fmt}", base_url=emulator.base_url, api_key=CANARY_KEY)
    assert len(expected) == 0
    pd.testing.assert_frame_equal(read_export(tmp_path / f"o.{fmt}"), expected)


@pytest.mark.parametrize(("progress", "shown"), [(False, False), (True, True)])
def test_progress_false_switches_the_bars_off(
    sample_api: Emulator, capfd: pytest.CaptureFixture[str], progress: bool, shown: bool
) -> None:
    read_job(SMALL_JOB, base_url=sample_api.base_url, api_key=CANARY_KEY, progress=progress)
    out, err = capfd.readouterr()
    assert out == ""
    assert ("exporting" in err) is shown
