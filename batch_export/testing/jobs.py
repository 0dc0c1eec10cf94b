"""Job documents: the final status response of a job, with every item in ``results``.

A job document is what ``GET /v1/batch/{job_id}`` answers once the job has finished, with all
its items in one list ordered by ``input_index``, plus an optional ``"emulator"`` object that
is never served: ``{"processing_polls": N}`` makes the job answer ``queued``, then
``processing`` with a growing share of its items, for its first N polls (see :func:`job_view`).

:func:`load_jobs` reads documents from JSON files and checks their invariants;
:func:`generate_job` and :func:`generate_account` make realistic ones from a seed.

Example:

    >>> doc = generate_job(job_id="j1", items=20, failure_rate=0.25, seed=7)
    >>> doc["total_urls"], doc["completed_urls"], doc["failed_urls"]
    (20, 15, 5)
    >>> job_view(doc, poll=1)["status"]
    'completed'
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from batch_export.testing._items import (
    TERMINAL_STATUSES,
    ItemMaker,
    batch_config,
    check_arguments,
    in_shape,
    invalid_url,
    iso,
    make_results,
    parse_iso,
    plan_cancelled,
    plan_failures,
    timestamps,
)
from batch_export.testing.content import PagePool

__all__ = [
    "DEFAULT_CREATED_AT",
    "DEFAULT_ERROR_CODES",
    "TERMINAL_STATUSES",
    "JobDoc",
    "Stage",
    "generate_account",
    "generate_job",
    "job_stages",
    "job_view",
    "load_jobs",
    "validate_job",
]

JobDoc = dict[str, Any]

# The provider's codes (the SDK's ExtractionErrorCode): three that resubmitting may cure, two
# that it will not.
DEFAULT_ERROR_CODES: tuple[str, ...] = (
    "TIMEOUT", "PERMANENT_BLOCK", "NETWORK_ERROR", "RATE_LIMITED", "UNPROCESSABLE_CONTENT"
)  # fmt: skip
DEFAULT_CREATED_AT = "2026-05-26T10:30:00Z"
_COUNTERS = {"completed": "completed_urls", "failed": "failed_urls", "cancelled": "cancelled_urls"}
_NOT_SERVED = ("results", "emulator")


# --- validation and loading -------------------------------------------------------------


def _check(condition: bool, source: str, problem: str) -> None:
    if not condition:
        raise ValueError(f"{source}: {problem}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_items(results: list[Any], source: str) -> None:
    for position, item in enumerate(results):
        _check(isinstance(item, dict), source, f"results[{position}] is not an object")
        index = item.get("input_index")
        _check(
            index == position and _is_int(index),
            source,
            f"results[{position}] has input_index {index!r}; expected {position} "
            "(items must be ordered by input_index, which runs 0..n-1)",
        )
        status = item.get("status")
        _check(
            status in TERMINAL_STATUSES,
            source,
            f"results[{position}] has status {status!r}; expected one of "
            + ", ".join(TERMINAL_STATUSES),
        )


def _check_counters(doc: JobDoc, source: str) -> None:
    results: list[JobDoc] = doc["results"]
    for field in ("total_urls", *_COUNTERS.values(), "pending_urls"):
        _check(_is_int(doc.get(field)), source, f"{field} is {doc.get(field)!r}, not an integer")
    _check(doc["pending_urls"] == 0, source, f"pending_urls is {doc['pending_urls']}; expected 0")
    _check(
        doc["total_urls"] == len(results),
        source,
        f"total_urls is {doc['total_urls']} but there are {len(results)} items",
    )
    for status, field in _COUNTERS.items():
        count = sum(1 for item in results if item["status"] == status)
        _check(
            doc[field] == count, source, f"{field} is {doc[field]} but {count} items are {status}"
        )
    tokens = doc.get("token_summary") or {}
    charged = sum(_item_tokens(item) for item in results)
    _check(
        tokens.get("tokens_charged_total") == charged,
        source,
        f"token_summary.tokens_charged_total is {tokens.get('tokens_charged_total')!r} "
        f"but the items' tokens_charged add up to {charged}",
    )


def validate_job(doc: object, *, source: str = "job document") -> JobDoc:
    """Check a job document's invariants and return it; raise ValueError naming ``source``.

    Example:

        >>> validate_job({"job_id": "x"}, source="x.json")
        Traceback (most recent call last):
        ...
        ValueError: x.json: status is None; expected a final status: completed, failed, cancelled
    """
    _check(isinstance(doc, dict), source, f"expected a JSON object, got {type(doc).__name__}")
    assert isinstance(doc, dict)
    job_id = doc.get("job_id")
    _check(isinstance(job_id, str) and job_id != "", source, f"job_id is {job_id!r}")
    _check(
        doc.get("status") in TERMINAL_STATUSES,
        source,
        f"status is {doc.get('status')!r}; expected a final status: "
        + ", ".join(TERMINAL_STATUSES),
    )
    _check(isinstance(doc.get("results"), list), source, "results is missing or not a list")
    _check(isinstance(doc.get("invalid_urls"), list), source, "invalid_urls is not a list")
    _check_items(doc["results"], source)
    _check_counters(doc, source)
    polls = processing_polls(doc)
    _check(_is_int(polls) and polls >= 0, source, f"emulator.processing_polls is {polls!r}")
    return doc


def processing_polls(doc: JobDoc) -> int:
    """How many polls the job answers ``queued``/``processing`` before its final document."""
    emulator = doc.get("emulator") or {}
    polls: int = emulator.get("processing_polls", 0) if isinstance(emulator, dict) else -1
    return polls


def _json_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(path.glob("*.json"))
    if path.is_file():
        return [path]
    raise ValueError(f"{path}: no such file or directory")


def _read_docs(file: Path) -> list[tuple[str, JobDoc]]:
    try:
        parsed = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{file}: cannot be read as JSON: {error}") from error
    if isinstance(parsed, list):
        pairs = [(f"{file} (job {n})", doc) for n, doc in enumerate(parsed)]
        return [(source, validate_job(doc, source=source)) for source, doc in pairs]
    return [(str(file), validate_job(parsed, source=str(file)))]


def load_jobs(*paths: str | os.PathLike[str]) -> list[JobDoc]:
    """Read and validate job documents from JSON files, or every ``*.json`` of a folder.

    A file holds one job document, or a list of them. A broken invariant or a job_id seen
    twice raises ValueError naming the file and the problem.

    Example:

        >>> import tempfile, pathlib, json
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.json").write_text(json.dumps(generate_job(job_id="a", items=3)))
        >>> [doc["job_id"] for doc in load_jobs(folder)]
        ['a']
    """
    docs: list[JobDoc] = []
    seen: dict[str, str] = {}
    for path in paths:
        for file in _json_files(Path(path)):
            for source, doc in _read_docs(file):
                job_id = doc["job_id"]
                _check(
                    job_id not in seen, source, f"job_id {job_id!r} is also in {seen.get(job_id)}"
                )
                seen[job_id] = source
                docs.append(doc)
    return docs


# --- the view of a job at a given poll --------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """What a job answers at one poll: its fields without ``results``, and how many items.

    The items shown are the first ``revealed`` of the final ones (in a processing stage the
    server may show them in another order).
    """

    status: str
    revealed: int
    header: JobDoc

    @property
    def final(self) -> bool:
        """True for the job's final document."""
        return self.status in TERMINAL_STATUSES


