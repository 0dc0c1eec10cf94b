"""The Delta Lake store, with real deltalake, on a local folder and on the loopback S3 server:
what is its own (partitions, versions, an older table, commits retried, compaction, S3). What
every store promises is in test_store_contract.py."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from batch_export.cli import main
from batch_export.cli.compact import compact as compact_command
from batch_export.errors import OutputError
from batch_export.sync.stores.delta import (
    DELTA_ITEM_SCHEMA,
    DeltaStore,
    compact,
    delta_storage_options,
)
from batch_export.testing import Emulator
from tests.sync.conftest import expected_rows, small_docs
from tests.sync.store_cases import (
    batches_of,
    items_sorted,
    job_doc,
    load_of,
    parquet_items,
)

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

SMALL = expected_rows(small_docs())


def load_all(store: DeltaStore, docs: list[dict[str, Any]], token: str = "token-1") -> int:
    return sum(store.load(load_of(doc, token=token), batches_of(doc)).rows for doc in docs)


def table(store: DeltaStore, name: str) -> DeltaTable:
    return DeltaTable(store.uri(name), storage_options=store._options)


def test_items_are_partitioned_by_the_day_of_created_at(tmp_path: Path) -> None:
    store = DeltaStore(str(tmp_path))
    load_all(store, [job_doc(n) for n in range(3)])
    days = {Path(path).parent.name for path in table(store, "items").file_uris()}
    assert days == {"date=2026-05-22", "date=2026-05-24"}


def test_a_rerun_with_nothing_new_makes_no_new_version(tmp_path: Path) -> None:
    first = DeltaStore(str(tmp_path))
    load_all(first, [job_doc(0)])
    versions = (table(first, "items").version(), table(first, "jobs").version())
    again = DeltaStore(str(tmp_path))
    again.scan()
    assert again.prepare() == 0
    assert (table(again, "items").version(), table(again, "jobs").version()) == versions


def test_an_older_items_table_gains_the_new_column(tmp_path: Path) -> None:
    old_schema = DELTA_ITEM_SCHEMA.remove(DELTA_ITEM_SCHEMA.get_field_index("extra"))
    old_doc = job_doc(0)
    old_rows = items_sorted(pa.Table.from_batches(list(batches_of(old_doc))))
    day = pa.array([load_of(old_doc).created_at.date()] * old_rows.num_rows, pa.date32())
    old = old_rows.drop_columns(["extra"]).append_column("date", day).cast(old_schema)
    write_deltalake(str(tmp_path / "items"), old, partition_by=["date"])

    store = DeltaStore(str(tmp_path))
    store.load(load_of(job_doc(1)), batches_of(job_doc(1)))
    items = table(store, "items").to_pyarrow_table()
    assert "extra" in items.column_names
    extras = dict(zip(items["job_id"].to_pylist(), items["extra"].to_pylist(), strict=True))
    assert extras["job-0"] is None  # rows loaded before the column existed read null
    assert items_sorted(items.filter(pa.compute.equal(items["job_id"], "job-1"))).equals(
        parquet_items([job_doc(1)])
    )


def test_a_table_of_another_shape_is_an_output_error(tmp_path: Path) -> None:
    write_deltalake(str(tmp_path / "items"), pa.table({"job_id": ["x"], "input_index": ["0"]}))
    with pytest.raises(OutputError, match=r"Delta table .*items has column input_index of type"):
        DeltaStore(str(tmp_path)).prepare()


def test_a_destination_that_is_a_file_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "wh"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match=r"^Cannot write Delta table .*wh/items: "):
        DeltaStore(str(blocker)).prepare()


def test_a_parquet_dataset_is_not_turned_into_delta_tables(tmp_path: Path) -> None:
    (tmp_path / "_layout.json").write_text("{}")
    with pytest.raises(OutputError, match="holds a Parquet dataset"):
        DeltaStore(str(tmp_path)).prepare()


def load_concurrently(stores: list[DeltaStore], docs: list[dict[str, Any]]) -> list[BaseException]:
    """Each store (a sync of its own) loads every other job of ``docs``, all at once."""
    errors: list[BaseException] = []

    def run(store: DeltaStore, share: list[dict[str, Any]]) -> None:
        try:
            load_all(store, share)
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=run, args=(store, docs[number :: len(stores)]))
        for number, store in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_compact_leaves_fewer_files_and_the_same_rows(tmp_path: Path) -> None:
    store = DeltaStore(str(tmp_path))
    docs = [job_doc(n, items=2) for n in range(9)]
    load_all(store, docs)
    before = table(store, "items")
    files_before = len(before.file_uris())
    report = compact(str(tmp_path), vacuum_hours=0)
    after = table(store, "items")
    assert len(after.file_uris()) == 2 < files_before  # one file a day
    assert report["items"]["files_removed"] == files_before
    assert report["items"]["files_vacuumed"] == files_before
    assert len(list((tmp_path / "items").rglob("*.parquet"))) == 2
    assert items_sorted(after.to_pyarrow_table()).equals(parquet_items(docs))
    version = after.version()
    assert compact(str(tmp_path))["items"] == {"files_added": 0, "files_removed": 0}
    assert table(store, "items").version() == version


def test_the_compact_command(tmp_path: Path) -> None:
    load_all(DeltaStore(str(tmp_path)), [job_doc(n) for n in range(3)])
    result = CliRunner().invoke(compact_command, ["--dest", str(tmp_path), "--vacuum-hours", "0"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "items: 2 files rewritten into 1, 2 files vacuumed."
    missing = CliRunner().invoke(compact_command, ["--dest", str(tmp_path / "none")])
    assert isinstance(missing.exception, OutputError)
    assert str(missing.exception).startswith(f"No Delta table at {tmp_path}/none/items: run ")


def test_duckdb_and_pandas_read_the_tables_as_the_readme_says(tmp_path: Path) -> None:
    docs = [job_doc(n) for n in range(3)]
    load_all(DeltaStore(str(tmp_path)), docs)
    items = DeltaTable(str(tmp_path / "items")).to_pyarrow_dataset()
    jobs = DeltaTable(str(tmp_path / "jobs")).to_pyarrow_dataset()
    con = duckdb.connect()
    con.register("items", items)
    con.register("jobs", jobs)
    counts = con.sql(
        "SELECT j.job_id, count(i.input_index), any_value(j.rows) FROM jobs j "
        "JOIN items i USING (job_id) GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert counts == [(doc["job_id"], 5, 5) for doc in docs]
    frame = DeltaTable(str(tmp_path / "items")).to_pandas(filters=[("job_id", "=", "job-1")])
    assert sorted(frame["input_index"]) == [0, 1, 2, 3, 4]


def s3_store(endpoint: str, bucket: str, prefix: str = "wh") -> DeltaStore:
    return DeltaStore(f"s3://{bucket}/{prefix}", storage_options={"endpoint_url": endpoint})


def test_delta_on_s3_loads_replaces_and_takes_two_writers(s3_endpoint: str, s3_bucket: str) -> None:
    docs = [job_doc(n, items=3) for n in range(8)]
    stores = [s3_store(s3_endpoint, s3_bucket), s3_store(s3_endpoint, s3_bucket)]
    assert load_concurrently(stores, docs) == []
    changed = job_doc(2, items=1, seed=7)
    stores[0].load(load_of(changed, token="token-2"), batches_of(changed))
    expected = parquet_items([changed if doc["job_id"] == "job-2" else doc for doc in docs])
    assert items_sorted(table(stores[0], "items").to_pyarrow_table()).equals(expected)
    assert stores[1].scan().recorded["job-2"] == {"token-2"}
    assert (
        compact(stores[0].url, storage_options={"endpoint_url": s3_endpoint})["jobs"]["files_added"]
        == 1
    )


def test_a_missing_bucket_is_an_output_error(s3_endpoint: str, s3_bucket: str) -> None:
    store = s3_store(s3_endpoint, f"{s3_bucket}-missing")
    with pytest.raises(OutputError, match=r"^Cannot write Delta table s3://.*NoSuchBucket"):
        store.prepare()


def test_a_conflicting_commit_is_retried_then_given_up(tmp_path: Path) -> None:
    slept: list[float] = []
    store = DeltaStore(str(tmp_path), max_attempts=3, sleep=slept.append)
    outcomes = iter([CommitFailedError("concurrent transaction deleted the same data"), None])

    def attempt() -> None:
        failure = next(outcomes)
        if failure is not None:
            raise failure

    store._commit("items", attempt)
    assert len(slept) == 1 and 0.025 <= slept[0] <= 0.05

    def always() -> None:
        raise CommitFailedError("concurrent transaction deleted the same data")

    with pytest.raises(OutputError) as raised:
        store._commit("items", always)
    assert str(raised.value) == (
        f"Delta table {tmp_path}/items kept changing under this sync: concurrent transaction "
        "deleted the same data (3 attempts). Rerun the sync; it loads only the jobs not yet "
        "loaded."
    )
    assert len(slept) == 3  # one more after the first success, none after the last attempt


def test_writers_replacing_rows_of_one_compacted_file_both_land(tmp_path: Path) -> None:
    # After compaction every job's row is in one file: each replacement rewrites it, so
    # concurrent writers conflict for real, and retry.
    docs = [job_doc(n, items=2) for n in range(12)]
    load_all(DeltaStore(str(tmp_path)), docs)
    compact(str(tmp_path))
    slept: list[float] = []
    stores = [DeltaStore(str(tmp_path), sleep=slept.append) for _ in range(3)]
    changed = [job_doc(n, items=1, seed=50 + n) for n in range(12)]
    assert load_concurrently(stores, changed) == []
    assert items_sorted(table(stores[0], "items").to_pyarrow_table()).equals(parquet_items(changed))
    assert table(stores[0], "jobs").to_pyarrow_table().column("rows").to_pylist() == [1] * 12


def test_the_sync_command_loads_delta_tables_on_s3(
    small_env: Emulator, s3_endpoint: str, s3_bucket: str
) -> None:
    dest = f"s3://{s3_bucket}/lake"
    args = ["sync", "--dest", dest, "--table-format", "delta", "--endpoint-url", s3_endpoint]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    options = delta_storage_options({"endpoint_url": s3_endpoint})
    items = DeltaTable(f"{dest}/items", storage_options=options).to_pyarrow_table()
    assert items.num_rows == sum(SMALL.values())
