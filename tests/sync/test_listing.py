"""Every page of GET /v1/batch/jobs, each job once, within its bounds; the time window sent
as the listing's filters, and its parsing."""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from batch_export.errors import InvalidInputError, ResponseShapeError
from batch_export.fetch.client import ApiClient
from batch_export.fetch.retry import RetryPolicy
from batch_export.sync.listing import (
    ListedJob,
    ListingStats,
    TimeWindow,
    iter_account_jobs,
    parse_when,
)
from batch_export.testing import Emulator, generate_account
from tests.scripted import Answer, scripted_server
from tests.test_hostile import LAUNCHER

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

KEY = "listing-key"


def entry(number: int, status: str = "completed") -> dict[str, Any]:
    return {
        "job_id": f"job-{number:03d}",
        "status": status,
        "accepted_urls": 3,
        "completed_urls": 3,
        "failed_urls": 0,
        "config": {},
        "created_at": f"2026-05-26T10:{number % 60:02d}:00Z",
        "completed_at": None,
    }


def listing(entries: list[dict[str, Any]], *, with_count: bool = True, shift: int = 0) -> Any:
    """A job list served page by page; ``shift`` jobs appear before page 2 is read."""

    def answer(_: int, path: str, query: dict[str, str]) -> Answer:
        assert path == "/v1/batch/jobs"
        page, size = int(query["page"]), int(query["page_size"])
        current = [entry(900 + n) for n in range(shift)] + entries if page > 1 else entries
        body: dict[str, Any] = {"jobs": current[(page - 1) * size : page * size]}
        if with_count:
            body.update(page=page, page_size=size, page_count=math.ceil(len(current) / size))
        return Answer(body=body)

    return answer


def read(script: Any, page_size: int = 10) -> list[str]:
    with scripted_server(script) as server:
        client = ApiClient(base_url=server.base_url, api_key=KEY, retry=RetryPolicy(attempts=1))
        return [job.job_id for job in iter_account_jobs(client, page_size=page_size)]


@pytest.mark.parametrize("count", [0, 1, 10, 11, 35])
@pytest.mark.parametrize("with_count", [True, False])
def test_every_job_of_every_page_once(count: int, with_count: bool) -> None:
    entries = [entry(n) for n in range(count)]
    assert read(listing(entries, with_count=with_count)) == [e["job_id"] for e in entries]


def test_a_job_pushed_onto_the_next_page_is_kept_once() -> None:
    entries = [entry(n) for n in range(25)]
    got = read(listing(entries, shift=3))
    assert len(got) == len(set(got))
    assert set(got) == {e["job_id"] for e in entries}


def test_an_entry_without_a_usable_job_id_comes_with_its_problem() -> None:
    bad = [{"status": "completed"}, {"job_id": "a/../b"}, "text", {"job_id": "x" * 129}]
    entries = [entry(1), *bad, entry(2)]
    with scripted_server([Answer(body={"jobs": entries, "page_count": 1})]) as server:
        client = ApiClient(base_url=server.base_url, api_key=KEY, retry=RetryPolicy(attempts=1))
        jobs = list(iter_account_jobs(client, page_size=10))
    assert [job.job_id for job in jobs] == [
        "job-001",
        "(page 1 entry 1)",
        "(page 1 entry 2)",
        "(page 1 entry 3)",
        "(page 1 entry 4)",
        "job-002",
    ]
    assert [job.problem is None for job in jobs] == [True, False, False, False, False, True]
    assert jobs[1].problem == (
        "Expected entry 1 of GET /v1/batch/jobs page 1 to be an object with a plain `job_id` "
        "(letters, digits, '-', '_'), got {'status': 'completed'}."
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("completed_urls", [1, 2]),
        ("status", {"nested": True}),
        ("failed_urls", float("nan")),
        ("accepted_urls", 2**64),
        ("completed_at", "9" * 300),
    ],
)
def test_a_listed_field_of_another_kind_is_the_jobs_problem(name: str, value: Any) -> None:
    job = ListedJob.from_entry({**entry(7), name: value}, page=3, position=0)
    assert job.job_id == "job-007" and job.problem is not None
    assert job.problem.startswith(f"Expected `{name}` of job job-007 in GET /v1/batch/jobs to ")


