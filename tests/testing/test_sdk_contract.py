"""The emulator held to the provider's SDK (geonode-scraper-sdk, pinned in the dev extra).

Every answer the emulator gives is read by the SDK's own models: status pages in every job
state and past the end, the listing with and without filters, and every error status. The
SDK's client itself talks to the emulator, so its query parameters and their serialization
(the listing's dates in the SDK's ``%Y-%m-%dT%H:%M:%S.%f%z``) are the SDK's. Beyond what the
models check (they ignore keys they do not know), no key outside the models may appear but the
two the documentation shows and the SDK leaves out: ``data.links`` and ``metadata.retry_count``.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import re
import tomllib
import typing
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic
import pytest
import requests
from geonode_scraper_sdk import ApiClient, ApiException, BatchApi, Configuration
from geonode_scraper_sdk.models import (
    BatchConfig,
    BatchItemMetadata,
    BatchJobsResponse,
    BatchListItemResponse,
    BatchResultItem,
    BatchStatusResponse,
    BatchTokenSummary,
    ErrorResponse,
    ExtractionData,
    ExtractionErrorCode,
    HTTPValidationError,
    JobStatus,
    ProxySettings,
)

import batch_export as bx
from batch_export.api import MAX_LIST_PAGE_SIZE, MAX_PAGE_SIZE
from batch_export.codes import FAILURE_CODES, SDK_VERSION, may_resubmit
from batch_export.testing import Emulator, Faults, generate_account, generate_job, load_jobs
from batch_export.testing._items import ERROR_MESSAGES
from batch_export.testing.jobs import DEFAULT_ERROR_CODES, job_stages
from batch_export.testing.pytest_plugin import EmulatorFactory

KEY = "test-key"
ROOT = Path(__file__).resolve().parents[2]
# The keys the documentation shows and the SDK's models leave out: both shapes may arrive.
DOCUMENTED_EXTRAS = {"data": {"links"}, "metadata": {"retry_count"}}


def _known(model: type[pydantic.BaseModel], body: dict[str, Any], where: str) -> list[str]:
    return [f"{where}.{key}" for key in body if key not in model.model_fields]


def _unknown_keys(answer: dict[str, Any], *, documented: bool = True) -> list[str]:
    """Keys of a status answer that neither the SDK's models nor (unless ``documented`` is
    False) the documentation name."""
    unknown = _known(BatchStatusResponse, answer, "answer")
    config = answer.get("batch_config") or {}
    unknown += _known(BatchConfig, config, "batch_config")
    unknown += _known(ProxySettings, config.get("proxy") or {}, "batch_config.proxy")
    unknown += _known(BatchTokenSummary, answer.get("token_summary") or {}, "token_summary")
    for item in answer.get("results") or []:
        unknown += _known(BatchResultItem, item, "item")
        for part, model in (("data", ExtractionData), ("metadata", BatchItemMetadata)):
            extras = DOCUMENTED_EXTRAS[part] if documented else set()
            keys = {k: v for k, v in (item.get(part) or {}).items() if k not in extras}
            unknown += _known(model, keys, f"item.{part}")
    return unknown


def check_status(answer: requests.Response) -> BatchStatusResponse:
    """The answer read by the SDK's model, strictly, with no key the contract does not name."""
    assert answer.status_code == 200, answer.text[:200]
    body = answer.json()
    parsed = BatchStatusResponse.from_dict(body)
    assert parsed is not None
    assert _unknown_keys(body) == []
    return parsed


def check_error(answer: requests.Response, status: int) -> ErrorResponse:
    assert answer.status_code == status
    assert answer.headers["Content-Type"] == "application/json"
    parsed = ErrorResponse.from_dict(answer.json())
    assert parsed is not None
    assert set(answer.json()) <= set(ErrorResponse.model_fields)
    return parsed


def get(emu: Emulator, path: str, **params: Any) -> requests.Response:
    headers = {"X-Api-Key": KEY}
    return requests.get(f"{emu.base_url}{path}", params=params, headers=headers, timeout=5)


@pytest.fixture
def sdk(emulator_factory: EmulatorFactory) -> Iterator[tuple[Emulator, BatchApi]]:
    emu = emulator_factory(jobs=generate_account(jobs=30, processing=3, seed=11, items=(2, 12)))
    configuration = Configuration(host=emu.base_url, api_key={"ApiKeyAuth": KEY})
    with ApiClient(configuration) as client:
        yield emu, BatchApi(client)


# --- the SDK's own version, parameters and codes ---------------------------------------


