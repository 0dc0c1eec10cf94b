"""Job ids compared as UUIDs when they are UUIDs: every form people copy is the same job.

The id is made canonical (lower case, hyphenated) once, at the entry of the one road
(``pipeline.open_job``, through ``fetch.job_id.check_job_id``): requests carry it, answers are
compared with it, files and stores record it. An answer in another form of the same UUID is
for the job asked; an id that is not a UUID is compared as it is. Every caller is tried: the
CLI's export, the notebook functions and the sync.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from batch_export.api import canonical_job_id
from batch_export.cli import main
from batch_export.errors import InvalidInputError
from batch_export.fetch.job_id import check_job_id
from batch_export.frame import iter_batches, read_job, read_jobs
from batch_export.testing import Emulator, generate_job
from tests.conftest import CANARY_KEY, SMALL_JOB
from tests.scripted import Answer, item, listing_entry, paged, scripted_server

JOB = "9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019"
FORMS = [
    JOB,
    JOB.upper(),
    JOB.replace("-", ""),
    JOB.replace("-", "").upper(),
    "{" + JOB + "}",
    "{" + JOB.upper() + "}",
    "urn:uuid:" + JOB,
    "URN:UUID:" + JOB.upper(),
]


@pytest.mark.parametrize("form", FORMS)
def test_every_form_of_a_uuid_is_the_canonical_one(form: str) -> None:
    assert canonical_job_id(form) == check_job_id(form) == JOB


@pytest.mark.parametrize(
    "job_id",
    [
        "Job-A",  # not a UUID: as it is
        "9d7b2c8e-8a4b4c10-9af3-65f4f8f6c019",  # hyphens out of place
        "9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c01",  # a digit short
        "9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c01g",  # not hex
        "{9d7b2c8e8a4b4c109af365f4f8f6c019",  # a brace alone
    ],
)
def test_other_ids_are_kept_as_they_are(job_id: str) -> None:
    assert canonical_job_id(job_id) == job_id


@pytest.mark.parametrize("job_id", ["{9d7b2c8e8a4b4c109af365f4f8f6c019", "urn:uuid:x", "{}"])
def test_a_malformed_wrapper_is_still_refused(job_id: str) -> None:
    with pytest.raises(InvalidInputError, match="is not a plain identifier"):
        check_job_id(job_id)


def cli(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def env_of(base_url: str) -> dict[str, str]:
    return {"SCRAPER_API_BASE_URL": base_url, "GEONODE_SCRAPER_API_KEY": CANARY_KEY}


# --- the CLI's export ---------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS[1:])
def test_export_sends_and_writes_the_canonical_id(
    sample_api: Emulator, tmp_path: Path, form: str
) -> None:
    assert SMALL_JOB == JOB
    out = tmp_path / "o.parquet"
    result = cli("export", form, "-o", str(out), env=env_of(sample_api.base_url))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Job {JOB} completed: ")
    assert set(pq.read_table(out).column("job_id").to_pylist()) == {JOB}
    assert json.loads(pq.read_schema(out).metadata[b"batch_export.job"])["job_id"] == JOB
    paths = {record.path for record in sample_api.requests}
    assert paths == {f"/v1/batch/{JOB}"}


def upper_case_answers() -> Any:
    """A server that answers the canonical id's requests with the id in upper case."""
    answer = paged(JOB.upper(), [item(0), item(1)])

    def script(number: int, path: str, query: dict[str, str]) -> Answer:
        if path != f"/v1/batch/{JOB}":
            return Answer(status=404, body={"code": "NOT_FOUND", "message": "Batch job not found"})
        return answer(number, path, query)

    return script


def test_an_answer_with_the_same_uuid_in_another_form_is_for_the_job_asked(
    tmp_path: Path,
) -> None:
    out = tmp_path / "o.jsonl"
    with scripted_server(upper_case_answers()) as server:
        result = cli("export", JOB.upper(), "-o", str(out), env=env_of(server.base_url))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["job_id"] for row in rows] == [JOB, JOB]


def test_other_ids_are_compared_as_they_are(tmp_path: Path) -> None:
    with scripted_server(paged("job-a", [item(0)])) as server:
        result = cli("export", "Job-A", "-o", str(tmp_path / "o.csv"), env=env_of(server.base_url))
    assert result.exit_code == 7
    assert "The API answered for job 'job-a' when asked for job 'Job-A'" in result.stderr


# --- the notebook functions ----------------------------------------------------------------


def test_the_notebook_functions_take_every_form(sample_api: Emulator) -> None:
    options: dict[str, Any] = {"base_url": sample_api.base_url, "api_key": CANARY_KEY}
    frame = read_job(JOB.upper(), progress=False, **options)
    assert set(frame["job_id"].tolist()) == {JOB} and frame.attrs["job"]["job_id"] == JOB
    batches = list(iter_batches("{" + JOB + "}", progress=False, **options))
    assert {value for b in batches for value in b.column("job_id").to_pylist()} == {JOB}
    assert sorted(read_jobs([JOB.replace("-", "")], progress=False, **options).attrs["jobs"]) == [
        JOB
    ]


def test_one_job_given_in_two_forms_is_given_twice(sample_api: Emulator) -> None:
    with pytest.raises(InvalidInputError, match=f"given more than once: {JOB};"):
        read_jobs([JOB, JOB.upper()], base_url=sample_api.base_url, api_key=CANARY_KEY)


def test_iter_batches_refuses_a_bad_id_at_once() -> None:
    with pytest.raises(InvalidInputError, match="is not a plain identifier"):
        iter_batches("{" + JOB, base_url="http://127.0.0.1:9", api_key=CANARY_KEY)


# --- the sync ------------------------------------------------------------------------------


def upper_case_account() -> Any:
    """An account whose listing shows its one job's id in upper case, as its status does."""
    doc = generate_job(job_id=JOB.upper(), items=3, seed=5)
    listing = {"jobs": [listing_entry(doc)], "page": 1, "page_size": 50, "page_count": 1}
    pages = paged(
        JOB.upper(), doc["results"], **{k: doc[k] for k in ("created_at", "completed_at")}
    )

    def script(number: int, path: str, query: dict[str, str]) -> Answer:
        if path == "/v1/batch/jobs":
            return Answer(body=listing)
        if path == f"/v1/batch/{JOB}":
            return pages(number, path, query)
        return Answer(status=404, body={"code": "NOT_FOUND", "message": "Batch job not found"})

    return script


def test_the_sync_records_the_canonical_id_and_knows_the_job_next_time(tmp_path: Path) -> None:
    dest = tmp_path / "dataset"
    with scripted_server(upper_case_account()) as server:
        first = cli(
            "sync", "--dest", str(dest), "--log-format", "json", env=env_of(server.base_url)
        )
        second = cli(
            "sync", "--dest", str(dest), "--log-format", "json", env=env_of(server.base_url)
        )
    assert first.exit_code == 0, first.output
    assert [job["job_id"] for job in json.loads(first.stdout)["exported"]] == [JOB]
    assert [path.name for path in dest.glob("items/*/*.parquet")] == [f"{JOB}.parquet"]
    jobs = pq.read_table(next(dest.glob("jobs/*/*.parquet")))
    assert jobs.column("job_id").to_pylist() == [JOB]
    again = json.loads(second.stdout)
    assert (second.exit_code, again["exported"], again["skipped"]) == (0, [], {"unchanged": 1})
