"""Faults: decided from a seed, each kind observed over real HTTP."""

from __future__ import annotations

import email.utils
import json
import time
from collections import Counter

import pytest
import requests

from batch_export.testing import Emulator, Faults, generate_job
from batch_export.testing.faults import Fault
from batch_export.testing.pytest_plugin import EmulatorFactory

KEY = "test-key"


def fetch(emu: Emulator, path: str = "/v1/batch/j", **params: str | int) -> requests.Response:
    return requests.get(
        f"{emu.base_url}{path}", params=params, headers={"X-Api-Key": KEY}, timeout=5
    )


@pytest.fixture
def job(emulator_factory: EmulatorFactory) -> Emulator:
    return emulator_factory(jobs=[generate_job(job_id="j", items=30, markdown_bytes=400)])


# --- decisions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"throttle_rate": 1.5}, "throttle_rate must be between 0 and 1, got 1.5."),
        ({"drop_rate": -0.1}, "drop_rate must be between 0 and 1, got -0.1."),
        (
            {"throttle_rate": 0.5, "server_error_rate": 0.4, "truncate_rate": 0.2},
            "The fault rates add up to 1.1; their sum must be at most 1.",
        ),
        ({"latency_ms": -1.0}, "latency_ms must be 0 or more, got -1.0."),
        ({"retry_after": ()}, "retry_after needs at least one value (None for no header)."),
    ],
)
def test_invalid_faults(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as error:
        Faults(**kwargs)  # type: ignore[arg-type]
    assert str(error.value) == message


def test_decisions_depend_on_seed_and_number_only() -> None:
    faults = Faults(seed=7, throttle_rate=0.2, server_error_rate=0.2, drop_rate=0.1)
    first = [faults.decide(n) for n in range(1, 200)]
    assert first == [Faults(seed=7, throttle_rate=0.2, server_error_rate=0.2, drop_rate=0.1)
                     .decide(n) for n in range(1, 200)]  # fmt: skip
    assert first != [Faults(seed=8, throttle_rate=0.2, server_error_rate=0.2, drop_rate=0.1)
                     .decide(n) for n in range(1, 200)]  # fmt: skip


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        (Faults(), {None: 2000}),
        (Faults(throttle_rate=1.0), {"throttle": 2000}),
        (Faults(truncate_rate=1.0), {"truncate": 2000}),
        (
            Faults(throttle_rate=0.1, server_error_rate=0.2, drop_rate=0.3, truncate_rate=0.1),
            {None: 600, "throttle": 200, "server_error": 400, "drop": 600, "truncate": 200},
        ),
    ],
)
def test_rates_are_shares_of_requests(faults: Faults, expected: dict[str | None, int]) -> None:
    kinds = Counter(getattr(faults.decide(n), "kind", None) for n in range(1, 2001))
    assert set(kinds) == set(expected)
    for kind, count in expected.items():
        assert abs(kinds[kind] - count) < 80, (kind, kinds[kind])


def test_decided_details() -> None:
    faults = Faults(server_error_rate=0.5, throttle_rate=0.5, retry_after=("-5", "86400"))
    decided = [faults.decide(n) for n in range(1, 400)]
    errors = [f for f in decided if f is not None and f.kind == "server_error"]
    throttles = [f for f in decided if f is not None and f.kind == "throttle"]
    assert {f.status for f in errors} == {500, 502, 503, 504}
    assert {f.html for f in errors} == {True, False}
    assert not any(f.html for f in errors if f.status == 500)
    assert {f.retry_after for f in throttles} == {"-5", "86400"}


@pytest.mark.parametrize(("cut", "size", "expected"), [(0.5, 10, 5), (0.0, 10, 1), (0.99, 10, 9)])
def test_cut_sends_some_but_never_all(cut: float, size: int, expected: int) -> None:
    assert Fault("drop", cut=cut).cut_at(size) == expected


def test_http_date_is_about_a_second_ahead() -> None:
    header = Fault("throttle", 429, retry_after="http-date").retry_after_header(now=1000.2)
    assert header == "Thu, 01 Jan 1970 00:16:42 GMT"
    assert Fault("throttle", 429, retry_after=None).retry_after_header() is None


