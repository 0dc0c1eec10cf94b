"""ledger.py: what proves a job's results whole (the fetcher's end-to-end cases are in
test_fetcher.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch_export.errors import IncompleteResultsError
from batch_export.fetch.ledger import Ledger, Seen


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
