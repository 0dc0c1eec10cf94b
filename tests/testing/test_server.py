"""The emulator over real HTTP: endpoints, error shapes, paging, processing, the request log."""

from __future__ import annotations

import json
import math
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from batch_export.testing import Emulator, Faults, RequestRecord, generate_account, generate_job
from batch_export.testing.pytest_plugin import EmulatorFactory
from tests.scripted import listing_entry

KEY = "test-key"
SMALL = "9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019"
_DATE = "datetime_from_date_parsing"
_GE = "greater_than_equal"
_BAD_HOUR = "2026-05-26T25:00"


def get(emu: Emulator, path: str, *, key: str | None = KEY, **params: Any) -> requests.Response:
    headers = {"X-Api-Key": key} if key is not None else {}
    return requests.get(f"{emu.base_url}{path}", params=params, headers=headers, timeout=5)


def indexes(answer: requests.Response) -> list[int]:
    return [item["input_index"] for item in answer.json()["results"]]


@pytest.fixture
def job25(emulator_factory: EmulatorFactory) -> Emulator:
    return emulator_factory(jobs=[generate_job(job_id="j25", items=25, markdown_bytes=200)])


# --- the status endpoint ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, list(range(10))),
        ({"page": 2}, list(range(10, 20))),
        ({"page": 3}, list(range(20, 25))),
        ({"page": 4}, []),
        ({"page": 99999999999999999999}, []),
        ({"page": 1, "page_size": 50}, list(range(25))),
        ({"page": 2, "page_size": 7}, list(range(7, 14))),
        ({"page": 25, "page_size": 1}, [24]),
        ({"page": " 2 ", "page_size": "+10"}, list(range(10, 20))),
    ],
)
def test_status_pages(job25: Emulator, params: dict[str, Any], expected: list[int]) -> None:
    answer = get(job25, "/v1/batch/j25", **params)
    assert answer.status_code == 200
    assert indexes(answer) == expected


def test_status_answer_is_the_document_without_emulator_fields(
    emulator_factory: EmulatorFactory,
) -> None:
    doc = generate_job(job_id="j", items=12, invalid_urls=2, markdown_bytes=200)
    doc["extra_field"] = {"kept": True}
    emu = emulator_factory(jobs=[doc])
    body = get(emu, "/v1/batch/j", page=2).json()
    expected = {key: value for key, value in doc.items() if key != "results"}
    assert {key: value for key, value in body.items() if key != "results"} == expected
    assert body["results"] == doc["results"][10:12]
    assert list(body)[-1] == "results"


def test_headers_and_keep_alive(job25: Emulator) -> None:
    with requests.Session() as session:
        session.headers["X-Api-Key"] = KEY
        answers = [session.get(f"{job25.base_url}/v1/batch/j25", timeout=5) for _ in range(3)]
    for answer in answers:
        assert answer.headers["Content-Type"] == "application/json"
        assert int(answer.headers["Content-Length"]) == len(answer.content)
    assert answer.raw.version == 11


def test_keep_alive_uses_one_connection(job25: Emulator) -> None:
    request = b"GET /v1/batch/j25 HTTP/1.1\r\nHost: x\r\nX-Api-Key: test-key\r\n\r\n"
    with socket.create_connection(("127.0.0.1", job25.port), timeout=5) as sock:
        for _ in range(2):
            sock.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(1)
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            body = b""
            while len(body) < length:
                body += sock.recv(length - len(body))
            assert json.loads(body)["job_id"] == "j25"


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "", "wrong-key", "test-key "])
def test_missing_or_wrong_key_is_401(job25: Emulator, key: str | None) -> None:
    answer = get(job25, "/v1/batch/j25", key=key)
    assert answer.status_code == 401
    body = answer.json()
    assert {k: v for k, v in body.items() if k != "correlation_id"} == {
        "code": "unauthorized",
        "message": "API key missing or invalid",
        "retryable": False,
    }
    assert uuid.UUID(body["correlation_id"]).version == 4


