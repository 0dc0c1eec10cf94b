"""The PostgreSQL store, on a real server that the tests start (see tests/postgres.py): what is
its own (types, an older table, its unique key, privileges, a value it refuses). What every
store promises is in test_store_contract.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as adbc_postgres
import pyarrow as pa
import pytest
from click.testing import CliRunner

from batch_export.cli import main
from batch_export.errors import InvalidInputError, OutputError
from batch_export.schema import ITEM_SCHEMA
from batch_export.sync.stores.postgres import PostgresStore, _Refused, postgres_type
from batch_export.sync.stores.tables import jobs_row
from batch_export.testing import Emulator
from tests.conftest import CANARY_KEY
from tests.postgres import PostgresServer, running_postgres
from tests.sync.conftest import expected_rows, small_docs
from tests.sync.store_cases import (
    batches_of,
    items_sorted,
    job_doc,
    load_of,
    nul_doc,
    parquet_items,
    with_json_parsed,
)

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

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
    return sum(store.load(load_of(doc, token=token), batches_of(doc)).rows for doc in docs)


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
        "permission denied for schema public. Check the server and the role's privileges (the "
        "password comes from PGPASSWORD or ~/.pgpass)."
    )
    store.close()


def test_an_unreachable_server_is_an_output_error() -> None:
    store = PostgresStore("postgresql://nobody@127.0.0.1:9/none")
    with pytest.raises(OutputError, match=r"^PostgreSQL could not read table jobs at "):
        store.scan()


def test_a_password_in_the_url_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="remove it and set PGPASSWORD"):
        PostgresStore("postgresql://loader:s3cret@127.0.0.1/db")


def test_an_older_items_table_gains_the_unique_key(url: str, store: PostgresStore) -> None:
    with adbc_postgres.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE items (job_id text, input_index bigint)")
        cursor.execute("CREATE INDEX items_job_id ON items (job_id)")
        conn.commit()
    store.prepare()
    with adbc_postgres.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute("INSERT INTO items (job_id, input_index) VALUES ('j', 0)")
        conn.commit()
        with pytest.raises(adbc_postgres.IntegrityError, match="items_job_id_input_index"):
            cursor.execute("INSERT INTO items (job_id, input_index) VALUES ('j', 0)")


def test_an_items_table_holding_duplicates_is_refused_in_one_sentence(
    url: str, store: PostgresStore
) -> None:
    with adbc_postgres.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE items (job_id text, input_index bigint)")
        cursor.execute("INSERT INTO items VALUES ('j', 0), ('j', 0)")
        conn.commit()
    with pytest.raises(OutputError) as refused:
        store.prepare()
    assert str(refused.value) == (
        f"PostgreSQL table items at {url} holds some items twice (the same job_id and "
        "input_index, left by two syncs at once before batch-export kept them apart), so it "
        "cannot gain the unique key that keeps them apart: delete those jobs' rows from items "
        "and jobs (SELECT DISTINCT job_id FROM items GROUP BY job_id, input_index HAVING "
        "count(*) > 1 finds them) and rerun, which loads them again."
    )


def test_a_value_postgresql_refuses_is_named_never_the_disk(url: str, store: PostgresStore) -> None:
    doc = job_doc(9, items=2)
    batch = pa.Table.from_batches(list(batches_of(doc)))
    huge = '{"n": 1' + "0" * 140_000 + "}"  # past jsonb's numeric: 131,072 digits
    batch = batch.set_column(
        batch.schema.get_field_index("extra"),
        "extra",
        pa.array([None, huge], pa.string()),
    )
    with pytest.raises(OutputError) as refused:
        store.load(load_of(doc), batch.to_batches())
    assert str(refused.value) == (
        "PostgreSQL cannot hold a value of job job-9 in column extra of table items (value "
        "overflows numeric format), so the job was not loaded: see the README's table of what "
        "each destination holds."
    )
    assert "disk" not in str(refused.value)
    assert store.scan().recorded == {}  # nothing of the job was kept


def test_a_refused_value_of_the_jobs_row_is_named_by_its_column(store: PostgresStore) -> None:
    doc = job_doc(10, items=1)
    row = jobs_row(load_of(doc), rows=1)
    huge = '{"n": 1' + "0" * 140_000 + "}"
    row = row.set_column(row.schema.get_field_index("config"), "config", pa.array([huge]))
    error = RuntimeError("value overflows numeric format")
    assert store._refused_column(_Refused("jobs", error, None, row)) == "config"
    assert store._refused_column(_Refused("items", error, None, row)) == "extra"  # its only one


def test_the_sync_command_loads_a_job_with_nul_and_says_how_many_values_changed(
    url: str, tmp_path: Path
) -> None:
    docs = [nul_doc(), job_doc(8)]
    with Emulator(jobs=docs, api_key=CANARY_KEY) as emulator:
        env = {"SCRAPER_API_BASE_URL": emulator.base_url, "GEONODE_SCRAPER_API_KEY": CANARY_KEY}
        args = ["sync", "--dest", url, "--log-format", "json"]
        result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["values_changed"] == 6 and summary["failed"] == []
    counted = {job["job_id"]: job.get("values_changed", 0) for job in summary["exported"]}
    assert counted == {"job-7": 6, "job-8": 0}
    events = [json.loads(line) for line in result.stderr.splitlines()]
    exported = [e for e in events if e["event"] == "job_exported" and e["job_id"] == "job-7"]
    assert exported[0]["values_changed"] == 6
    markdown = query(url, "SELECT markdown FROM items WHERE job_id = 'job-7' AND input_index = 0")
    assert markdown.column(0).to_pylist() == ["before\ufffdafter\ufffd"]
