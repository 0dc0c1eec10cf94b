"""The DuckDB store, on a real database file: what is its own (types, names, an older table,
a file it cannot use). What every store promises is in test_store_contract.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from batch_export.errors import InvalidInputError, OutputError
from batch_export.schema import ITEM_SCHEMA
from batch_export.sync.stores.duckdb import DuckDBStore, duckdb_type
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


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    (tmp_path / "wh").mkdir()
    store = DuckDBStore(f"duckdb://{tmp_path}/wh/warehouse.duckdb")
    yield store
    store.close()


def load_all(store: DuckDBStore, docs: list[dict[str, Any]], token: str = "token-1") -> int:
    return sum(store.load(load_of(doc, token=token), batches_of(doc)).rows for doc in docs)


def read(path: Path, sql: str) -> pa.Table:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(sql).to_arrow_table()


def test_a_missing_folder_is_created(tmp_path: Path) -> None:
    store = DuckDBStore(f"duckdb://{tmp_path}/new/folder/w.duckdb")
    assert store.prepare() == 0
    store.close()
    assert (tmp_path / "new/folder/w.duckdb").is_file()


def test_the_tables_keep_the_schema(store: DuckDBStore) -> None:
    load_all(store, [job_doc(0)])
    store.close()
    columns = read(
        store.path,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'items' ORDER BY ordinal_position",
    ).to_pylist()
    assert [(c["column_name"], c["data_type"]) for c in columns] == [
        (field.name, duckdb_type(field.type)) for field in ITEM_SCHEMA
    ]
    assert read(
        store.path,
        "SELECT data_type FROM information_schema.columns WHERE "
        "table_name = 'items' AND column_name = 'links'",
    ).column(0)[0].as_py() == ("VARCHAR[]")


def test_table_names_are_configurable_and_checked(tmp_path: Path) -> None:
    url = f"duckdb://{tmp_path}/w.duckdb"
    store = DuckDBStore(url, items_table="scraper_items", jobs_table="scraper_jobs")
    load_all(store, [job_doc(0)])
    store.close()
    assert (
        read(tmp_path / "w.duckdb", "SELECT count(*) FROM scraper_items").column(0)[0].as_py() == 5
    )
    with pytest.raises(InvalidInputError, match=r"^items_table must be a plain table name"):
        DuckDBStore(url, items_table='items"; DROP TABLE jobs; --')
    with pytest.raises(InvalidInputError, match=r"^Expected a DuckDB destination as duckdb:///"):
        DuckDBStore("duckdb://")


def test_an_older_items_table_gains_the_new_column(store: DuckDBStore) -> None:
    with duckdb.connect(str(store.path)) as con:
        old = pa.Table.from_batches(list(batches_of(job_doc(0)))).drop_columns(["extra"])
        con.register("old", old)
        con.execute("CREATE TABLE items AS SELECT * FROM old")
    load_all(store, [job_doc(1)])
    store.close()
    items = read(store.path, "SELECT * FROM items")
    assert items.column_names[-1] == "extra"
    assert (
        read(store.path, "SELECT count(*) FROM items WHERE job_id = 'job-0' AND extra IS NULL")
        .column(0)[0]
        .as_py()
        == 5
    )
    job_1 = items.filter(pa.compute.equal(items["job_id"], "job-1"))
    assert items_sorted(job_1).equals(parquet_items([job_doc(1)]))


def test_a_table_of_another_shape_is_an_output_error(store: DuckDBStore) -> None:
    with duckdb.connect(str(store.path)) as con:
        con.execute("CREATE TABLE items (job_id VARCHAR, input_index VARCHAR)")
    with pytest.raises(OutputError) as raised:
        store.prepare()
    assert str(raised.value) == (
        "DuckDB table items has column input_index of type VARCHAR, expected BIGINT: it is not "
        "a table that batch-export made. Rename or drop it, or load into other tables."
    )


def test_a_file_it_cannot_open_is_an_output_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-db.duckdb").write_text("this is not a DuckDB file")
    store = DuckDBStore(f"duckdb://{tmp_path}/not-a-db.duckdb")
    with pytest.raises(OutputError, match=r"^DuckDB could not read table jobs of .*not-a-db"):
        store.scan()