def test_the_sdk_is_the_pinned_one_everywhere() -> None:
    """The installed SDK, the dev extra's pin, the code table and the README agree."""
    assert importlib.metadata.version("geonode-scraper-sdk") == SDK_VERSION
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [dep for dep in project["project"]["optional-dependencies"]["dev"] if "sdk" in dep]
    assert pins == [f"geonode-scraper-sdk=={SDK_VERSION}"]
    assert all("geonode" not in dep for dep in project["project"]["dependencies"])
    importing = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "batch_export").rglob("*.py")
        if "geonode_scraper_sdk" in path.read_text(encoding="utf-8")
    ]
    assert importing == []  # a yardstick for the tests, never a run-time dependency
    assert f"geonode-scraper-sdk {SDK_VERSION}" in (ROOT / "README.md").read_text()


def _bounds(function: Any, name: str) -> tuple[int | None, int | None]:
    hint = typing.get_type_hints(function, include_extras=True)[name]
    found: dict[str, int] = {}
    for part in str(hint).split("metadata=[")[1:]:
        found |= {key: int(value) for key, value in re.findall(r"\b(ge|le)=(\d+)", part)}
    return found.get("ge"), found.get("le")


def test_page_size_bounds_are_the_sdks() -> None:
    assert _bounds(BatchApi.get_batch_status_v1_batch_job_id_get, "page_size") == (1, MAX_PAGE_SIZE)
    assert _bounds(BatchApi.list_batch_jobs_v1_batch_jobs_get, "page_size") == (
        1,
        MAX_LIST_PAGE_SIZE,
    )
    listing = inspect.signature(BatchApi.list_batch_jobs_v1_batch_jobs_get).parameters
    assert [name for name in listing if name != "self" and not name.startswith("_")] == [
        "status",
        "start_date",
        "end_date",
        "page",
        "page_size",
    ]


def test_failure_codes_are_the_sdks() -> None:
    """The code table, the emulator's messages and its default codes are the SDK's enum."""
    sdk_codes = [code.value for code in ExtractionErrorCode]
    assert list(FAILURE_CODES) == sdk_codes
    assert list(ERROR_MESSAGES) == sdk_codes
    assert set(DEFAULT_ERROR_CODES) <= set(sdk_codes)
    verdicts = {entry.resubmit for code in DEFAULT_ERROR_CODES for entry in [FAILURE_CODES[code]]}
    assert verdicts == {True, False}  # generated jobs show both kinds


def test_the_submitting_sides_outcomes_follow_the_code_table() -> None:
    """What the emulator lets succeed when resubmitted agrees with the table's verdicts."""
    from batch_export.testing._outcomes import PASSING_CODES, PERMANENT_CODES

    assert all(may_resubmit(code) is True for code in PASSING_CODES)
    assert all(may_resubmit(code) is False for code in PERMANENT_CODES)


def test_sample_data_and_generated_jobs_use_the_sdks_codes() -> None:
    sdk_codes = {code.value for code in ExtractionErrorCode}
    docs = [*load_jobs(ROOT / "sample_data"), generate_job(items=400, failure_rate=0.5, seed=3)]
    codes = {
        item["error_code"] for doc in docs for item in doc["results"] if item["status"] == "failed"
    }
    assert codes and codes <= sdk_codes
    every = generate_job(items=len(sdk_codes), failure_rate=1.0, error_codes=tuple(sdk_codes))
    assert {item["error_code"] for item in every["results"]} == sdk_codes


# --- status answers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        generate_job(items=23, invalid_urls=2, cancelled=1, processing_polls=3, seed=1),
        generate_job(items=9, status="failed", failure_rate=1.0, seed=2),
        generate_job(items=12, status="cancelled", cancelled=5, seed=3),
        generate_job(items=7, formats=("markdown", "html"), links_per_item=3, seed=4),
        generate_job(items=0, seed=5),
    ],
    ids=["processing", "failed", "cancelled", "html-links", "empty"],
)
def test_status_answers_in_every_state_validate(
    emulator_factory: EmulatorFactory, doc: dict[str, Any]
) -> None:
    """Each poll (queued, processing, final, final again), each page and one past the end."""
    emu = emulator_factory(jobs=[doc])
    path = f"/v1/batch/{doc['job_id']}"
    states = []
    for poll in range(1, len(job_stages(doc)) + 2):
        for page in (1, 2, 3, 99):
            emu.reset_polls()
            for _ in range(poll - 1):
                get(emu, path)  # brings the job to the poll under test
            parsed = check_status(get(emu, path, page=page, page_size=4))
            assert str(parsed.job_id) == doc["job_id"]
            assert len(parsed.results or []) <= 4
        assert parsed.results == []  # past the end
        states.append(parsed.status.value)
    assert states[-2:] == [doc["status"]] * 2
    if "emulator" in doc:
        assert states[:3] == ["queued", "processing", "processing"]