@pytest.mark.parametrize(
    ("path", "code", "message"),
    [
        ("/v1/batch/no-such-job", "job_not_found", "Batch job not found"),
        ("/v1/batch/j25/", "not_found", "No route for GET /v1/batch/j25/"),
        ("/v2/batch/j25", "not_found", "No route for GET /v2/batch/j25"),
        ("/", "not_found", "No route for GET /"),
    ],
)
def test_not_found(job25: Emulator, path: str, code: str, message: str) -> None:
    answer = get(job25, path)
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "application/json"
    body = answer.json()
    assert (body["code"], body["message"], body["retryable"]) == (code, message, False)


_PAGING_422 = [
    ({"page": "0"}, [("page", "greater_than_equal", "0")]),
    ({"page": "-1"}, [("page", "greater_than_equal", "-1")]),
    ({"page": "abc"}, [("page", "int_parsing", "abc")]),
    ({"page": "1.5"}, [("page", "int_parsing", "1.5")]),
    ({"page": ""}, [("page", "int_parsing", "")]),
    ({"page_size": "0"}, [("page_size", "greater_than_equal", "0")]),
]


@pytest.mark.parametrize(
    ("path", "params", "detail"),
    [
        *[("/v1/batch/j25", params, detail) for params, detail in _PAGING_422],
        *[("/v1/batch/jobs", params, detail) for params, detail in _PAGING_422],
        ("/v1/batch/j25", {"page_size": "51"}, [("page_size", "less_than_equal", "51")]),
        ("/v1/batch/jobs", {"page_size": "101"}, [("page_size", "less_than_equal", "101")]),
        (
            "/v1/batch/j25",
            {"page": "x", "page_size": "100"},
            [("page", "int_parsing", "x"), ("page_size", "less_than_equal", "100")],
        ),
        ("/v1/batch/jobs", {"status": "done"}, [("status", "enum", "done")]),
        ("/v1/batch/jobs", {"status": ""}, [("status", "enum", "")]),
        ("/v1/batch/jobs", {"start_date": "yesterday"}, [("start_date", _DATE, "yesterday")]),
        ("/v1/batch/jobs", {"end_date": "2026-13-01"}, [("end_date", _DATE, "2026-13-01")]),
        ("/v1/batch/jobs", {"end_date": "2026-05-26T25:00"}, [("end_date", _DATE, _BAD_HOUR)]),
        (
            "/v1/batch/jobs",
            {"page_size": "0", "end_date": "", "status": "Completed"},
            [("status", "enum", "Completed"), ("end_date", _DATE, ""), ("page_size", _GE, "0")],
        ),
    ],
)
def test_bad_query_is_422(
    job25: Emulator, path: str, params: dict[str, str], detail: list[tuple[str, str, str]]
) -> None:
    answer = get(job25, path, **params)
    assert answer.status_code == 422
    errors = answer.json()["detail"]
    assert [(e["loc"][1], e["type"], e["input"]) for e in errors] == detail
    assert all(e["loc"][0] == "query" and e["msg"].startswith("Input should") for e in errors)


def test_checks_come_in_order(job25: Emulator) -> None:
    assert get(job25, "/nope", key=None).status_code == 404
    assert get(job25, "/v1/batch/no-such-job", key=None, page="x").status_code == 401
    assert get(job25, "/v1/batch/no-such-job", page="x").status_code == 422


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/batch"), ("DELETE", "/v1/batch/j25")])
def test_other_methods_are_405(job25: Emulator, method: str, path: str) -> None:
    answer = requests.request(
        method, f"{job25.base_url}{path}", json={"urls": []}, headers={"X-Api-Key": KEY}, timeout=5
    )
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "GET"
    assert answer.json()["code"] == "method_not_allowed"


# --- the listing ------------------------------------------------------------------------


def test_listing_is_newest_first_and_paged(emulator_factory: EmulatorFactory) -> None:
    docs = generate_account(jobs=23, processing=2, seed=4, items=(2, 4))
    emu = emulator_factory(jobs=docs)
    newest_first = sorted(docs, key=lambda doc: doc["created_at"], reverse=True)
    pages = [get(emu, "/v1/batch/jobs", page=page, page_size=10).json() for page in (1, 2, 3, 4)]
    assert [page["page_count"] for page in pages] == [3, 3, 3, 3]
    assert [len(page["jobs"]) for page in pages] == [10, 10, 3, 0]
    listed = [job["job_id"] for page in pages for job in page["jobs"]]
    assert listed == [doc["job_id"] for doc in newest_first]
    first, doc = pages[0]["jobs"][5], newest_first[5]
    assert first == listing_entry(doc)
    assert pages[0]["page"] == 1 and pages[0]["page_size"] == 10


