"""End to end on local disk: the emulated 200-job account synced and read back by DuckDB,
pandas and pyarrow; then, on a small account, reruns, re-exports, windows, limits, repairs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from batch_export.errors import OutputError
from batch_export.export import Connection
from batch_export.schema import ITEM_SCHEMA
from batch_export.sync import sync
from batch_export.testing import Emulator, generate_job
from tests.conftest import CANARY_KEY
from tests.sync.conftest import Events, Synced, account_docs, expected_rows, recorder, small_docs
from tests.sync.readers import connect, items_table, jobs_table, reader_view

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

EXPECTED = expected_rows(account_docs())
SMALL = expected_rows(small_docs())


def utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def holds_item_schema(schema: pa.Schema) -> bool:
    """ITEM_SCHEMA's names, types and metadata; Parquet names a list's child `element`."""
    metadata = schema.metadata or {}
    if schema.names != ITEM_SCHEMA.names or any(
        metadata.get(key) != value for key, value in ITEM_SCHEMA.metadata.items()
    ):
        return False
    return all(
        got.type == want.type
        or (pa.types.is_list(got.type) and got.type.value_type == want.type.value_type)
        for got, want in zip(schema, ITEM_SCHEMA, strict=True)
    )


# --- the 200-job account ----------------------------------------------------------------


def test_a_full_sync_holds_every_finished_job_once(reference: Synced) -> None:
    report = reference.report
    assert report.exit_code == 0 and report.failed == []
    assert {job["job_id"] for job in report.exported} == set(EXPECTED)
    assert report.skipped == {"not_finished": 3}
    assert report.rows == sum(EXPECTED.values())
    con = connect()
    assert reader_view(str(reference.root), EXPECTED, con).committed == EXPECTED
    counted = con.sql(
        f"SELECT job_id, count(*) FROM read_parquet('{reference.root}/items/*/*.parquet', "
        "hive_partitioning = true) GROUP BY job_id"
    ).fetchall()
    assert dict(counted) == EXPECTED
    names = [name for name, _ in reference.events]
    assert names[0] == "run_started" and names[-1] == "run_finished"
    assert names.count("job_started") == names.count("job_exported") == len(EXPECTED)


def test_the_api_key_is_nowhere_in_the_dataset(reference: Synced) -> None:
    files = [path for path in reference.root.rglob("*") if path.is_file()]
    assert len(files) == 3 * len(EXPECTED) + 2  # and _layout.json, _watermark.json
    assert not [path for path in files if CANARY_KEY.encode() in path.read_bytes()]


def test_each_item_file_holds_the_item_schema_in_its_day(reference: Synced) -> None:
    days = {doc["job_id"]: doc["created_at"][:10] for doc in account_docs()}
    for file in sorted(reference.root.glob("items/date=*/*.parquet"))[:20]:
        schema = pq.read_schema(file)
        assert holds_item_schema(schema)
        # Self-describing, as an export is: the job's header is in the file's metadata.
        header = json.loads(schema.metadata[b"batch_export.job"])
        assert header["job_id"] == file.stem and header["status"] in {
            "completed",
            "failed",
            "cancelled",
        }
        assert file.parent.name == f"date={days[file.stem]}"
        row = pq.read_table(reference.root / "jobs" / file.parent.name / file.name)
        assert row.column("rows")[0].as_py() == pq.read_metadata(file).num_rows


def test_pandas_and_pyarrow_read_the_dataset_as_it_is(reference: Synced) -> None:
    root = reference.root
    frame = pd.read_parquet(root / "items")
    assert frame.groupby("job_id").size().to_dict() == EXPECTED
    assert set(frame["date"].astype(str)) == {p.name[5:] for p in root.glob("items/date=*")}
    table = ds.dataset(root / "items", partitioning="hive").to_table()
    assert table.num_rows == sum(EXPECTED.values())
    assert table.schema.field("job_id").type == pa.string()
    jobs = pd.read_parquet(root / "jobs")
    assert dict(zip(jobs["job_id"], jobs["rows"], strict=True)) == EXPECTED


def test_a_second_sync_exports_nothing_and_says_so(reference: Synced) -> None:
    before = {p: p.stat().st_mtime_ns for p in reference.root.rglob("*") if p.is_file()}
    events: Events = []
    with Emulator(jobs=account_docs(), api_key=CANARY_KEY) as emulator:
        connection = Connection(base_url=emulator.base_url, api_key=CANARY_KEY)
        again = sync(reference.root, connection=connection, on_event=recorder(events), full=True)
        status_requests = [r for r in emulator.requests if r.path != "/v1/batch/jobs"]
    assert again.exported == [] and again.exit_code == 0
    assert again.skipped == {"unchanged": len(EXPECTED), "not_finished": 3}
    assert again.to_text() == (
        f"Nothing to export: {reference.root} is up to date ({len(EXPECTED)} unchanged, "
        "3 not finished).\nListed 200 jobs in 2 requests.\n"
    )
    assert {p: p.stat().st_mtime_ns for p in reference.root.rglob("*") if p.is_file()} == before
    assert [name for name, _ in events].count("job_started") == 0
    assert status_requests == []  # the listing alone tells what is new


def test_four_workers_give_the_same_dataset_as_one(reference: Synced, tmp_path: Path) -> None:
    with Emulator(jobs=account_docs(), api_key=CANARY_KEY) as emulator:
        connection = Connection(base_url=emulator.base_url, api_key=CANARY_KEY, max_retries=0)
        report = sync(tmp_path, connection=connection, jobs=4)
    assert len(report.exported) == len(EXPECTED)
    con = connect()
    assert items_table(str(tmp_path), con).equals(items_table(str(reference.root), con))
    assert jobs_table(str(tmp_path), con).equals(jobs_table(str(reference.root), con))
    files = [
        sorted(str(p.relative_to(r)) for p in r.rglob("*")) for r in (tmp_path, reference.root)
    ]
    assert files[0] == files[1]


# --- the small account ------------------------------------------------------------------


def test_dry_run_lists_what_would_be_exported_and_writes_nothing(
    small: Connection, tmp_path: Path
) -> None:
    dest = tmp_path / "never"
    report = sync(dest, connection=small, dry_run=True, limit=2)
    assert not dest.exists()
    oldest = sorted(
        (utc(d["created_at"]), d["job_id"]) for d in small_docs() if d["job_id"] in SMALL
    )
    first, second = oldest[0][1], oldest[1][1]
    assert [(p["job_id"], p["reason"]) for p in report.planned] == [(first, "new"), (second, "new")]
    assert report.to_text().splitlines() == [
        f"would export {first} (new)",
        f"would export {second} (new)",
        f"Dry run: would export 2 jobs to {dest} (2 not finished, {len(SMALL) - 2} over limit).",
        f"Listed {len(SMALL) + 2} jobs in 1 request.",
    ]


@pytest.mark.parametrize(
    ("since", "until"),
    [("2026-05-23", None), (None, "2026-05-24T12:00:00Z"), ("2026-05-23", "2026-05-25")],
)
def test_since_and_until_bound_created_at(
    small: Connection, tmp_path: Path, since: str | None, until: str | None
) -> None:
    report = sync(tmp_path, connection=small, since=since, until=until, jobs=2)
    wanted = {
        doc["job_id"]
        for doc in small_docs()
        if doc["job_id"] in SMALL
        and (since is None or utc(doc["created_at"]) >= utc(since))
        and (until is None or utc(doc["created_at"]) < utc(until))
    }
    assert 0 < len(wanted) < len(SMALL)
    assert {job["job_id"] for job in report.exported} == wanted
    assert set(reader_view(str(tmp_path), SMALL, connect()).committed) == wanted


def test_limit_catches_up_oldest_first_over_several_runs(small: Connection, tmp_path: Path) -> None:
    by_age = [d["job_id"] for d in sorted(small_docs(), key=lambda d: utc(d["created_at"]))]
    by_age = [job_id for job_id in by_age if job_id in SMALL]
    for run in range(3):
        report = sync(tmp_path, connection=small, limit=8)
        assert {job["job_id"] for job in report.exported} == set(by_age[run * 8 : run * 8 + 8])
    assert sync(tmp_path, connection=small, limit=8).exported == []
    assert reader_view(str(tmp_path), SMALL, connect()).committed == SMALL


def regenerated(doc: dict[str, Any], created_at: str) -> dict[str, Any]:
    """The same job with other figures, as after a re-run or a correction by the provider."""
    return generate_job(
        job_id=doc["job_id"],
        items=doc["total_urls"] + 2,
        seed=99,
        markdown_bytes=80,
        created_at=created_at,
    )


@pytest.mark.parametrize("moved_day", [False, True])
def test_a_changed_job_is_exported_again_replacing_its_files(
    small_account: Emulator, small: Connection, tmp_path: Path, moved_day: bool
) -> None:
    sync(tmp_path, connection=small, jobs=2)
    doc = next(d for d in small_docs() if d["job_id"] in SMALL)
    created = "2026-05-29T01:00:00Z" if moved_day else doc["created_at"]
    small_account.add_job(regenerated(doc, created))

    report = sync(tmp_path, connection=small, full=True)  # an old job: only a full listing sees it
    assert [(job["job_id"], job["reason"]) for job in report.exported] == [
        (doc["job_id"], "changed")
    ]
    expected = {**SMALL, doc["job_id"]: doc["total_urls"] + 2}
    assert reader_view(str(tmp_path), expected, connect()).committed == expected
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob(f"{doc['job_id']}.*"))
    day = created[:10]
    assert files[1:] == [
        f"items/date={day}/{doc['job_id']}.parquet",
        f"jobs/date={day}/{doc['job_id']}.parquet",
    ]
    marker = json.loads((tmp_path / files[0]).read_text())
    assert files[0] == f"_markers/{doc['job_id']}.{marker['token']}.json"
    assert marker["rows"] == doc["total_urls"] + 2 and marker["items_path"] == files[1]


def test_what_a_kill_leaves_is_repaired(small: Connection, tmp_path: Path) -> None:
    sync(tmp_path, connection=small, limit=5)
    jobs = sorted(tmp_path.glob("jobs/*/*.parquet"))

    def marker(n: int) -> Path:
        return next((tmp_path / "_markers").glob(f"{jobs[n].stem}.*.json"))

    # Killed between the items file and the jobs row: an orphan items file, no marker.
    jobs[0].unlink()
    marker(0).unlink()
    # Killed between the jobs row and the marker; killed while writing a file.
    marker(1).unlink()
    (tmp_path / "_staging").mkdir(exist_ok=True)
    (tmp_path / "_staging" / "0123.tmp").write_bytes(b"PAR1 half")
    # Not a kill: a marker left by an older version, and an items file removed by hand.
    marker(2).rename(tmp_path / "_markers" / f"{jobs[2].stem}.00000000.json")
    next(tmp_path.glob(f"items/*/{jobs[3].stem}.parquet")).unlink()

    # The four repaired jobs are the oldest of the account: a limit of 4 takes just them.
    report = sync(tmp_path, connection=small, limit=4, full=True)
    assert report.removed_orphans == 1
    assert sorted((job["job_id"], job["reason"]) for job in report.exported) == sorted(
        [
            (jobs[0].stem, "new"),
            (jobs[1].stem, "new"),
            (jobs[2].stem, "changed"),
            (jobs[3].stem, "incomplete"),
        ]
    )
    assert not list((tmp_path / "_staging").iterdir())
    assert set(reader_view(str(tmp_path), SMALL, connect()).committed) == {p.stem for p in jobs}
    markers = sorted(p.name.split(".")[0] for p in (tmp_path / "_markers").iterdir())
    assert markers == sorted(p.stem for p in jobs)


def test_a_folder_not_written_by_sync_is_refused(small: Connection, tmp_path: Path) -> None:
    mine = tmp_path / "items" / "date=2026-01-01" / "mine.parquet"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"keep me")
    with pytest.raises(OutputError) as caught:
        sync(tmp_path, connection=small)
    assert str(caught.value) == (
        f"{tmp_path} holds items/, jobs/ or _markers/ files but no _layout.json: it was not "
        "written by `batch-export sync`. Choose an empty or new --dest."
    )
    assert mine.read_bytes() == b"keep me"


def test_a_dataset_of_another_layout_version_is_refused(small: Connection, tmp_path: Path) -> None:
    (tmp_path / "_layout.json").write_text(json.dumps({"layout_version": 2}))
    with pytest.raises(OutputError, match="holds a dataset of layout version 2") as caught:
        sync(tmp_path, connection=small)
    assert caught.value.exit_code == 8


def test_the_report_is_json_ready(small: Connection, tmp_path: Path) -> None:
    report = sync(tmp_path, connection=small, limit=1)
    data = json.loads(report.to_json())
    assert data["exit_code"] == 0 and data["rows"] == report.rows >= 1
    assert data["layout_version"] == 1 and data["exported"][0]["rows"] == report.rows
    assert data["dest"] == str(tmp_path) and data["skipped"]["over_limit"] == len(SMALL) - 1
    assert json.loads((tmp_path / "_layout.json").read_text())["layout_version"] == 1