def test_the_sdks_client_reads_the_emulators_status(sdk: tuple[Emulator, BatchApi]) -> None:
    emu, api = sdk
    job = generate_job(items=12, failure_rate=0.5, seed=8)
    emu.add_job(job)
    pages = [
        api.get_batch_status_v1_batch_job_id_get(job_id=job["job_id"], page=page, page_size=5)
        for page in (1, 2, 3, 4)
    ]
    assert [len(page.results or []) for page in pages] == [5, 5, 2, 0]
    items = [item for page in pages for item in page.results or []]
    assert [item.input_index for item in items] == list(range(12))
    assert {item.error_code for item in items if item.status == "failed"} <= {
        code.value for code in ExtractionErrorCode
    }
    assert pages[0].total_urls == 12 and pages[0].token_summary.tokens_charged_total == 6


def test_jobs_in_the_sdks_shape_have_nothing_the_sdk_lacks(
    emulator_factory: EmulatorFactory,
) -> None:
    doc = generate_job(items=30, links_per_item=2, failure_rate=0.3, item_shape="sdk", seed=6)
    emu = emulator_factory(jobs=[doc])
    for page in (1, 2, 3, 4):
        answer = get(emu, f"/v1/batch/{doc['job_id']}", page=page, page_size=10)
        check_status(answer)
        assert _unknown_keys(answer.json(), documented=False) == []
    other = generate_job(items=3, links_per_item=2, seed=7)  # the documentation's shape
    answer = get(emulator_factory(jobs=[other]), f"/v1/batch/{other['job_id']}")
    assert "item.metadata.retry_count" in _unknown_keys(answer.json(), documented=False)


def test_a_job_in_the_sdks_shape_exports(emulator_factory: EmulatorFactory) -> None:
    """The client meets the SDK's shape from the emulator: links and retry_count are null."""
    doc = generate_job(items=12, links_per_item=2, failure_rate=0.25, item_shape="sdk", seed=8)
    emu = emulator_factory(jobs=[doc])
    frame = bx.read_job(doc["job_id"], base_url=emu.base_url, api_key=KEY, progress=False)
    assert frame["input_index"].tolist() == list(range(12))
    assert frame["links"].isna().all() and frame["retry_count"].isna().all()
    assert frame["tokens_charged"].sum() == 9 and frame["extra"].isna().all()


# --- the listing ------------------------------------------------------------------------


def test_the_sdks_client_lists_with_and_without_filters(sdk: tuple[Emulator, BatchApi]) -> None:
    emu, api = sdk
    everything = api.list_batch_jobs_v1_batch_jobs_get(page_size=100)
    assert everything.page_count == 1 and len(everything.jobs) == 30
    created = sorted(job.created_at for job in everything.jobs)
    middle = created[15]
    after = api.list_batch_jobs_v1_batch_jobs_get(start_date=middle, page_size=100)
    assert sorted(job.created_at for job in after.jobs) == created[15:]
    before = api.list_batch_jobs_v1_batch_jobs_get(end_date=middle - timedelta(microseconds=1))
    assert sorted(job.created_at for job in before.jobs) == created[:15][-10:]
    assert before.page_count == 2
    queued = api.list_batch_jobs_v1_batch_jobs_get(status=JobStatus.QUEUED)
    assert len(queued.jobs) == 3 and {job.status for job in queued.jobs} == {JobStatus.QUEUED}
    naive = api.list_batch_jobs_v1_batch_jobs_get(
        start_date=middle.astimezone(UTC).replace(tzinfo=None), page_size=100
    )
    assert len(naive.jobs) == 15
    for page in (1, 2, 3):
        listed = api.list_batch_jobs_v1_batch_jobs_get(page=page, page_size=13)
        assert (listed.page, listed.page_size, listed.page_count) == (page, 13, 3)
    asked = [record.query for record in emu.requests if record.path == "/v1/batch/jobs"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+0000", asked[1]["start_date"])


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"page_size": 100},
        {"page": 9},
        {"status": "completed", "page_size": 7},
        {"status": "cancelled"},
        {"start_date": "2026-05-23T00:00:00.000000+0000", "end_date": "2026-05-24"},
    ],
)
def test_listing_answers_validate(
    emulator_factory: EmulatorFactory, params: dict[str, Any]
) -> None:
    emu = emulator_factory(jobs=generate_account(jobs=40, processing=2, seed=12, items=(1, 3)))
    answer = get(emu, "/v1/batch/jobs", **params)
    assert answer.status_code == 200
    body = answer.json()
    parsed = BatchJobsResponse.from_dict(body)
    assert parsed is not None
    assert set(body) == set(BatchJobsResponse.model_fields)
    for entry in body["jobs"]:
        assert set(entry) == set(BatchListItemResponse.model_fields)
    assert parsed.page == params.get("page", 1)


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key", "status"),
    [
        ("/v1/batch/jobs", "wrong", 401),
        ("/v1/batch/" + str(uuid.UUID(int=7)), KEY, 404),
        ("/v1/nothing", KEY, 404),
    ],
)
def test_error_answers_validate(
    emulator_factory: EmulatorFactory, path: str, key: str, status: int
) -> None:
    emu = emulator_factory(jobs=[generate_job(items=2)])
    answer = requests.get(f"{emu.base_url}{path}", headers={"X-Api-Key": key}, timeout=5)
    parsed = check_error(answer, status)
    assert parsed.retryable is False and parsed.correlation_id


