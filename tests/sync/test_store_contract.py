"""What every store promises, checked for each entry of the store registry.

As tests/writers/test_contract.py is over the writer registry, these run over
``batch_export.sync.store.STORES``: a new kind of destination gets them by adding its line
there, and a way to make an empty one in ``tests/sync/warehouses.py`` (without it, these fail).
The promises, at the store's own interface (the end-to-end ones, through the `sync` command,
are in test_store_promises.py and test_store_concurrency.py):

- the jobs loaded are there exactly, as the Parquet export has them, with one jobs row each;
  a changed job is replaced, never added to, however often it is loaded;
- a failed load leaves the job as it was, or (the Parquet dataset) nothing a reader trusts;
  the next load of it is exact;
- several threads may load through one store at once;
- two stores on one destination at once: both exact (PostgreSQL, Delta Lake), or the second
  refused in one sentence (the Parquet dataset, DuckDB), as the README's table says;
- a value the destination cannot hold is changed by the documented rule and counted; the
  others are held as they came;
- a job's jobs row records the counts of its load (its failure codes with whether
  resubmitting may help, the failed items it may help, the API key hidden), in a jobs table
  made before those columns too; the Parquet dataset, whose jobs files keep their layout, in
  the job's marker.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch_export.errors import InvalidInputError, OutputError
from batch_export.summary.failures import FailureTally
from batch_export.sync.layout import JOBS_SCHEMA
from batch_export.sync.store import STORES, JobLoad, Loaded, Store, open_store
from batch_export.sync.stores.tables import COUNTED_FIELDS
from tests.postgres import PostgresServer, running_postgres
from tests.sync.store_cases import (
    batches_of,
    job_doc,
    load_of,
    nul_doc,
    parquet_items,
    with_json_parsed,
    without_nul,
)
from tests.sync.warehouses import Warehouse, new_warehouse

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

# The README's table of what each destination takes: two writers at once, and NUL.
TAKES_TWO_WRITERS = {"parquet": False, "delta": True, "duckdb": False, "postgresql": True}
HOLDS_NUL = {"parquet": True, "delta": True, "duckdb": True, "postgresql": False}
COUNTED = [field.name for field in COUNTED_FIELDS]
# What failing_doc's failed items say, as the jobs row's failure_codes holds it.
FAILURE_CODES = {
    "NETWORK_ERROR": {"items": 2, "resubmit": True},
    "PERMANENT_BLOCK": {"items": 1, "resubmit": False},
    "odd_code": {"items": 1, "resubmit": None},
}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture(params=sorted(STORES))
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def warehouse(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Warehouse:
    """An empty destination of ``kind``, and how to read it back."""
    server = request.getfixturevalue("postgres") if kind == "postgresql" else None
    return new_warehouse(kind, tmp_path, server)


def opened(warehouse: Warehouse) -> Store:
    """A new store on ``warehouse``, as ``sync --dest`` opens it."""
    table_format = "delta" if warehouse.kind == "delta" else "parquet"
    return open_store(warehouse.dest, table_format=table_format)


@pytest.fixture
def store(warehouse: Warehouse) -> Iterator[Store]:
    with opened(warehouse) as store:
        store.prepare()
        yield store


def load(store: Store, doc: dict[str, Any], token: str = "00aa") -> Loaded:
    return store.load(load_of(doc, token=token), batches_of(doc))


def expected_items(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The Parquet export's rows of ``docs``, with the rule applied where the store needs it."""
    rows = with_json_parsed(parquet_items(docs))
    return rows if HOLDS_NUL[kind] else [without_nul(row) for row in rows]


def test_every_store_of_the_registry_is_held_to_the_contract() -> None:
    assert set(STORES) == set(TAKES_TWO_WRITERS) == set(HOLDS_NUL)


def test_jobs_load_exactly_and_a_changed_job_is_replaced(
    kind: str, warehouse: Warehouse, store: Store
) -> None:
    docs = [job_doc(n) for n in range(3)]
    assert [load(store, doc).rows for doc in docs] == [5, 5, 5]
    assert warehouse.items() == expected_items(docs, kind)
    assert warehouse.committed() == {"job-0": 5, "job-1": 5, "job-2": 5}
    assert store.scan().recorded == {doc["job_id"]: {"00aa"} for doc in docs}

    changed = job_doc(1, items=3, seed=99)
    for _ in range(2):  # loading the same job twice leaves its rows once
        assert load(store, changed, token="00bb").rows == 3
    assert warehouse.items() == expected_items([docs[0], changed, docs[2]], kind)
    assert warehouse.committed() == {"job-0": 5, "job-1": 3, "job-2": 5}
    state = store.scan()
    assert state.recorded["job-1"] == {"00bb"} and state.whole == {"job-0", "job-1", "job-2"}