def test_listing_shows_processing_jobs_as_last_polled(emulator_factory: EmulatorFactory) -> None:
    doc = generate_job(job_id="p", items=9, processing_polls=3)
    emu = emulator_factory(jobs=[doc])

    def listed() -> tuple[str, int | None, str | None]:
        job = get(emu, "/v1/batch/jobs").json()["jobs"][0]
        return job["status"], job["completed_urls"], job["completed_at"]

    assert listed()[0] == "queued"
    get(emu, "/v1/batch/p")
    get(emu, "/v1/batch/p")
    assert listed()[0] == "processing"
    get(emu, "/v1/batch/p")
    get(emu, "/v1/batch/p")
    assert listed() == ("completed", doc["completed_urls"], doc["completed_at"])
    assert emu.polls("p") == 4


def _created(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["created_at"].replace("Z", "+00:00"))


def _listed(emu: Emulator, **params: Any) -> tuple[list[str], list[int]]:
    """Every job id the listing gives for ``params``, page by page, and each page's count."""
    ids: list[str] = []
    counts: list[int] = []
    for page in range(1, 50):
        body = get(emu, "/v1/batch/jobs", page=page, page_size=7, **params).json()
        counts.append(body["page_count"])
        if not body["jobs"]:
            return ids, counts
        ids += [job["job_id"] for job in body["jobs"]]
    raise AssertionError("the listing did not end")


@pytest.fixture(scope="module")
def account() -> list[dict[str, Any]]:
    return generate_account(jobs=40, processing=3, seed=5, items=(1, 3), markdown_bytes=100)


_MIDDLE = 20  # the job (oldest first) whose created_at the date filters below are set at


@pytest.mark.parametrize(
    ("params", "keeps"),
    [
        ({}, lambda doc, at: True),
        (
            {"status": "completed"},
            lambda doc, at: doc["status"] == "completed" and "emulator" not in doc,
        ),
        ({"status": "failed"}, lambda doc, at: doc["status"] == "failed"),
        ({"status": "queued"}, lambda doc, at: "emulator" in doc),
        ({"status": "processing"}, lambda doc, at: False),
        ({"start_date": "{z}"}, lambda doc, at: _created(doc) >= at),
        ({"end_date": "{z}"}, lambda doc, at: _created(doc) <= at),
        ({"start_date": "{z}", "end_date": "{z}"}, lambda doc, at: _created(doc) == at),
        ({"start_date": "{sdk}"}, lambda doc, at: _created(doc) >= at),
        ({"end_date": "{offset}"}, lambda doc, at: _created(doc) <= at),
        ({"start_date": "{naive}"}, lambda doc, at: _created(doc) >= at),
        ({"end_date": "{unix}"}, lambda doc, at: _created(doc) <= at),
        (
            {"end_date": "{day}"},
            lambda doc, at: _created(doc) <= at.replace(hour=0, minute=0, second=0),
        ),
        (
            {"status": "completed", "start_date": "{z}"},
            lambda doc, at: (
                doc["status"] == "completed" and "emulator" not in doc and _created(doc) >= at
            ),
        ),
    ],
)
def test_listing_filters(
    emulator_factory: EmulatorFactory,
    account: list[dict[str, Any]],
    params: dict[str, str],
    keeps: Any,
) -> None:
    """status keeps one status (as last polled); start_date / end_date keep jobs created on or
    after / on or before them, in every form the SDK or a person may send."""
    emu = emulator_factory(jobs=account)
    at = _created(account[_MIDDLE])
    forms = {
        "z": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sdk": at.strftime("%Y-%m-%dT%H:%M:%S.%f%z"),  # the SDK's own datetime_format
        "offset": at.astimezone(timezone(timedelta(hours=-5, minutes=-30))).isoformat(),
        "naive": at.replace(tzinfo=None).isoformat(),
        "unix": str(int(at.timestamp())),
        "day": at.date().isoformat(),
    }
    query = {name: value.format(**forms) for name, value in params.items()}
    newest_first = sorted(account, key=_created, reverse=True)
    expected = [doc["job_id"] for doc in newest_first if keeps(doc, at)]
    ids, counts = _listed(emu, **query)
    assert ids == expected
    assert set(counts) == {math.ceil(len(expected) / 7)}
    assert 0 < len(expected) < len(account) or not params or params == {"status": "processing"}