def _item_tokens(item: JobDoc) -> int:
    metadata = item.get("metadata") or {}
    tokens = metadata.get("tokens_charged") if isinstance(metadata, dict) else None
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else 0


def _partial_stage(header: JobDoc, results: list[JobDoc], revealed: int, status: str) -> Stage:
    shown = results[:revealed]
    pending = len(results) - revealed
    partial = dict(header, status=status, pending_urls=pending, completed_at=None)
    for item_status, field in _COUNTERS.items():
        partial[field] = sum(1 for item in shown if item["status"] == item_status)
    partial["token_summary"] = {
        **(header.get("token_summary") or {}),
        "tokens_charged_total": sum(_item_tokens(item) for item in shown),
        "tokens_reserved": pending,
    }
    return Stage(status, revealed, partial)


def job_stages(doc: JobDoc) -> tuple[Stage, ...]:
    """The job's answers poll by poll: ``stages[min(poll, len(stages)) - 1]`` answers a poll.

    With ``processing_polls`` N: poll 1 is ``queued`` with no items, polls 2..N are
    ``processing`` and show ``(k - 1) / N`` of the items, and poll N + 1 on is final.
    """
    header = {key: value for key, value in doc.items() if key not in _NOT_SERVED}
    results: list[JobDoc] = doc["results"]
    polls = processing_polls(doc)
    stages = [_partial_stage(header, results, 0, "queued")] if polls > 0 else []
    for poll in range(2, polls + 1):
        revealed = len(results) * (poll - 1) // polls
        stages.append(_partial_stage(header, results, revealed, "processing"))
    stages.append(Stage(doc["status"], len(results), header))
    return tuple(stages)


def job_view(doc: JobDoc, *, poll: int) -> JobDoc:
    """The full response (every revealed item in ``results``) that poll number ``poll`` sees.

    Example:

        >>> doc = generate_job(job_id="j", items=30, processing_polls=3)
        >>> [(v["status"], len(v["results"])) for v in (job_view(doc, poll=p) for p in (1, 2, 4))]
        [('queued', 0), ('processing', 10), ('completed', 30)]
    """
    stages = job_stages(doc)
    stage = stages[min(max(poll, 1), len(stages)) - 1]
    return dict(stage.header, results=doc["results"][: stage.revealed])


