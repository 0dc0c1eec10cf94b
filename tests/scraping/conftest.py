"""What the scrape tests share: an input of 2,500 lines, the emulator's submitting side, checks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch_export.scraping import BatchOptions, SubmitPolicy
from batch_export.scraping.inputs import read_urls
from batch_export.scraping.plan import plan_batches
from batch_export.testing import Emulator, Faults
from batch_export.testing._outcomes import decide
from batch_export.testing.submit import SubmitSettings
from tests.conftest import CANARY_KEY

SEED = 5
FAILURE_RATE = 0.1
# Waits of the submitting side, instant: tests inject sleep.
FAST = SubmitPolicy(clock_margin=600.0, search_polls=5)


def input_lines() -> list[str]:
    """2,500 lines: 2,420 distinct URLs, 40 repeats, 20 lines no client sends (blank, not a
    URL, ftp) and 20 that only the API refuses (a host without a dot).

    Each repeat is in its original's batch: the emulator lets a passing failure pass when the
    URL was sent in an earlier job, and batches are submitted concurrently, in no fixed order.
    """
    lines = [f"https://shop{n % 97}.example/item/{n}" for n in range(2_420)]
    for n in range(40):
        lines.insert(50 * n + 13, lines[50 * n + 10])  # repeats, spread through the list
    for n in range(20):
        bad = ("", "not a url", "ftp://files.example/x")[n % 3]
        lines.insert(120 * n + 3, bad)
        lines.insert(120 * n + 60, f"http://intranet{n}/page")
    assert len(lines) == 2_500
    valid = read_urls(lines).valid()
    batches = [{line.url for line in valid[start : start + 1000]} for start in (0, 1000, 2000)]
    assert all(not (a & b) for a in batches for b in batches if a is not b)
    return lines


def write_input(folder: Path, lines: list[str]) -> Path:
    path = folder / "urls.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def settings(**changes: Any) -> SubmitSettings:
    base: dict[str, Any] = {"seed": SEED, "failure_rate": FAILURE_RATE, "processing_polls": 1}
    return SubmitSettings(**{**base, **changes})


@pytest.fixture
def desk() -> Iterator[Callable[..., Emulator]]:
    """Start an emulator with its submitting side (``settings(**changes)``)."""
    started: list[Emulator] = []

    def start(faults: Faults | None = None, **changes: Any) -> Emulator:
        emulator = Emulator(api_key=CANARY_KEY, submit=settings(**changes), faults=faults)
        started.append(emulator.start())
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


def posts(emulator: Emulator) -> int:
    """POST /v1/batch requests the emulator answered."""
    return sum(1 for record in emulator.requests if record.method == "POST")


def round0_digests(lines: list[str], batch_size: int = 1000) -> list[str]:
    valid = read_urls(lines).valid()
    return [b.digest for b in plan_batches(valid, batch_size=batch_size, round=0, first=1)]


def assert_created_once(emulator: Emulator, digests: list[str]) -> None:
    """Each batch made exactly one job on the server, and no other job was made."""
    assert emulator.desk is not None
    made = Counter(job.digest for job in emulator.desk.created)
    assert made == Counter(digests), f"jobs made per batch: {made}"


def expected_status(line: str, *, resubmitted: bool) -> str:
    """What the table must say for an input line, from the emulator's rules."""
    text = line.strip()
    if not text or not text.startswith("https://"):
        return "invalid"
    outcome = decide(text, seed=SEED, failure_rate=FAILURE_RATE, passing_share=0.5)
    if outcome.error_code is None or (outcome.passing and resubmitted):
        return "completed"
    return "failed"


def read_table(path: Path) -> pa.Table:
    return pq.read_table(path)


def assert_table(table: pa.Table, lines: list[str], *, resubmitted: bool) -> None:
    """One row per input line, in order, each the right URL and outcome."""
    assert table.num_rows == len(lines)
    assert table.column("line").to_pylist() == list(range(1, len(lines) + 1))
    assert table.column("url").to_pylist() == [line.strip() for line in lines]
    statuses = table.column("status").to_pylist()
    expected = [expected_status(line, resubmitted=resubmitted) for line in lines]
    assert statuses == expected
    for row in table.filter(pa.compute.equal(table.column("status"), "completed")).to_pylist():
        assert row["url"] in row["markdown"]
        assert row["tokens_charged"] == 1


OPTIONS = BatchOptions()
