"""One bad job never stops the others: answers for another job, dates that cannot be placed,
listing entries that cannot be used, a full disk. Each fails alone, with one sentence and its
exit code in its record; the run exits 10, and the good jobs are in the dataset."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from batch_export.cli import main
from batch_export.connection import Connection
from batch_export.sync import SyncReport, sync
from batch_export.testing import Emulator
from tests.conftest import CANARY_KEY
from tests.scripted import Answer, scripted_server
from tests.sync.conftest import expected_rows, small_docs
from tests.sync.readers import connect, reader_view

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

SMALL = expected_rows(small_docs())
VICTIM, OTHER = sorted(SMALL)[2], sorted(SMALL)[5]

Edit = Callable[[str, dict[str, str], Any], Any]


def gateway(upstream: str, edit: Edit) -> Callable[[int, str, dict[str, str]], Answer]:
    """A gateway in front of the emulator that hands every JSON answer to ``edit`` first."""

    def answer(_: int, path: str, query: dict[str, str]) -> Answer:
        reply = requests.get(
            upstream + path, params=query, headers={"X-Api-Key": CANARY_KEY}, timeout=10
        )
        if reply.status_code != 200:
            return Answer(status=reply.status_code, body=reply.content)
        return Answer(body=edit(path, query, reply.json()))

    return answer


def sync_through(small_account: Emulator, edit: Edit, dest: Path) -> SyncReport:
    with scripted_server(gateway(small_account.base_url, edit)) as server:
        connection = Connection(base_url=server.base_url, api_key=CANARY_KEY, max_retries=0)
        return sync(dest, connection=connection)


def failures(report: SyncReport) -> list[tuple[str, str, int]]:
    return [(f["job_id"], f["error"], f["exit_code"]) for f in report.failed]


def the_others_landed(dest: Path, report: SyncReport, *failed: str) -> None:
    others = {job_id: rows for job_id, rows in SMALL.items() if job_id not in failed}
    assert {job["job_id"] for job in report.exported} == set(others)
    assert reader_view(str(dest), SMALL, connect()).committed == others
    assert report.exit_code == 10


def listing_entry(body: Any, job_id: str) -> dict[str, Any]:
    return next(entry for entry in body["jobs"] if entry["job_id"] == job_id)


# --- answers that cannot be trusted -------------------------------------------------------


def test_a_job_that_answers_as_another_fails_alone(small_account: Emulator, tmp_path: Path) -> None:
    def swap(path: str, query: dict[str, str], body: Any) -> Any:
        if path == f"/v1/batch/{VICTIM}":  # every page of the victim is the other job's
            return requests.get(
                f"{small_account.base_url}/v1/batch/{OTHER}",
                params=query,
                headers={"X-Api-Key": CANARY_KEY},
                timeout=10,
            ).json()
        return body

    report = sync_through(small_account, swap, tmp_path)
    assert failures(report) == [(VICTIM, "ResponseShapeError", 7)]
    assert report.failed[0]["reason"].startswith(
        f"The API answered for job '{OTHER}' when asked for job '{VICTIM}': "
    )
    the_others_landed(tmp_path, report, VICTIM)  # the other job is there once, with its rows


@pytest.mark.parametrize(
    "created_at",
    ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00", "26/05/2026", "2026-02-30"],
)
def test_a_job_whose_date_cannot_be_placed_fails_alone(
    small_account: Emulator, tmp_path: Path, created_at: str
) -> None:
    def misdate(path: str, query: dict[str, str], body: Any) -> Any:
        if path == "/v1/batch/jobs" and any(e["job_id"] == VICTIM for e in body["jobs"]):
            listing_entry(body, VICTIM)["created_at"] = created_at
        if path == f"/v1/batch/{VICTIM}":
            body["created_at"] = created_at
        return body

    report = sync_through(small_account, misdate, tmp_path)
    assert failures(report) == [(VICTIM, "ResponseShapeError", 7)]
    assert report.failed[0]["reason"] == (
        f"Expected `created_at` to be an ISO 8601 timestamp for job {VICTIM}, got {created_at!r}."
    )
    the_others_landed(tmp_path, report, VICTIM)


@pytest.mark.parametrize(
    ("entry", "label", "reason"),
    [
        ({"status": "completed"}, "(page 1 entry 0)", "an object with a plain `job_id`"),
        ({"job_id": "../../etc"}, "(page 1 entry 0)", "an object with a plain `job_id`"),
        ([1, 2], "(page 1 entry 0)", "an object with a plain `job_id`"),
        ({"job_id": "odd", "completed_urls": [3]}, "odd", "`completed_urls` of job odd"),
        ({"job_id": "long", "status": "x" * 300}, "long", "`status` of job long"),
    ],
)
def test_a_listing_entry_that_cannot_be_used_fails_alone(
    small_account: Emulator, tmp_path: Path, entry: Any, label: str, reason: str
) -> None:
    def spoil(path: str, query: dict[str, str], body: Any) -> Any:
        if path == "/v1/batch/jobs" and query["page"] == "1":
            body["jobs"].insert(0, entry)
        return body

    report = sync_through(small_account, spoil, tmp_path)
    assert failures(report) == [(label, "ResponseShapeError", 7)]
    assert reason in report.failed[0]["reason"]
    the_others_landed(tmp_path, report)


def test_the_jobs_table_keeps_what_json_holds_exactly(
    small_account: Emulator, tmp_path: Path
) -> None:
    def odd_config(path: str, query: dict[str, str], body: Any) -> Any:
        if path == f"/v1/batch/{VICTIM}":
            body["batch_config"] = {"formats": ["markdown"], "seed": 2**70, "note": "a\nb"}
            body["flag"] = [None, -(2**65)]  # undocumented: kept in `extra`
        return body

    report = sync_through(small_account, odd_config, tmp_path)
    assert report.exit_code == 0
    [row] = (
        connect()
        .sql(f"SELECT config, extra FROM read_parquet('{tmp_path}/jobs/*/{VICTIM}.parquet')")
        .fetchall()
    )
    assert json.loads(row[0]) == {"formats": ["markdown"], "seed": 2**70, "note": "a\nb"}
    assert json.loads(row[1]) == {"flag": [None, -(2**65)]}


# --- the destination refuses --------------------------------------------------------------


def test_a_full_disk_fails_each_job_with_one_sentence(small_env: Emulator, tmp_path: Path) -> None:
    """A file size limit makes every write past 1 KB fail, as a full disk does."""
    dest = tmp_path / "dest"

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.RLIM_INFINITY))

    done = subprocess.run(
        [sys.executable, "-m", "batch_export", "sync", "--dest", str(dest), "--log-format", "json"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limited,
        check=False,
    )
    assert done.returncode == 10, done.stderr
    assert "Traceback" not in done.stderr and CANARY_KEY not in done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert {f["job_id"] for f in summary["failed"]} == set(SMALL) and summary["exported"] == []
    for failed in summary["failed"]:
        assert (failed["error"], failed["exit_code"]) == ("OutputError", 8)
        assert failed["reason"].startswith("Cannot write items/date=")
        assert failed["reason"].endswith(
            f"for {dest}: File too large. Check free space and permissions in the "
            "destination, then rerun."
        )
    assert not list((dest / "_staging").iterdir())
    assert reader_view(str(dest), SMALL, connect()).committed == {}


def test_summary_file_that_cannot_be_written_is_refused_before_the_run(
    small_env: Emulator, tmp_path: Path
) -> None:
    summary = tmp_path / "no" / "summary.json"
    result = CliRunner().invoke(
        main, ["sync", "--dest", str(tmp_path / "d"), "--summary", str(summary)]
    )
    assert result.exit_code == 8
    assert result.stderr == (
        f"Error: Cannot write the run summary (--summary): Output folder '{summary.parent}' "
        "does not exist: create it first or choose another -o path.\n"
    )
    assert not (tmp_path / "d").exists()


@pytest.fixture
def long_ids() -> Iterator[list[dict[str, Any]]]:
    docs = [dict(doc) for doc in small_docs()[:4]]
    for number, doc in enumerate(docs):
        doc["job_id"] = f"{number}" + "x" * 127  # the longest id the client accepts
    yield docs


def test_job_ids_of_the_longest_kind_fit_every_name(
    long_ids: list[dict[str, Any]], tmp_path: Path
) -> None:
    with Emulator(jobs=long_ids, api_key=CANARY_KEY) as emulator:
        connection = Connection(base_url=emulator.base_url, api_key=CANARY_KEY)
        report = sync(tmp_path, connection=connection)
    assert report.exit_code == 0 and len(report.exported) == len(expected_rows(long_ids))
    names = [path.name for path in tmp_path.rglob("*")]
    assert max(len(name.encode()) for name in names) <= 255
