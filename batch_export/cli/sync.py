"""The `sync` command: every finished job of the account into a dataset, for schedulers."""

from __future__ import annotations

import json
from typing import Any

import click

from batch_export.atomic import check_writable, write_bytes
from batch_export.cli.options import connection_from, connection_options, file_option
from batch_export.errors import OutputError
from batch_export.sync import TABLE_FORMATS, EventLog, SyncReport, open_store
from batch_export.sync import sync as run_sync
from batch_export.sync.listing import MAX_LISTED_JOBS
from batch_export.sync.run import MAX_JOBS
from batch_export.sync.store import ITEMS_TABLE, JOBS_TABLE

__all__ = ["parse_storage_options", "sync"]


@click.command("sync")
@click.option(
    "--dest",
    required=True,
    metavar="PATH_OR_URL",
    help="Where the jobs go: a local directory, s3://bucket/prefix or any fsspec URL (a "
    "dataset, or Delta tables), duckdb:///path/to/file.duckdb, or postgresql://user@host/db "
    "(password from PGPASSWORD or ~/.pgpass).",
)
@click.option(
    "--table-format",
    type=click.Choice(TABLE_FORMATS),
    default=TABLE_FORMATS[0],
    show_default=True,
    help="For a directory or URL: a hive-partitioned Parquet dataset, or Delta Lake tables.",
)
@click.option(
    "--items-table",
    default=ITEMS_TABLE,
    show_default=True,
    metavar="NAME",
    help="Name of the items table (delta, duckdb:// and postgresql:// destinations).",
)
@click.option(
    "--jobs-table",
    default=JOBS_TABLE,
    show_default=True,
    metavar="NAME",
    help="Name of the jobs table (delta, duckdb:// and postgresql:// destinations).",
)
@click.option("--since", metavar="DATE", help="Only jobs created at or after this ISO date/time.")
@click.option("--until", metavar="DATE", help="Only jobs created before this ISO date/time.")
@click.option(
    "--limit", type=click.IntRange(min=0), help="Export at most this many jobs, oldest first."
)
@click.option("--dry-run", is_flag=True, help="List what would be exported; write nothing.")
@click.option(
    "--full",
    is_flag=True,
    help="List every job of the account (or of --since/--until), not only those created since "
    "DEST's watermark: catches a finished job that changed long after it was loaded.",
)
@click.option(
    "--max-listed",
    type=click.IntRange(min=1),
    default=MAX_LISTED_JOBS,
    show_default=True,
    metavar="N",
    help="The most jobs read from the listing in one run; past it the run stops (exit 7).",
)
@click.option(
    "--jobs",
    "workers",
    type=click.IntRange(1, MAX_JOBS),
    help="Jobs exported at once [default: --concurrency]; their requests share the "
    "--concurrency connections.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Events on stderr as text, or one JSON object a line; json also prints the run "
    "summary as JSON on stdout.",
)
@file_option("--summary", "summary_path", "Also write the run summary as JSON to this file.")
@click.option(
    "--endpoint-url",
    metavar="URL",
    help="s3:// only: endpoint of an S3-compatible store (MinIO, R2, Ceph, ...).",
)
@click.option(
    "--storage-option",
    "storage_option",
    multiple=True,
    metavar="KEY=VALUE",
    help="Option for the destination's file system (repeatable); VALUE is read as JSON "
    "when it parses, e.g. anon=false.",
)
@connection_options
def sync(
    dest: str,
    table_format: str,
    items_table: str,
    jobs_table: str,
    since: str | None,
    until: str | None,
    limit: int | None,
    dry_run: bool,
    full: bool,
    max_listed: int,
    workers: int | None,
    log_format: str,
    summary_path: str | None,
    endpoint_url: str | None,
    storage_option: tuple[str, ...],
    **options: Any,
) -> None:
    """Export every finished job of the account that DEST does not hold yet.

    Lists the account's jobs (from DEST's watermark: those created since the last run, less
    an hour; every job with --full or on the first run), keeps the completed, failed and
    cancelled ones that are new or changed since they were exported, and writes each as
    DEST/items/date=YYYY-MM-DD/<job_id>.parquet with its row in DEST/jobs/ (or, with
    --table-format delta or a database DEST, into the items and jobs tables, one job one
    transaction). Safe to kill and rerun. Exit 0 when every job was exported, 10 when some
    failed (the others are kept).

    \b
    Example:
        export GEONODE_SCRAPER_API_KEY=...
        batch-export sync --dest ./warehouse
        batch-export sync --dest s3://bucket/scraper --since 2026-05-01 --log-format json
        batch-export sync --dest ./lake --table-format delta
        batch-export sync --dest ./warehouse --full      # e.g. once a day
        batch-export sync --dest duckdb:///data/scraper.duckdb
    """
    connection = connection_from(options)
    storage_options = parse_storage_options(storage_option)
    if endpoint_url is not None:
        if not dest.startswith(("s3://", "s3a://")):
            raise click.UsageError("--endpoint-url applies to s3:// destinations only.")
        storage_options["endpoint_url"] = endpoint_url
    if summary_path is not None:
        _check_summary(summary_path)  # before the run, not after an hour of it
    store = open_store(
        dest,
        table_format=table_format,
        storage_options=storage_options,
        items_table=items_table,
        jobs_table=jobs_table,
    )
    # What native libraries print (a Rust panic, an Arrow C++ line) comes as an event of log.
    with store:
        log = EventLog(log_format=log_format)
        report = run_sync(
            store,
            connection=connection,
            since=since,
            until=until,
            limit=limit,
            dry_run=dry_run,
            full=full,
            max_listed=max_listed,
            jobs=workers,
            on_event=log,
        )
    if summary_path is not None:
        _write_summary(report, summary_path)
    click.echo(report.to_json() if log_format == "json" else report.to_text(), nl=False)
    report.raise_for_failures()


def parse_storage_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as a dict, each value read as JSON when it parses.

    >>> parse_storage_options(("anon=true", "region=eu-west-1"))
    {'anon': True, 'region': 'eu-west-1'}
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(
                f"expected KEY=VALUE, got {pair!r}.", param_hint="--storage-option"
            )
        try:
            options[key.strip()] = json.loads(value)
        except ValueError:
            options[key.strip()] = value
    return options


def _check_summary(path: str) -> None:
    try:
        check_writable(path)
    except OutputError as error:
        raise OutputError(f"Cannot write the run summary (--summary): {error.message}") from None


def _write_summary(report: SyncReport, path: str) -> None:
    """Write the summary whole or not at all: a scheduler may read it while we write."""
    try:
        write_bytes(path, report.to_json(indent=2).encode("utf-8"))
    except OutputError as error:
        raise OutputError(f"Cannot write the run summary (--summary): {error.message}") from None
