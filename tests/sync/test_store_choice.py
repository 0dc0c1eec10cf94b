"""`--dest` and `--table-format` choose the store; a store that is not available says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from batch_export.cli import main
from batch_export.errors import InvalidInputError
from batch_export.sync import DatasetStore, open_store
from batch_export.sync import store as store_module
from batch_export.testing import Emulator
from tests.sync.conftest import expected_rows, small_docs

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

SMALL = expected_rows(small_docs())


def test_a_folder_is_a_parquet_dataset(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    assert isinstance(store, DatasetStore) and store.url == str(tmp_path)


@pytest.mark.parametrize(
    ("dest", "options", "message"),
    [
        (
            "out",
            {"table_format": "iceberg"},
            "--table-format must be one of parquet, delta, got 'iceberg'.",
        ),
        (
            "duckdb:///w.duckdb",
            {"table_format": "delta"},
            "--table-format delta applies to folder and object-store destinations, not to "
            "duckdb:// (a database holds tables of its own).",
        ),
        (
            "postgresql://me@127.0.0.1/db",
            {"storage_options": {"anon": True}},
            "--storage-option and --endpoint-url apply to folder and object-store "
            "destinations, not to postgresql://.",
        ),
        (
            "out",
            {"items_table": "scraped"},
            "A Parquet dataset keeps its tables in the folders items/ and jobs/; "
            "--items-table and --jobs-table apply to --table-format delta, duckdb:// and "
            "postgresql:// destinations.",
        ),
    ],
)
def test_choices_that_do_not_fit_name_the_flag(
    dest: str, options: dict[str, object], message: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        open_store(tmp_path / dest if "://" not in dest else dest, **options)  # type: ignore[arg-type]
    assert str(caught.value) == message and caught.value.exit_code == 2


def test_a_store_that_cannot_be_imported_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if the store's module (or the package under it) were not installed.
    missing = ("batch_export.sync.stores.not_installed", "DuckDBStore", "batch-export[duckdb]")
    monkeypatch.setitem(store_module.STORES, "duckdb", missing)
    with pytest.raises(InvalidInputError) as caught:
        open_store("duckdb:///tmp/w.duckdb")
    assert str(caught.value) == (
        "--dest duckdb:///tmp/w.duckdb needs the duckdb store, which is not available here "
        "(batch_export.sync.stores.not_installed cannot be imported): install "
        "batch-export[duckdb], or choose another destination."
    )


def test_the_cli_syncs_into_delta_tables_and_a_rerun_changes_nothing(
    small_env: Emulator, tmp_path: Path
) -> None:
    deltalake = pytest.importorskip("deltalake")
    args = ["sync", "--dest", str(tmp_path / "lake"), "--table-format", "delta"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith(f"Exported {len(SMALL)} jobs (")
    items = deltalake.DeltaTable(str(tmp_path / "lake" / "items"))
    version = items.version()
    assert items.to_pyarrow_table().num_rows == sum(SMALL.values())
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("Nothing to export: ")
    assert deltalake.DeltaTable(str(tmp_path / "lake" / "items")).version() == version
