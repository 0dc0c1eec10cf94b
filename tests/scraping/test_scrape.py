"""scrape end to end against the emulator: one row per line, each batch paid for once."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batch_export.errors import InsufficientBalanceError, InvalidInputError
from batch_export.scraping import BatchOptions, ScrapeReport, plan, scrape, scrape_to_file
from batch_export.testing import Emulator
from tests.conftest import CANARY_KEY
from tests.scraping.conftest import (
    FAST,
    assert_created_once,
    assert_table,
    expected_status,
    input_lines,
    posts,
    read_table,
    round0_digests,
    write_input,
)

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

Desk = Callable[..., Emulator]


def run(emulator: Emulator, urls: Path, out: Path, **options: Any) -> ScrapeReport:
    sleeps: list[float] = []
    report = scrape_to_file(
        urls,
        out,
        base_url=emulator.base_url,
        api_key=CANARY_KEY,
        policy=FAST,
        sleep=sleeps.append,
        **options,
    )
    return report


def test_2500_lines_give_one_row_each_and_a_rerun_submits_nothing(
    desk: Desk, tmp_path: Path
) -> None:
    lines = input_lines()
    urls, out = write_input(tmp_path, lines), tmp_path / "pages.parquet"
    emulator = desk()
    report = run(emulator, urls, out, resubmit=0)
    assert_table(read_table(out), lines, resubmitted=False)
    assert (report.rows, report.batches, report.posts, report.submitted) == (2500, 3, 3, 3)
    assert report.by_status["invalid"] == 40
    assert_created_once(emulator, round0_digests(lines))
    first = out.read_bytes()

    again = run(emulator, urls, out, resubmit=0)
    assert (again.posts, again.submitted, again.found_again) == (0, 0, 0)
    assert posts(emulator) == 3
    assert out.read_bytes() == first


def test_a_resubmission_round_turns_passing_failures_into_rows(desk: Desk, tmp_path: Path) -> None:
    lines = input_lines()
    urls, out = write_input(tmp_path, lines), tmp_path / "pages.parquet"
    emulator = desk()
    report = run(emulator, urls, out, resubmit=1)
    table = read_table(out)
    assert_table(table, lines, resubmitted=True)
    passing = [
        line
        for line in lines
        if expected_status(line, resubmitted=False) == "failed"
        and expected_status(line, resubmitted=True) == "completed"
    ]
    assert passing, "the seed gives no passing failure to resubmit"
    attempts = dict(
        zip(table.column("line").to_pylist(), table.column("attempts").to_pylist(), strict=True)
    )
    resent = [n for n, a in attempts.items() if a == 2]
    assert len(resent) == len(passing)
    assert {attempts[n] for n, line in enumerate(lines, 1) if not line.startswith("https")} <= {
        0,
        1,
    }
    assert report.rounds == 2
    assert posts(emulator) == 3 + math.ceil(len(passing) / 1000)
    assert run(emulator, urls, out, resubmit=1).posts == 0


def test_a_throttled_post_waits_and_each_batch_is_made_once(desk: Desk, tmp_path: Path) -> None:
    lines = input_lines()
    urls, out = write_input(tmp_path, lines), tmp_path / "pages.csv"
    emulator = desk(post_throttle_rate=0.6)
    report = run(emulator, urls, out, resubmit=0)
    throttled = [r for r in emulator.requests if r.method == "POST" and r.status == 429]
    assert throttled
    assert report.posts == 3 + len(throttled)
    assert_created_once(emulator, round0_digests(lines))


def test_a_lost_answer_is_found_again_not_paid_twice(desk: Desk, tmp_path: Path) -> None:
    lines = input_lines()
    urls, out = write_input(tmp_path, lines), tmp_path / "pages.jsonl"
    emulator = desk(post_drop_rate=0.7)
    report = run(emulator, urls, out, resubmit=0)
    dropped = [r for r in emulator.requests if r.method == "POST" and r.fault == "drop"]
    assert dropped
    assert report.found_again == len(dropped)
    assert_created_once(emulator, round0_digests(lines))
    state = json.loads((tmp_path / "pages.jsonl.scrape.json").read_text())
    assert sum(batch["found_again"] for batch in state["batches"]) == len(dropped)


def test_identical_batches_each_get_their_own_job_after_lost_answers(
    desk: Desk, tmp_path: Path
) -> None:
    lines = [f"https://a.example/{n % 5}" for n in range(20)]  # four batches of the same five
    urls, out = write_input(tmp_path, lines), tmp_path / "pages.parquet"
    emulator = desk(post_drop_rate=1.0, failure_rate=0.0)
    run(emulator, urls, out, resubmit=0, options=BatchOptions(batch_size=5))
    table = read_table(out)
    assert table.column("status").to_pylist() == ["completed"] * 20
    assert emulator.desk is not None and len(emulator.desk.created) == 4
    assert len(set(table.column("job_id").to_pylist())) == 4


def test_402_stops_at_once_keeps_the_state_and_a_rerun_goes_on(desk: Desk, tmp_path: Path) -> None:
    lines = input_lines()
    urls, out = write_input(tmp_path, lines), tmp_path / "pages.parquet"
    emulator = desk(balance=1_500)
    with pytest.raises(InsufficientBalanceError) as caught:
        run(emulator, urls, out, resubmit=0)
    assert caught.value.exit_code == 11
    assert not out.exists()
    state = json.loads((tmp_path / "pages.parquet.scrape.json").read_text())
    with_jobs = sum(batch["job_id"] is not None for batch in state["batches"])
    assert 1 <= with_jobs < 3  # the 480-URL batch may fit the balance, if it came first
    refused = [r for r in emulator.requests if r.status == 402]
    assert len(refused) == 1 and posts(emulator) == with_jobs + 1  # no POST after the 402
    assert emulator.desk is not None
    emulator.desk.set_settings(emulator.desk.settings.__class__(seed=5, failure_rate=0.1))
    run(emulator, urls, out, resubmit=0)
    assert_table(read_table(out), lines, resubmitted=False)
    assert_created_once(emulator, round0_digests(lines))


def test_a_changed_input_or_option_is_refused_in_one_sentence(desk: Desk, tmp_path: Path) -> None:
    lines = [f"https://a.example/{n}" for n in range(10)]
    urls, out = write_input(tmp_path, lines), tmp_path / "pages.parquet"
    emulator = desk()
    run(emulator, urls, out)
    write_input(tmp_path, [*lines, "https://b.example/"])
    with pytest.raises(InvalidInputError, match=r"was made for another list of URLs \(10 lines"):
        run(emulator, urls, out)
    write_input(tmp_path, lines)
    with pytest.raises(InvalidInputError, match=r"other options \(formats \['markdown'\] then"):
        run(emulator, urls, out, options=BatchOptions(formats=("html",)))
    assert posts(emulator) == 1


def test_the_dry_run_counts_and_submits_nothing(desk: Desk, tmp_path: Path) -> None:
    lines = input_lines()
    said = plan(write_input(tmp_path, lines)).to_text()
    assert said.startswith(
        "2,500 lines: 2,480 URLs to send (40 repeated), 20 invalid; 3 batches of up to 1,000; "
        "at most 2,480 requests charged"
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "urls.txt"]


def test_the_notebook_function_returns_the_typed_frame(desk: Desk, tmp_path: Path) -> None:
    emulator = desk()
    urls = [f"https://a.example/{n}" for n in range(30)] + ["", "https://a.example/0"]
    frame = scrape(
        urls,
        state_path=tmp_path / "s.json",
        base_url=emulator.base_url,
        api_key=CANARY_KEY,
        progress=False,
    )
    assert len(frame) == 32
    assert str(frame["line"].dtype) == "int64[pyarrow]"
    assert str(frame["attempts"].dtype) == "int32[pyarrow]"
    assert frame["status"].iloc[30] == "invalid"
    assert frame.attrs["scrape"]["rows"] == 32


@pytest.mark.parametrize(("limit", "at_once"), [(1, 1), (2, 2), (10, 3)])
def test_batches_at_once_follow_the_free_work_slots(
    desk: Desk, tmp_path: Path, limit: int, at_once: int
) -> None:
    lines = [f"https://a.example/{n}" for n in range(30)]
    urls, out = write_input(tmp_path, lines), tmp_path / "pages.parquet"
    emulator = desk(concurrency_limit=limit, failure_rate=0.0)
    report = run(emulator, urls, out, options=BatchOptions(batch_size=10))
    assert report.at_once == at_once  # three batches: never more than there are
    concurrency = [r for r in emulator.requests if r.path == "/v1/usage/concurrency"]
    assert len(concurrency) == 1
