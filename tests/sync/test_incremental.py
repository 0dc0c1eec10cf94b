"""The incremental sync end to end, against the emulator: a scheduled run of an unchanged
account costs a request or two; with new and finished jobs it lands the rows a full listing
lands; every destination keeps its watermark; nothing in a watermark or a listing is trusted
further than it can be checked."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from batch_export.cli import main
from batch_export.errors import OutputError
from batch_export.export import Connection
from batch_export.fetch.client import ApiClient
from batch_export.sync import DatasetStore, open_store, sync
from batch_export.sync.watermark import Watermark
from batch_export.testing import Emulator, generate_account, generate_job
from tests.conftest import CANARY_KEY
from tests.postgres import PostgresServer, running_postgres
from tests.scripted import Answer, scripted_server
from tests.sync.conftest import Events, expected_rows, recorder, small_docs
from tests.sync.readers import connect, reader_view
from tests.sync.warehouses import KINDS, Warehouse, new_warehouse

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

LISTING = "/v1/batch/jobs"
SMALL = expected_rows(small_docs())


@functools.cache
def big_account() -> tuple[dict[str, Any], ...]:
    """5,000 jobs of one item over four days, the 3 newest still running."""
    return tuple(
        generate_account(jobs=5000, processing=3, seed=20, items=(1, 1), markdown_bytes=20)
    )


def final_rows(docs: Any) -> dict[str, int]:
    """Rows each job has once finished (the still-running ones included, as they end)."""
    return {d["job_id"]: d["completed_urls"] + d["failed_urls"] + d["cancelled_urls"] for d in docs}


def connection_to(emulator: Emulator) -> Connection:
    return Connection(base_url=emulator.base_url, api_key=CANARY_KEY, max_retries=0)


def newest(docs: Any) -> datetime:
    return max(datetime.fromisoformat(doc["created_at"]) for doc in docs)


def finish(emulator: Emulator, job_ids: list[str]) -> None:
    """Poll each job until the emulator says it is finished (a few polls each)."""
    client = ApiClient(base_url=emulator.base_url, api_key=CANARY_KEY)
    for job_id in job_ids:
        for _ in range(6):
            if client.fetch_page(job_id, page=1, page_size=1).job.is_terminal:
                break
        else:
            raise AssertionError(f"{job_id} never finished")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


# --- the target: a scheduled run's cost follows what is new ---------------------------------


def test_a_second_sync_of_an_unchanged_5000_job_account_makes_at_most_5_requests(
    tmp_path: Path,
) -> None:
    docs = big_account()
    running = [doc["job_id"] for doc in docs if "emulator" in doc]
    with Emulator(jobs=docs, api_key=CANARY_KEY) as emulator:
        connection = connection_to(emulator)
        first = sync(tmp_path, connection=connection)
        assert len(first.exported) == 5000 - 3 and first.listing_requests == 50
        assert first.listing["from_watermark"] is False

        emulator.reset_stats()
        second = sync(tmp_path, connection=connection)
        paths = [record.path for record in emulator.requests]
        assert len(paths) <= 5, paths
        assert second.listing_requests == paths.count(LISTING) >= 1
        assert second.exported == [] and second.failed == [] and second.listing["from_watermark"]

        # New jobs, and the running ones finish: the next run from the watermark takes them.
        last = newest(docs)
        new = [
            generate_job(
                job_id=f"new-job-{n}",
                items=2,
                seed=n,
                markdown_bytes=20,
                created_at=(last + timedelta(minutes=n)).isoformat(),
            )
            for n in (1, 2, 3)
        ]
        for doc in new:
            emulator.add_job(doc)
        finish(emulator, running)
        emulator.reset_stats()
        third = sync(tmp_path, connection=connection)
        assert {job["job_id"] for job in third.exported} == {*running, *(d["job_id"] for d in new)}
        assert third.listing_requests == 1 and third.listing["from_watermark"]

        # The same rows as a full listing gives: it finds nothing more to load.
        full = sync(tmp_path, connection=connection, full=True)
        assert full.exported == [] and full.skipped == {"unchanged": 5003}
        assert full.listing["from_watermark"] is False and full.listing_requests == 51
    expected = final_rows([*docs, *new])
    assert reader_view(str(tmp_path), expected, connect()).committed == expected


# --- every destination keeps its watermark --------------------------------------------------


def cli_summary(warehouse: Warehouse, emulator: Emulator, *more: str) -> dict[str, Any]:
    env = {"SCRAPER_API_BASE_URL": emulator.base_url, "GEONODE_SCRAPER_API_KEY": CANARY_KEY}
    args = ["sync", *warehouse.args(), "--log-format", "json", *more]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def kept_watermark(warehouse: Warehouse) -> Watermark | None:
    table_format = "delta" if warehouse.kind == "delta" else "parquet"
    store = open_store(warehouse.dest, table_format=table_format)
    try:
        return Watermark.from_document(store.scan().watermark)
    finally:
        store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_every_destination_keeps_its_watermark_and_a_rerun_lists_from_it(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    postgres = request.getfixturevalue("postgres") if kind == "postgresql" else None
    warehouse = new_warehouse(kind, tmp_path, postgres)
    docs = small_docs()
    running = {doc["job_id"]: doc["created_at"] for doc in docs if "emulator" in doc}
    with Emulator(jobs=docs, api_key=CANARY_KEY) as emulator:
        first = cli_summary(warehouse, emulator)
        assert first["listing_requests"] == 1 and len(first["exported"]) == len(SMALL)
        mark = kept_watermark(warehouse)
        assert mark is not None and mark.floor is None and mark.newest == newest(docs)
        assert {job_id: when.isoformat() for job_id, when in mark.waiting.items() if when} == {
            job_id: datetime.fromisoformat(when).isoformat() for job_id, when in running.items()
        }
        stamp = warehouse.stamp()

        second = cli_summary(warehouse, emulator)
        assert second["listing"]["from_watermark"] and second["listing_requests"] == 1
        assert second["exported"] == [] and second["listed"] < len(docs)
        assert kept_watermark(warehouse) == mark
        assert warehouse.stamp() == stamp  # nothing written, the watermark neither

        finish(emulator, list(running))
        third = cli_summary(warehouse, emulator)
        assert sorted(job["job_id"] for job in third["exported"]) == sorted(running)
        after = kept_watermark(warehouse)
        assert after is not None and after.waiting == {} and after.anchor == mark.anchor
    expected = final_rows(docs)
    assert warehouse.committed() == expected


# --- trust nothing ----------------------------------------------------------------------


def test_a_watermark_that_does_not_describe_the_account_is_not_trusted(
    small: Connection, tmp_path: Path
) -> None:
    sync(tmp_path, connection=small)
    other = generate_account(jobs=30, processing=0, seed=77, items=(1, 2), markdown_bytes=40)
    with Emulator(jobs=other, api_key=CANARY_KEY) as emulator:
        report = sync(tmp_path, connection=connection_to(emulator))
        asked = {record.path for record in emulator.requests} - {LISTING}
    # The listing from the watermark did not show its anchor: every job listed again.
    assert report.listing["from_watermark"] is False and report.listing_requests == 2
    assert len(report.exported) == 30 and report.listed == 30
    assert asked == {f"/v1/batch/{doc['job_id']}" for doc in other}  # no waiting job read
    mark = Watermark.from_document((tmp_path / "_watermark.json").read_text())
    assert mark is not None and mark.newest == newest(other)


def without_filters(upstream: str) -> Any:
    """A gateway that drops the listing's filters: every job comes, whatever was asked."""

    def answer(_: int, path: str, query: dict[str, str]) -> Answer:
        if path == LISTING:
            query = {k: v for k, v in query.items() if k not in ("start_date", "end_date")}
        reply = requests.get(
            upstream + path, params=query, headers={"X-Api-Key": CANARY_KEY}, timeout=10
        )
        return Answer(status=reply.status_code, body=reply.content)

    return answer