def test_method_not_allowed_validates(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(jobs=[generate_job(job_id="j", items=2)])
    answer = requests.delete(f"{emu.base_url}/v1/batch/j", headers={"X-Api-Key": KEY}, timeout=5)
    assert check_error(answer, 405).retryable is False


@pytest.mark.parametrize(
    ("path", "params", "bad"),
    [
        ("/v1/batch/{job}", {"page_size": 51}, ["page_size"]),
        ("/v1/batch/{job}", {"page": "x", "page_size": 0}, ["page", "page_size"]),
        (
            "/v1/batch/jobs",
            {"page_size": 101, "status": "done", "start_date": "soon"},
            ["status", "start_date", "page_size"],
        ),
    ],
)
def test_validation_errors_validate(
    emulator_factory: EmulatorFactory, path: str, params: dict[str, Any], bad: list[str]
) -> None:
    doc = generate_job(items=2)
    emu = emulator_factory(jobs=[doc])
    answer = get(emu, path.format(job=doc["job_id"]), **params)
    assert answer.status_code == 422
    parsed = HTTPValidationError.from_dict(answer.json())
    assert parsed is not None and parsed.detail is not None
    locations = [[part.actual_instance for part in entry.loc] for entry in parsed.detail]
    assert locations == [["query", name] for name in bad]


def _faulted(emulator_factory: EmulatorFactory, **rates: float) -> Iterator[requests.Response]:
    doc = generate_job(items=3)
    for seed in range(40):
        emu = emulator_factory(jobs=[doc], faults=Faults(seed=seed, **rates))
        yield get(emu, f"/v1/batch/{doc['job_id']}")
        emu.stop()


def test_throttling_answers_validate(emulator_factory: EmulatorFactory) -> None:
    answer = next(_faulted(emulator_factory, throttle_rate=1.0))
    parsed = check_error(answer, 429)
    assert parsed.retryable is True


def test_server_error_answers_validate_or_are_the_gateways(
    emulator_factory: EmulatorFactory,
) -> None:
    """500, 502, 503 and 504 in the API's shape; some come as a gateway's HTML page instead,
    which is not the API's answer (and which no SDK model reads)."""
    seen: dict[tuple[int, str], int] = {}
    for answer in _faulted(emulator_factory, server_error_rate=1.0):
        kind = answer.headers["Content-Type"]
        key = (answer.status_code, kind)
        seen[key] = seen.get(key, 0) + 1
        if kind == "application/json":
            assert check_error(answer, answer.status_code).retryable is True
        else:
            assert kind == "text/html" and answer.text.startswith("<html>")
            with pytest.raises(json.JSONDecodeError):
                json.loads(answer.text)
    assert {status for status, kind in seen if kind == "application/json"} == {500, 502, 503, 504}


def test_the_sdks_client_meets_the_emulators_errors(sdk: tuple[Emulator, BatchApi]) -> None:
    _, api = sdk
    with pytest.raises(ApiException) as missing:
        api.get_batch_status_v1_batch_job_id_get(job_id=str(uuid.UUID(int=1)))
    assert missing.value.status == 404
    assert ErrorResponse.from_dict(json.loads(missing.value.body)) is not None
    created = datetime(2026, 5, 26, tzinfo=UTC)
    empty = api.list_batch_jobs_v1_batch_jobs_get(start_date=created + timedelta(days=400))
    assert (empty.jobs, empty.page_count) == ([], 0)
