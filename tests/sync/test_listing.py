"""Every page of GET /v1/batch/jobs, each job once; the time window's parsing."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from batch_export.errors import InvalidInputError
from batch_export.fetch.client import ApiClient
from batch_export.fetch.retry import RetryPolicy
from batch_export.sync.listing import ListedJob, iter_account_jobs, parse_when
from tests.scripted import Answer, scripted_server

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
