"""The emulator's submitting side, held to the SDK: POST /v1/batch, DELETE, concurrency usage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from geonode_scraper_sdk import ApiClient, BatchApi, Configuration, UsageApi
from geonode_scraper_sdk.exceptions import ApiException
from geonode_scraper_sdk.models import (
    BatchAccepted,
    BatchCancelled,
    BatchRequest,
    BatchStatusResponse,
    ConcurrencyUsageResponse,
    ErrorResponse,
    HTTPValidationError,
)

from batch_export.codes import may_resubmit
from batch_export.testing import Emulator
from batch_export.testing._outcomes import decide, is_valid_url
from batch_export.testing.submit import SubmitSettings, urls_digest

KEY = "test-key"
URLS = [f"https://shop{n % 7}.example/item/{n}" for n in range(40)]


def post(emu: Emulator, body: Any, key: str = KEY) -> requests.Response:
    headers = {"X-Api-Key": key}
    return requests.post(f"{emu.base_url}/v1/batch", json=body, headers=headers, timeout=5)


def status(emu: Emulator, job_id: str, page_size: int = 50) -> dict[str, Any]:
    answer = requests.get(
        f"{emu.base_url}/v1/batch/{job_id}",
        params={"page_size": page_size},
        headers={"X-Api-Key": KEY},
        timeout=5,
    )
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    assert BatchStatusResponse.from_dict(body) is not None
    return body


@pytest.fixture
def emu() -> Iterator[Emulator]:
    settings = SubmitSettings(seed=3, failure_rate=0.3, processing_polls=2)
    with Emulator(api_key=KEY, submit=settings) as emulator:
        yield emulator


@pytest.fixture
def sdk(emu: Emulator) -> Iterator[tuple[BatchApi, UsageApi]]:
    configuration = Configuration(host=emu.base_url, api_key={"ApiKeyAuth": KEY})
    with ApiClient(configuration) as client:
        yield BatchApi(client), UsageApi(client)


def test_the_sdk_submits_polls_cancels_and_reads_usage(
    emu: Emulator, sdk: tuple[BatchApi, UsageApi]
) -> None:
    batches, usage = sdk
    accepted = batches.create_batch_v1_batch_post(BatchRequest(urls=[*URLS, "not a url"]))
    assert isinstance(accepted, BatchAccepted)
    assert (accepted.accepted_urls, accepted.invalid_urls) == (40, ["not a url"])
    assert accepted.status_url == f"/v1/batch/{accepted.job_id}"
    in_use = usage.get_concurrency_usage_v1_usage_concurrency_get()
    assert isinstance(in_use, ConcurrencyUsageResponse)
    assert (in_use.work_concurrency_in_use, in_use.work_concurrency_limit) == (1, 10)
    job_id = str(accepted.job_id)
    assert [status(emu, job_id)["status"] for _ in range(2)] == ["queued", "processing"]
    cancelled = batches.cancel_batch_v1_batch_job_id_delete(accepted.job_id)
    assert isinstance(cancelled, BatchCancelled)
    final = status(emu, job_id)
    assert final["status"] == "cancelled"
    assert final["completed_urls"] + final["failed_urls"] == 20  # half shown at poll 2
    assert final["cancelled_urls"] == 20
    with pytest.raises(ApiException) as caught:
        batches.cancel_batch_v1_batch_job_id_delete(accepted.job_id)
    assert caught.value.status == 409
    assert ErrorResponse.from_json(caught.value.body) is not None


def test_items_follow_the_url_and_passing_failures_pass_when_sent_again(emu: Emulator) -> None:
    first = post(emu, {"urls": URLS, "formats": ["markdown", "html"]}).json()
    status(emu, first["job_id"])
    status(emu, first["job_id"])
    done = status(emu, first["job_id"])
    assert done["status"] == "completed"
    outcomes = {url: decide(url, seed=3, failure_rate=0.3, passing_share=0.5) for url in URLS}
    for item in done["results"]:
        assert item["url"] == URLS[item["input_index"]]
        assert item["error_code"] == outcomes[item["url"]].error_code
        if item["status"] == "completed":
            assert item["url"] in item["data"]["markdown"] and "<h1>" in item["data"]["html"]
    passing = [url for url, outcome in outcomes.items() if outcome.passing]
    permanent = [url for url, o in outcomes.items() if o.error_code and not o.passing]
    assert passing and permanent
    assert all(may_resubmit(outcomes[url].error_code) for url in passing)
    again = post(emu, {"urls": passing + permanent}).json()
    for _ in range(2):
        status(emu, again["job_id"])
    items = status(emu, again["job_id"])["results"]
    assert [item["status"] for item in items] == ["completed"] * len(passing) + ["failed"] * len(
        permanent
    )
    assert emu.desk is not None and emu.desk.charged == sum(
        item["status"] == "completed" for item in done["results"]
    ) + len(passing)
    assert [job.digest for job in emu.desk.created] == [
        urls_digest(URLS),
        urls_digest(passing + permanent),
    ]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "urls"]),
        ({"urls": []}, ["body", "urls"]),
        ({"urls": ["https://a.example/"] * 1001}, ["body", "urls"]),
        ({"urls": [3]}, ["body", "urls", 0]),
        ({"urls": ["https://a.example/"], "formats": ["pdf"]}, ["body", "formats", 0]),
        ({"urls": ["https://a.example/"], "render_js": "yes"}, ["body", "render_js"]),
        ({"urls": ["https://a.example/"], "proxy": {"country": "usa"}},
         ["body", "proxy", "country"]),
        ({"urls": ["https://a.example/"], "proxy": {"type": "tor"}}, ["body", "proxy", "type"]),
        ({"urls": ["https://a.example/"], "headers": {"a": 1}}, ["body", "headers"]),
        ({"urls": ["https://a.example/"], "wait_config": {"wait_timeout": -1}},
         ["body", "wait_config", "wait_timeout"]),
        ({"urls": ["nope"]}, ["body", "urls"]),
        ({"urls": ["https://a.example/", "nope"], "ignore_invalid_urls": False}, ["body", "urls"]),
    ],
)  # fmt: skip
def test_requests_the_sdk_model_refuses_are_422(
    emu: Emulator, body: dict[str, Any], loc: list[Any]
) -> None:
    answer = post(emu, body)
    assert answer.status_code == 422
    assert HTTPValidationError.from_dict(answer.json()) is not None
    assert answer.json()["detail"][0]["loc"] == loc
    assert emu.desk is not None and emu.desk.created == []


def test_a_wrong_key_is_401_and_makes_no_job(emu: Emulator) -> None:
    answer = post(emu, {"urls": URLS}, key="wrong")
    assert answer.status_code == 401
    assert emu.desk is not None and emu.desk.created == []


def test_a_throttled_post_makes_no_job(emu: Emulator) -> None:
    assert emu.desk is not None
    emu.desk.set_settings(SubmitSettings(post_throttle_rate=1.0))
    answer = post(emu, {"urls": URLS})
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "0")
    assert emu.desk.created == []
    assert [record.fault for record in emu.requests] == ["throttle"]


def test_a_dropped_answer_comes_after_the_job_was_made(emu: Emulator) -> None:
    assert emu.desk is not None
    emu.desk.set_settings(SubmitSettings(post_drop_rate=1.0))
    with pytest.raises(requests.exceptions.RequestException):
        post(emu, {"urls": URLS})
    assert len(emu.desk.created) == 1
    assert [(r.method, r.status, r.fault) for r in emu.requests] == [("POST", 202, "drop")]


def test_402_once_the_balance_cannot_pay_for_the_batch(emu: Emulator) -> None:
    assert emu.desk is not None
    emu.desk.set_settings(SubmitSettings(balance=50, failure_rate=0.0))
    assert post(emu, {"urls": URLS}).status_code == 202  # 40 charged, 10 left
    refused = post(emu, {"urls": URLS[:11]})
    assert refused.status_code == 402
    assert refused.json()["code"] == "insufficient_balance"
    assert post(emu, {"urls": URLS[:10]}).status_code == 202
    assert (emu.desk.charged, len(emu.desk.created)) == (50, 2)


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("https://quotes.toscrape.com/page/2/", True),
        ("http://a.example", True),
        ("http://localhost/", False),
        ("ftp://a.example/", False),
        ("https://a .example/", False),
        ("https://" + "a" * 2050 + ".example/", False),
    ],
)
def test_the_emulated_url_rule(url: str, valid: bool) -> None:
    assert is_valid_url(url) is valid


def test_without_submit_settings_posts_stay_405() -> None:
    with Emulator(api_key=KEY) as emu:
        assert post(emu, {"urls": URLS}).status_code == 405


def test_a_job_of_processing_seconds_moves_on_with_time_not_polls(emu: Emulator) -> None:
    assert emu.desk is not None
    emu.desk.set_settings(SubmitSettings(processing_polls=4, processing_seconds=3.0))
    job_id = post(emu, {"urls": URLS}).json()["job_id"]
    assert status(emu, job_id)["status"] == "queued"
    time.sleep(1.5)  # past half of its time: processing, half of its items shown at least
    halfway = status(emu, job_id)
    assert (
        halfway["status"] == "processing"
        and halfway["completed_urls"] + halfway["failed_urls"] >= len(URLS) // 2
    )
    time.sleep(1.6)
    assert status(emu, job_id)["status"] == "completed"