def test_a_job_listed_outside_the_window_asked_for_is_ignored_and_counted(
    small_account: Emulator, small: Connection, tmp_path: Path
) -> None:
    sync(tmp_path, connection=small)
    mark = Watermark.from_document((tmp_path / "_watermark.json").read_text())
    assert mark is not None
    # A finished job the destination does not hold, created long before the watermark.
    small_account.add_job(
        generate_job(
            job_id="old-job", items=2, markdown_bytes=20, created_at="2026-05-01T00:00:00Z"
        )
    )
    with scripted_server(without_filters(small_account.base_url)) as gateway:
        connection = Connection(base_url=gateway.base_url, api_key=CANARY_KEY, max_retries=0)
        report = sync(tmp_path, connection=connection)
        sent = [seen.query for seen in gateway.seen if seen.path == LISTING]
    since = mark.newest - timedelta(hours=1)
    assert sent[0]["start_date"] == since.isoformat().replace("+00:00", "Z")
    before = [d for d in small_docs() if datetime.fromisoformat(d["created_at"]) < since]
    assert report.listed == len(small_docs()) + 1
    assert report.outside_window == len(before) + 1  # the old job too: not exported
    assert report.exported == [] and report.failed == []


def test_since_and_until_are_sent_as_the_listing_filters(
    small_account: Emulator, small: Connection, tmp_path: Path
) -> None:
    report = sync(tmp_path, connection=small, since="2026-05-23", until="2026-05-25T12:00:00Z")
    sent = [record.query for record in small_account.requests if record.path == LISTING]
    assert sent == [
        {
            "page": "1",
            "page_size": "100",
            "start_date": "2026-05-23T00:00:00Z",
            "end_date": "2026-05-25T11:59:59.999999Z",  # until is exclusive, end_date is not
        }
    ]
    assert report.outside_window == 0 and 0 < report.listed < len(small_docs())
    assert report.listing["since"] == "2026-05-23T00:00:00+00:00"