def test_listing_status_filter_follows_the_polls(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(jobs=[generate_job(job_id="p", items=4, processing_polls=2)])
    assert _listed(emu, status="queued")[0] == ["p"]
    get(emu, "/v1/batch/p")
    get(emu, "/v1/batch/p")
    assert _listed(emu, status="queued")[0] == []
    assert _listed(emu, status="processing")[0] == ["p"]
    get(emu, "/v1/batch/p")
    assert _listed(emu, status="completed")[0] == ["p"]


def test_listing_pages_of_up_to_100(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(jobs=generate_account(jobs=150, processing=0, items=(1, 1)))
    first = get(emu, "/v1/batch/jobs", page_size=100).json()
    second = get(emu, "/v1/batch/jobs", page=2, page_size=100).json()
    assert (len(first["jobs"]), len(second["jobs"])) == (100, 50)
    assert first["page_count"] == second["page_count"] == 2
    assert first["page_size"] == 100


def test_listing_skips_jobs_without_a_readable_created_at_when_dated(
    emulator_factory: EmulatorFactory,
) -> None:
    undated = generate_job(job_id="undated", items=1)
    undated["created_at"] = None
    emu = emulator_factory(jobs=[undated, generate_job(job_id="dated", items=1)])
    assert _listed(emu)[0] == ["dated", "undated"]
    assert _listed(emu, start_date="2000-01-01")[0] == ["dated"]
    assert _listed(emu, end_date="2100-01-01")[0] == ["dated"]


# --- processing jobs --------------------------------------------------------------------


def test_processing_progression(emulator_factory: EmulatorFactory) -> None:
    doc = generate_job(job_id="p", items=30, processing_polls=3, failure_rate=0.2, seed=5)
    emu = emulator_factory(jobs=[doc])
    seen = []
    for _ in range(5):
        body = get(emu, "/v1/batch/p", page_size=50).json()
        done = len(body["results"])
        counted = body["completed_urls"] + body["failed_urls"] + body["cancelled_urls"]
        assert counted == done
        assert body["pending_urls"] == 30 - done
        assert body["token_summary"] == {
            "tokens_charged_total": sum(i["metadata"]["tokens_charged"] for i in body["results"]),
            "tokens_reserved": 30 - done,
        }
        assert body["results"] == doc["results"][:done]
        seen.append((body["status"], done, body["completed_at"] is None))
    assert seen == [
        ("queued", 0, True),
        ("processing", 10, True),
        ("processing", 20, True),
        ("completed", 30, False),
        ("completed", 30, False),
    ]
    emu.reset_polls()
    assert get(emu, "/v1/batch/p").json()["status"] == "queued"


def test_each_page_request_is_a_poll(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(jobs=[generate_job(job_id="p", items=20, processing_polls=2)])
    assert get(emu, "/v1/batch/p", page=1).json()["status"] == "queued"
    assert indexes(get(emu, "/v1/batch/p", page=1)) == list(range(10))
    assert indexes(get(emu, "/v1/batch/p", page=2)) == list(range(10, 20))


def test_reorder_shuffles_processing_results_only(emulator_factory: EmulatorFactory) -> None:
    doc = generate_job(job_id="p", items=40, processing_polls=4, markdown_bytes=100)
    emu = emulator_factory(jobs=[doc], faults=Faults(reorder=True, seed=3))
    get(emu, "/v1/batch/p")
    orders = [indexes(get(emu, "/v1/batch/p", page_size=50)) for _ in range(4)]
    assert sorted(orders[0]) == list(range(10)) and orders[0] != list(range(10))
    assert sorted(orders[1]) == list(range(20)) and orders[1] != list(range(20))
    assert sorted(orders[2]) == list(range(30)) and orders[2] != list(range(30))
    assert orders[3] == list(range(40))


# --- the emulator object ----------------------------------------------------------------


def test_request_log(job25: Emulator) -> None:
    get(job25, "/v1/batch/j25", page=2, page_size=5)
    get(job25, "/v1/batch/j25", key=None)
    first, second = job25.requests
    assert isinstance(first, RequestRecord)
    assert (first.method, first.path, first.query, first.status, first.fault) == (
        "GET",
        "/v1/batch/j25",
        {"page": "2", "page_size": "5"},
        200,
        None,
    )
    assert (second.status, second.in_flight) == (401, 1)
    assert first.started <= first.ended <= second.started <= second.ended
    job25.reset_stats()
    assert job25.requests == [] and job25.max_in_flight == 0


def test_max_in_flight_counts_overlapping_requests(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(jobs=[generate_job(job_id="j", items=5)], faults=Faults(latency_ms=150))
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: get(emu, "/v1/batch/j").status_code, range(4)))
    assert statuses == [200] * 4
    assert emu.max_in_flight == 4
    assert sorted(record.in_flight for record in emu.requests) == [1, 2, 3, 4]
    assert all(record.ended - record.started >= 0.14 for record in emu.requests)


def test_add_job_serves_and_replaces(job25: Emulator) -> None:
    job25.add_job(generate_job(job_id="later", items=3))
    assert get(job25, "/v1/batch/later").json()["total_urls"] == 3
    job25.add_job(generate_job(job_id="later", items=4))
    assert get(job25, "/v1/batch/later").json()["total_urls"] == 4
    assert job25.job_count == 2


def test_add_job_validates() -> None:
    doc = generate_job(job_id="bad", items=3)
    doc["completed_urls"] += 1
    with pytest.raises(ValueError, match="job 'bad': completed_urls is"):
        Emulator(jobs=[doc])


def test_lifecycle() -> None:
    emu = Emulator(jobs=[generate_job(job_id="j", items=2)])
    with pytest.raises(RuntimeError, match="not serving"):
        _ = emu.base_url
    with emu:
        assert emu.base_url == f"http://127.0.0.1:{emu.port}"
        with pytest.raises(RuntimeError, match="already serving"):
            emu.start()
        with requests.Session() as session:
            session.headers["X-Api-Key"] = KEY
            assert session.get(f"{emu.base_url}/v1/batch/j", timeout=5).status_code == 200
            port = emu.port
            emu.stop()
            with pytest.raises(requests.ConnectionError):
                session.get(f"http://127.0.0.1:{port}/v1/batch/j", timeout=5)
    emu.stop()


def test_listens_on_loopback_only(job25: Emulator) -> None:
    assert job25._server is not None
    assert job25._server.server_address[0] == "127.0.0.1"


def test_stop_ends_idle_keep_alive_threads(emulator_factory: EmulatorFactory) -> None:
    before = set(threading.enumerate())
    emu = emulator_factory(jobs=[generate_job(job_id="j", items=2)])
    with requests.Session() as session:
        session.get(f"{emu.base_url}/v1/batch/j", headers={"X-Api-Key": KEY}, timeout=5)
        started = set(threading.enumerate()) - before
        assert len(started) == 2  # the serving loop, and the kept-alive connection's thread
        emu.stop()
        for thread in started:
            thread.join(timeout=2)
    assert not any(thread.is_alive() for thread in started)


# --- the pytest fixtures ----------------------------------------------------------------


def test_emulator_fixture_serves_the_samples(emulator: Emulator) -> None:
    assert emulator.api_key == "test-key"
    body = get(emulator, f"/v1/batch/{SMALL}", page_size=50).json()
    assert body["total_urls"] == len(body["results"]) == 25
    listed = get(emulator, "/v1/batch/jobs").json()["jobs"]
    assert len(listed) == 3


def test_public_surface_is_what_all_says() -> None:
    import batch_export.testing as testing

    assert sorted(testing.__all__) == [
        "Emulator",
        "Faults",
        "RequestRecord",
        "generate_account",
        "generate_job",
        "load_jobs",
    ]
    assert all(getattr(testing, name).__doc__ for name in testing.__all__)
