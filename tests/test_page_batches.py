"""Both roads from a page's bytes to Arrow give the same rows, or the fast one steps aside.

:func:`read_page_batch` (pyarrow's JSON reader) must either decline a page or produce
exactly what the general road (:func:`decode_json`, the job parser, :func:`flatten_items`)
makes of it: the same batch, the same input indexes.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_export.errors import ApiError
from batch_export.fetch.client import ApiClient, decode_json
from batch_export.fetch.pages import iter_pages, iter_result_pages, wait_for_job
from batch_export.fetch.retry import RetryPolicy
from batch_export.flatten.chunks import read_in_chunks
from batch_export.flatten.items import flatten_items, read_page_batch
from batch_export.flatten.scan import PageScanner
from batch_export.job import ResultPage
from tests.conftest import CANARY_KEY
from tests.scripted import Answer, item, job_body, paged, scripted_server


def general_road(body: bytes) -> tuple[pa.RecordBatch, list[int]] | None:
    """What the general road makes of a page, or None where it raises."""
    try:
        page = ResultPage.from_response(decode_json(body, "u"), job_id="j1", page=1, page_size=50)
        indexes = page.input_indexes()
        return flatten_items("j1", page.results, page=1), indexes
    except ApiError:
        return None


def assert_same_or_declined(body: bytes) -> bool:
    """True when the fast road took the page (and agreed with the general road)."""
    fast = read_page_batch(body, "j1")
    if fast is None:
        return False
    general = general_road(body)
    assert general is not None, f"the fast road took a page the general road refuses: {body!r}"
    assert fast[1] == general[1]
    assert fast[0].schema == general[0].schema
    assert fast[0].to_pylist() == general[0].to_pylist()
    assert fast[0].equals(general[0])
    return True


def page(*items: dict[str, Any], **fields: Any) -> bytes:
    return json.dumps(job_body("j1", list(items), **fields)).encode()


def test_a_documented_page_takes_the_fast_road() -> None:
    linked = item(1)
    linked["data"]["links"] = ["https://a.test/", None, "https://b.test/é"]
    failed = {"input_index": 2, "url": "u", "status": "failed", "error_code": "x", "data": None}
    body = page(item(0), linked, failed, {"input_index": 3, "metadata": None, "data": {}})
    assert assert_same_or_declined(body)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("unknown item field", page(item(0, region="eu"))),
        ("unknown data field", page({**item(0), "data": {"markdown": "a", "shot": "b"}})),
        ("unknown metadata field", page({**item(0), "metadata": {"cache": {"hit": True}}})),
        ("number as url", page(item(0, url=123))),
        ("string as links", page({**item(0), "data": {"links": "https://a.test/"}})),
        ("numbers in links", page({**item(0), "data": {"links": [1, 2]}})),
        ("float http_status", page({**item(0), "metadata": {"http_status": 200.0}})),
        ("int32 overflow", page({**item(0), "metadata": {"http_status": 2**31}})),
        ("negative index", page(item(-1))),
        ("null index", page(item(0, input_index=None))),
        ("string index", page(item(0, input_index="0"))),
        ("bool index", page(item(0, input_index=True))),
        ("index past int64", page(item(2**63))),
        ("item not an object", page(item(0)).replace(b'"results": [{', b'"results": [1, {')),
        ("results null", b'{"status": "completed", "results": null}'),
        ("results missing", json.dumps({"job_id": "j1", "status": "completed"}).encode()),
        ("negative counter", page(item(0), total_urls=-1)),
        ("string counter", page(item(0), completed_urls="1")),
        ("negative tokens", page(item(0), token_summary={"tokens_charged_total": -2})),
        ("duplicate key", b'{"results": [{"input_index": 0, "url": "a", "url": "b"}]}'),
        ("byte-order mark", b"\xef\xbb\xbf" + page(item(0))),
        ("invalid UTF-8", page(item(0)).replace(b"Page 0", b"Page \xff0")),
        ("lone surrogate", page(item(0)).replace(b"Page 0", b"Page \\ud800")),
        ("two objects", page(item(0)) + b"\n" + page(item(1))),
        ("trailing garbage", page(item(0)) + b" x"),
        ("cut short", page(item(0))[:-10]),
        ("empty", b""),
        ("only spaces", b"   "),
        ("an array", b"[]"),
        ("NaN", b'{"results": [{"input_index": 0, "url": NaN}]}'),
    ],
)
def test_odd_pages_are_declined(name: str, body: bytes) -> None:
    assert read_page_batch(body, "j1") is None, name


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("pretty-printed", json.dumps(job_body("j1", [item(0), item(1)]), indent=2).encode()),
        ("escaped key", b'{"results": [{"inp\\u0075t_index": 3, "url": "\\u00e9\\n"}]}'),
        ("surrogate pair", page(item(0)).replace(b"Page 0", b"Page \\ud83d\\ude00")),
        ("NUL in text", page(item(0)).replace(b"Page 0", b"Page \\u0000")),
        ("minus zero", b'{"results": [{"input_index": -0}]}'),
        ("unknown job fields", page(item(0), batch_config={"headers": {"X-A": "b"}}, eta=None)),
        # The job's own fields are checked by the scan, not typed by pyarrow's reader.
        ("mixed-type job field", page(item(0), batch_config={"headers": {"X-A": [1, "b"]}})),
        ("no counters", b'{"results": [{"input_index": 7}]}'),
        ("empty page", page()),
    ],
)
def test_unusual_but_documented_pages_agree(name: str, body: bytes) -> None:
    assert assert_same_or_declined(body), name


_text = st.text(st.characters(codec="utf-8"), max_size=30) | st.none()
_ints = st.integers(min_value=-(2**40), max_value=2**40) | st.none()
_item = st.fixed_dictionaries(
    {"input_index": st.integers(min_value=0, max_value=10**6)},
    optional={
        "url": _text,
        "status": st.sampled_from(["completed", "failed", "cancelled"]) | st.none(),
        "error_code": _text,
        "error_message": _text | _ints,
        "data": st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "markdown": _text,
                "html": _text,
                "links": st.none() | st.lists(_text, max_size=3),
                "screenshot": _text,
            },
        ),
        "metadata": st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "http_status": st.integers(min_value=-(2**31), max_value=2**31 - 1) | st.none(),
                "duration_ms": _ints,
                "retry_count": st.integers(min_value=0, max_value=10),
                "tokens_charged": _ints | st.floats(allow_nan=False),
            },
        ),
        "region": _text,
    },
)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(_item, max_size=6), ascii_only=st.booleans())
def test_any_page_is_read_alike_by_both_roads(
    items: list[dict[str, Any]], ascii_only: bool
) -> None:
    body = json.dumps(job_body("j1", items), ensure_ascii=ascii_only).encode()
    assert_same_or_declined(body)
    assert_same_or_declined(orjson.dumps(job_body("j1", items)))


def _client(base_url: str) -> ApiClient:
    return ApiClient(
        base_url=base_url,
        api_key=CANARY_KEY,
        retry=RetryPolicy(attempts=2, jitter=0.0),
        sleep=lambda _: None,
    )


def test_a_job_mixing_both_kinds_of_page_reads_as_the_general_road_does() -> None:
    items = [item(i) for i in range(95)]
    items[31]["region"] = "eu"  # page 4 of 10 goes the general road
    items[60]["data"]["links"] = ["https://a.test/"]
    with scripted_server(paged("j1", items)) as server:
        client = _client(server.base_url)
        job = wait_for_job(client, "j1")
        pages = iter_pages(
            client, job, PageScanner(job.job_id, page_size=10), page_size=10, concurrency=3
        )
        fast = list(read_in_chunks(pages, chunk_bytes=3_000))
        slow = [
            flatten_items("j1", p.results, page=p.page)
            for p in iter_result_pages(client, job, page_size=10, concurrency=3)
        ]
    assert pa.Table.from_batches(fast).equals(pa.Table.from_batches(slow))
    assert pa.Table.from_batches(fast).column("extra").null_count == 94


def test_a_shape_error_still_names_the_item_and_page() -> None:
    items = [item(i) for i in range(12)]
    items[11]["url"] = 5
    with scripted_server(paged("j1", items)) as server:
        client = _client(server.base_url)
        job = wait_for_job(client, "j1")
        pages = iter_pages(
            client, job, PageScanner(job.job_id, page_size=10), page_size=10, concurrency=2
        )
        with pytest.raises(ApiError) as caught:
            list(read_in_chunks(pages))
    assert str(caught.value) == (
        "Expected `url` to be a string in item input_index 11 (url 5) on page 2 of job j1, got 5."
    )


def test_a_cut_short_page_is_fetched_again() -> None:
    body = job_body("j1", [item(0)])
    whole = Answer(body=body)
    cut = Answer(body=json.dumps(body).encode()[:-5])  # a clean 200, JSON cut short
    with scripted_server([whole, cut, whole]) as server:
        client = _client(server.base_url)
        job = wait_for_job(client, "j1")
        pages = list(
            iter_pages(
                client, job, PageScanner(job.job_id, page_size=10), page_size=10, concurrency=1
            )
        )
    assert [p.input_indexes() for p in pages] == [[0]]
    assert client.stats.to_dict()["retries_by_reason"] == {"invalid_json": 1}


@settings(max_examples=200, deadline=None)
@given(
    pages=st.lists(st.lists(_item, max_size=5), min_size=1, max_size=5),
    pretty=st.booleans(),
    chunk_bytes=st.sampled_from([1, 500, 1 << 20]),
)
def test_pages_read_in_chunks_give_the_rows_of_the_general_road(
    pages: list[list[dict[str, Any]]], pretty: bool, chunk_bytes: int
) -> None:
    """Any mix of pages, chunked any way: the rows of the general road, page after page."""
    scan = PageScanner("j1", page_size=50)
    bodies = [
        json.dumps(job_body("j1", items), indent=2 if pretty else None).encode() for items in pages
    ]
    expected = [general_road(body) for body in bodies]
    if any(result is None for result in expected):
        with pytest.raises(ApiError):
            list(read_in_chunks([scan(b, "u", n) for n, b in enumerate(bodies, 1)]))
        return
    scanned = [scan(body, "u", number) for number, body in enumerate(bodies, 1)]
    read = pa.Table.from_batches(list(read_in_chunks(scanned, chunk_bytes=chunk_bytes)))
    general = pa.Table.from_batches([result[0] for result in expected if result is not None])
    assert read.equals(general)
