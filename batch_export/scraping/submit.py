"""Each batch submitted exactly once, whatever is lost or killed on the way.

:meth:`Submitter.job_for` gives a batch its job, in this order:

1. the job id the state file holds for it, if any: a batch with a job is never sent again;
2. if an intent was recorded but no job id (the answer was lost, or the process was killed
   between the POST and the record), the job found again on the server: among the jobs
   created since the intent (less a margin for clocks that differ), not claimed by another
   batch, with no more accepted URLs than were sent and the same formats, the one whose first
   page's URLs are the batch's, at their positions;
3. otherwise a new ``POST /v1/batch``, with its intent recorded (and fsynced) before it goes.

A 429 made no job: the POST is sent again after a wait. An answer that did not come back
whole may have made one: it is looked for first (step 2), and sent again only when it is not
there. A 402 stops everything at once (:class:`~batch_export.errors.InsufficientBalanceError`,
exit 11), with the state kept for a rerun once the balance is topped up.

Example (against the bundled emulator, an answer dropped after the job was made):

    >>> import pathlib, tempfile
    >>> from batch_export.fetch.client import ApiClient
    >>> from batch_export.scraping.inputs import read_urls
    >>> from batch_export.scraping.plan import BatchOptions, plan_batches
    >>> from batch_export.scraping.state import ScrapeState
    >>> from batch_export.testing import Emulator
    >>> from batch_export.testing.submit import SubmitSettings
    >>> urls = read_urls([f"https://a.example/{n}" for n in range(3)])
    >>> state = ScrapeState.open(pathlib.Path(tempfile.mkdtemp()) / "s.json",
    ...                          urls=urls, options=BatchOptions())
    >>> [batch] = state.add_round(plan_batches(urls.valid(), batch_size=10, round=0, first=1))
    >>> with Emulator(api_key="k", submit=SubmitSettings(post_drop_rate=1.0)) as emu:
    ...     client = ApiClient(base_url=emu.base_url, api_key="k", sleep=lambda s: None)
    ...     submitter = Submitter(client, state, urls, BatchOptions(), sleep=lambda s: None)
    ...     job_id = submitter.job_for(batch)
    ...     created = len(emu.desk.created)
    >>> created, batch.found_again, batch.job_id == job_id
    (1, True, True)
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from batch_export.errors import (
    ApiError,
    InsufficientBalanceError,
    JobNotFoundError,
    RetriesExhaustedError,
)
from batch_export.fetch.client import ApiClient
from batch_export.fetch.retry import RetryPolicy
from batch_export.fetch.submit import Accepted, jobs_created_since, post_batch, post_outcome
from batch_export.job import ResultPage
from batch_export.scraping.inputs import UrlInput
from batch_export.scraping.join import BatchJoin
from batch_export.scraping.plan import BatchOptions
from batch_export.scraping.state import BatchRecord, ScrapeState, now_iso

__all__ = ["Stopped", "SubmitPolicy", "Submitter"]

_FIRST_PAGE = 50


@dataclass(frozen=True, kw_only=True)
class SubmitPolicy:
    """How patient submitting is.

    ``throttled``: 429s in a row on one POST before giving up; ``lost``: POSTs of one batch
    whose answer was lost (and whose job could not be found) before giving up;
    ``clock_margin``: seconds before the intent from which jobs are looked for (the server's
    clock may be behind ours); ``search_polls``: looks at a found job that shows no item yet
    (queued) before deciding it is not the batch's; ``listing_delay``: seconds before a second
    look, for a job that the listing shows late; ``backoff``: the waits between attempts.
    """

    throttled: int = 30
    lost: int = 5
    clock_margin: float = 600.0
    search_polls: int = 10
    listing_delay: float = 3.0
    backoff: RetryPolicy = field(default_factory=lambda: RetryPolicy(base_delay=1.0))


class Stopped(Exception):  # internal: it never leaves the run (see run.py)
    """The run was told to stop (another batch failed): no POST was sent for this batch."""


class Submitter:
    """Gives each batch of a run its one job (see the module docstring)."""

    def __init__(
        self,
        client: ApiClient,
        state: ScrapeState,
        urls: UrlInput,
        options: BatchOptions,
        *,
        policy: SubmitPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_event: Callable[[str, BatchRecord], None] | None = None,
    ) -> None:
        self._client = client
        self._state = state
        self._urls = {line.line: line.url for line in urls.lines}
        self._options = options
        self._policy = policy or SubmitPolicy()
        self._sleep = sleep
        self._rng = random.Random()
        self._on_event = on_event or (lambda event, batch: None)
        # POSTs go out side by side; a search for a lost answer runs alone, with no POST in
        # flight: every job this run made is then recorded, or is some lost answer's, so
        # batches with the same URLs cannot take one another's job.
        self._gate = threading.Condition()
        self._posting = 0
        self._searching = False

    def sent(self, batch: BatchRecord) -> list[str]:
        """The URLs the batch sends, in order."""
        return [self._urls[line] for line in batch.lines]

    def job_for(self, batch: BatchRecord, *, stop: threading.Event | None = None) -> str:
        """The batch's job id: recorded, found again after a lost answer, or newly made.

        ``stop``, once set, keeps any further POST from leaving (:class:`Stopped`).
        """
        if batch.job_id is not None:
            return batch.job_id
        if batch.intent_at is not None and self._found_again(batch):
            assert batch.job_id is not None
            return batch.job_id
        return self._submit(batch, stop or threading.Event())

    def _submit(self, batch: BatchRecord, stop: threading.Event) -> str:
        body = self._options.request_body(self.sent(batch))
        throttled = lost = 0
        while True:
            if stop.is_set():
                raise Stopped(f"Batch {batch.number} was not submitted: the run stopped.")
            self._on_event("posts", batch)
            with self._state.changing():  # the intent is on disk before the POST leaves
                batch.intent_at = batch.intent_at or now_iso()
                batch.posts += 1
            try:
                with self._post_slot():
                    accepted = post_batch(self._client, body)
                    self._record(batch, accepted, found_again=False)
            except InsufficientBalanceError:
                raise
            except ApiError as error:
                outcome = post_outcome(error)
                if outcome == "final":
                    raise
                if outcome == "throttled":
                    throttled += 1
                    self._give_up_after(throttled, self._policy.throttled, error, "throttled")
                    self._wait(throttled, error)
                    continue
                lost += 1
                self._on_event("answer_lost", batch)
                if self._found_again(batch):
                    assert batch.job_id is not None
                    return batch.job_id
                self._give_up_after(lost, self._policy.lost, error, "lost")
                self._wait(lost, error)
                continue
            return accepted.job_id

    @contextmanager
    def _post_slot(self) -> Iterator[None]:
        with self._gate:
            self._gate.wait_for(lambda: not self._searching)
            self._posting += 1
        try:
            yield
        finally:
            with self._gate:
                self._posting -= 1
                self._gate.notify_all()

    @contextmanager
    def _search_slot(self) -> Iterator[None]:
        with self._gate:
            self._gate.wait_for(lambda: not self._searching and not self._posting)
            self._searching = True
        try:
            yield
        finally:
            with self._gate:
                self._searching = False
                self._gate.notify_all()

    def _give_up_after(self, count: int, bound: int, error: ApiError, how: str) -> None:
        if count > bound:
            said = "was throttled (429)" if how == "throttled" else "lost its answer"
            raise RetriesExhaustedError(
                f"POST /v1/batch {said} {count} times in a row ({error.message}): rerun later; "
                "the state file keeps every batch already submitted.",
                http_status=error.http_status,
            )

    def _wait(self, count: int, error: ApiError) -> None:
        hint = getattr(error, "retry_after", None)
        delay = self._policy.backoff.backoff(count, rng=self._rng)
        if isinstance(hint, int | float):
            delay = min(float(hint), self._policy.backoff.retry_after_cap)
        self._sleep(delay)

    def _record(self, batch: BatchRecord, accepted: Accepted, *, found_again: bool) -> None:
        with self._state.changing():
            batch.job_id = accepted.job_id
            batch.accepted_urls = accepted.accepted_urls
            batch.invalid_urls = list(accepted.invalid_urls)
            batch.found_again = found_again
        self._on_event("found_again" if found_again else "submitted", batch)

    # --- finding a job again ----------------------------------------------------------------

    def _found_again(self, batch: BatchRecord) -> bool:
        """Look for the batch's job among the jobs created since its intent; record it."""
        with self._search_slot():
            if self._search(batch):
                return True
            self._sleep(self._policy.listing_delay)  # a job may reach the listing late
            return self._search(batch)

    def _search(self, batch: BatchRecord) -> bool:
        assert batch.intent_at is not None
        since = datetime.fromisoformat(batch.intent_at) - timedelta(
            seconds=self._policy.clock_margin
        )
        sent = self.sent(batch)
        for entry in jobs_created_since(self._client, since):
            job_id = entry.get("job_id")
            if not isinstance(job_id, str) or job_id in self._state.claimed():
                continue
            if not self._listed_fits(entry, len(sent)):
                continue
            accepted = self._first_page_fits(job_id, sent)
            if accepted is not None:
                self._record(batch, accepted, found_again=True)
                return True
        return False

    def _listed_fits(self, entry: dict[str, Any], sent: int) -> bool:
        accepted = entry.get("accepted_urls")
        if isinstance(accepted, int) and not 0 < accepted <= sent:
            return False
        config = entry.get("config")
        formats = config.get("formats") if isinstance(config, dict) else None
        return not isinstance(formats, list) or sorted(formats) == sorted(self._options.formats)

    def _first_page_fits(self, job_id: str, sent: list[str]) -> Accepted | None:
        """The job as accepted, when its first page shows the batch's URLs; else None."""
        for poll in range(self._policy.search_polls):
            try:
                page = self._client.fetch_page(job_id, page=1, page_size=_FIRST_PAGE)
            except JobNotFoundError:
                return None
            join = BatchJoin(sent, page.job.invalid_urls)
            total = page.job.total_urls
            if not join.fits or (total is not None and total != join.accepted):
                return None
            if page.results or page.job.is_terminal:
                return _accepted_if_matches(page, join)
            self._sleep(self._policy.backoff.backoff(poll + 1))  # queued: nothing to see yet
        return None


def _accepted_if_matches(page: ResultPage, join: BatchJoin) -> Accepted | None:
    items: list[tuple[Any, Any]] = [
        (item.get("input_index"), item.get("url")) for item in page.results
    ]
    if not items or not all(type(index) is int for index, _ in items) or not join.matches(items):
        return None
    job = page.job
    return Accepted(job.job_id, job.status, join.accepted, tuple(job.invalid_urls))
