"""The dlt source into real destinations: DuckDB, Delta and Iceberg (dlt's filesystem).

Exactly the rows batch-export's own road reads; a rerun that reads no job and loads nothing;
a changed job replaced, never duplicated; the jobs table as the sync writes it.
"""

from __future__ import annotations

from typing import Any

import pytest

from batch_export.dlt import ITEMS, JOBS, SCHEMAS, batch_export_job, table_hints
from batch_export.schema import ITEM_SCHEMA
from batch_export.sync.layout import JOBS_SCHEMA
from batch_export.testing import Emulator, generate_job
from tests.conftest import CANARY_KEY
from tests.dlt.conftest import (
    FINISHED,
    Lake,
    account_docs,
    exported_rows,
    job_paths,
    make_job,
)

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow


def test_the_hints_are_the_output_schemas_with_their_keys() -> None:
    for table, schema, keys in (
        (ITEMS, ITEM_SCHEMA, ["job_id", "input_index"]),
        (JOBS, JOBS_SCHEMA, ["job_id"]),
    ):
        hints = table_hints(table)
        assert list(hints["columns"]) == schema.names
        assert hints["primary_key"] == keys
        assert hints["merge_key"] == "job_id"
        assert [f.name for f in SCHEMAS[table] if not f.nullable] == keys
        assert SCHEMAS[table].types == schema.types
    assert table_hints(ITEMS)["columns"]["links"]["data_type"] == "json"
    assert table_hints(ITEMS)["columns"]["http_status"] == {
        "name": "http_status", "nullable": True, "data_type": "bigint", "precision": 32
    }  # fmt: skip
    delta = table_hints(ITEMS, table_format="iceberg")
    assert (delta["write_disposition"], delta["table_format"]) == (
        {"disposition": "merge", "strategy": "upsert"},
        "iceberg",
    )
    assert "merge_key" not in delta


def test_the_account_lands_exactly_and_a_rerun_loads_nothing(lake: Lake, account: Emulator) -> None:
    info = lake.pipeline.run(lake.source(account))
    assert not info.has_failed_jobs
    assert lake.rows(ITEMS) == exported_rows(account, FINISHED)
    jobs = lake.rows(JOBS)
    assert [row["job_id"] for row in jobs] == FINISHED  # the running job waits for a later run
    assert [row["rows"] for row in jobs] == [n + 1 for n in range(len(FINISHED))]
    assert {row["status"] for row in jobs} == {"completed"}
    assert lake.table(ITEMS).schema.names == ITEM_SCHEMA.names

    account.reset_stats()
    again = lake.pipeline.run(lake.source(account))
    assert again.load_packages == []  # nothing new: no load package at all
    assert job_paths(account) == []  # and no job read
    assert lake.rows(ITEMS) == exported_rows(account, FINISHED)


def changed(doc: dict[str, Any], *, items: int) -> dict[str, Any]:
    """The same job, re-run: other results and counters."""
    new = make_job(int(doc["job_id"].split("-")[1]), items=items, failure_rate=0.6)
    assert new["failed_urls"] != doc["failed_urls"]
    return new


def test_a_changed_job_replaces_its_rows(lake: Lake, account: Emulator) -> None:
    lake.pipeline.run(lake.source(account))
    doc = account_docs()[4]  # 5 items
    victim = doc["job_id"]
    # DuckDB deletes the job's rows by its merge key: the new version may have fewer. Delta
    # and Iceberg upsert by (job_id, input_index): same positions, new values.
    items = 3 if lake.kind == "duckdb" else 5
    account.add_job(changed(doc, items=items))
    account.reset_stats()

    lake.pipeline.run(lake.source(account))
    assert set(job_paths(account)) == {f"/v1/batch/{victim}"}  # the other jobs are not read
    rows = lake.rows(ITEMS)
    assert rows == exported_rows(account, FINISHED)
    assert sum(row["job_id"] == victim for row in rows) == items
    jobs = {row["job_id"]: row for row in lake.rows(JOBS)}
    assert len(jobs) == len(FINISHED)
    assert jobs[victim]["rows"] == items
    assert jobs[victim]["failed_urls"] == round(items * 0.6)


def test_one_job_as_a_resource_waits_for_it_and_loads_it_again_in_place(duck: Lake) -> None:
    job = generate_job(job_id="single", items=7, links_per_item=2, processing_polls=1)
    with Emulator(jobs=[job], api_key=CANARY_KEY) as api:
        options: dict[str, Any] = {"base_url": api.base_url, "api_key": CANARY_KEY}
        for _ in range(2):
            duck.pipeline.run(batch_export_job("single", **options))
        assert api.polls("single") >= 2  # waited through the processing poll
        assert duck.rows(ITEMS) == exported_rows(api, ["single"])


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [("2026-05-22", "2026-05-24", [2, 3]), ("2026-05-24", None, [4, 5])],
)
def test_since_and_until_bound_the_jobs_created(
    duck: Lake, account: Emulator, since: str, until: str | None, expected: list[int]
) -> None:
    duck.pipeline.run(duck.source(account, since=since, until=until))
    assert [row["job_id"] for row in duck.rows(JOBS)] == [FINISHED[n] for n in expected]


def test_limit_loads_the_oldest_jobs_first_and_the_next_run_goes_on(
    duck: Lake, account: Emulator
) -> None:
    duck.pipeline.run(duck.source(account, limit=4))
    assert [row["job_id"] for row in duck.rows(JOBS)] == FINISHED[:4]
    duck.pipeline.run(duck.source(account, limit=4))
    assert [row["job_id"] for row in duck.rows(JOBS)] == FINISHED


def test_each_table_records_its_own_jobs(duck: Lake, account: Emulator) -> None:
    duck.pipeline.run(duck.source(account).with_resources(JOBS))
    assert [row["job_id"] for row in duck.rows(JOBS)] == FINISHED
    account.reset_stats()
    duck.pipeline.run(duck.source(account))  # items holds none of them yet: every job is read
    assert sorted(set(job_paths(account))) == [f"/v1/batch/{job_id}" for job_id in FINISHED]
    assert duck.rows(ITEMS) == exported_rows(account, FINISHED)
