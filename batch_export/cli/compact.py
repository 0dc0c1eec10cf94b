"""The `compact` command: Delta's optimize (and vacuum) over the tables a sync made."""

from __future__ import annotations

import click

from batch_export.cli.sync import parse_storage_options
from batch_export.text import printable

__all__ = ["compact"]


@click.command("compact")
@click.option(
    "--dest",
    required=True,
    metavar="PATH_OR_URL",
    help="The folder or s3:// URL that `sync --table-format delta` loads.",
)
@click.option(
    "--vacuum-hours",
    type=click.IntRange(min=0),
    metavar="N",
    help="Then delete files that no table version of the last N hours uses "
    "(0: all the current version does not need; ends time travel past N hours).",
)
@click.option(
    "--storage-option",
    "storage_option",
    multiple=True,
    metavar="KEY=VALUE",
    help="Option for delta-rs's object store (repeatable), e.g. "
    "AWS_ENDPOINT_URL=http://127.0.0.1:9000.",
)
def compact(dest: str, vacuum_hours: int | None, storage_option: tuple[str, ...]) -> None:
    """Rewrite the small files of DEST's Delta tables (items, jobs) into large ones.

    A sync commits each job as its own small file; compaction makes a new table version
    with the same rows in a few large files, so readers open fewer. Safe while syncs run:
    a commit that conflicts is retried. Old files stay for time travel until vacuumed.

    \b
    Example:
        batch-export compact --dest s3://bucket/warehouse --vacuum-hours 168
    """
    try:
        from batch_export.sync.stores.delta import compact as compact_tables
    except ImportError:
        raise click.ClickException(
            "compact needs the deltalake package: pip install 'batch-export[delta]'."
        ) from None

    from batch_export.sync.stores.native import captured_stderr

    # What deltalake prints itself (a panic in its worker threads) becomes one line of ours.
    with captured_stderr() as captured:
        captured.hand_to(
            lambda lines, count: click.echo(
                f"batch-export compact: deltalake printed {count} line(s) on stderr: "
                f"{printable(lines[0])}",
                file=captured.stderr,
            )
        )
        report = compact_tables(
            dest, vacuum_hours=vacuum_hours, storage_options=parse_storage_options(storage_option)
        )
    for table, done in report.items():
        line = f"{table}: {done['files_removed']} files rewritten into {done['files_added']}"
        if "files_vacuumed" in done:
            line += f", {done['files_vacuumed']} files vacuumed"
        click.echo(line + ".")
