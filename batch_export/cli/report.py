"""The `report` command: the HTML report of an export file already written."""

from __future__ import annotations

import click

from batch_export.cli.options import format_option, output_option, quiet_option
from batch_export.frame import summarize
from batch_export.summary.report import write_report

__all__ = ["report_command"]


@click.command("report")
@click.argument("export_file", type=click.Path(dir_okay=False))
@output_option("HTML file to write.")
@format_option("The export's format [default: from its extension].")
@quiet_option
def report_command(export_file: str, output: str, fmt: str | None, quiet: bool) -> None:
    """Write the HTML report of EXPORT_FILE (Parquet, CSV or JSONL) to one HTML file.

    The report shows item counts, tokens charged, a bar chart of failure codes and a
    histogram of durations, drawn as inline SVG: the page has no script and no external
    asset, and opens offline. An export file holds the items only: for the job's own
    figures too (status, tokens reserved, invalid URLs), use `export --report`.

    \b
    Example:
        batch-export report out.parquet -o report.html
        batch-export report out.csv -o report.html --quiet
    """
    summary = summarize(export_file, format=fmt)
    write_report(summary, output)
    if not quiet:
        click.echo(summary.to_text(), nl=False)
        click.echo(f"Report written to {output}")