@pytest.mark.parametrize(
    "created_at", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00", "soon", 17, None]
)
def test_a_listed_date_that_cannot_be_placed_is_no_date(created_at: Any) -> None:
    job = ListedJob.from_entry({**entry(7), "created_at": created_at}, page=1)
    assert job.created_at is None and job.problem is None


def test_pages_are_read_in_waves_and_a_lying_page_count_costs_one_wave() -> None:
    entries = [entry(n) for n in range(23)]
    asked: list[int] = []

    def answer(_: int, path: str, query: dict[str, str]) -> Answer:
        page, size = int(query["page"]), int(query["page_size"])
        asked.append(page)
        body = {"jobs": entries[(page - 1) * size : page * size], "page_count": 10_000}
        return Answer(body=body)

    with scripted_server(answer) as server:
        client = ApiClient(base_url=server.base_url, api_key=KEY, retry=RetryPolicy(attempts=1))
        jobs = list(iter_account_jobs(client, page_size=5, concurrency=4))
    assert [job.job_id for job in jobs] == [e["job_id"] for e in entries]
    assert sorted(asked) == list(range(1, 10))  # 5 pages of jobs, then one wave of 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-26", datetime(2026, 5, 26, tzinfo=UTC)),
        ("2026-05-26T10:30:00Z", datetime(2026, 5, 26, 10, 30, tzinfo=UTC)),
        ("2026-05-26T10:30:00", datetime(2026, 5, 26, 10, 30, tzinfo=UTC)),
        ("2026-05-26T12:30:00+02:00", datetime(2026, 5, 26, 10, 30, tzinfo=UTC)),
        (" 2026-05-26 ", datetime(2026, 5, 26, tzinfo=UTC)),
    ],
)
def test_parse_when_reads_dates_and_datetimes_as_utc(text: str, expected: datetime) -> None:
    assert parse_when(text, option="--since") == expected


