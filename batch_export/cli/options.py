"""Options shared by several commands, declared once and stacked as decorators.

The connection options are made from :class:`~batch_export.connection.Connection`'s fields:
its defaults, bounds and help text are the options' own, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, TypeVar

import click

from batch_export.connection import Connection, option_name

__all__ = [
    "FiniteFloat",
    "connection_from",
    "connection_options",
    "escape_formulas_option",
    "file_option",
    "format_option",
    "output_option",
    "output_options",
    "quiet_option",
    "side_file_options",
]

F = TypeVar("F", bound=Callable[..., Any])


class FiniteFloat(click.FloatRange):
    """A float in a range that is a real number: ``nan`` and ``inf`` are refused."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def _click_option(spec: dataclasses.Field[Any]) -> Callable[[F], F]:
    """The click option of one :class:`Connection` field."""
    meta, default = spec.metadata, spec.default
    options: dict[str, Any] = {"help": meta["help"], "show_default": default is not None}
    if meta["envvar"]:
        options.update(envvar=meta["envvar"], show_envvar=True, show_default=False)
    if isinstance(default, bool):
        # "--wait/--no-wait" is a boolean switch of its own; a plain name is a flag.
        flag = meta["flag"] or option_name(spec.name)
        if "/" not in flag:
            options["is_flag"] = True
        return click.option(flag, spec.name, default=default, **options)
    if isinstance(default, int):
        options["type"] = click.IntRange(meta["low"], meta["high"])
    elif isinstance(default, float):
        options["type"] = FiniteFloat(meta["low"], meta["high"], min_open=meta["low_open"])
    return click.option(option_name(spec.name), spec.name, default=default, **options)


def _cli_fields() -> list[dataclasses.Field[Any]]:
    return [spec for spec in dataclasses.fields(Connection) if "help" in spec.metadata]


def connection_options(function: F) -> F:
    """Stack the options that say how to reach the API and read a job."""
    for spec in reversed(_cli_fields()):
        function = _click_option(spec)(function)
    return function


def connection_from(options: dict[str, Any]) -> Connection:
    """Pop the connection options out of a command's keyword arguments."""
    return Connection(**{spec.name: options.pop(spec.name) for spec in _cli_fields()})


def output_option(help: str) -> Callable[[F], F]:
    """``-o/--output FILE``, required."""
    return click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help=help)


def format_option(help: str) -> Callable[[F], F]:
    """``--format`` with the writer registry's formats, as the parameter ``fmt``."""
    from batch_export.writers import FORMATS  # the registry alone: no writer is loaded

    return click.option("--format", "fmt", type=click.Choice(FORMATS), help=help)


def output_options(help: str) -> Callable[[F], F]:
    """``-o/--output FILE`` and its ``--format``, guessed from the file's extension by default:
    the table that a command writes."""

    def stack(function: F) -> F:
        function = format_option("Output format [default: from the output's extension].")(function)
        return output_option(help)(function)

    return stack


def file_option(flag: str, name: str, help: str) -> Callable[[F], F]:
    """An optional file to write, such as ``--summary PATH``, as the parameter ``name``."""
    return click.option(flag, name, type=click.Path(dir_okay=False), help=help)


# The files an export may write beside its output: the flag, the keyword of
# batch_export.export.export that it fills (the notebook's name for it), and the help.
SIDE_FILES: tuple[tuple[str, str, str], ...] = (
    ("--summary", "summary_path", "Also write the summary as JSON to this file."),
    (
        "--failed-urls",
        "failed_urls_path",
        "Write the URLs of failed items to this file, one a line, to resubmit.",
    ),
    (
        "--failed-urls-retryable",
        "failed_urls_retryable_path",
        "Write only the failed URLs worth resubmitting to this file, one a line: those whose "
        "failure code says a new attempt may succeed (RATE_LIMITED, TIMEOUT, ...; the summary "
        "lists each code's verdict). Unknown codes are left out.",
    ),
    (
        "--report",
        "report_path",
        "Also write an HTML report (counts, tokens, failure codes, durations) to this "
        "file: one self-contained page that opens offline.",
    ),
)


def side_file_options(function: F) -> F:
    """Stack the options of :data:`SIDE_FILES`, in their order."""
    for flag, name, help in reversed(SIDE_FILES):
        function = file_option(flag, name, help)(function)
    return function


quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress bars and no printed summary."
)


def escape_formulas_option(function: F) -> F:
    """``--escape-formulas``, for the formats of the writer registry that take it."""
    from batch_export.writers import REGISTRY  # the registry alone: no writer is loaded

    escaping = "/".join(e.name.upper() for e in REGISTRY if "escape_formulas" in e.options)
    return click.option(
        "--escape-formulas",
        is_flag=True,
        help=f"{escaping} only: prefix cells starting with = + - @ tab or CR with ' so that "
        "spreadsheets do not run them as formulas. Use it for files people open in "
        "Excel, LibreOffice or Sheets; leave it off for machine loads (it alters values).",
    )(function)
