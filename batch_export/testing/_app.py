"""The emulated API as a function of a request: routing, checks, faults and bodies.

Private to :mod:`batch_export.testing.server`, which owns the sockets. :class:`Api` holds
the jobs (each item encoded to JSON once, so that a page is a join of bytes), the poll
counts and the faults, and answers one :class:`Request` with one :class:`Response`.

The order of checks: unknown path 404 (``not_found``), method 405, API key 401, query 422
(see :mod:`batch_export.testing._query`), unknown job 404 (``job_not_found``), then a fault
if one is decided, then the answer. The listing keeps the jobs its filters ask for, newest
first, and pages them.
"""

from __future__ import annotations

import hmac
import json
import math
import random
import re
import threading
import uuid
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from batch_export.testing._query import ListingQuery, listing_query, parse_datetime, status_query
from batch_export.testing.faults import Fault, Faults
from batch_export.testing.jobs import JobDoc, Stage, job_stages, validate_job

try:
    import orjson

    encode: Callable[[Any], bytes] = orjson.dumps
except ImportError:  # pragma: no cover - orjson is a dependency; the fallback is for vendoring

    def encode(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


_JOBS_PATH = "/v1/batch/jobs"
_OTHER_PATHS = (_JOBS_PATH, "/v1/batch")  # POST /v1/batch exists; it is answered 405
_JOB_PATH = re.compile(r"/v1/batch/([^/]+)")
# Unreadable creation times sort last (oldest) in the listing.
_OLDEST = datetime.min.replace(tzinfo=UTC)
_SERVER_ERRORS = {
    500: ("internal_error", "Internal Server Error"),
    502: ("bad_gateway", "Bad Gateway"),
    503: ("service_unavailable", "Service Unavailable"),
    504: ("gateway_timeout", "Gateway Timeout"),
}


@dataclass(frozen=True)
class Request:
    """What the API needs of one HTTP request; ``number`` counts requests from 1."""

    method: str
    path: str
    query: dict[str, str]
    api_key: str | None
    number: int
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    """One answer. ``drop_at``: send that many body bytes, then close the connection."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    fault: str | None = None
    drop_at: int | None = None


def correlation_id(number: int) -> str:
    """A UUID for request ``number``, the same in every run."""
    return str(uuid.UUID(int=random.Random(f"cid:{number}").getrandbits(128), version=4))


def error(status: int, code: str, message: str, number: int, *, retryable: bool) -> Response:
    """An error answer in the API's usual shape."""
    body = {
        "code": code,
        "message": message,
        "correlation_id": correlation_id(number),
        "retryable": retryable,
    }
    return Response(status, encode(body))


def _gateway_page(status: int) -> bytes:
    title = f"{status} {_SERVER_ERRORS[status][1]}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1>"
        "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def fault_response(fault: Fault, number: int) -> Response:
    """The answer of a ``throttle`` or ``server_error`` fault."""
    if fault.kind == "throttle":
        retry_after = fault.retry_after_header()
        headers = (("Retry-After", retry_after),) if retry_after is not None else ()
        message = "Request throttled or work concurrency limit reached"
        answer = error(429, "throttled", message, number, retryable=True)
        return Response(429, answer.body, headers=headers, fault=fault.kind)
    if fault.html:
        page = _gateway_page(fault.status)
        return Response(fault.status, page, content_type="text/html", fault=fault.kind)
    code, reason = _SERVER_ERRORS[fault.status]
    answer = error(fault.status, code, reason, number, retryable=True)
    return Response(fault.status, answer.body, fault=fault.kind)


def _created(value: object) -> datetime | None:
    """``created_at`` as an aware datetime; None when it is missing or unreadable."""
    return parse_datetime(value) if isinstance(value, str) else None


class EncodedItems:
    """A job's items, each encoded to JSON once, kept in a few large blobs.

    One blob per :data:`CHUNK` items, items joined by commas, with each item's offset: a page
    of consecutive items is one slice of a blob (two at a chunk boundary). Big blobs, not one
    small ``bytes`` per item: 100,000 separate buffers cost several times their size in RSS.
    """

    CHUNK = 1024

    def __init__(self, items: list[JobDoc]) -> None:
        self._blobs: list[bytes] = []
        self._offsets: list[array[int]] = []
        for first in range(0, len(items), self.CHUNK):
            encoded = [encode(item) for item in items[first : first + self.CHUNK]]
            offsets = array("q", [0])
            for one in encoded:
                offsets.append(offsets[-1] + len(one) + 1)  # + 1: the comma after it
            self._blobs.append(b",".join(encoded))
            self._offsets.append(offsets)
        self._count = len(items)

    def __len__(self) -> int:
        return self._count

    def _span(self, chunk: int, first: int, last: int) -> memoryview:
        offsets = self._offsets[chunk]
        return memoryview(self._blobs[chunk])[offsets[first] : offsets[last] - 1]

    def run(self, start: int, end: int) -> list[memoryview]:
        """Items ``start`` to ``end - 1`` as slices to join with commas."""
        spans = []
        while start < end:
            chunk, first = divmod(start, self.CHUNK)
            last = min(end - chunk * self.CHUNK, self.CHUNK)
            spans.append(self._span(chunk, first, last))
            start = chunk * self.CHUNK + last
        return spans

    def item(self, index: int) -> memoryview:
        """One item's JSON."""
        chunk, first = divmod(index, self.CHUNK)
        return self._span(chunk, first, first + 1)


@dataclass
class ServedJob:
    """A job ready to serve: each stage's fields and each item encoded once."""

    job_id: str
    stages: tuple[Stage, ...]
    prefixes: list[bytes]
    items: EncodedItems
    created: datetime | None
    polls: int = field(default=0)

    @classmethod
    def from_doc(cls, doc: JobDoc) -> ServedJob:
        stages = job_stages(doc)
        prefixes = []
        for stage in stages:
            header = encode(stage.header)[:-1]
            prefixes.append(header + (b',"results":[' if len(header) > 1 else b'"results":['))
        items = EncodedItems(doc["results"])
        return cls(doc["job_id"], stages, prefixes, items, _created(doc.get("created_at")))

    def stage_index(self, poll: int) -> int:
        return min(max(poll, 1), len(self.stages)) - 1

    def listed_status(self) -> str:
        """The job's status as its last poll saw it."""
        return self.stages[self.stage_index(self.polls)].status

    def listing_entry(self) -> JobDoc:
        header = self.stages[self.stage_index(self.polls)].header
        return {
            "job_id": self.job_id,
            "status": header.get("status"),
            "accepted_urls": header.get("total_urls"),
            "completed_urls": header.get("completed_urls"),
            "failed_urls": header.get("failed_urls"),
            "config": header.get("batch_config"),
            "created_at": header.get("created_at"),
            "completed_at": header.get("completed_at"),
        }


class Api:
    """The jobs, poll counts and faults of one emulator, and the logic that answers."""

    def __init__(self, *, api_key: str, faults: Faults) -> None:
        self.api_key = api_key
        self.faults = faults
        self.lock = threading.Lock()
        self._jobs: dict[str, ServedJob] = {}
        self._order: list[ServedJob] | None = None
        self._number = 0
        # More routes (the submitting side, testing.submit), asked first: None means "not mine".
        self.routes: list[Callable[[Request], Response | None]] = []

    def add_job(self, doc: JobDoc) -> None:
        served = ServedJob.from_doc(validate_job(doc, source=f"job {doc.get('job_id')!r}"))
        with self.lock:
            self._jobs[served.job_id] = served
            self._order = None

    def job_count(self) -> int:
        with self.lock:
            return len(self._jobs)

    def next_number(self) -> int:
        with self.lock:
            self._number += 1
            return self._number

    def set_faults(self, faults: Faults) -> None:
        with self.lock:
            self.faults = faults
            self._number = 0

    def reset_polls(self) -> None:
        with self.lock:
            for job in self._jobs.values():
                job.polls = 0

    def polls(self, job_id: str) -> int:
        with self.lock:
            return self._jobs[job_id].polls

    def advance(self, job_id: str, polls: int) -> None:
        """Let the job answer as if polled ``polls`` times already (never going back): for
        jobs that move on with time (testing.submit's ``processing_seconds``)."""
        with self.lock:
            job = self._jobs[job_id]
            job.polls = max(job.polls, polls)

    def respond(self, request: Request) -> Response:
        """Answer one request (see the module docstring for the order of checks)."""
        for route in self.routes:
            answer = route(request)
            if answer is not None:
                return answer
        job_match = None if request.path == _JOBS_PATH else _JOB_PATH.fullmatch(request.path)
        if request.path not in _OTHER_PATHS and job_match is None:
            message = f"No route for {request.method} {request.path}"
            return error(404, "not_found", message, request.number, retryable=False)
        if request.method != "GET" or request.path == "/v1/batch":
            message = f"{request.method} {request.path} is not emulated: GET status, listing only"
            answer = error(405, "method_not_allowed", message, request.number, retryable=False)
            return Response(405, answer.body, headers=(("Allow", "GET"),))
        if request.api_key is None or not hmac.compare_digest(
            request.api_key.encode(), self.api_key.encode()
        ):
            message = "API key missing or invalid"
            return error(401, "unauthorized", message, request.number, retryable=False)
        if job_match is None:
            listing = listing_query(request.query)
            if isinstance(listing, list):
                return Response(422, encode({"detail": listing}))
            return self._answer(request, None, listing)
        paged = status_query(request.query)
        if isinstance(paged, list):
            return Response(422, encode({"detail": paged}))
        with self.lock:
            job = self._jobs.get(unquote(job_match.group(1)))
        if job is None:
            message = "Batch job not found"
            return error(404, "job_not_found", message, request.number, retryable=False)
        return self._answer(request, job, ListingQuery(*paged))

    def _answer(self, request: Request, job: ServedJob | None, query: ListingQuery) -> Response:
        fault = self.faults.decide(request.number)
        if fault is not None and fault.kind in ("throttle", "server_error"):
            return fault_response(fault, request.number)
        if job is None:
            body = self._listing(query)
        else:
            body = self._status(job, query.page, query.page_size)
        if fault is None:
            return Response(200, body)
        cut = fault.cut_at(len(body))
        if fault.kind == "drop":
            return Response(200, body, fault=fault.kind, drop_at=cut)
        return Response(200, body[:cut], fault=fault.kind)

    def _status(self, job: ServedJob, page: int, size: int) -> bytes:
        with self.lock:
            job.polls += 1
            poll = job.polls
            faults = self.faults
        index = job.stage_index(poll)
        stage = job.stages[index]
        start, end = (page - 1) * size, min(page * size, stage.revealed)
        if faults.reorder and not stage.final:
            order = list(range(stage.revealed))
            faults.reorder_rng(job.job_id, poll).shuffle(order)
            chosen = [job.items.item(number) for number in order[start:end]]
        else:
            chosen = job.items.run(start, end)
        return b"".join((job.prefixes[index], b",".join(chosen), b"]}"))

    def _listing(self, query: ListingQuery) -> bytes:
        page, size = query.page, query.page_size
        with self.lock:
            if self._order is None:
                ordered = sorted(self._jobs.values(), key=lambda job: job.job_id)
                ordered.sort(key=lambda job: job.created or _OLDEST, reverse=True)
                self._order = ordered
            order = self._order
            if query.filtered:
                order = [job for job in order if query.keeps(job.listed_status(), job.created)]
            entries = [job.listing_entry() for job in order[(page - 1) * size : page * size]]
        listing = {
            "jobs": entries,
            "page": page,
            "page_size": size,
            "page_count": math.ceil(len(order) / size),
        }
        return encode(listing)
