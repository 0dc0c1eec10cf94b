"""The client held to the provider's SDK: it exports exactly any answer the SDK's models accept.

Hypothesis makes status answers of finished jobs within the models of the provider's SDK
(``BatchStatusResponse`` of geonode-scraper-sdk, pinned in the dev extra): every optional
field absent, null or present; items in the SDK's shape (no ``metadata.retry_count``, no
``data.links``) or the documentation's (with them); ``wait_config`` in the config; timestamps
with offsets and fractions; any failure code, the SDK's or another. The domain is the answers
that are consistent as the SDK reads them: its counters count its items, a counter being
absent or null only where the SDK reads 0 for it.

Each answer is first read by the SDK (so that the test holds its own generator to the
contract), then served page by page by the scripted server, exported to JSONL through the
public API, and the rows compared with the items the answer holds.
"""

from __future__ import annotations

import json
import string
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from geonode_scraper_sdk.models import BatchStatusResponse, ExtractionErrorCode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import batch_export as bx
from tests.conftest import CANARY_KEY
from tests.scripted import Answer, scripted_server

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

ABSENT: Any = object()  # a field left out of the answer
SDK_CODES = [code.value for code in ExtractionErrorCode]
TEXT = st.text(max_size=20)
COUNTERS = ("completed_urls", "failed_urls", "cancelled_urls")


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The field absent, null, or a value of ``strategy``."""
    return st.just(ABSENT) | st.none() | strategy


def obj(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not ABSENT}


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """ISO 8601 with an offset (or Z), with or without a fraction of a second."""
    moment = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
    minutes = draw(st.integers(min_value=-14 * 60, max_value=14 * 60))
    moment = moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    text = moment.isoformat(timespec=draw(st.sampled_from(["seconds", "milliseconds", "auto"])))
    return text.replace("+00:00", "Z") if minutes == 0 and draw(st.booleans()) else text


def batch_configs() -> st.SearchStrategy[dict[str, Any]]:
    proxy = st.builds(
        obj,
        country=maybe(st.text(string.ascii_uppercase, min_size=2, max_size=2)),
        type=maybe(st.sampled_from(["datacenter", "residential", "mix"])),
    )
    wait_config = st.builds(
        obj,
        wait_for=maybe(st.text(max_size=40)),
        wait_timeout=maybe(st.integers(min_value=0, max_value=30_000)),
        wait_until=maybe(st.sampled_from(["commit", "domcontentloaded", "load", "networkidle"])),
    )
    return st.builds(
        obj,
        formats=st.lists(st.sampled_from(["markdown", "html"]), max_size=2, unique=True),
        headers=maybe(st.dictionaries(TEXT, TEXT, max_size=2)),
        proxy=proxy,
        render_js=st.booleans(),
        wait_config=maybe(wait_config),
    )


def items(index: int, status: str) -> st.SearchStrategy[dict[str, Any]]:
    number = st.integers(min_value=0, max_value=10**6)
    data = st.builds(
        obj,
        markdown=maybe(st.text(max_size=60)),
        html=maybe(st.text(max_size=60)),
        links=maybe(st.lists(TEXT, max_size=3)),  # the documentation's; not in the SDK
    )
    metadata = st.builds(
        obj,
        http_status=maybe(st.integers(min_value=100, max_value=599)),
        duration_ms=maybe(number),
        tokens_charged=maybe(st.integers(min_value=0, max_value=5)),
        retry_count=maybe(st.integers(min_value=0, max_value=9)),  # likewise
    )
    return st.builds(
        obj,
        input_index=st.just(index),
        url=st.text(max_size=40),
        status=st.just(status),
        error_code=maybe(st.sampled_from(SDK_CODES) | TEXT),
        error_message=maybe(st.text(max_size=40)),
        data=maybe(data),
        metadata=maybe(metadata),
    )


def counter(value: int) -> st.SearchStrategy[Any]:
    """A counter as sent: absent or null only where the SDK reads 0 for it."""
    return st.just(value) if value else maybe(st.just(0))


@st.composite
def answers(draw: st.DrawFn) -> dict[str, Any]:
    """A finished job's whole status answer, every item in ``results``, in any order."""
    statuses = draw(st.lists(st.sampled_from(["completed", "failed", "cancelled"]), max_size=20))
    results = [draw(items(index, status)) for index, status in enumerate(statuses)]
    results = draw(st.permutations(results))
    counts = Counter(statuses)
    counters = {name: draw(counter(counts[name.split("_")[0]])) for name in COUNTERS}
    counters["pending_urls"] = draw(counter(0))
    total = draw(counter(len(statuses)))
    return obj(
        job_id=str(draw(st.uuids())),  # as the API's pydantic writes a UUID: lower case
        status=draw(st.sampled_from(["completed", "failed", "cancelled"])),
        batch_config=draw(batch_configs()),
        token_summary=draw(
            st.builds(
                obj,
                tokens_charged_total=maybe(st.integers(min_value=0, max_value=10**6)),
                tokens_reserved=maybe(st.integers(min_value=0, max_value=10**6)),
            )
        ),
        total_urls=total,
        **counters,
        invalid_urls=draw(maybe(st.lists(TEXT, max_size=3))),
        created_at=draw(maybe(timestamps())),
        completed_at=draw(maybe(timestamps())),
        results=results,
    )


