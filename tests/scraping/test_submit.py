"""Exactly-once submission, step by step: the intent, the record, the search after a loss."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from batch_export.errors import (
    ApiError,
    InsufficientBalanceError,
    RequestRejectedError,
    ResponseShapeError,
    RetriesExhaustedError,
    TransientApiError,
)
from batch_export.fetch.client import ApiClient
from batch_export.fetch.submit import post_outcome
from batch_export.scraping.inputs import read_urls
from batch_export.scraping.plan import BatchOptions, plan_batches
from batch_export.scraping.state import BatchRecord, ScrapeState, now_iso
from batch_export.scraping.submit import Submitter
from batch_export.testing import Emulator
from batch_export.testing._app import Request, Response
from tests.conftest import CANARY_KEY
from tests.scraping.conftest import FAST, posts

Desk = Callable[..., Emulator]
URLS = read_urls([f"https://a.example/{n % 4}" for n in range(8)])  # two batches, the same URLs


def submitter(
    emulator: Emulator, tmp_path: Path, options: BatchOptions | None = None
) -> tuple[Submitter, list[BatchRecord]]:
    options = options or BatchOptions(batch_size=4)
    state = ScrapeState.open(tmp_path / "s.json", urls=URLS, options=options)
    batches = state.add_round(plan_batches(URLS.valid(), batch_size=4, round=0, first=1))
    client = ApiClient(base_url=emulator.base_url, api_key=CANARY_KEY, sleep=lambda s: None)
    return Submitter(client, state, URLS, options, policy=FAST, sleep=lambda s: None), batches


def post_by_hand(emulator: Emulator, urls: list[str], formats: list[str] | None = None) -> str:
    """What a run killed after its POST left on the server: a job nobody recorded."""
    body = {"urls": urls, "formats": formats or ["markdown"]}
    answer = requests.post(
        f"{emulator.base_url}/v1/batch", json=body, headers={"X-Api-Key": CANARY_KEY}, timeout=5
    )
    job_id: str = answer.json()["job_id"]
    return job_id


def test_a_recorded_job_is_never_submitted_again(desk: Desk, tmp_path: Path) -> None:
    emulator = desk()
    submit, [batch, _] = submitter(emulator, tmp_path)
    job_id = submit.job_for(batch)
    assert submit.job_for(batch) == job_id
    assert (posts(emulator), batch.posts, batch.found_again) == (1, 1, False)


def test_a_job_posted_before_a_kill_is_found_again(desk: Desk, tmp_path: Path) -> None:
    emulator = desk()
    submit, [batch, _] = submitter(emulator, tmp_path)
    batch.intent_at = now_iso()  # the intent was on disk, the answer never recorded
    job_id = post_by_hand(emulator, submit.sent(batch))
    assert submit.job_for(batch) == job_id
    assert (posts(emulator), batch.found_again, batch.accepted_urls) == (1, True, 4)


def test_an_intent_whose_post_never_left_is_submitted_once(desk: Desk, tmp_path: Path) -> None:
    emulator = desk()
    submit, [batch, _] = submitter(emulator, tmp_path)
    batch.intent_at = now_iso()
    submit.job_for(batch)
    assert (posts(emulator), batch.posts, batch.found_again) == (1, 1, False)


def test_the_search_skips_claimed_jobs_other_formats_and_older_jobs(
    desk: Desk, tmp_path: Path
) -> None:
    emulator = desk()
    submit, [first, second] = submitter(emulator, tmp_path)
    post_by_hand(emulator, submit.sent(second), formats=["html"])  # another batch's options
    taken = submit.job_for(first)  # made, recorded: claimed
    second.intent_at = now_iso()
    made = submit.job_for(second)
    assert made != taken
    assert posts(emulator) == 3  # the html job and the claimed one were not taken


def test_throttling_that_never_ends_gives_up_with_one_sentence(desk: Desk, tmp_path: Path) -> None:
    emulator = desk(post_throttle_rate=1.0)
    submit, [batch, _] = submitter(emulator, tmp_path)
    with pytest.raises(RetriesExhaustedError) as caught:
        submit.job_for(batch)
    assert str(caught.value).startswith("POST /v1/batch was throttled (429) 31 times in a row (")
    assert emulator.desk is not None and emulator.desk.created == []
    assert batch.job_id is None and batch.posts == 31


def test_402_leaves_the_intent_and_no_job(desk: Desk, tmp_path: Path) -> None:
    emulator = desk(balance=0)
    submit, [batch, _] = submitter(emulator, tmp_path)
    with pytest.raises(InsufficientBalanceError):
        submit.job_for(batch)
    assert (batch.intent_at is not None, batch.job_id, posts(emulator)) == (True, None, 1)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (TransientApiError("429", http_status=429), "throttled"),
        (TransientApiError("503", http_status=503), "lost"),
        (TransientApiError("dropped"), "lost"),
        (ResponseShapeError("a 202 without job_id"), "final"),
        (RequestRejectedError("422", http_status=422), "final"),
        (InsufficientBalanceError("402", http_status=402), "final"),
    ],
)
def test_what_a_failed_post_means(error: ApiError, outcome: str) -> None:
    assert post_outcome(error) == outcome


def _rewriting_posts(emulator: Emulator, rewrite: Callable[[dict[str, Any]], Any]) -> None:
    """Let the emulator make each job, then answer its POST with ``rewrite(answer)``."""
    desk = emulator.desk
    assert desk is not None

    def route(request: Request) -> Response | None:
        answer = desk.respond(request)
        if request.method != "POST" or answer is None or answer.status != 202:
            return answer
        return Response(202, json.dumps(rewrite(json.loads(answer.body))).encode())

    emulator._api.routes.insert(0, route)


def test_a_202_whose_counts_look_wrong_is_still_the_batch_s_job(desk: Desk, tmp_path: Path) -> None:
    emulator = desk()
    _rewriting_posts(emulator, lambda answer: {**answer, "accepted_urls": 99, "invalid_urls": 7})
    submit, [batch, _] = submitter(emulator, tmp_path)
    job_id = submit.job_for(batch)
    assert emulator.desk is not None and [j.job_id for j in emulator.desk.created] == [job_id]
    assert (batch.accepted_urls, batch.invalid_urls, posts(emulator)) == (99, [], 1)


def test_a_202_without_a_job_id_stops_and_the_rerun_finds_the_job(
    desk: Desk, tmp_path: Path
) -> None:
    emulator = desk()
    _rewriting_posts(emulator, lambda answer: {"status": "queued"})
    submit, [batch, _] = submitter(emulator, tmp_path)
    with pytest.raises(ResponseShapeError, match="without a usable `job_id`"):
        submit.job_for(batch)
    assert batch.intent_at is not None and batch.job_id is None
    emulator._api.routes.pop(0)
    assert emulator.desk is not None
    assert submit.job_for(batch) == emulator.desk.created[0].job_id
    assert (batch.found_again, posts(emulator)) == (True, 1)