# --- the jobs a sync waits for ---------------------------------------------------------------

SLOW = generate_job(
    job_id="slow-job",
    items=3,
    markdown_bytes=20,
    processing_polls=3,
    created_at="2026-05-22T09:00:00Z",  # days before the newest job: outside every listing
)


def test_an_old_job_still_running_is_read_by_id_until_it_finishes(tmp_path: Path) -> None:
    with Emulator(jobs=[*small_docs(), SLOW], api_key=CANARY_KEY) as emulator:
        connection = connection_to(emulator)
        first = sync(tmp_path, connection=connection)
        assert "slow-job" not in {job["job_id"] for job in first.exported}
        reports = []
        for _ in range(6):  # each run reads it once, by id; it finishes after a few polls
            emulator.reset_stats()
            reports.append(sync(tmp_path, connection=connection))
            if reports[-1].exported:
                break
        assert [job["job_id"] for job in reports[-1].exported] == ["slow-job"]
        assert [job["reason"] for job in reports[-1].exported] == ["new"]
        assert all(report.listing["read_directly"] >= 1 for report in reports)
        # Read by id, it was recorded as its listing shows it: a full listing finds it unchanged.
        full = sync(tmp_path, connection=connection, full=True)
        assert full.exported == [] and full.skipped["unchanged"] == len(SMALL) + 1
    mark = Watermark.from_document((tmp_path / "_watermark.json").read_text())
    assert mark is not None and "slow-job" not in mark.waiting


def test_a_waiting_job_the_api_no_longer_knows_is_dropped(tmp_path: Path) -> None:
    with Emulator(jobs=[*small_docs(), SLOW], api_key=CANARY_KEY) as emulator:
        sync(tmp_path, connection=connection_to(emulator))
    with Emulator(jobs=small_docs(), api_key=CANARY_KEY) as emulator:
        report = sync(tmp_path, connection=connection_to(emulator))
    assert report.listing["gone"] == 1 and report.failed == []
    mark = Watermark.from_document((tmp_path / "_watermark.json").read_text())
    assert mark is not None and "slow-job" not in mark.waiting


def test_a_job_that_failed_to_load_is_tried_again_by_id(tmp_path: Path) -> None:
    def bad_job() -> dict[str, Any]:
        return generate_job(
            job_id="bad-job", items=3, markdown_bytes=20, created_at=SLOW["created_at"]
        )

    bad = bad_job()
    bad["results"][1]["metadata"]["http_status"] = "teapot"
    with Emulator(jobs=[*small_docs(), bad], api_key=CANARY_KEY) as emulator:
        connection = connection_to(emulator)
        first = sync(tmp_path, connection=connection)
        assert [job["job_id"] for job in first.failed] == ["bad-job"]
        mark = Watermark.from_document((tmp_path / "_watermark.json").read_text())
        assert mark is not None and "bad-job" in mark.waiting
        emulator.add_job(bad_job())  # the provider mends it
        again = sync(tmp_path, connection=connection)
    assert [(job["job_id"], job["reason"]) for job in again.exported] == [("bad-job", "new")]
    # Read by id: bad-job, and the older of the account's two jobs still running.
    assert again.listing["from_watermark"] and again.listing["read_directly"] == 2


class RefusingStore(DatasetStore):
    """A dataset whose watermark cannot be written (a full disk, say)."""

    def save_watermark(self, document: str) -> None:
        raise OutputError("Cannot write _watermark.json: the disk is full.")


def test_a_store_that_refuses_the_watermark_costs_a_longer_listing_never_a_job(
    small: Connection, tmp_path: Path
) -> None:
    events: Events = []
    with RefusingStore(str(tmp_path)) as store:
        report = sync(store, connection=small, on_event=recorder(events))
    assert report.exit_code == 0 and len(report.exported) == len(SMALL)
    reason = "Cannot write _watermark.json: the disk is full."
    assert report.listing["watermark"] == f"not saved: {reason}"
    assert [fields for name, fields in events if name == "watermark_not_saved"] == [
        {"reason": reason}
    ]
    again = sync(tmp_path, connection=small)  # no watermark: every job listed, none loaded
    assert again.listing["from_watermark"] is False and again.exported == []
    assert (tmp_path / "_watermark.json").exists()
