"""The PostgreSQL store, on a real server that the tests start (see tests/postgres.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as adbc_postgres
import pyarrow as pa
import pytest

from batch_export.errors import InvalidInputError, OutputError
from batch_export.export import Connection
from batch_export.schema import ITEM_SCHEMA
from batch_export.sync import sync
from batch_export.sync.stores.postgres import PostgresStore, postgres_type
from batch_export.testing import Emulator
from tests.postgres import PostgresServer, running_postgres
from tests.sync.conftest import expected_rows, small_docs
from tests.sync.store_cases import (
    batches_of,
    items_sorted,
    job_doc,
    load_of,
    parquet_items,
    parquet_sync_items,
    with_json_parsed,
)

SMALL = expected_rows(small_docs())


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


_schemas = iter(range(1_000_000))


@pytest.fixture
def url(postgres: PostgresServer) -> str:
    """A database of its own for each test: a role whose own schema comes first."""
    role = f"loader_{next(_schemas)}"
    postgres.psql(f"CREATE ROLE {role} LOGIN; CREATE SCHEMA {role} AUTHORIZATION {role}")
    return postgres.url(user=role)


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(url)
    yield store
    store.close()


def load_all(store: PostgresStore, docs: list[dict[str, Any]], token: str = "token-1") -> int:
    return sum(store.load(load_of(doc, token=token), batches_of(doc)) for doc in docs)


def query(url: str, sql: str) -> pa.Table:
    with adbc_postgres.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        table: pa.Table = cursor.fetch_arrow_table()
        return table


def items_of(url: str) -> list[dict[str, Any]]:
    """The items table as the Parquet export has it; ``extra`` compared as JSON."""
    columns = ", ".join(
        f'"{name}"::text AS "{name}"' if name == "extra" else f'"{name}"'
        for name in ITEM_SCHEMA.names
    )
    return with_json_parsed(items_sorted(query(url, f"SELECT {columns} FROM items")))


def test_jobs_load_once_and_a_changed_job_is_replaced(url: str, store: PostgresStore) -> None:
    docs = [job_doc(n) for n in range(3)]
    assert store.prepare() == 0
    assert load_all(store, docs) == 15
    assert store.scan().recorded == {doc["job_id"]: {"token-1"} for doc in docs}
    assert items_of(url) == with_json_parsed(parquet_items(docs))

    changed = job_doc(1, items=3, seed=99)
    for _ in range(2):  # loading the same job twice leaves its rows once
        assert store.load(load_of(changed, token="token-2"), batches_of(changed)) == 3
    assert items_of(url) == with_json_parsed(parquet_items([docs[0], changed, docs[2]]))
    jobs = query(url, "SELECT job_id, rows, sync_token FROM jobs ORDER BY job_id").to_pylist()
    assert [(j["job_id"], j["rows"], j["sync_token"]) for j in jobs] == [
        ("job-0", 5, "token-1"),
        ("job-1", 3, "token-2"),
        ("job-2", 5, "token-1"),
    ]


def test_the_tables_have_types_that_keep_the_schema(
    postgres: PostgresServer, url: str, store: PostgresStore
) -> None:
    load_all(store, [job_doc(0)])
    role = url.split("//", 1)[1].split("@", 1)[0]
    described = postgres.psql(
        "SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute "
        f"WHERE attrelid = '{role}.items'::regclass AND attnum > 0 ORDER BY attnum"
    )
    assert described.splitlines() == [
        f"{field.name} {postgres_type(field.name, field.type)}" for field in ITEM_SCHEMA
    ]
    assert "links text[]" in described and "extra jsonb" in described
    # psql, as the README says: the JSON is JSON.
    shots = postgres.psql(
        f"SELECT extra->>'screenshot_id' FROM {role}.items WHERE extra IS NOT NULL", user=role
    )
    assert shots.split() == ["shot-0"]


def test_an_older_items_table_gains_the_new_column(url: str, store: PostgresStore) -> None:
    with adbc_postgres.connect(url) as conn, conn.cursor() as cursor:
        old = pa.Table.from_batches(list(batches_of(job_doc(0)))).drop_columns(["extra"])
        cursor.adbc_ingest("items", old, mode="create")
        conn.commit()
    load_all(store, [job_doc(1)])
    rows = items_of(url)
    assert {row["job_id"] for row in rows if row["extra"] is None} >= {"job-0"}
    new = [row for row in rows if row["job_id"] == "job-1"]
    assert new == with_json_parsed(parquet_items([job_doc(1)]))


def test_a_table_of_another_shape_is_an_output_error(url: str, store: PostgresStore) -> None:
    with adbc_postgres.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE items (job_id text, input_index text)")
        conn.commit()
    with pytest.raises(OutputError) as raised:
        store.prepare()
    assert str(raised.value) == (
        "PostgreSQL table items has column input_index of type text, expected bigint: it is not "
        "a table that batch-export made. Rename or drop it, or load into other tables."
    )


def test_a_role_without_privileges_is_an_output_error(postgres: PostgresServer) -> None:
    postgres.psql("CREATE ROLE reader LOGIN")  # PostgreSQL 15: no CREATE on public
    store = PostgresStore(postgres.url(user="reader"))
    with pytest.raises(OutputError) as raised:
        store.prepare()
    assert str(raised.value) == (
        f"PostgreSQL could not create or widen table items at {postgres.url(user='reader')}: "
        "permission denied for schema public. Check the server, the role's privileges and the "
        "disk (the password comes from PGPASSWORD or ~/.pgpass)."
    )
    store.close()


def test_an_unreachable_server_is_an_output_error() -> None:
    store = PostgresStore("postgresql://nobody@127.0.0.1:9/none")
    with pytest.raises(OutputError, match=r"^PostgreSQL could not read table jobs at "):
        store.scan()


def test_a_password_in_the_url_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="remove it and set PGPASSWORD"):
        PostgresStore("postgresql://loader:s3cret@127.0.0.1/db")


def test_a_failed_load_keeps_the_job_as_it_was(url: str, store: PostgresStore) -> None:
    load_all(store, [job_doc(0)])

    def broken() -> Iterator[pa.RecordBatch]:
        yield from batches_of(job_doc(0, items=2, seed=5))
        raise OutputError("the API went away")

    with pytest.raises(OutputError, match="the API went away"):
        store.load(load_of(job_doc(0), token="token-2"), broken())
    assert store.scan().recorded == {"job-0": {"token-1"}}
    assert items_of(url) == with_json_parsed(parquet_items([job_doc(0)]))


def test_loads_from_several_threads_at_once(url: str, store: PostgresStore) -> None:
    docs = [job_doc(n, items=3) for n in range(12)]
    threads = [threading.Thread(target=load_all, args=(store, docs[n::4])) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(store.scan().recorded) == sorted(doc["job_id"] for doc in docs)
    assert items_of(url) == with_json_parsed(parquet_items(docs))
    fingerprint = query(url, "SELECT fingerprint::text FROM jobs LIMIT 1").column(0)[0].as_py()
    assert json.loads(fingerprint)["status"] == "completed"


def test_sync_loads_the_account_and_psql_reads_it(
    small_account: Emulator, small: Connection, postgres: PostgresServer, url: str, tmp_path: Path
) -> None:
    report = sync(url, connection=small, jobs=4)
    assert report.exit_code == 0 and len(report.exported) == len(SMALL)
    reference = parquet_sync_items(small, tmp_path / "pq")
    assert items_of(url) == with_json_parsed(reference)
    role = url.split("//", 1)[1].split("@", 1)[0]
    counted = postgres.psql("SELECT job_id || ' ' || rows FROM jobs ORDER BY job_id", user=role)
    assert counted.split("\n")[:-1] == [f"{job} {rows}" for job, rows in sorted(SMALL.items())]

    again = sync(url, connection=small)
    assert again.exported == [] and again.skipped["unchanged"] == len(SMALL)
    changed = next(doc for doc in small_docs() if SMALL.get(doc["job_id"]))
    small_account.add_job({**changed, "completed_at": "2026-05-30T00:00:00Z"})
    third = sync(url, connection=small)
    assert [job["job_id"] for job in third.exported] == [changed["job_id"]]
    assert items_of(url) == with_json_parsed(reference)  # replaced, not duplicated
