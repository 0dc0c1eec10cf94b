"""The emulator's submitting side: ``POST /v1/batch``, ``DELETE /v1/batch/{job_id}`` and
``GET /v1/usage/concurrency``, as the provider's SDK models them.

:class:`BatchDesk` answers those three routes for an :class:`~batch_export.testing.Emulator`
made with ``submit=SubmitSettings(...)``. A POST is validated like the SDK's ``BatchRequest``
(``urls`` 1 to 1,000 strings; ``formats``, ``render_js``, ``ignore_invalid_urls`` (default
true), ``proxy``, ``headers``, ``wait_config``); the invalid URLs of a request with
``ignore_invalid_urls`` come back in ``invalid_urls``, the others become a job that answers
``queued``, then ``processing``, then its final document over ``processing_polls`` polls of its
status. Accepted items are numbered 0..n-1 in the order sent, invalid URLs left out.

What each URL gives is decided from the seed and the URL (see
:mod:`batch_export.testing._outcomes`): a share ``failure_rate`` fails, ``passing_share`` of
those with a passing code (``TIMEOUT``, ``NETWORK_ERROR``, ...) that succeeds when the URL is
sent again in a later job; the others with a permanent code. Content is made from the URL.

Faults of the submitting side, each decided from the seed and the POST's number:

- ``post_throttle_rate``: 429 (``Retry-After: 0``), and no job is made.
- ``post_drop_rate``: the job is made, then the answer is cut off mid-body: the client cannot
  tell whether its POST made a job.
- ``balance``: the requests the account may be charged (one a completed item); a POST whose
  accepted URLs do not fit in what is left is refused with 402, and no job is made.

:attr:`BatchDesk.created` lists every job made, with a digest of its URLs, so that a test can
prove that nothing was submitted (and paid for) twice.

Example:

    >>> import requests
    >>> from batch_export.testing import Emulator
    >>> with Emulator(api_key="k", submit=SubmitSettings(failure_rate=0)) as emu:
    ...     answer = requests.post(f"{emu.base_url}/v1/batch", headers={"X-Api-Key": "k"},
    ...                            json={"urls": ["https://a.example/", "nope"]}, timeout=5)
    >>> answer.status_code, answer.json()["accepted_urls"], answer.json()["invalid_urls"]
    (202, 1, ['nope'])
    >>> len(emu.desk.created)
    1
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from batch_export.testing._app import Api, Request, Response, encode, error
from batch_export.testing._outcomes import (
    JobDoc,
    Outcome,
    cancelled_item,
    decide,
    is_valid_url,
    make_item,
)
from batch_export.testing._request import check_batch_request
from batch_export.testing.jobs import job_stages

__all__ = ["BatchDesk", "CreatedJob", "SubmitSettings", "urls_digest"]

_BATCH_PATH = "/v1/batch"
_CONCURRENCY_PATH = "/v1/usage/concurrency"
_JOB_PATH = re.compile(r"/v1/batch/([^/]+)")


def urls_digest(urls: list[str]) -> str:
    """A digest of a list of URLs, in order: the same as a client may compute."""
    return hashlib.sha256("\n".join(urls).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, kw_only=True)
class SubmitSettings:
    """How submitted jobs behave and what goes wrong with submitting.

    ``processing_polls``: polls of a job's status answered ``queued``/``processing`` before its
    final document; with ``processing_seconds`` the job also moves through those stages with
    time, reaching its final document that many seconds after it was made.
    ``markdown_bytes``: the approximate size of each page's markdown. ``concurrency_limit``:
    the plan's work concurrency (``GET /v1/usage/concurrency``).
    """

    seed: int = 0
    processing_polls: int = 2
    processing_seconds: float | None = None
    failure_rate: float = 0.1
    passing_share: float = 0.5
    markdown_bytes: int = 300
    balance: int | None = None
    concurrency_limit: int = 10
    post_throttle_rate: float = 0.0
    post_drop_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("failure_rate", "passing_share", "post_throttle_rate", "post_drop_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}.")
        if self.post_throttle_rate + self.post_drop_rate > 1.0:
            raise ValueError("post_throttle_rate and post_drop_rate add up to more than 1.")
        if self.processing_polls < 0 or self.concurrency_limit < 1:
            raise ValueError("processing_polls must be 0 or more, concurrency_limit 1 or more.")


@dataclass(frozen=True)
class CreatedJob:
    """A job that a POST made: its id, the digest of the URLs sent (in order, invalid ones
    included), how many were accepted and refused, and the POST's number."""

    job_id: str
    digest: str
    accepted: int
    invalid: int
    post_number: int


@dataclass
class _Account:
    charged: int = 0
    seen: Counter[str] = field(default_factory=Counter)
    docs: dict[str, JobDoc] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    made_at: dict[str, float] = field(default_factory=dict)