def test_a_failed_load_leaves_nothing_half_and_the_next_load_is_exact(
    kind: str, warehouse: Warehouse, store: Store
) -> None:
    load(store, job_doc(0))

    def broken() -> Iterator[pa.RecordBatch]:
        yield from batches_of(job_doc(0, items=2, seed=5))
        raise OutputError("the API went away")

    with pytest.raises(OutputError, match="the API went away"):
        store.load(load_of(job_doc(0), token="00bb"), broken())
    # As it was, or (a store of files) out of what readers trust; never half, never twice.
    assert warehouse.committed() in ({"job-0": 5}, {})
    assert store.scan().recorded in ({"job-0": {"00aa"}}, {})

    again = job_doc(0, items=2, seed=5)
    assert load(store, again, token="00bb").rows == 2
    assert warehouse.items() == expected_items([again], kind)
    assert warehouse.committed() == {"job-0": 2}


def test_several_threads_load_through_one_store(
    kind: str, warehouse: Warehouse, store: Store
) -> None:
    docs = [job_doc(n, items=3) for n in range(12)]
    threads = [
        threading.Thread(target=lambda share=docs[n::4]: [load(store, d) for d in share])
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert warehouse.items() == expected_items(docs, kind)
    assert warehouse.committed() == {doc["job_id"]: 3 for doc in docs}


def test_two_stores_at_once_are_exact_or_the_second_is_refused(
    kind: str, warehouse: Warehouse, store: Store
) -> None:
    docs = [job_doc(n, items=4) for n in range(6)]
    with opened(warehouse) as second:
        if not TAKES_TWO_WRITERS[kind]:
            with pytest.raises(OutputError) as refused:
                second.prepare()
            message = str(refused.value)
            assert " is open in another " in message or " is being synced by another " in message
            assert "\n" not in message and message.endswith(".")
            return
        second.prepare()
        errors: list[BaseException] = []

        def load_all(target: Store) -> None:
            try:
                for doc in docs:  # both load every job: the same rows, at the same time
                    load(target, doc)
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=load_all, args=(s,)) for s in (store, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert errors == []
    assert warehouse.items() == expected_items(docs, kind)
    assert warehouse.committed() == {doc["job_id"]: 4 for doc in docs}


def test_values_are_held_as_they_came_or_changed_by_the_rule_and_counted(
    kind: str, warehouse: Warehouse, store: Store
) -> None:
    doc = nul_doc()
    loaded = load(store, doc)
    assert warehouse.items() == expected_items([doc], kind)
    # url, markdown, one link, extra (its key and value), error_message, and the config.
    changed = 0 if HOLDS_NUL[kind] else 6
    assert loaded == Loaded(rows=3, items_path=loaded.items_path, values_changed=changed)
    jobs = warehouse.jobs_table()
    if "values_changed" in jobs.column_names:  # the table stores' jobs rows count them
        assert jobs["values_changed"].to_pylist() == [changed]
    config = jobs["config"][0].as_py()
    assert ("n\\u0000l" in config) is HOLDS_NUL[kind]  # JSON text, as the store keeps it

    plain = load(store, job_doc(8))
    assert plain.values_changed == 0


def test_table_names_are_checked_and_a_dataset_keeps_its_own(kind: str, tmp_path: Path) -> None:
    dest = str(tmp_path / "d") if kind in ("parquet", "delta") else "duckdb:///x.duckdb"
    dest = "postgresql://loader@127.0.0.1:9/none" if kind == "postgresql" else dest
    table_format = "delta" if kind == "delta" else "parquet"
    expected = (
        r"^A Parquet dataset keeps its tables in the folders items/ and jobs/"
        if kind == "parquet"
        else r"^items_table must be a plain table name"
    )
    with pytest.raises(InvalidInputError, match=expected):
        open_store(dest, table_format=table_format, items_table='items"; DROP TABLE jobs; --')


def test_a_loaded_job_reports_what_the_loop_tells(kind: str, store: Store) -> None:
    doc = job_doc(3, items=2)
    loaded = load(store, doc)
    assert loaded.rows == 2
    if kind == "parquet":  # a store of files says where the job's items are
        assert loaded.items_path == "items/date=2026-05-22/job-3.parquet"
        assert loaded.fields() == {"rows": 2, "items_path": loaded.items_path}
    else:
        assert loaded.fields() == {"rows": 2}


def test_jobload_counts_reach_the_jobs_row(kind: str, warehouse: Warehouse, store: Store) -> None:
    doc = job_doc(4, items=2)
    counted = JobLoad(**{**vars(load_of(doc, token="00aa")), "values_changed": lambda: 3})
    assert store.load(counted, batches_of(doc)).values_changed == 3
    jobs = warehouse.jobs_table()
    if "values_changed" in jobs.column_names:
        assert jobs["values_changed"].to_pylist() == [3]


def failing_doc(number: int) -> dict[str, Any]:
    """Job ``job-<number>`` whose failed items carry a code that resubmitting may help
    (twice), a final one, one the provider does not name, and one without a code."""
    doc = job_doc(number, items=8)
    for result in doc["results"]:
        result.update(status="completed", error_code=None, error_message=None)
    codes = ("NETWORK_ERROR", "PERMANENT_BLOCK", "NETWORK_ERROR", "odd_code", None)
    for index, code in zip((0, 2, 3, 5, 6), codes, strict=True):
        doc["results"][index].update(status="failed", error_code=code, error_message="failed")
    return doc


def tallied(doc: dict[str, Any], *, hidden: int = 0) -> tuple[JobLoad, Iterator[pa.RecordBatch]]:
    """What the sync hands a store for ``doc``, its counts tallied from the batches the store
    takes, as the sync's JobStream tallies them."""
    tally = FailureTally()

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in batches_of(doc):
            tally.add(batch)
            yield batch

    counted = JobLoad(
        **{
            **vars(load_of(doc, token="00aa")),
            "counts": lambda: {**tally.columns(), "api_key_hidden": hidden},
        }
    )
    return counted, batches()


def counted_rows(warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    """Each job's counted columns of the jobs table, ``failure_codes`` parsed."""
    rows = {row["job_id"]: row for row in warehouse.jobs_table().to_pylist()}
    counted = {job_id: {name: row[name] for name in COUNTED} for job_id, row in rows.items()}
    for row in counted.values():
        codes = row["failure_codes"]
        row["failure_codes"] = None if codes is None else json.loads(codes)
    return counted


def test_a_job_with_failures_shows_its_codes_in_the_jobs_row(
    kind: str, warehouse: Warehouse, store: Store
) -> None:
    assert store.load(*tallied(failing_doc(5), hidden=2)).rows == 8
    load(store, job_doc(6))  # a load whose counts nobody gave
    expected = {"failure_codes": FAILURE_CODES, "failed_retryable": 2, "api_key_hidden": 2}
    if kind == "parquet":  # the jobs files keep the layout; the marker holds the counts
        assert not set(COUNTED) & set(warehouse.jobs_table().column_names)
        markers = Path(warehouse.dest, "_markers")
        marker = json.loads(next(markers.glob("job-5.*.json")).read_text())
        assert marker["counts"] == expected
        assert json.loads(next(markers.glob("job-6.*.json")).read_text())["counts"] == {}
        return
    counted = counted_rows(warehouse)
    assert counted["job-5"] == expected
    assert counted["job-6"] == dict.fromkeys(COUNTED)
    if kind != "postgresql":  # JSON text keeps the most frequent code first; jsonb its order
        texts = {row["job_id"]: row["failure_codes"] for row in warehouse.jobs_table().to_pylist()}
        assert next(iter(json.loads(texts["job-5"]))) == "NETWORK_ERROR"


def test_a_jobs_table_made_before_the_counts_gains_them(kind: str, warehouse: Warehouse) -> None:
    with opened(warehouse) as first:
        first.prepare()
        load(first, job_doc(0))
    if kind == "parquet":  # a dataset's jobs files keep the layout's columns, old or new
        with opened(warehouse) as second:
            second.prepare()
            second.load(*tallied(failing_doc(5)))
        files = sorted(Path(warehouse.dest, "jobs").rglob("*.parquet"))
        assert [pq.read_schema(file).names for file in files] == [JOBS_SCHEMA.names] * 2
        return
    warehouse.drop_jobs_columns(COUNTED)  # a table of the version before
    with opened(warehouse) as second:
        second.prepare()
        second.load(*tallied(failing_doc(5)))
    assert warehouse.committed() == {"job-0": 5, "job-5": 8}
    counted = counted_rows(warehouse)
    assert counted["job-0"] == dict.fromkeys(COUNTED)  # loaded before: null
    assert counted["job-5"] == {
        "failure_codes": FAILURE_CODES,
        "failed_retryable": 2,
        "api_key_hidden": 0,
    }
