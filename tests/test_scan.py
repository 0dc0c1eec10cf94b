"""The page scan (batch_export.flatten.scan): one pass for a page of documented fields, two for
any other, the job's fields checked once for as long as the pages repeat them.

The rows both roads make of any page are held alike in tests/test_page_batches.py; these
tests hold what the scan itself decides: the road, the indexes and the job's status.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from batch_export.errors import ResponseShapeError
from batch_export.flatten.scan import PageScanner, scan_indexes
from tests.scripted import item, job_body


def _page(items: list[dict[str, Any]], **fields: Any) -> bytes:
    return json.dumps(job_body("j1", items, **fields)).encode()


def test_a_page_of_documented_fields_takes_the_chunked_road() -> None:
    page = PageScanner("j1", page_size=50)(_page([item(3), item(4)]), "u", 1)
    assert page.body is not None and page.indexes == [3, 4]
    assert page.job is not None
    assert (page.job.job_id, page.job.status, page.job.total_urls) == ("j1", "completed", 2)
    assert page.job.extra == {}


def test_a_page_with_a_field_of_its_own_still_takes_the_chunked_road() -> None:
    # Read in two passes: the field is kept with the job's status, as the general road keeps it.
    page = PageScanner("j1", page_size=50)(_page([item(0)], region="eu"), "u", 1)
    assert page.body is not None and page.indexes == [0]
    assert page.job is not None and page.job.extra == {"region": "eu"}


def test_a_page_without_results_takes_no_road_of_the_scan() -> None:
    body = json.dumps({k: v for k, v in job_body("j1", []).items() if k != "results"}).encode()
    assert scan_indexes(body, "j1") is None
    with pytest.raises(ResponseShapeError, match="results"):
        PageScanner("j1", page_size=50)(body, "u", 1)


def test_results_given_twice_are_read_as_the_last() -> None:
    # As a JSON object's last value for a key is the one every reader of the package keeps.
    body = b'{"job_id": "j1", "results": [{"input_index": 0}], "results": [{"input_index": 1}]}'
    page = PageScanner("j1", page_size=50)(body, "u", 1)
    assert page.indexes == [1]
    assert scan_indexes(body, "j1") == [1]


def test_pages_that_repeat_the_job_fields_share_one_status() -> None:
    scan = PageScanner("j1", page_size=2)
    first, second = (scan(_page([item(n)]), "u", n + 1) for n in (0, 1))
    assert first.job is second.job


def test_a_page_whose_job_fields_differ_is_checked_again() -> None:
    scan = PageScanner("j1", page_size=2)
    first = scan(_page([item(0)]), "u", 1)
    later = scan(_page([item(1)], completed_urls=0, failed_urls=1), "u", 2)
    assert first.job is not None and later.job is not None
    assert (later.job.completed_urls, later.job.failed_urls) == (0, 1)
    # A page answering for another job, after good ones, is refused, not taken for them.
    with pytest.raises(ResponseShapeError, match="j2"):
        scan(json.dumps(job_body("j2", [item(2)])).encode(), "u", 3)
