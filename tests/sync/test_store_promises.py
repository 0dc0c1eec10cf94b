"""Issue 12's promises, end to end on every destination, through the real `sync` command.

An emulated account of 60 jobs (57 finished, 3 still processing) is synced to a Parquet
dataset, Delta tables, a DuckDB file and a PostgreSQL server (started by tests/postgres.py);
each is read back (tests/sync/warehouses.py) and held to the same promises:

1. every finished job's rows once, with the values of a Parquet export of that job
   (``batch_export.export.export``), and one jobs row per finished job;
2. a rerun with nothing new writes nothing: no new Delta version, no file, row id, ``ctid``
   or ``xmin`` changed;
3. a job that changes is replaced, not duplicated;
4. SIGKILL mid-sync (twice), then a rerun: exactly what an uninterrupted sync gives;
5. each job's row shows its failed items' codes, whether resubmitting may help, and the
   failed items it may help (the Parquet dataset: the job's marker, its jobs files keep the
   layout).

Delta only: two syncs of two accounts into one table at once (two processes) both land, each
job once, and ``batch-export compact`` then leaves fewer files and the same rows.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from batch_export.cli import main
from batch_export.codes import may_resubmit
from batch_export.export import Connection, export
from batch_export.testing import Emulator, Faults, generate_account, generate_job
from tests.conftest import CANARY_KEY
from tests.postgres import PostgresServer, running_postgres
from tests.sync.conftest import expected_rows, kill_after
from tests.sync.store_cases import items_sorted, with_json_parsed
from tests.sync.warehouses import KINDS, WAREHOUSES, DeltaWarehouse, Rows, Warehouse

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

ACCOUNT = tuple(generate_account(jobs=60, processing=3, seed=12, markdown_bytes=300))
OTHER = tuple(generate_account(jobs=20, processing=1, seed=13, markdown_bytes=300))
FINISHED = expected_rows(ACCOUNT)
OTHER_FINISHED = expected_rows(OTHER)
LATENCY_MS = 20  # per API answer in the killed and concurrent runs, so that they run a while
KILL_AFTER = (4, 16)  # jobs a run reports exported before its SIGKILL
KILL_SEED = int(os.environ.get("SYNC_KILL_SEED", "12"))


# --- the reference: each finished job through the Parquet export --------------------------


def exported_rows(base_url: str, job_ids: list[str], folder: Path) -> dict[str, Rows]:
    """Each job's rows as ``batch-export export JOB out.parquet`` writes them, read back."""
    connection = Connection(base_url=base_url, api_key=CANARY_KEY, max_retries=0)
    rows: dict[str, Rows] = {}
    for job_id in job_ids:
        path = folder / f"{job_id}.parquet"
        export(job_id, path, connection=connection)
        rows[job_id] = with_json_parsed(items_sorted(pq.read_table(path)))
    return rows


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rows]:
    """Every finished job of both accounts, by job id, as the Parquet export has it."""
    folder = tmp_path_factory.mktemp("exports")
    rows: dict[str, Rows] = {}
    for docs, finished in ((ACCOUNT, FINISHED), (OTHER, OTHER_FINISHED)):
        with Emulator(jobs=docs, api_key=CANARY_KEY) as emulator:
            rows.update(exported_rows(emulator.base_url, sorted(finished), folder))
    assert {job_id: len(job_rows) for job_id, job_rows in rows.items()} == {
        **FINISHED,
        **OTHER_FINISHED,
    }
    return rows


def items_of(reference: dict[str, Rows], job_ids: list[str] | dict[str, int]) -> Rows:
    """The reference rows of ``job_ids``, sorted as a warehouse's items are."""
    return [row for job_id in sorted(job_ids) for row in reference[job_id]]


# --- destinations and the sync command ------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


_roles = iter(range(1_000_000))


def new_warehouse(kind: str, folder: Path, request: pytest.FixtureRequest) -> Warehouse:
    """An empty destination of ``kind``: under ``folder``, or a PostgreSQL role's schema."""
    if kind == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        role = f"promises_{next(_roles)}"
        server.psql(f"CREATE ROLE {role} LOGIN; CREATE SCHEMA {role} AUTHORIZATION {role}")
        return WAREHOUSES[kind](kind, server.url(user=role))
    if kind == "duckdb":
        return WAREHOUSES[kind](kind, f"duckdb://{folder}/warehouse.duckdb")
    return WAREHOUSES[kind](kind, str(folder / "warehouse"))


def environment(emulator: Emulator) -> dict[str, str]:
    return {"SCRAPER_API_BASE_URL": emulator.base_url, "GEONODE_SCRAPER_API_KEY": CANARY_KEY}


