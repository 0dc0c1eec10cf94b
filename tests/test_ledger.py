"""ledger.py: what proves a job's results whole (the fetcher's end-to-end cases are in
test_fetcher.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch_export.errors import IncompleteResultsError, ResponseShapeError
from batch_export.fetch.ledger import Ledger, Seen
from batch_export.frame import read_job
from batch_export.job import JobStatus
from tests.conftest import CANARY_KEY
from tests.scripted import item, paged, scripted_server


def test_an_index_is_a_position_in_the_submitted_list() -> None:
    unbounded = Ledger("j1", expected=2, page_size=2)  # length of the list unknown
    assert unbounded.problems(1, [0, 7]) == []
    assert unbounded.problems(1, [-3, 0]) == ["input_index -3 is not a position (0 or more)"]


def test_a_whole_job_is_proven() -> None:
    ledger = Ledger("j1", expected=5, page_size=2)
    for page, indexes in ((1, [0, 1]), (2, [2, 3]), (3, [4])):
        assert ledger.problems(page, indexes) == []
        ledger.accept(page, indexes)
    ledger.prove_whole()


@pytest.mark.parametrize(
    ("pages", "expected_text"),
    [
        ([(1, [0, 1]), (2, [2])], "missing input_index 3"),
        ([(1, [0, 1]), (2, [3, 3])], "input_index 3 came more than once"),
        ([(1, [0, 1]), (2, [1, 2])], "input_index 1 came more than once"),
        ([(1, [0, 1]), (2, [2, 3, 9])], "page 2 held 3 items where 2 were expected"),
        ([(1, [0, 1]), (2, [-1, 2])], r"input_index -1 is not a position \(0 to 5\)"),
        ([(1, [0, 1]), (2, [2, 10**12])], "input_index 1000000000000 is not a position"),
    ],
)
def test_what_does_not_fit_is_named(pages: list[tuple[int, list[int]]], expected_text: str) -> None:
    ledger = Ledger("j1", expected=4, page_size=2, positions=6)
    with pytest.raises(IncompleteResultsError, match=expected_text):
        for page, indexes in pages:
            ledger.accept(page, indexes)
        ledger.prove_whole()


@given(
    expected=st.integers(0, 200),
    batches=st.lists(st.lists(st.integers(-5, 260), max_size=12), max_size=8),
)
def test_the_ledgers_seen_indexes_behave_as_a_set(expected: int, batches: list[list[int]]) -> None:
    # A byte a slot for 0..expected-1, a set for whatever else a server sends.
    seen, plain = Seen(expected), set[int]()
    for batch in batches:
        assert seen.common(set(batch)) == plain & set(batch)
        seen.update(batch)
        plain.update(batch)
        assert len(seen) == len(plain)
        assert seen.highest() == max([-1, *plain])  # -1 when nothing at or above 0 was seen
        assert all((i in seen) == (i in plain) for i in range(-5, 261))


def _job(**fields: object) -> JobStatus:
    counters = {"completed_urls": 3, "failed_urls": 1, "cancelled_urls": 0, "pending_urls": 0}
    return JobStatus(job_id="j1", status="completed", **(counters | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "expected", "positions"),
    [
        ({"total_urls": 4}, 4, 4),
        ({"total_urls": 4, "invalid_urls": ("htp://x", "y")}, 4, 6),  # accepted + invalid
        ({"total_urls": None, "invalid_urls": ("htp://x",)}, 4, 5),  # the counters alone
        ({"total_urls": 4, "pending_urls": None}, 4, 4),  # total_urls alone
    ],
)
def test_total_urls_counts_the_accepted_urls(
    fields: dict[str, object], expected: int, positions: int
) -> None:
    ledger = Ledger.for_job(_job(**fields), page_size=50)
    assert (ledger.expected, ledger.positions) == (expected, positions)


@pytest.mark.parametrize("total", [5, 3])
def test_counters_that_do_not_add_up_to_total_urls_are_refused(total: int) -> None:
    # The old reading (total_urls counting the one invalid URL) is 5: no longer taken.
    with pytest.raises(ResponseShapeError) as caught:
        Ledger.for_job(_job(total_urls=total, invalid_urls=("htp://x",)), page_size=50)
    assert str(caught.value) == (
        f"The item counters of job j1 add up to 4, but its `total_urls` says {total} URLs were "
        "accepted: its results cannot be proven whole; rerun later, and report the job id if it "
        "persists."
    )


def test_a_job_without_counters_is_read_as_the_sdk_reads_it_empty() -> None:
    ledger = Ledger.for_job(JobStatus(job_id="j1", status="completed"), page_size=50)
    assert (ledger.expected, ledger.positions) == (0, 0)
    ledger.accept(1, [])
    ledger.prove_whole()
    with pytest.raises(IncompleteResultsError, match="page 1 held 1 items where 0 were expected"):
        Ledger.for_job(JobStatus(job_id="j1", status="completed"), page_size=50).accept(1, [0])


def test_an_export_refuses_counters_that_disagree_with_total_urls() -> None:
    items = [item(i) for i in range(3)]
    with scripted_server(paged("j1", items, total_urls=4, invalid_urls=["htp://x"])) as server:
        with pytest.raises(ResponseShapeError) as caught:
            read_job("j1", base_url=server.base_url, api_key=CANARY_KEY, progress=False)
    assert "add up to 3, but its `total_urls` says 4" in str(caught.value)
    assert caught.value.exit_code == 7
