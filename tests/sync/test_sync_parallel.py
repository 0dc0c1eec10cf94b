"""Jobs in parallel by default, within one budget of connections shared by every job, and no
round trip more than a job needs: a finished job of up to 50 items is one request."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from batch_export.connection import Connection
from batch_export.fetch.retry import RetryPolicy
from batch_export.sync import default_jobs, sync
from batch_export.testing import Emulator, Faults
from tests.conftest import CANARY_KEY
from tests.sync.conftest import account_docs, expected_rows, small_docs
from tests.sync.readers import connect, reader_view

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

SMALL = expected_rows(small_docs())
EXPECTED = expected_rows(account_docs())


def test_a_small_finished_job_costs_one_request(small_account: Emulator, tmp_path: Path) -> None:
    connection = Connection(base_url=small_account.base_url, api_key=CANARY_KEY)
    report = sync(tmp_path, connection=connection)
    assert report.exit_code == 0 and len(report.exported) == len(SMALL)
    asked = Counter(r.path for r in small_account.requests if r.path != "/v1/batch/jobs")
    assert asked == {f"/v1/batch/{job_id}": 1 for job_id in SMALL}  # no status probe
    page_sizes = {
        (r.path == "/v1/batch/jobs", r.query["page_size"]) for r in small_account.requests
    }
    assert page_sizes == {(True, "100"), (False, "50")}  # each endpoint's largest page


def test_jobs_share_one_budget_of_connections(tmp_path: Path) -> None:
    with Emulator(jobs=account_docs(), api_key=CANARY_KEY, faults=Faults(latency_ms=20)) as emu:
        connection = Connection(base_url=emu.base_url, api_key=CANARY_KEY, concurrency=3)
        report = sync(tmp_path, connection=connection, jobs=12)
        assert emu.max_in_flight == 3  # 12 jobs at once, never more than 3 requests
    assert report.exit_code == 0
    assert reader_view(str(tmp_path), EXPECTED, connect()).committed == EXPECTED


def test_jobs_run_in_parallel_by_default(small_account: Emulator, tmp_path: Path) -> None:
    small_account.set_faults(Faults(latency_ms=30))
    connection = Connection(base_url=small_account.base_url, api_key=CANARY_KEY)
    assert default_jobs(connection) == connection.concurrency == 8
    small_account.reset_stats()
    report = sync(tmp_path, connection=connection)
    assert report.exit_code == 0
    assert small_account.max_in_flight > 4  # one job at a time would keep it at 1


def test_a_429_storm_slows_every_job_and_loses_none(tmp_path: Path) -> None:
    faults = Faults(seed=3, throttle_rate=0.3, retry_after=["0"])
    with Emulator(jobs=small_docs(), api_key=CANARY_KEY, faults=faults) as emu:
        connection = Connection(
            base_url=emu.base_url,
            api_key=CANARY_KEY,
            retry=RetryPolicy(attempts=12, base_delay=0.001, max_delay=0.01),
        )
        client = connection.client()
        with client:
            report = sync(tmp_path, connection=connection, client=client)
        throttled = sum(r.status == 429 for r in emu.requests)
    assert throttled > 5 and client.limit.lowest < connection.concurrency  # one shared limit
    assert report.exit_code == 0
    assert reader_view(str(tmp_path), SMALL, connect()).committed == SMALL