# --- over HTTP --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "0", "1", "-5", "86400", "http-date"])
def test_throttle_is_429_with_retry_after(
    emulator_factory: EmulatorFactory, value: str | None
) -> None:
    faults = Faults(throttle_rate=1.0, retry_after=(value,))
    emu = emulator_factory(jobs=[generate_job(job_id="j", items=3)], faults=faults)
    answer = fetch(emu)
    assert answer.status_code == 429
    body = answer.json()
    assert (body["code"], body["retryable"]) == ("throttled", True)
    assert body["message"] == "Request throttled or work concurrency limit reached"
    if value == "http-date":
        moment = email.utils.parsedate_to_datetime(answer.headers["Retry-After"]).timestamp()
        assert 0 < moment - time.time() <= 2.1
    else:
        assert answer.headers.get("Retry-After") == value
    assert emu.requests[0].fault == "throttle"


def test_server_errors_over_http(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(
        jobs=[generate_job(job_id="j", items=3)], faults=Faults(server_error_rate=1)
    )
    seen = set()
    for _ in range(40):
        answer = fetch(emu)
        assert answer.status_code in (500, 502, 503, 504)
        if answer.headers["Content-Type"] == "text/html":
            assert f"<title>{answer.status_code} " in answer.text
            seen.add("html")
        else:
            assert answer.json()["retryable"] is True
            seen.add("json")
    assert seen == {"html", "json"}
    assert {record.fault for record in emu.requests} == {"server_error"}


def test_drop_breaks_the_connection(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(jobs=[generate_job(job_id="j", items=20)], faults=Faults(drop_rate=1))
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        fetch(emu)
    assert [(r.status, r.fault) for r in emu.requests] == [(200, "drop")]


def test_truncate_is_a_clean_200_with_broken_json(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(
        jobs=[generate_job(job_id="j", items=20)], faults=Faults(truncate_rate=1)
    )
    answer = fetch(emu)
    assert answer.status_code == 200
    assert int(answer.headers["Content-Length"]) == len(answer.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.content)
    assert answer.content.startswith(b'{"job_id":"j"')


def test_faults_spare_401_404_422(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(jobs=[generate_job(job_id="j", items=3)], faults=Faults(throttle_rate=1))
    assert fetch(emu, "/v1/batch/none").status_code == 404
    assert fetch(emu, page="x").status_code == 422
    assert requests.get(f"{emu.base_url}/v1/batch/j", timeout=5).status_code == 401
    assert fetch(emu, "/v1/batch/jobs").status_code == 429


def test_throttles_and_server_errors_are_not_polls(emulator_factory: EmulatorFactory) -> None:
    doc = generate_job(job_id="j", items=3, processing_polls=2)
    emu = emulator_factory(jobs=[doc], faults=Faults(throttle_rate=0.5, server_error_rate=0.5))
    for _ in range(5):
        fetch(emu)
    assert emu.polls("j") == 0
    emu.set_faults(Faults(truncate_rate=1))
    fetch(emu)
    assert emu.polls("j") == 1


def test_a_run_replays_the_same_faults(emulator_factory: EmulatorFactory) -> None:
    faults = Faults(seed=11, throttle_rate=0.2, server_error_rate=0.2, truncate_rate=0.2)
    runs = []
    for _ in range(2):
        emu = emulator_factory(jobs=[generate_job(job_id="j", items=5)], faults=faults)
        for _ in range(30):
            fetch(emu)
        runs.append([(r.status, r.fault) for r in emu.requests])
    assert runs[0] == runs[1]
    assert {fault for _, fault in runs[0]} == {None, "throttle", "server_error", "truncate"}


def test_set_faults_restarts_numbering(job: Emulator) -> None:
    job.set_faults(Faults(seed=2, throttle_rate=0.5))
    first = [fetch(job).status_code for _ in range(10)]
    job.set_faults(Faults(seed=2, throttle_rate=0.5))
    assert [fetch(job).status_code for _ in range(10)] == first
    assert set(first) == {200, 429}
    assert job.faults == Faults(seed=2, throttle_rate=0.5)
