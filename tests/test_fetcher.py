from __future__ import annotations

import pytest

from batch_export.errors import IncompleteResultsError, JobNotFinishedError
from batch_export.fetch.client import ApiClient
from batch_export.fetch.pages import WaitPolicy, iter_result_pages, wait_for_job
from batch_export.fetch.retry import RetryPolicy
from batch_export.job import JobStatus
from tests.conftest import CANARY_KEY
from tests.scripted import Answer, Script, item, job_body, paged, scripted_server

KEY = CANARY_KEY


def client_for(base_url: str, concurrency: int = 4) -> ApiClient:
    return ApiClient(
        base_url=base_url,
        api_key=KEY,
        concurrency=concurrency,
        retry=RetryPolicy(attempts=2, jitter=0.0),
        sleep=lambda _: None,
    )


def read_all(script: Script, concurrency: int = 4, page_size: int = 10) -> list[int]:
    with scripted_server(script) as server:
        client = client_for(server.base_url, concurrency)
        job = wait_for_job(client, "j1")
        pages = iter_result_pages(client, job, page_size=page_size, concurrency=concurrency)
        return [r["input_index"] for page in pages for r in page.results]


@pytest.mark.parametrize("concurrency", [1, 4, 16])
@pytest.mark.parametrize("count", [0, 1, 10, 35, 40])
def test_every_item_once_in_order(concurrency: int, count: int) -> None:
    items = [item(i) for i in range(count)]
    assert read_all(paged("j1", items), concurrency) == list(range(count))


def test_a_page_that_flaps_is_reread() -> None:
    items = [item(i) for i in range(30)]
    serve = paged("j1", items)
    short_once = {"done": False}

    def script(number: int, path: str, query: dict[str, str]) -> Answer:
        answer = serve(number, path, query)
        if query.get("page") == "2" and not short_once["done"]:
            short_once["done"] = True
            answer.body["results"] = answer.body["results"][:-1]
        return answer

    assert read_all(script) == list(range(30))


def test_a_repeated_index_that_persists_fails_loudly() -> None:
    items = [item(i) for i in range(25)]
    items[12] = item(3)  # page 2 repeats an index of page 1, every time
    with pytest.raises(IncompleteResultsError) as caught:
        read_all(paged("j1", items))
    assert caught.value.repeated == (3,)
    assert str(caught.value).startswith(
        "The results of job j1 are not provably whole (input_index 3 came more than once; "
    )


def test_an_index_that_is_no_position_in_the_list_is_not_whole() -> None:
    # 12 items, 12 distinct indexes, as many as counted: but 12 is no position of a list of 12.
    # (A negative index is refused earlier, as a malformed answer.)
    items = [item(i) for i in range(11)] + [item(12)]
    with pytest.raises(IncompleteResultsError) as caught:
        read_all(paged("j1", items, completed_urls=12, total_urls=12))
    assert "input_index 12 is not a position (0 to 11)" in str(caught.value)


def test_invalid_urls_hold_positions_too() -> None:
    # total_urls counts the accepted URLs only (the SDK says so): the submitted list held the
    # invalid URLs too, so an index up to total_urls + invalid URLs - 1 can be an item's.
    items = [item(i) for i in range(11)] + [item(12)]
    invalid = {"invalid_urls": ["htp://x"]}
    assert read_all(paged("j1", items, completed_urls=12, total_urls=12, **invalid)) == [
        *range(11),
        12,
    ]


def test_fewer_items_than_the_counters_say_names_the_missing() -> None:
    items = [item(i) for i in range(12) if i != 11]
    with pytest.raises(IncompleteResultsError) as caught:
        read_all(paged("j1", items, completed_urls=12, total_urls=12))
    assert caught.value.missing == (11,)
    assert "page 2 held 1 items where 2 were expected" in str(caught.value)
    assert "missing input_index 11" in str(caught.value)


def test_more_items_than_the_counters_say_is_not_whole() -> None:
    items = [item(i) for i in range(20)]
    with pytest.raises(IncompleteResultsError) as caught:
        read_all(paged("j1", items, completed_urls=10, total_urls=10))
    assert "page 2 held 10 items where 0 were expected" in str(caught.value)


def _status_script(statuses: list[str]) -> Script:
    def script(number: int, path: str, query: dict[str, str]) -> Answer:
        status = statuses[min(number, len(statuses) - 1)]
        done = status in ("completed", "failed", "cancelled")
        return Answer(
            body=job_body(
                "j1",
                [item(0)] if done else [],
                status=status,
                total_urls=1,
                completed_urls=1 if done else 0,
                pending_urls=0 if done else 1,
            )
        )

    return script


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def test_waits_with_a_growing_interval_until_terminal() -> None:
    clock = FakeClock()
    polls: list[str | None] = []
    script = _status_script(["queued", "processing", "processing", "processing", "failed"])
    with scripted_server(script) as server:
        job = wait_for_job(
            client_for(server.base_url),
            "j1",
            sleep=clock.sleep,
            clock=clock,
            policy=WaitPolicy(first_interval=1.0, growth=2.0, max_interval=3.0),
            on_poll=lambda j: polls.append(j.status),
        )
    assert job.status == "failed"
    assert clock.sleeps == [1.0, 2.0, 3.0, 3.0]
    assert polls == ["queued", "processing", "processing", "processing", "failed"]


def test_no_wait_refuses_an_unfinished_job() -> None:
    with scripted_server(_status_script(["processing"])) as server:
        with pytest.raises(JobNotFinishedError) as caught:
            wait_for_job(client_for(server.base_url), "j1", wait=False)
    assert str(caught.value) == (
        "Job j1 is still processing (0 of 1 done): rerun later, or without --no-wait to wait "
        "for it."
    )


def test_timeout_ends_the_wait() -> None:
    clock = FakeClock()
    with scripted_server(_status_script(["processing"])) as server:
        with pytest.raises(JobNotFinishedError) as caught:
            wait_for_job(
                client_for(server.base_url),
                "j1",
                sleep=clock.sleep,
                clock=clock,
                policy=WaitPolicy(timeout=10, first_interval=1, growth=2),
            )
    assert str(caught.value) == (
        "Job j1 was still processing (0 of 1 done) after waiting 10 s: rerun later, or raise "
        "--timeout."
    )
    assert sum(clock.sleeps) <= 10


def test_page_size_out_of_range_is_refused() -> None:
    job = JobStatus(job_id="j1", status="completed", total_urls=1)
    with pytest.raises(ValueError, match="between 1 and 50"):
        list(iter_result_pages(client_for("http://127.0.0.1:9"), job, page_size=51))
