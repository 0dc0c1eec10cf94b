"""Arbitrary JSON in a status response: nothing but the package's own errors may escape."""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_export.errors import BatchExportError
from batch_export.fetch.client import ApiClient
from batch_export.fetch.retry import RetryPolicy
from batch_export.job import JobStatus, ResultPage, decode_json
from tests.conftest import CANARY_KEY
from tests.hostile import Request, hostile_server, response
from tests.scripted import item, job_body

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "job_id",
    "status",
    "batch_config",
    "token_summary",
    "total_urls",
    "completed_urls",
    "failed_urls",
    "cancelled_urls",
    "pending_urls",
    "invalid_urls",
    "created_at",
    "completed_at",
    "results",
]


def _bodies() -> st.SearchStrategy[Any]:
    """Whole bodies of any JSON, and good bodies with any field replaced by any JSON."""
    replaced = st.builds(
        lambda fields: {**job_body("j1", [item(0)]), **fields},
        st.dictionaries(st.sampled_from(FIELDS), JSON, min_size=1, max_size=4),
    )
    return JSON | replaced


def _read_everything(body: Any) -> None:
    JobStatus.from_response(body, job_id="j1").to_dict()
    page = ResultPage.from_response(body, job_id="j1", page=1, page_size=50)
    page.input_indexes()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_bodies())
def test_any_json_in_a_status_body_gives_our_errors_only(body: Any) -> None:
    with contextlib.suppress(BatchExportError):
        _read_everything(body)
    with contextlib.suppress(BatchExportError):
        _read_everything(decode_json(json.dumps(body).encode(), "http://127.0.0.1/v1/batch/j1"))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_decode_or_give_our_errors_only(content: bytes) -> None:
    with contextlib.suppress(BatchExportError):
        decode_json(content, "http://127.0.0.1/v1/batch/j1")


@pytest.fixture(scope="module")
def served() -> Any:
    """One hostile server for all HTTP examples; each example sets what it answers."""
    current: dict[str, bytes] = {"answer": b""}

    def write(sock: socket.socket, request: Request) -> None:
        sock.sendall(current["answer"])

    with hostile_server(write) as server:
        yield server, current


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_bodies(), status=st.sampled_from([200, 200, 200, 400, 404, 422, 418, 503]))
def test_any_json_over_http_gives_our_errors_only(served: Any, body: Any, status: int) -> None:
    server, current = served
    current["answer"] = response(status, body=body)
    client = ApiClient(
        base_url=server.base_url,
        api_key=CANARY_KEY,
        retry=RetryPolicy(attempts=1),
        timeout=5,
    )
    try:
        client.fetch_page("j1", page=1, page_size=50).input_indexes()
    except BatchExportError as error:
        assert CANARY_KEY not in str(error)
    finally:
        client.close()
