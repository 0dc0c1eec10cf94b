"""Concurrency changes how fast an export goes, never what it writes; 429s make it back off."""

from __future__ import annotations

import functools
import math
import statistics
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from batch_export.export import export
from batch_export.fetch.client import ApiClient
from batch_export.fetch.retry import RetryPolicy
from batch_export.flatten import chunks
from batch_export.testing import Emulator, Faults, generate_job
from tests.conftest import CANARY_KEY

# Retries in milliseconds: the faults below cost the tests nothing in wall time.
FAST_RETRY = RetryPolicy(attempts=30, base_delay=0.001, max_delay=0.005, jitter=0.0)
READ_IN_CHUNKS = chunks.read_in_chunks


def _job_with_odd_pages() -> dict[str, Any]:
    """1,234 items; some pages carry an undocumented field, so both reading roads are taken."""
    doc = generate_job(job_id="j1", items=1_234, failure_rate=0.2, links_per_item=3, seed=5)
    for position in (120, 121, 777):
        doc["results"][position]["region"] = "eu"
        doc["results"][position]["data"] = {**(doc["results"][position]["data"] or {}), "x": 1}
    return doc


def _export(base_url: str, out: Path, concurrency: int, fmt: str) -> None:
    export(
        "j1",
        out,
        format=fmt,
        base_url=base_url,
        api_key=CANARY_KEY,
        page_size=25,
        concurrency=concurrency,
        retry=FAST_RETRY,
    )


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_output_is_identical_at_every_concurrency(tmp_path: Path, fmt: str) -> None:
    # Latency spread and passing failures make pages finish out of order at any concurrency.
    faults = Faults(seed=3, latency_ms=10, server_error_rate=0.08, drop_rate=0.04)
    with Emulator(jobs=[_job_with_odd_pages()], api_key=CANARY_KEY, faults=faults) as emulator:
        outputs = {}
        for concurrency in (1, 4, 16):
            outputs[concurrency] = tmp_path / f"c{concurrency}.{fmt}"
            _export(emulator.base_url, outputs[concurrency], concurrency, fmt)
        assert emulator.max_in_flight > 4  # concurrency 16 did run pages side by side
        assert any(record.fault for record in emulator.requests)
    data = {c: path.read_bytes() for c, path in outputs.items()}
    assert data[1] == data[4] == data[16]
    if fmt == "parquet":
        table = pq.ParquetFile(outputs[16]).read()
        assert table.column("input_index").to_pylist() == list(range(1_234))
        assert table.column("extra").null_count == 1_234 - 3


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_job_of_many_chunks_gives_the_same_bytes_however_its_pages_come(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """16 MB of items: several chunks of pages, joined batches and row groups. Pages that come
    slowly are read as they come (the chunks' clock), quickly a megabyte at a time; the file
    must not tell which. Here the clock is made to cut after every page, or never."""
    doc = generate_job(job_id="j1", items=8_000, markdown_bytes=2_000, links_per_item=3, seed=9)
    runs = {"by size": (Faults(), 16, math.inf), "by clock": (Faults(seed=4, latency_ms=5), 4, 0)}
    outputs = {}
    for name, (faults, concurrency, seconds) in runs.items():
        monkeypatch.setattr(
            chunks, "read_in_chunks", functools.partial(READ_IN_CHUNKS, chunk_seconds=seconds)
        )
        with Emulator(jobs=[doc], api_key=CANARY_KEY, faults=faults) as emulator:
            outputs[name] = tmp_path / f"{name}.{fmt}"
            export(
                "j1",
                outputs[name],
                format=fmt,
                base_url=emulator.base_url,
                api_key=CANARY_KEY,
                page_size=50,
                concurrency=concurrency,
                retry=FAST_RETRY,
            )
    assert outputs["by size"].read_bytes() == outputs["by clock"].read_bytes()
    if fmt == "parquet":
        metadata = pq.ParquetFile(outputs["by size"]).metadata
        assert metadata.num_rows == 8_000
        assert metadata.num_row_groups >= 3


def _in_flight(records: list[Any]) -> list[int]:
    return [record.in_flight for record in sorted(records, key=lambda r: r.started)]


@pytest.mark.timeout(20)
def test_a_429_storm_lowers_the_requests_in_flight(tmp_path: Path) -> None:
    doc = generate_job(job_id="j1", items=1_500, seed=6)
    faults = Faults(seed=1, latency_ms=15, throttle_rate=0.5, retry_after=(None,))
    with Emulator(jobs=[doc], api_key=CANARY_KEY, faults=faults) as emulator:
        client = ApiClient(
            base_url=emulator.base_url, api_key=CANARY_KEY, concurrency=8, retry=FAST_RETRY
        )
        with client:
            export("j1", tmp_path / "out.parquet", client=client, page_size=25, concurrency=8)
        records = emulator.requests
    assert client.limit.lowest <= 2
    pages = [r for r in records if r.query.get("page_size") == "25"]
    in_flight = _in_flight(pages)
    # The first wave goes out at full width; once 429s come back, the width collapses.
    assert max(in_flight[:8]) >= 6
    assert statistics.median(in_flight[len(in_flight) // 2 :]) <= 2
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_rows == 1_500


@pytest.mark.timeout(20)
def test_without_429s_the_width_stays(tmp_path: Path) -> None:
    """The control for the storm test: the same run, no 429, stays at its concurrency."""
    doc = generate_job(job_id="j1", items=1_500, seed=6)
    faults = Faults(seed=1, latency_ms=15)
    with Emulator(jobs=[doc], api_key=CANARY_KEY, faults=faults) as emulator:
        client = ApiClient(
            base_url=emulator.base_url, api_key=CANARY_KEY, concurrency=8, retry=FAST_RETRY
        )
        with client:
            export("j1", tmp_path / "out.parquet", client=client, page_size=25, concurrency=8)
        pages = [r for r in emulator.requests if r.query.get("page_size") == "25"]
    assert client.limit.lowest == 8
    assert statistics.median(_in_flight(pages)[len(pages) // 2 :]) >= 5


def test_the_page_after_a_full_last_page_is_asked_for_with_the_others(tmp_path: Path) -> None:
    doc = generate_job(job_id="j1", items=100, seed=7)  # 4 full pages of 25: page 5 is asked
    with Emulator(jobs=[doc], api_key=CANARY_KEY, faults=Faults(latency_ms=20)) as emulator:
        _export(emulator.base_url, tmp_path / "out.jsonl", 8, "jsonl")
        pages = {int(r.query["page"]): r for r in emulator.requests if r.query["page_size"] == "25"}
    assert sorted(pages) == [1, 2, 3, 4, 5]
    assert pages[5].started < max(pages[n].ended for n in (1, 2, 3, 4))