def cli_sync(warehouse: Warehouse, emulator: Emulator, *more: str) -> dict[str, Any]:
    """``batch-export sync`` in this process (click's runner); its JSON summary."""
    args = ["sync", *warehouse.args(), "--log-format", "json", *more]
    result = CliRunner().invoke(main, args, env=environment(emulator))
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def sync_process(warehouse: Warehouse, emulator: Emulator) -> subprocess.Popen[str]:
    """``python -m batch_export sync`` as a process of its own, two jobs at once."""
    command = [sys.executable, "-m", "batch_export", "sync", *warehouse.args()]
    return subprocess.Popen(
        [*command, "--jobs", "2", "--log-format", "json"],
        env={**os.environ, **environment(emulator)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    """Wait for a sync process; its JSON summary, after checking it exited 0."""
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-2000:]
    summary: dict[str, Any] = json.loads(out)
    return summary


@dataclass(frozen=True)
class Synced:
    """The account synced once, without interruption, and what it held right after."""

    warehouse: Warehouse
    emulator: Emulator
    summary: dict[str, Any]
    items: Rows
    jobs: Rows


@pytest.fixture(scope="module", params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def uninterrupted(
    kind: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Synced]:
    """The 60-job account synced by the CLI into a new destination of ``kind``."""
    warehouse = new_warehouse(kind, tmp_path_factory.mktemp(kind), request)
    with Emulator(jobs=ACCOUNT, api_key=CANARY_KEY) as emulator:
        summary = cli_sync(warehouse, emulator)
        yield Synced(warehouse, emulator, summary, warehouse.items(), warehouse.jobs())


# --- the promises, on every destination -----------------------------------------------------


def test_every_job_once_then_a_rerun_changes_nothing_then_a_changed_job_is_replaced(
    uninterrupted: Synced, reference: dict[str, Rows], tmp_path: Path
) -> None:
    warehouse, emulator = uninterrupted.warehouse, uninterrupted.emulator
    # 1. Every finished job's rows, once, as the Parquet export has them; a jobs row each.
    assert sorted(job["job_id"] for job in uninterrupted.summary["exported"]) == sorted(FINISHED)
    assert uninterrupted.summary["skipped"] == {"not_finished": 3}
    assert uninterrupted.items == items_of(reference, FINISHED)
    assert {job["job_id"]: job["rows"] for job in uninterrupted.jobs} == FINISHED
    assert len(uninterrupted.jobs) == len(FINISHED)

    # 2. Nothing new: nothing written at all (every job listed and compared: --full).
    stamp = warehouse.stamp()
    again = cli_sync(warehouse, emulator, "--full")
    assert again["exported"] == [] and again["skipped"] == {"unchanged": 57, "not_finished": 3}
    assert warehouse.stamp() == stamp
    assert warehouse.items() == uninterrupted.items
    assert warehouse.jobs() == uninterrupted.jobs

    # 3. A job changes (fewer items, other contents): its rows are replaced, not added to.
    old = next(doc for doc in ACCOUNT if FINISHED.get(doc["job_id"], 0) > 3)
    job_id = old["job_id"]
    new = generate_job(job_id=job_id, items=3, seed=4242, created_at=old["created_at"])
    emulator.add_job(new)
    third = cli_sync(warehouse, emulator, "--full")  # an old job: only a full listing sees it
    assert [(job["job_id"], job["reason"], job["rows"]) for job in third["exported"]] == [
        (job_id, "changed", 3)
    ]
    replaced = {**reference, **exported_rows(emulator.base_url, [job_id], tmp_path)}
    assert warehouse.items() == items_of(replaced, FINISHED)
    assert warehouse.committed() == {**FINISHED, job_id: 3}
    assert warehouse.stamp() != stamp  # the stamp does see rows written again
    if isinstance(warehouse, DeltaWarehouse):  # one commit a table for the one job
        assert [version for version, _ in warehouse.stamp()] == [v + 1 for v, _ in stamp]


def test_sigkill_mid_sync_then_a_rerun_gives_the_uninterrupted_result(
    uninterrupted: Synced,
    kind: str,
    reference: dict[str, Rows],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    rng = random.Random(KILL_SEED)
    warehouse = new_warehouse(kind, tmp_path, request)
    latency = Faults(latency_ms=LATENCY_MS)
    with Emulator(jobs=ACCOUNT, api_key=CANARY_KEY, faults=latency) as emulator:
        for exported in KILL_AFTER:
            process = sync_process(warehouse, emulator)
            try:
                kill_after(process, exported=exported, delay=rng.uniform(0, 0.05))
            finally:
                if process.poll() is None:
                    process.kill()
                    process.communicate()
            assert process.returncode == -signal.SIGKILL
            committed = warehouse.committed()  # asserts: whole jobs only, each once
            assert 0 < len(committed) < len(FINISHED), "the kill did not land mid-sync"
            assert all(FINISHED[job_id] == rows for job_id, rows in committed.items())
        final = finish(sync_process(warehouse, emulator))
    assert final["exit_code"] == 0 and final["failed"] == []
    assert 0 < len(final["exported"]) < len(FINISHED)  # the kills left work for the rerun
    assert warehouse.items() == uninterrupted.items == items_of(reference, FINISHED)
    assert warehouse.jobs() == uninterrupted.jobs


def test_each_jobs_row_shows_its_failure_codes_and_whether_resubmitting_may_help(
    uninterrupted: Synced, kind: str
) -> None:
    warehouse = uninterrupted.warehouse
    codes: dict[str, Counter[str]] = {}
    for item in warehouse.items():  # as they are now: the jobs rows describe these
        counted = codes.setdefault(item["job_id"], Counter())
        if item["status"] == "failed" and item["error_code"] is not None:
            counted[item["error_code"]] += 1
    expected = {
        job_id: {
            "failure_codes": {
                c: {"items": n, "resubmit": may_resubmit(c)} for c, n in found.items()
            }
            or None,
            "failed_retryable": sum(n for c, n in found.items() if may_resubmit(c)),
            "api_key_hidden": 0,
        }
        for job_id, found in codes.items()
    }
    assert sum(len(found) for found in codes.values()) > 10  # codes of several kinds
    assert any(row["failed_retryable"] for row in expected.values())
    if kind == "parquet":
        markers = Path(warehouse.dest, "_markers").glob("*.json")
        shown = {m.name.split(".")[0]: json.loads(m.read_text())["counts"] for m in markers}
    else:
        names = ("failure_codes", "failed_retryable", "api_key_hidden")
        shown = {job["job_id"]: {n: job[n] for n in names} for job in warehouse.jobs()}
        for row in shown.values():
            row["failure_codes"] = row["failure_codes"] and json.loads(row["failure_codes"])
    assert shown == expected


# --- Delta only: two writers at once, then compaction ---------------------------------------


def writers_overlapped(warehouse: DeltaWarehouse) -> bool:
    """Whether the items table's commits of the two accounts interleave in its history."""
    owner = dict.fromkeys(FINISHED, 0) | dict.fromkeys(OTHER_FINISHED, 1)
    versions: list[list[int]] = [[], []]
    for commit in warehouse.table("items").history():
        predicate = commit.get("operationParameters", {}).get("predicate", "")
        job_id = predicate.removeprefix("job_id = '").removesuffix("'")
        if job_id in owner:
            versions[owner[job_id]].append(commit["version"])
    return min(versions[0]) < max(versions[1]) and min(versions[1]) < max(versions[0])


def test_two_accounts_synced_at_once_into_one_delta_table_then_compacted(
    reference: dict[str, Rows], tmp_path: Path
) -> None:
    assert not set(FINISHED) & set(OTHER_FINISHED)  # the accounts' job ids are disjoint
    warehouse = DeltaWarehouse("delta", str(tmp_path / "lake"))
    latency = Faults(latency_ms=LATENCY_MS)
    with (
        Emulator(jobs=ACCOUNT, api_key=CANARY_KEY, faults=latency) as one,
        Emulator(jobs=OTHER, api_key=CANARY_KEY, faults=latency) as two,
    ):
        processes = [sync_process(warehouse, one), sync_process(warehouse, two)]
        try:
            summaries = [finish(process) for process in processes]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.communicate()
        assert [len(summary["exported"]) for summary in summaries] == [57, 19]
        assert writers_overlapped(warehouse), "the two syncs did not commit at the same time"
        both = {**FINISHED, **OTHER_FINISHED}
        assert warehouse.items() == items_of(reference, both)
        assert warehouse.committed() == both
        jobs = warehouse.jobs()

        files = len(warehouse.table("items").file_uris())
        version = warehouse.table("items").version()
        result = CliRunner().invoke(main, ["compact", "--dest", warehouse.dest])
        assert result.exit_code == 0, result.output
        compacted = warehouse.table("items")
        assert len(compacted.file_uris()) < files
        assert compacted.version() == version + 1
        assert warehouse.items() == items_of(reference, both)
        assert warehouse.jobs() == jobs

        stamp = warehouse.stamp()  # a compacted table is as good as loaded: nothing to redo
        assert cli_sync(warehouse, two)["exported"] == []
        assert warehouse.stamp() == stamp
