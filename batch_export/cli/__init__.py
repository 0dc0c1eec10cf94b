"""The command line: thin commands over the library, one error path.

Every expected failure is a :class:`~batch_export.errors.BatchExportError`; :class:`Main`
turns it into one sentence on stderr and its documented exit code, never a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from batch_export import __version__
from batch_export.cli.emulator import emulator
from batch_export.cli.export import export_command
from batch_export.cli.report import report_command
from batch_export.cli.sync import sync
from batch_export.client import API_KEY_ENV, redact
from batch_export.errors import BatchExportError

__all__ = ["main"]

EXIT_INTERRUPTED = 130


class Main(click.Group):
    """A group that turns library errors into messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BatchExportError as error:
            _fail(redact(error.message, _api_key()), error.exit_code)
        except KeyboardInterrupt:
            _fail(
                "Interrupted: no partial file was left (sync keeps the jobs it finished).",
                EXIT_INTERRUPTED,
            )
        except BrokenPipeError:
            # Output piped into `head` and the like: end quietly, as csvkit does.
            sys.stderr.close()
            os._exit(0)


def _api_key() -> str | None:
    """The key in use, so that no message can show it even by accident."""
    return _key_from_argv() or os.environ.get(API_KEY_ENV)


def _key_from_argv() -> str | None:
    argv = sys.argv
    for position, arg in enumerate(argv):
        if arg == "--api-key" and position + 1 < len(argv):
            return argv[position + 1]
        if arg.startswith("--api-key="):
            return arg.split("=", 1)[1]
    return None


def _fail(message: str, exit_code: int) -> None:
    error = click.ClickException(message)
    # click declares exit_code on the class; each error here answers its own code.
    vars(error)["exit_code"] = exit_code
    raise error


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batch-export")
def main() -> None:
    """Export Geonode Scraper API batch jobs to Parquet, CSV or JSONL, proven whole.

    \b
    Exit codes:
      0  success              5  job not finished (--no-wait, --timeout)
      2  usage error          6  results not provably whole
      3  API key rejected     7  API or network failure
      4  job not found        8  output not writable
      9  items failed (with --fail-on-item-errors)
     10  sync: some jobs failed, the others were exported

    \b
    Example:
        export GEONODE_SCRAPER_API_KEY=...
        batch-export export 9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019 -o out.parquet
    """


main.add_command(export_command)
main.add_command(report_command)
main.add_command(emulator)
main.add_command(sync)