@pytest.mark.parametrize(
    "text", ["yesterday", "26/05/2026", "2026-02-30", "", "0001-01-01T00:00:00+01:00"]
)
def test_parse_when_names_the_option(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_when(text, option="--until")
    assert str(caught.value) == (
        f"--until {text!r} is not an ISO date or datetime: use e.g. 2026-05-26 "
        "or 2026-05-26T10:30:00Z (UTC unless an offset is given)."
    )


# --- the window, sent as the listing's filters --------------------------------------------


def test_the_window_is_sent_as_the_listing_filters() -> None:
    window = TimeWindow(
        since=datetime(2026, 5, 1, tzinfo=UTC), until=datetime(2026, 6, 1, tzinfo=UTC)
    )
    with scripted_server([Answer(body={"jobs": [entry(1)], "page_count": 1})]) as server:
        client = ApiClient(base_url=server.base_url, api_key=KEY, retry=RetryPolicy(attempts=1))
        stats = ListingStats()
        assert len(list(iter_account_jobs(client, window=window, stats=stats))) == 1
    assert [seen.query for seen in server.seen] == [
        {
            "page": "1",
            "page_size": "100",
            "start_date": "2026-05-01T00:00:00Z",
            "end_date": "2026-05-31T23:59:59.999999Z",
        }
    ]
    assert (stats.requests, stats.entries) == (1, 1)


def test_a_job_read_by_id_has_the_token_of_its_listing_entry() -> None:
    docs = generate_account(jobs=12, processing=0, seed=5, items=(1, 3), markdown_bytes=20)
    with Emulator(jobs=docs, api_key=KEY) as emulator:
        client = ApiClient(base_url=emulator.base_url, api_key=KEY)
        listed = {job.job_id: job for job in iter_account_jobs(client)}
        for job_id, job in listed.items():
            read = ListedJob.from_status(client.fetch_page(job_id, page=1, page_size=1).job)
            assert (read.token, read.created_at, read.status) == (
                job.token,
                job.created_at,
                job.status,
            )
    assert len(listed) == 12


# --- the listing's bounds -------------------------------------------------------------------


def endless(*, distinct: bool) -> Any:
    """A listing that claims 20,000 pages of 50 jobs: distinct ones, or the same 50 again."""

    def answer(_: int, path: str, query: dict[str, str]) -> Answer:
        page = int(query["page"])
        numbers = range(page * 50, page * 50 + 50) if distinct else range(50)
        return Answer(
            body={
                "jobs": [entry(n) | {"job_id": f"job-{n:07d}"} for n in numbers],
                "page_count": 20_000,
            }
        )

    return answer


@pytest.mark.parametrize("distinct", [True, False])
def test_a_listing_past_max_listed_is_refused_in_one_sentence(distinct: bool) -> None:
    with scripted_server(endless(distinct=distinct)) as server:
        client = ApiClient(base_url=server.base_url, api_key=KEY, retry=RetryPolicy(attempts=1))
        stats = ListingStats()
        with pytest.raises(ResponseShapeError) as caught:
            for _ in iter_account_jobs(client, max_listed=1_000, concurrency=4, stats=stats):
                pass
    # 1,000 entries fill 20 pages of 50: the 21st is past the bound, its wave the last asked.
    assert str(caught.value) == (
        "GET /v1/batch/jobs listed more than 1,000 jobs (21 pages), more than one sync reads "
        "(--max-listed): sync the account in parts with --since and --until, or raise "
        "--max-listed."
    )
    assert stats.entries == 1_050 and len(server.seen) <= 21 + 4
    assert caught.value.exit_code == 7


def test_a_listed_job_is_kept_in_a_few_hundred_bytes() -> None:
    entries = [
        entry(n)
        | {
            "job_id": f"9d7b2c8e-8a4b-4c10-9af3-{n:012d}",
            "completed_at": f"2026-05-26T11:{n % 60:02d}:{n % 59:02d}Z",
        }
        for n in range(20_000)
    ]
    body = json.dumps(entries)
    gc.collect()
    tracemalloc.start()
    try:
        jobs = [ListedJob.from_entry(one, page=1) for one in json.loads(body)]
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(jobs) == 20_000 and held / len(jobs) < 500  # 437 measured; a dict each: 653


def test_a_hostile_listing_ends_in_one_sentence_in_bounded_memory_and_time(tmp_path: Path) -> None:
    """`sync --dry-run` against a listing that claims 20,000 pages of 50 distinct jobs (a
    million): the plan took 1.13 GB before the bound; it stops at --max-listed now."""
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper() and "GEONODE" not in k}
    with (
        scripted_server(endless(distinct=True)) as server,
        tempfile.TemporaryDirectory() as scratch,
    ):
        env["PEAK_RSS_FILE"] = str(Path(scratch) / "peak")
        command = [sys.executable, "-m", "batch_export", "sync", "--dest", str(tmp_path / "dest")]
        command += ["--dry-run", "--max-listed", "20000", "--base-url", server.base_url]
        command += ["--api-key", KEY, "--max-retries", "0", "--log-format", "json"]
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, *command],
            capture_output=True,
            env=env,
            timeout=120,
            check=False,
        )
        elapsed = time.monotonic() - started
        peak_mb = int((Path(scratch) / "peak").read_text()) / 1024
        asked = len(server.seen)
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 7, lines[-3:]
    assert lines[-1] == (
        "Error: GET /v1/batch/jobs listed more than 20,000 jobs (401 pages), more than one sync "
        "reads (--max-listed): sync the account in parts with --since and --until, or raise "
        "--max-listed."
    )
    assert all(line.startswith("{") for line in lines[:-1]) and "Traceback" not in lines[-1]
    assert asked <= 401 + 8 and elapsed < 90
    assert peak_mb < 250, f"peak RSS {peak_mb:.0f} MB"
    assert not (tmp_path / "dest").exists()
