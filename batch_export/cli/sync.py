"""The `sync` command: every finished job of the account into a dataset, for schedulers."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import click

from batch_export.cli.options import connection_from, connection_options
from batch_export.errors import OutputError
from batch_export.sync import EventLog, SyncReport
from batch_export.sync import sync as run_sync

__all__ = ["parse_storage_options", "sync"]


@click.command("sync")
@click.option(
    "--dest",
    required=True,
    metavar="PATH_OR_URL",
    help="Dataset root: a local directory, s3://bucket/prefix, or any fsspec URL.",
)
@click.option("--since", metavar="DATE", help="Only jobs created at or after this ISO date/time.")
@click.option("--until", metavar="DATE", help="Only jobs created before this ISO date/time.")
@click.option(
    "--limit", type=click.IntRange(min=0), help="Export at most this many jobs, oldest first."
)
@click.option("--dry-run", is_flag=True, help="List what would be exported; write nothing.")
@click.option(
    "--jobs",
    "workers",
    type=click.IntRange(1, 32),
    default=1,
    show_default=True,
    help="Jobs exported at once.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Events on stderr as text, or one JSON object a line; json also prints the run "
    "summary as JSON on stdout.",
)
@click.option(
    "--summary",
    "summary_path",
    type=click.Path(dir_okay=False),
    help="Also write the run summary as JSON to this file.",
)
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
    since: str | None,
    until: str | None,
    limit: int | None,
    dry_run: bool,
    workers: int,
    log_format: str,
    summary_path: str | None,
    endpoint_url: str | None,
    storage_option: tuple[str, ...],
    **options: Any,
) -> None:
    """Export every finished job of the account that DEST does not hold yet.

    Lists the account's jobs, keeps the completed, failed and cancelled ones that are new or
    changed since they were exported, and writes each as
    DEST/items/date=YYYY-MM-DD/<job_id>.parquet with its row in DEST/jobs/. Safe to kill and
    rerun. Exit 0 when every job was exported, 10 when some failed (the others are kept).

    \b
    Example:
        export GEONODE_SCRAPER_API_KEY=...
        batch-export sync --dest ./warehouse --jobs 4
        batch-export sync --dest s3://bucket/scraper --since 2026-05-01 --log-format json
    """
    connection = connection_from(options)
    storage_options = parse_storage_options(storage_option)
    if endpoint_url is not None:
        if not dest.startswith(("s3://", "s3a://")):
            raise click.UsageError("--endpoint-url applies to s3:// destinations only.")
        storage_options["endpoint_url"] = endpoint_url
    report = run_sync(
        dest,
        connection=connection,
        storage_options=storage_options,
        since=since,
        until=until,
        limit=limit,
        dry_run=dry_run,
        jobs=workers,
        on_event=EventLog(log_format=log_format),
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


def _write_summary(report: SyncReport, path: str) -> None:
    """Write the summary whole or not at all: a scheduler may read it while we write."""
    target = Path(path)
    staged: Path | None = None
    try:
        descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=".summary-")
        staged = Path(name)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(report.to_json(indent=2))
        staged.replace(target)
    except OSError as error:
        raise OutputError(
            f"Cannot write the run summary to {path}: {error.strerror or error}. "
            "Check --summary's folder and permissions."
        ) from None
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)