class BatchDesk:
    """The submitting routes of one emulator (see the module docstring)."""

    def __init__(self, api: Api, settings: SubmitSettings) -> None:
        self._api = api
        self.settings = settings
        self._lock = threading.Lock()
        self._account = _Account()
        self._posts = 0
        self.created: list[CreatedJob] = []

    def set_settings(self, settings: SubmitSettings) -> None:
        """Change the behaviour while serving (a top-up of ``balance``, faults on or off)."""
        with self._lock:
            self.settings = settings

    @property
    def charged(self) -> int:
        """Requests charged so far: one a completed item."""
        with self._lock:
            return self._account.charged

    def docs(self) -> dict[str, JobDoc]:
        """The final document of each job made, by job id (``cancelled`` once cancelled)."""
        with self._lock:
            return dict(self._account.docs)

    def respond(self, request: Request) -> Response | None:
        """The answer to a request of these routes, or None for any other request."""
        job_match = _JOB_PATH.fullmatch(request.path)
        if request.path == _BATCH_PATH and request.method == "POST":
            return self._authorized(request) or self._post(request)
        if request.path == _CONCURRENCY_PATH and request.method == "GET":
            return self._authorized(request) or self._concurrency()
        if job_match and request.method == "DELETE" and request.path != "/v1/batch/jobs":
            return self._authorized(request) or self._delete(request, unquote(job_match[1]))
        if job_match and request.method == "GET":
            self._move_on(unquote(job_match[1]))  # then answered as any job is
        return None

    def _move_on(self, job_id: str) -> None:
        """A job of ``processing_seconds`` is at the stage its age says, or further."""
        with self._lock:
            seconds, made = self.settings.processing_seconds, self._account.made_at.get(job_id)
            polls = self.settings.processing_polls
            cancelled = job_id in self._account.cancelled
        if seconds is None or made is None or cancelled or not polls:
            return
        age = time.monotonic() - made
        self._api.advance(job_id, polls if age >= seconds else int(age / seconds * polls))

    def _authorized(self, request: Request) -> Response | None:
        key = request.api_key
        if key is not None and hmac.compare_digest(key.encode(), self._api.api_key.encode()):
            return None
        return error(
            401, "unauthorized", "API key missing or invalid", request.number, retryable=False
        )

    # --- POST /v1/batch ---------------------------------------------------------------------

    def _post(self, request: Request) -> Response:
        checked = check_batch_request(request.body)
        if isinstance(checked, list):
            return Response(422, encode({"detail": checked}))
        urls = checked["urls"]
        accepted = [url for url in urls if is_valid_url(url)]
        invalid = [url for url in urls if not is_valid_url(url)]
        if (invalid and not checked["ignore_invalid_urls"]) or not accepted:
            return _invalid_urls_refusal(invalid)
        with self._lock:
            self._posts += 1
            number, settings = self._posts, self.settings
            draw = random.Random(f"{settings.seed}:post:{number}").random()
            if draw < settings.post_throttle_rate:
                message = "Request throttled or work concurrency limit reached"
                answer = error(429, "throttled", message, request.number, retryable=True)
                return Response(429, answer.body, headers=(("Retry-After", "0"),), fault="throttle")
            left = None if settings.balance is None else settings.balance - self._account.charged
            if left is not None and len(accepted) > left:
                message = (
                    f"Insufficient balance: the batch needs up to {len(accepted)} requests, "
                    f"{max(left, 0)} are left"
                )
                return error(402, "insufficient_balance", message, request.number, retryable=False)
            doc = self._make_job(number, accepted, invalid, checked)
        self._api.add_job(doc)
        body = encode(
            {
                "job_id": doc["job_id"],
                "status": "queued" if settings.processing_polls else doc["status"],
                "status_url": f"/v1/batch/{doc['job_id']}",
                "accepted_urls": len(accepted),
                "invalid_urls": invalid,
            }
        )
        if draw < settings.post_throttle_rate + settings.post_drop_rate:
            cut = random.Random(f"{settings.seed}:cut:{number}").randint(0, len(body) - 1)
            return Response(202, body, fault="drop", drop_at=cut)
        return Response(202, body)

    def _make_job(
        self, number: int, urls: list[str], invalid: list[str], request: dict[str, Any]
    ) -> JobDoc:
        """The job document of a POST (called under the lock: it charges the account)."""
        settings, account = self.settings, self._account
        draw = random.Random(f"{settings.seed}:job:{number}").getrandbits(128)
        job_id = str(uuid.UUID(int=draw, version=4))
        formats = frozenset(request["formats"])
        results = self._results(urls, formats)
        completed = sum(1 for item in results if item["status"] == "completed")
        account.charged += completed
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        doc: JobDoc = {
            "job_id": job_id,
            "status": "completed",
            "batch_config": {
                "render_js": request["render_js"],
                "formats": sorted(formats),
                "proxy": request["proxy"] or {"country": None, "type": "residential"},
                "headers": request["headers"],
                "wait_config": request["wait_config"],
            },
            "token_summary": {"tokens_charged_total": completed, "tokens_reserved": 0},
            "total_urls": len(urls),
            "completed_urls": completed,
            "failed_urls": len(urls) - completed,
            "cancelled_urls": 0,
            "pending_urls": 0,
            "invalid_urls": invalid,
            "created_at": now,
            "completed_at": now,
            "results": results,
        }
        if settings.processing_polls:
            doc["emulator"] = {"processing_polls": settings.processing_polls}
        account.docs[job_id] = doc
        account.made_at[job_id] = time.monotonic()
        digest = urls_digest(request["urls"])  # of every URL sent, as the client's batch
        self.created.append(CreatedJob(job_id, digest, len(urls), len(invalid), number))
        return doc

    def _results(self, urls: list[str], formats: frozenset[str]) -> list[JobDoc]:
        """Each URL's item; a passing failure passes for a URL sent in an earlier job."""
        settings, seen = self.settings, self._account.seen
        results = []
        for index, url in enumerate(urls):
            outcome = decide(
                url,
                seed=settings.seed,
                failure_rate=settings.failure_rate,
                passing_share=settings.passing_share,
            )
            if outcome.passing and seen[url]:
                outcome = Outcome(None)  # sent again: a passing failure has passed
            item = make_item(
                index, url, outcome, formats=formats, markdown_bytes=settings.markdown_bytes
            )
            results.append(item)
        seen.update(set(urls))
        return results

    # --- DELETE /v1/batch/{job_id} ------------------------------------------------------------

    def _delete(self, request: Request, job_id: str) -> Response:
        with self._lock:
            doc = self._account.docs.get(job_id)
            if doc is None:
                return error(
                    404, "job_not_found", "Batch job not found", request.number, retryable=False
                )
            stages = job_stages(doc)
            stage = stages[min(max(self._api.polls(job_id), 1), len(stages)) - 1]
            if stage.final or job_id in self._account.cancelled:
                message = f"Batch job {job_id} is {stage.status}: it cannot be cancelled."
                return error(409, "conflict", message, request.number, retryable=False)
            self._account.cancelled.add(job_id)
            cancelled = _cancelled_doc(doc, stage.revealed)
            self._account.charged -= doc["completed_urls"] - cancelled["completed_urls"]
            self._account.docs[job_id] = cancelled
        self._api.add_job(cancelled)
        body = {
            "job_id": job_id,
            "status": "cancelled",
            "status_url": f"/v1/batch/{job_id}",
            "in_flight_urls": 0,
        }
        return Response(202, encode(body))

    # --- GET /v1/usage/concurrency ------------------------------------------------------------

    def _concurrency(self) -> Response:
        with self._lock:
            docs = list(self._account.docs.items())
            limit = self.settings.concurrency_limit
        running = 0
        for job_id, doc in docs:
            stages = job_stages(doc)
            running += self._api.polls(job_id) < len(stages) and not stages[0].final
        in_use = min(running, limit)
        return Response(
            200, encode({"work_concurrency_in_use": in_use, "work_concurrency_limit": limit})
        )


def _invalid_urls_refusal(invalid: list[str]) -> Response:
    """422 for a request whose URLs cannot make a job, in FastAPI's shape."""
    message = (
        f"Value error, {len(invalid)} invalid URLs: "
        + ", ".join(json.dumps(url) for url in invalid[:5])
        if invalid
        else "Value error, no valid URLs"
    )
    detail = [{"type": "value_error", "loc": ["body", "urls"], "msg": message, "input": invalid}]
    return Response(422, encode({"detail": detail}))


def _cancelled_doc(doc: JobDoc, revealed: int) -> JobDoc:
    """The job as a cancellation leaves it: the items done so far kept, the others cancelled."""
    results = list(doc["results"][:revealed])
    results += [
        cancelled_item(item["input_index"], item["url"]) for item in doc["results"][revealed:]
    ]
    completed = sum(1 for item in results if item["status"] == "completed")
    failed = sum(1 for item in results if item["status"] == "failed")
    cancelled = dict(doc, status="cancelled", results=results, completed_urls=completed)
    cancelled.update(failed_urls=failed, cancelled_urls=len(results) - completed - failed)
    cancelled["token_summary"] = {"tokens_charged_total": completed, "tokens_reserved": 0}
    cancelled.pop("emulator", None)
    return cancelled
