"""Every page of GET /v1/batch/jobs, each job once; the time window's parsing."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from batch_export.client import ApiClient
from batch_export.errors import InvalidInputError, ResponseShapeError
from batch_export.retry import RetryPolicy
from batch_export.sync.listing import iter_account_jobs, parse_when
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


def test_an_entry_without_job_id_is_a_clear_error() -> None:
    with pytest.raises(ResponseShapeError) as caught:
        read([Answer(body={"jobs": [{"status": "completed"}], "page_count": 1})])
    assert str(caught.value) == (
        "Expected each entry of GET /v1/batch/jobs page 1 to be an object with a string "
        "`job_id`, got {'status': 'completed'}."
    )


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


@pytest.mark.parametrize("text", ["yesterday", "26/05/2026", "2026-02-30", ""])
def test_parse_when_names_the_option(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_when(text, option="--until")
    assert str(caught.value) == (
        f"--until {text!r} is not an ISO date or datetime: use e.g. 2026-05-26 "
        "or 2026-05-26T10:30:00Z (UTC unless an offset is given)."
    )
