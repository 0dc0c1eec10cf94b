"""A job that cannot be loaded fails alone: the others load, it is read again next run, and
its error is ours, in one sentence. The API key never reaches dlt's state, traces or files."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from batch_export.dlt import ITEMS, JOBS, batch_export_source, failed_jobs, raise_for_failures
from batch_export.errors import SyncIncomplete
from batch_export.testing import Emulator
from tests.conftest import CANARY_KEY
from tests.dlt.conftest import FINISHED, Lake, exported_rows, job_paths
from tests.scripted import Answer, scripted_server

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

VICTIM = FINISHED[3]  # 4 items, one page
OTHERS = [job_id for job_id in FINISHED if job_id != VICTIM]

Edit = Callable[[str, Any], Answer | None]


def gateway(upstream: str, edit: Edit) -> Callable[[int, str, dict[str, str]], Answer]:
    """A gateway in front of the emulator: ``edit`` may answer instead, from its JSON body."""

    def answer(_: int, path: str, query: dict[str, str]) -> Answer:
        reply = requests.get(
            upstream + path, params=query, headers={"X-Api-Key": CANARY_KEY}, timeout=10
        )
        edited = edit(path, reply.json()) if reply.status_code == 200 else None
        return edited or Answer(status=reply.status_code, body=reply.content)

    return answer


def drop_an_item(path: str, body: Any) -> Answer | None:
    """The victim's pages lose their last item, every time they are read."""
    if path == f"/v1/batch/{VICTIM}":
        body["results"] = body["results"][:-1]
        return Answer(body=body)
    return None


def test_a_job_not_proven_whole_fails_alone_and_loads_on_the_next_run(
    duck: Lake, account: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    with scripted_server(gateway(account.base_url, drop_an_item)) as server:
        info = duck.pipeline.run(duck.source(account, base_url=server.base_url))
    assert not info.has_failed_jobs
    assert duck.rows(ITEMS) == exported_rows(account, OTHERS)
    assert [row["job_id"] for row in duck.rows(JOBS)] == OTHERS
    failure = failed_jobs(duck.pipeline)[VICTIM]
    assert (failure["error"], failure["exit_code"]) == ("IncompleteResultsError", 6)
    assert failure["message"].startswith(f"The results of job {VICTIM} are not provably whole (")
    assert "missing input_index 3" in failure["message"]
    logged = [r.getMessage() for r in caplog.records if r.name == "dlt"]
    assert f"batch-export: job {VICTIM} not loaded: {failure['message']}" in logged
    with pytest.raises(SyncIncomplete) as raised:
        raise_for_failures(duck.pipeline)
    assert raised.value.exit_code == 10
    assert raised.value.failed_jobs == (VICTIM,)
    assert raised.value.message == (
        f"Job {VICTIM} was not loaded by dlt pipeline scraper: {failure['message']} The others "
        "were; the next run reads the jobs left out again."
    )

    account.reset_stats()  # the API answers whole again: only the victim is read
    duck.pipeline.run(duck.source(account))
    assert set(job_paths(account)) == {f"/v1/batch/{VICTIM}"}
    assert duck.rows(ITEMS) == exported_rows(account, FINISHED)
    assert failed_jobs(duck.pipeline) == {}
    raise_for_failures(duck.pipeline)


def echo_the_key(path: str, body: Any) -> Answer | None:
    """The victim's answer is a refusal that quotes the request's key back."""
    if path == f"/v1/batch/{VICTIM}":
        message = f"Key {CANARY_KEY} may not read this job."
        return Answer(status=403, body={"code": "FORBIDDEN", "message": message})
    return None


@pytest.mark.parametrize("key_from", ["option", "dlt secret", "environment"])
def test_the_key_is_in_no_state_trace_log_or_file_of_dlt(
    duck: Lake,
    account: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    key_from: str,
) -> None:
    options: dict[str, Any] = {"api_key": CANARY_KEY} if key_from == "option" else {}
    if key_from == "dlt secret":
        monkeypatch.setenv("SOURCES__BATCH_EXPORT__API_KEY", CANARY_KEY)
    if key_from == "environment":
        monkeypatch.setenv("GEONODE_SCRAPER_API_KEY", CANARY_KEY)
    with scripted_server(gateway(account.base_url, echo_the_key)) as server:
        source = batch_export_source(base_url=server.base_url, max_retries=0, **options)
        duck.pipeline.run(source)
    assert [row["job_id"] for row in duck.rows(JOBS)] == OTHERS  # the key was used
    assert failed_jobs(duck.pipeline)[VICTIM]["error"] == "AuthenticationError"

    pipeline = duck.pipeline
    texts = {
        "state": json.dumps(pipeline.state, default=str),
        "trace": str(pipeline.last_trace) + repr(pipeline.last_trace.asdict()),
        "logs": "\n".join(record.getMessage() for record in caplog.records),
    }
    assert [name for name, text in texts.items() if CANARY_KEY in text] == []
    files = [p for p in Path(pipeline.working_dir).rglob("*") if p.is_file()]
    assert files  # the state, the schemas and the trace are there, and were read
    assert [p for p in files if CANARY_KEY.encode() in p.read_bytes()] == []
    assert "Key <hidden> may not read this job." in failed_jobs(pipeline)[VICTIM]["message"]
    if key_from == "dlt secret":  # dlt's trace knows where the key came from, not its value
        (secret,) = [v for v in pipeline.last_trace.resolved_config_values if v.key == "api_key"]
        assert (secret.sections, secret.is_secret_hint, secret.value) == (
            ["sources", "batch_export"],
            True,
            None,
        )


def test_no_key_anywhere_fails_the_run_in_one_sentence(duck: Lake, account: Emulator) -> None:
    from dlt.pipeline.exceptions import PipelineStepFailed

    from batch_export.errors import InvalidInputError

    with pytest.raises(PipelineStepFailed) as raised:
        duck.pipeline.run(batch_export_source(base_url=account.base_url))
    cause = raised.value.__cause__
    while cause is not None and not isinstance(cause, InvalidInputError):
        cause = cause.__cause__
    assert isinstance(cause, InvalidInputError)
    assert cause.message.startswith("No API key")
    assert logging.getLogger("dlt") is not None