def generate_job(
    *,
    job_id: str | None = None,
    items: int = 25,
    seed: int = 0,
    formats: Sequence[str] = ("markdown",),
    markdown_bytes: int = 2000,
    html_bytes: int = 0,
    links_per_item: int = 0,
    failure_rate: float = 0.1,
    error_codes: Sequence[str] = DEFAULT_ERROR_CODES,
    cancelled: int = 0,
    invalid_urls: int = 0,
    status: str = "completed",
    processing_polls: int = 0,
    created_at: str | None = None,
    item_shape: str = "documented",
) -> JobDoc:
    """A realistic, consistent job document, the same for the same arguments.

    ``round(items * failure_rate)`` items fail, with ``error_codes`` used in turn; ``cancelled``
    items are cancelled (the last ones when ``status="cancelled"``); ``invalid_urls`` rejected
    URLs get no item. Completed items carry the ``formats`` asked for (``html_bytes=0``: HTML
    of the same page); with ``links_per_item`` > 0 about one in four has ``links`` null, the
    others up to that many links. ``processing_polls`` > 0 adds ``{"emulator": ...}``.
    ``item_shape="sdk"`` leaves out ``data.links`` and ``metadata.retry_count``, as the
    provider's SDK models items (``"documented"``: as the documentation's example shows them).

    Example:

        >>> doc = generate_job(items=10, failure_rate=0.2, cancelled=1, seed=1)
        >>> doc["completed_urls"], doc["failed_urls"], doc["cancelled_urls"]
        (7, 2, 1)
    """
    counts = (items, cancelled, invalid_urls, processing_polls)
    check_arguments(formats=formats, failure_rate=failure_rate, status=status, counts=counts)
    rng = random.Random(f"job:{seed}")
    generated_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    failed = plan_failures(rng, items, failure_rate, error_codes or DEFAULT_ERROR_CODES)
    cancelled_set = plan_cancelled(rng, items, cancelled, failed, tail=status == "cancelled")
    pool = PagePool(
        seed=seed, size=min(items, 64), markdown_bytes=markdown_bytes, html_bytes=html_bytes
    )
    maker = ItemMaker(pool, frozenset(formats), links_per_item)
    results = in_shape(make_results(rng, maker, failed, cancelled_set, items), item_shape)
    created, finished = timestamps(created_at or DEFAULT_CREATED_AT, results)
    completed = items - len(failed) - len(cancelled_set)
    doc: JobDoc = {
        "job_id": job_id or generated_id,
        "status": status,
        "batch_config": batch_config(rng, formats),
        "token_summary": {"tokens_charged_total": completed, "tokens_reserved": 0},
        "total_urls": items,
        "completed_urls": completed,
        "failed_urls": len(failed),
        "cancelled_urls": len(cancelled_set),
        "pending_urls": 0,
        "invalid_urls": [invalid_url(n) for n in range(invalid_urls)],
        "created_at": created,
        "completed_at": finished,
        "results": results,
    }
    if processing_polls:
        doc["emulator"] = {"processing_polls": processing_polls}
    return doc


def generate_account(
    *,
    jobs: int = 200,
    processing: int = 3,
    seed: int = 0,
    items: tuple[int, int] = (5, 40),
    markdown_bytes: int = 600,
    start: str = "2026-05-22T08:00:00Z",
    days: float = 4.0,
) -> list[JobDoc]:
    """Many jobs of one account, created over ``days`` from ``start``, for listing and sync.

    The ``processing`` newest jobs are still running (``processing_polls`` 2 to 4); a few
    others are cancelled or failed. Deterministic for a seed.

    Example:

        >>> docs = generate_account(jobs=20, processing=2, seed=1)
        >>> len(docs), sum(1 for d in docs if "emulator" in d)
        (20, 2)
    """
    if not 0 <= processing <= jobs:
        raise ValueError(f"processing must be between 0 and jobs ({jobs}), got {processing}")
    rng = random.Random(f"account:{seed}")
    origin = parse_iso(start)
    offsets = sorted(rng.uniform(0, days * 86_400) for _ in range(jobs))
    docs = []
    for number, offset in enumerate(offsets):
        still_running = number >= jobs - processing
        status = "completed" if still_running else rng.choices(TERMINAL_STATUSES, (94, 3, 3))[0]
        count = rng.randint(*items)
        docs.append(
            generate_job(
                items=count,
                seed=seed * 1_000_003 + number,
                formats=rng.choice((("markdown",), ("markdown",), ("markdown", "html"))),
                markdown_bytes=markdown_bytes,
                failure_rate=1.0 if status == "failed" else rng.choice((0.0, 0.05, 0.1, 0.3)),
                cancelled=min(2, count // 2) if status == "cancelled" else 0,
                status=status,
                processing_polls=rng.randint(2, 4) if still_running else 0,
                created_at=iso(origin + timedelta(seconds=offset)),
            )
        )
    return docs
