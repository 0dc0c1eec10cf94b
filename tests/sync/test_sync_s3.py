"""Sync to an S3-compatible store: moto's server on loopback, reached by s3fs over HTTP.

DuckDB reads the dataset back through the same s3fs file system, registered with it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import s3fs
from click.testing import CliRunner

from batch_export.atomic import temporary_name
from batch_export.cli import main
from batch_export.connection import Connection
from batch_export.errors import OutputError
from batch_export.sync import DatasetStore, Destination, SyncReport, open_store, sync
from batch_export.testing import Emulator, generate_job
from tests.conftest import CANARY_KEY
from tests.sync.conftest import Synced, account_docs, expected_rows, small_docs
from tests.sync.readers import connect, items_table, jobs_table, reader_view

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

EXPECTED = expected_rows(account_docs())
SMALL = expected_rows(small_docs())
CREATED = "2026-05-24T00:00:00Z"


def s3(endpoint: str) -> Any:
    return s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)


def s3_sync(dest: str, endpoint: str, **options: Any) -> SyncReport:
    """``sync`` into ``dest`` on the loopback S3 server (the store opened with its endpoint)."""
    with open_store(dest, storage_options={"endpoint_url": endpoint}) as store:
        return sync(store, **options)


def test_the_account_lands_in_s3_whole_and_once(
    connection: Connection, s3_endpoint: str, s3_bucket: str, reference: Synced
) -> None:
    dest = f"s3://{s3_bucket}/scraper"
    report = s3_sync(dest, s3_endpoint, connection=connection, jobs=4)
    assert report.exit_code == 0 and len(report.exported) == len(EXPECTED)

    fs = s3(s3_endpoint)
    view = reader_view(dest, EXPECTED, connect(fs), fs)  # DuckDB reading through s3fs
    assert view.committed == EXPECTED
    # The same dataset as on local disk, row for row.
    local = connect()
    assert view.items.equals(items_table(str(reference.root), local))
    assert view.jobs.equals(jobs_table(str(reference.root), local))
    keys = sorted(key.split("/scraper/", 1)[1] for key in fs.find(f"{s3_bucket}/scraper"))
    on_disk = sorted(
        str(p.relative_to(reference.root)) for p in reference.root.rglob("*") if p.is_file()
    )
    assert keys == on_disk  # no _staging/ objects: an upload appears whole by itself

    again = s3_sync(dest, s3_endpoint, connection=connection, full=True)
    assert again.exported == [] and again.skipped["unchanged"] == len(EXPECTED)


def test_a_re_export_on_s3_replaces_and_repairs(
    small_account: Emulator, small: Connection, s3_endpoint: str, s3_bucket: str
) -> None:
    dest = f"s3://{s3_bucket}/ds"
    s3_sync(dest, s3_endpoint, connection=small)
    fs = s3(s3_endpoint)
    rows = sorted(fs.glob(f"{s3_bucket}/ds/jobs/*/*.parquet"))
    # A kill between a job's items and its jobs row leaves an orphan; then the job changes.
    orphan = rows[0].rsplit("/", 1)[1].removesuffix(".parquet")
    fs.rm([rows[0], *fs.glob(f"{s3_bucket}/ds/_markers/{orphan}.*.json")])
    changed = next(d for d in small_docs() if d["job_id"] in SMALL and d["job_id"] != orphan)
    small_account.add_job({**changed, "completed_at": "2026-05-30T00:00:00Z"})

    report = s3_sync(dest, s3_endpoint, connection=small, jobs=2, full=True)
    assert report.removed_orphans == 1
    assert sorted((job["job_id"], job["reason"]) for job in report.exported) == sorted(
        [(orphan, "new"), (changed["job_id"], "changed")]
    )
    con = connect(fs)
    assert reader_view(dest, SMALL, con, fs).committed == SMALL
    completed = con.sql(
        f"SELECT completed_at FROM read_parquet('{dest}/jobs/*/{changed['job_id']}.parquet')"
    ).fetchall()
    assert [str(value.date()) for (value,) in completed] == ["2026-05-30"]


def test_the_cli_reaches_s3_through_endpoint_url(
    small_account: Emulator, s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEONODE_SCRAPER_API_KEY", CANARY_KEY)
    dest = f"s3://{s3_bucket}/cli"
    args = ["sync", "--dest", dest, "--endpoint-url", s3_endpoint]
    result = CliRunner().invoke(main, [*args, "--base-url", small_account.base_url, "-q"])
    assert result.exit_code == 2  # -q belongs to export; sync logs through --log-format
    result = CliRunner().invoke(main, [*args, "--base-url", small_account.base_url])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Exported {len(SMALL)} jobs (")
    fs = s3(s3_endpoint)
    assert reader_view(dest, SMALL, connect(fs), fs).committed == SMALL


def test_a_missing_bucket_is_an_output_error(
    small: Connection, s3_endpoint: str, s3_bucket: str
) -> None:
    dest = f"s3://{s3_bucket}-missing/ds"
    with pytest.raises(OutputError) as caught:
        s3_sync(dest, s3_endpoint, connection=small)
    assert caught.value.exit_code == 8
    assert str(caught.value).startswith(f"Cannot create _sync.lock in {dest}: ")
    assert str(caught.value).endswith(
        "Check the bucket name, the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or "
        "AWS_PROFILE for s3://) and --endpoint-url."
    )


def staged(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_staged_uploads_are_removed_on_failure_and_swept_when_left(
    s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    dest = f"s3://{s3_bucket}/staged"
    local = tmp_path / "staging"
    destination = Destination(
        dest, storage_options={"endpoint_url": s3_endpoint}, local_staging=local
    )
    # What a killed sync of this destination left, and what another destination's sync (of a
    # process that is alive: this one) is writing now.
    name = destination.staging_name
    local.mkdir()
    left = local / temporary_name(name, "999999999-0a1b2c3d")
    other = local / temporary_name("0" * 16, f"{os.getpid()}-0a1b2c3d")
    left.write_bytes(b"PAR1 half")
    other.write_bytes(b"PAR1 half")
    bad = generate_job(job_id="bad-job", items=3, markdown_bytes=80, created_at=CREATED)
    bad["results"][1]["metadata"]["http_status"] = "teapot"  # fails while its file is written
    with Emulator(jobs=[*small_docs()[:6], bad], api_key=CANARY_KEY) as emulator:
        connection = Connection(base_url=emulator.base_url, api_key=CANARY_KEY, max_retries=0)
        with DatasetStore(destination) as store:
            report = sync(store, connection=connection, jobs=3)
    assert [f["job_id"] for f in report.failed] == ["bad-job"]
    assert len(report.exported) == len(expected_rows(small_docs()[:6]))
    assert staged(local) == [other.name]  # the leftover swept, the failed upload removed


def test_job_ids_of_the_longest_kind_land_in_s3(s3_endpoint: str, s3_bucket: str) -> None:
    docs = [dict(doc, job_id=f"{n}" + "y" * 127) for n, doc in enumerate(small_docs()[:3])]
    dest = f"s3://{s3_bucket}/long"
    with Emulator(jobs=docs, api_key=CANARY_KEY) as emulator:
        connection = Connection(base_url=emulator.base_url, api_key=CANARY_KEY)
        report = s3_sync(dest, s3_endpoint, connection=connection)
    assert report.exit_code == 0 and len(report.exported) == len(expected_rows(docs))
