"""stores/tables.py: the spool that the DuckDB and PostgreSQL stores load from."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from batch_export.schema import ITEM_SCHEMA
from batch_export.sync.stores.tables import Spool


def _pages(count: int, names: list[list[str]]) -> Iterator[pa.RecordBatch]:
    for page in range(count):
        names.append(sorted(p.name for p in Path(tempfile.gettempdir()).iterdir()))
        rows = [{"job_id": "j1", "input_index": page * 10 + i} for i in range(10)]
        yield pa.RecordBatch.from_pylist(rows, schema=ITEM_SCHEMA)


def test_a_spool_has_no_name_to_leave_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sync killed while spooling (SIGKILL runs no cleanup) must not leave a file behind.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen: list[list[str]] = []
    with Spool(_pages(3, seen), schema=ITEM_SCHEMA) as spool:
        assert seen == [[], [], []]
        assert list(tmp_path.iterdir()) == []
        assert spool.rows == 30
        assert spool.table().column("input_index").to_pylist() == list(range(30))
        first = spool.reader().read_all()
        assert spool.reader().read_all().equals(first)  # read again, as a retried commit does
    assert list(tmp_path.iterdir()) == []


def test_tables_read_from_a_spool_outlive_it() -> None:
    with Spool(_pages(2, []), schema=ITEM_SCHEMA) as spool:
        table = spool.table()
    assert table.num_rows == 20
    assert table.column("input_index").to_pylist() == list(range(20))


def test_a_failed_spooling_releases_its_file() -> None:
    def failing() -> Iterator[pa.RecordBatch]:
        yield pa.RecordBatch.from_pylist([{"job_id": "j1"}], schema=ITEM_SCHEMA)
        raise OSError("the network went away")

    with pytest.raises(OSError, match="network"):
        Spool(failing(), schema=ITEM_SCHEMA)
