"""Two and three `batch-export sync` processes at once into each destination, row by row.

Overlapping cron entries, or an Airflow retry while the first attempt still runs, start two
syncs of one account into one destination. Every destination must then hold each
``(job_id, input_index)`` exactly once, with a jobs table that agrees with its items, or refuse
the second writer in one sentence:

- PostgreSQL and Delta take concurrent writers: every process exits 0, and the jobs that two
  processes loaded at once are there once;
- the Parquet dataset (its lock file) and DuckDB (its file lock) take one writer: the others
  exit 8 with one sentence, having written nothing.

Each destination is tried with new jobs (every process loads all of them), then with changed
jobs (each changed job replaced, never added to; ``--full``, since they are old jobs). The
processes start together: the emulator holds the first request of each until every one has
asked (:class:`StartGate`), so on a loaded machine, where one process may take seconds longer
to start than another, their loads still overlap (or the later ones meet the lock), and then it
answers slowly (``LATENCY_MS``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from batch_export.testing import Emulator, Faults, generate_account, generate_job
from tests.conftest import CANARY_KEY
from tests.postgres import PostgresServer, running_postgres
from tests.sync.conftest import expected_rows
from tests.sync.warehouses import KINDS, Warehouse, new_warehouse

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

# No job still processing: one that finished between two rounds would be one more load.
ACCOUNT = tuple(generate_account(jobs=9, processing=0, seed=17, items=(1, 4), markdown_bytes=60))
FINISHED = expected_rows(ACCOUNT)
CHANGED = sorted(FINISHED)[::3]  # the jobs that change between the two rounds
PROCESS_SECONDS = 50  # the most one sync process may take (each takes a few seconds)
LATENCY_MS = 100  # per answer, once the processes have all started
GATE_SECONDS = 10  # the longest the first requests wait for the other processes to start
CONCURRENT = {"postgresql", "delta"}  # the others take one writer and refuse the rest
REFUSALS = {
    "parquet": "is being synced by another process",
    "duckdb": "is open in another process (pid ",
}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


class StartGate(Faults):
    """Slow answers, and the first ``writers`` requests held until all of them have come (one
    a process: each lists once before anything else), or ``GATE_SECONDS`` have passed (a
    process refused by a lock never asks)."""

    def __init__(self, writers: int) -> None:
        super().__init__(latency_ms=LATENCY_MS)
        object.__setattr__(self, "gate", threading.Barrier(writers))

    def decide(self, number: int) -> Any:
        gate: threading.Barrier = self.gate  # type: ignore[attr-defined]
        if number <= gate.parties:
            # Broken when fewer processes asked: the others were turned away, or are late.
            with contextlib.suppress(threading.BrokenBarrierError):
                gate.wait(timeout=GATE_SECONDS)
        return super().decide(number)


@dataclass(frozen=True)
class Outcome:
    """How one sync process ended."""

    exit_code: int
    summary: dict[str, Any] | None
    stderr: str


def sync_at_once(warehouse: Warehouse, emulator: Emulator, writers: int) -> list[Outcome]:
    """``writers`` sync processes into ``warehouse``, started together; how each ended."""
    emulator.set_faults(StartGate(writers))
    env = {
        **os.environ,
        "SCRAPER_API_BASE_URL": emulator.base_url,
        "GEONODE_SCRAPER_API_KEY": CANARY_KEY,
        "PYTHONFAULTHANDLER": "1",  # a process that hangs shows where, when stopped below
    }
    command = [sys.executable, "-m", "batch_export", "sync", *warehouse.args()]
    processes = [
        subprocess.Popen(
            [*command, "--jobs", "2", "--log-format", "json", "--full"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(writers)
    ]
    outcomes = []
    try:
        for process in processes:
            try:
                out, err = process.communicate(timeout=PROCESS_SECONDS)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGABRT)  # the fault handler prints every thread
                raise AssertionError(process.communicate()[1][-8000:]) from None
            summary = json.loads(out) if out.strip() else None
            outcomes.append(Outcome(process.returncode, summary, err))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return outcomes


def check_round(kind: str, outcomes: list[Outcome], to_load: int) -> None:
    """Every process ended as the destination promises (``to_load`` jobs to load each), and
    some of them overlapped."""
    loaded = 0
    for outcome in outcomes:
        lines = outcome.stderr.splitlines()
        if outcome.exit_code == 8 and kind not in CONCURRENT:
            # The one sentence of a refusal, and nothing before it but JSON events.
            assert lines and lines[-1].startswith("Error: "), outcome.stderr[-2000:]
            assert REFUSALS[kind] in lines[-1], lines[-1]
            assert all(line.startswith("{") for line in lines[:-1]), outcome.stderr[-2000:]
            continue
        assert outcome.exit_code == 0, outcome.stderr[-2000:]
        assert all(line.startswith("{") for line in lines), outcome.stderr[-2000:]
        assert outcome.summary is not None, outcome.stderr[-2000:]
        assert outcome.summary["failed"] == [], outcome.summary["failed"]
        loaded += len(outcome.summary["exported"])
    if kind in CONCURRENT:  # some job was loaded by two processes at once
        assert loaded > to_load, f"the syncs did not overlap ({loaded} loads)"
    else:  # one process loaded everything; the others were turned away
        assert loaded == to_load
        assert sum(outcome.exit_code == 8 for outcome in outcomes) == len(outcomes) - 1


def changed_docs() -> list[dict[str, Any]]:
    """New contents for the ``CHANGED`` jobs: other items, fewer or more of them."""
    docs = {doc["job_id"]: doc for doc in ACCOUNT}
    changed = []
    for number, job_id in enumerate(CHANGED):
        doc = generate_job(
            job_id=job_id,
            items=1 + number % 4,
            seed=100 + number,
            created_at=docs[job_id]["created_at"],
            markdown_bytes=60,
        )
        changed.append({**doc, "completed_at": "2026-06-30T00:00:00Z"})  # a listed change
    return changed


@pytest.mark.parametrize("writers", [2, 3])
@pytest.mark.parametrize("kind", KINDS)
def test_concurrent_syncs_leave_each_item_exactly_once(
    kind: str, writers: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    postgres = request.getfixturevalue("postgres") if kind == "postgresql" else None
    warehouse = new_warehouse(kind, tmp_path, postgres)
    with Emulator(jobs=ACCOUNT, api_key=CANARY_KEY) as emulator:
        # New jobs: every process finds every job to load.
        check_round(kind, sync_at_once(warehouse, emulator, writers), len(FINISHED))
        assert warehouse.committed() == FINISHED  # asserts each item once, jobs = items

        # Changed jobs: each replaced once, whoever loads it.
        changed = changed_docs()
        for doc in changed:
            emulator.add_job(doc)
        expected = {**FINISHED, **expected_rows(changed)}
        assert expected != FINISHED
        check_round(kind, sync_at_once(warehouse, emulator, writers), len(CHANGED))
        assert warehouse.committed() == expected