def expected_row(job_id: str, item: dict[str, Any]) -> dict[str, Any]:
    """The row of the output schema that an item of the answer is."""
    data = item.get("data") or {}
    metadata = item.get("metadata") or {}
    return {
        "job_id": job_id,
        "input_index": item["input_index"],
        "url": item["url"],
        "status": item["status"],
        "error_code": item.get("error_code"),
        "error_message": item.get("error_message"),
        "markdown": data.get("markdown"),
        "html": data.get("html"),
        "links": data.get("links"),
        "http_status": metadata.get("http_status"),
        "duration_ms": metadata.get("duration_ms"),
        "retry_count": metadata.get("retry_count"),
        "tokens_charged": metadata.get("tokens_charged"),
        "extra": None,
    }


class Served:
    """The answer being served, cut into pages as the API cuts them."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    def __call__(self, number: int, path: str, query: dict[str, str]) -> Answer:
        if path != f"/v1/batch/{self.answer['job_id']}":
            return Answer(404, {"code": "not_found", "message": path, "retryable": False})
        page, size = int(query.get("page", 1)), int(query.get("page_size", 10))
        results = self.answer["results"][(page - 1) * size : page * size]
        return Answer(body={**self.answer, "results": results})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=answers(), page_size=st.integers(min_value=1, max_value=50))
def test_the_client_exports_exactly_what_the_sdk_accepts(
    answer: dict[str, Any], page_size: int
) -> None:
    parsed = BatchStatusResponse.from_dict(answer)  # the generator held to the contract
    assert parsed is not None and len(parsed.results or []) == len(answer["results"])
    served = Served(answer)
    with scripted_server(served) as server, tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "items.jsonl"
        summary = bx.export(
            answer["job_id"],
            out,
            base_url=server.base_url,
            api_key=CANARY_KEY,
            page_size=page_size,
            max_retries=0,
        )
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n")[:-1]]
    assert rows == [expected_row(answer["job_id"], item) for item in answer["results"]]
    assert summary.rows == len(answer["results"])
    assert summary.job["created_at"] == answer.get("created_at")
    assert summary.job["batch_config"] == answer["batch_config"]
    codes = Counter(item.get("error_code") for item in answer["results"])
    assert summary.failure_codes == {code: n for code, n in codes.items() if code is not None}


def test_the_sdks_own_shape_exports() -> None:
    """One answer exactly as the SDK writes it (``to_dict`` of its model): no links, no
    retry_count, a wait_config, microsecond timestamps with an offset."""
    model = BatchStatusResponse.from_dict(
        {
            "job_id": "0b7e2f6a-3c1d-4e5f-8a9b-1c2d3e4f5a6b",
            "status": "completed",
            "batch_config": {
                "formats": ["markdown"],
                "proxy": {"country": "DE", "type": "datacenter"},
                "render_js": True,
                "wait_config": {"wait_for": "#main", "wait_timeout": 5000, "wait_until": "load"},
            },
            "token_summary": {"tokens_charged_total": 1},
            "total_urls": 2,
            "completed_urls": 1,
            "failed_urls": 1,
            "created_at": "2026-05-26T10:30:00.123456+02:00",
            "results": [
                {
                    "input_index": 0,
                    "url": "https://a.test/",
                    "status": "completed",
                    "data": {"markdown": "# A"},
                    "metadata": {"http_status": 200, "duration_ms": 40, "tokens_charged": 1},
                },
                {
                    "input_index": 1,
                    "url": "https://b.test/",
                    "status": "failed",
                    "error_code": "PROXY_ERROR",
                    "error_message": "The proxy could not reach b.test.",
                },
            ],
        }
    )
    assert model is not None
    answer = json.loads(model.to_json())
    assert "links" not in json.dumps(answer) and "retry_count" not in json.dumps(answer)
    served = Served(answer)
    with scripted_server(served) as server, tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "items.jsonl"
        summary = bx.export(answer["job_id"], out, base_url=server.base_url, api_key=CANARY_KEY)
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n")[:-1]]
    assert [
        (row["status"], row["error_code"], row["retry_count"], row["links"]) for row in rows
    ] == [
        ("completed", None, None, None),
        ("failed", "PROXY_ERROR", None, None),
    ]
    assert summary.retryable_failed_urls == ["https://b.test/"]
    created = datetime.fromisoformat(summary.job["created_at"])
    assert created.astimezone(UTC) == datetime(2026, 5, 26, 8, 30, 0, 123456, tzinfo=UTC)


def test_an_empty_job_without_counters() -> None:
    answer = {
        "job_id": "5b7c1f0e-0d3a-4c55-9f70-2a5e8c1d4b39",
        "status": "completed",
        "batch_config": {"formats": ["markdown"], "proxy": {}, "render_js": False},
        "token_summary": {},
        "results": [],
    }
    parsed = BatchStatusResponse.from_dict(answer)
    assert parsed is not None and parsed.total_urls == 0
    with scripted_server(Served(answer)) as server, tempfile.TemporaryDirectory() as folder:
        summary = bx.export(
            answer["job_id"], Path(folder) / "items.jsonl", base_url=server.base_url,
            api_key=CANARY_KEY, max_retries=0,
        )  # fmt: skip
    assert summary.rows == 0
