"""input_index back to the URL sent, under either numbering the API may use."""

from __future__ import annotations

import pytest

from batch_export.errors import ResponseShapeError
from batch_export.scraping.join import BatchJoin

SENT = ["https://a.example/", "bad", "https://b.example/", "bad", "https://c.example/"]


def test_nothing_refused_is_plain_numbering_even_for_rewritten_urls() -> None:
    join = BatchJoin(["https://a.example", "https://b.example"], [])
    join.settle([(0, "https://a.example/"), (1, "https://b.example/")])
    assert join.position(1, "https://b.example/") == 1


def test_numbered_among_the_accepted_urls() -> None:
    join = BatchJoin(SENT, ["bad", "bad"])
    join.settle([(0, SENT[0]), (1, SENT[2]), (2, SENT[4])])
    assert [join.position(i, u) for i, u in [(0, SENT[0]), (1, SENT[2]), (2, SENT[4])]] == [0, 2, 4]
    assert join.refused_positions() == [1, 3]


def test_numbered_among_the_urls_sent() -> None:
    join = BatchJoin(SENT, ["bad", "bad"])
    join.settle([(0, SENT[0]), (2, SENT[2]), (4, SENT[4])])
    assert join.position(4, SENT[4]) == 4


def test_items_that_fit_no_numbering_are_refused() -> None:
    join = BatchJoin(SENT, ["bad", "bad"])
    with pytest.raises(ResponseShapeError, match="do not match the batch sent: 5 URLs, 2 refused"):
        join.settle([(0, SENT[0]), (1, "https://elsewhere.example/")])


def test_refused_urls_that_were_not_sent_do_not_fit() -> None:
    assert BatchJoin(SENT, ["bad", "bad", "bad"]).fits is False
    assert BatchJoin(SENT, ["other"]).fits is False
    assert BatchJoin(SENT, ["bad"]).fits is True
