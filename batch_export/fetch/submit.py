"""The submitting requests: start a batch, cancel one, read the work slots, list recent jobs.

Each is one call over :meth:`batch_export.fetch.client.ApiClient.send`. ``POST /v1/batch``
is sent **once** per call (no retry inside): an answer that does not come back whole may or
may not have made a job, and sending it again blindly could pay twice. :func:`post_outcome`
sorts what a failed POST means, and the caller decides (see
:mod:`batch_export.scraping.submit`): ``throttled`` (429: no job was made, wait and send
again), ``lost`` (the job may exist: look for it first), ``final`` (a refusal, 402 included).

Example (against the bundled emulator):

    >>> from batch_export.fetch.client import ApiClient
    >>> from batch_export.testing import Emulator
    >>> from batch_export.testing.submit import SubmitSettings
    >>> with Emulator(api_key="k", submit=SubmitSettings()) as emu:
    ...     client = ApiClient(base_url=emu.base_url, api_key="k")
    ...     accepted = post_batch(client, {"urls": ["https://a.example/", "nope"]})
    ...     slots = work_concurrency(client)
    >>> accepted.accepted_urls, accepted.invalid_urls, slots
    (1, ('nope',), (1, 10))
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from batch_export.api import MAX_LIST_PAGE_SIZE
from batch_export.errors import (
    ApiError,
    AuthenticationError,
    ResponseShapeError,
    TransientApiError,
)
from batch_export.fetch.client import ApiClient
from batch_export.fetch.job_id import check_job_id, usable_job_id
from batch_export.text import shown

__all__ = [
    "LIST_PAGE_SIZE",
    "Accepted",
    "cancel_batch",
    "jobs_created_since",
    "post_batch",
    "post_outcome",
    "work_concurrency",
]

LIST_PAGE_SIZE = MAX_LIST_PAGE_SIZE
# A safety net against a listing that never ends.
_MAX_LIST_PAGES = 1000


@dataclass(frozen=True)
class Accepted:
    """The 202 answer of ``POST /v1/batch``."""

    job_id: str
    status: str | None
    accepted_urls: int
    invalid_urls: tuple[str, ...]


def post_batch(client: ApiClient, body: dict[str, Any]) -> Accepted:
    """``POST /v1/batch`` with ``body``, sent once.

    A 202 with a usable ``job_id`` is a job made, and paid for: it is taken even when its
    counts look wrong (the items are proven against the URLs sent when they are read). A 202
    without one is a :class:`ResponseShapeError`: a job may exist that no id names.
    """
    answer: Any = client.send("POST", "/v1/batch", json_body=body, ok=202, retry=False)
    job_id = usable_job_id(answer.get("job_id") if isinstance(answer, dict) else None)
    if job_id is None:
        raise ResponseShapeError(
            f"POST /v1/batch answered 202 without a usable `job_id` (got {shown(answer)}): a "
            "job may have been made; the state file keeps the batch's intent, and a rerun "
            "looks for its job before sending it again."
        )
    invalid = answer.get("invalid_urls")
    refused = (
        tuple(url for url in invalid if isinstance(url, str)) if isinstance(invalid, list) else ()
    )
    accepted = answer.get("accepted_urls")
    if not isinstance(accepted, int) or isinstance(accepted, bool):
        accepted = len(body.get("urls", ())) - len(refused)
    status = answer.get("status")
    return Accepted(job_id, status if isinstance(status, str) else None, accepted, refused)


def post_outcome(error: ApiError) -> Literal["throttled", "lost", "final"]:
    """What a failed ``POST /v1/batch`` means for its batch.

    ``throttled``: a 429, no job made. ``lost``: the answer did not come back whole (a
    dropped connection, a timeout, a body cut short, a 5xx from a gateway), so a job may have
    been made. ``final``: anything else, a refusal (401, 402, 422, ...) or an answer that came
    whole and makes no sense: sending again is not for a program to decide.
    """
    if isinstance(error, TransientApiError):
        return "throttled" if error.http_status == 429 else "lost"
    return "final"


def cancel_batch(client: ApiClient, job_id: str) -> bool:
    """``DELETE /v1/batch/{job_id}``: True when cancelled, False when it was finished (409)."""
    check_job_id(job_id)
    try:
        client.send("DELETE", f"/v1/batch/{job_id}", ok=202, job_id=job_id)
    except ApiError as error:
        if error.http_status == 409:
            return False
        raise
    return True


def work_concurrency(client: ApiClient) -> tuple[int, int] | None:
    """``(in use, limit)`` from ``GET /v1/usage/concurrency``; None when it cannot be read
    (a plan or a deployment without it): the caller then keeps its own default."""
    try:
        answer: Any = client.send("GET", "/v1/usage/concurrency")
    except AuthenticationError:
        raise
    except ApiError:
        return None
    if not isinstance(answer, dict):
        return None
    in_use, limit = answer.get("work_concurrency_in_use"), answer.get("work_concurrency_limit")
    if not all(
        isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 1_000_000
        for n in (in_use, limit)
    ):
        return None
    assert isinstance(in_use, int) and isinstance(limit, int)
    return in_use, limit


def jobs_created_since(client: ApiClient, since: datetime) -> Iterator[dict[str, Any]]:
    """The account's jobs created at or after ``since``, newest first, from the listing.

    ``start_date`` asks the API to filter; the listing's own order (newest first) and each
    entry's ``created_at`` are checked too, so an API that ignores the filter costs more
    pages, never a wrong answer. Entries without a readable ``created_at`` are kept.
    """
    filters = {"start_date": since.isoformat()}
    for page in range(1, _MAX_LIST_PAGES + 1):
        body = client.list_jobs(page=page, page_size=LIST_PAGE_SIZE, filters=filters)
        entries = body["jobs"]
        older = False
        for entry in entries:
            created = _created(entry)
            if created is not None and created < since:
                older = True
                continue
            if isinstance(entry, dict):
                yield entry
        count = body.get("page_count")
        last = page >= count if isinstance(count, int) else len(entries) < LIST_PAGE_SIZE
        if older or not entries or last:
            return


def _created(entry: object) -> datetime | None:
    value = entry.get("created_at") if isinstance(entry, dict) else None
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
