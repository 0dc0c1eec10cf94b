"""Connection options are declared once: the CLI's options and ConnectionOptions follow them."""

from __future__ import annotations

import dataclasses
import typing

import click
import pytest
from click.testing import CliRunner

from batch_export.cli.export import export_command
from batch_export.cli.options import connection_from
from batch_export.connection import Connection, ConnectionOptions, option_name
from batch_export.errors import InvalidInputError
from batch_export.fetch.retry import RetryPolicy

CLI_FIELDS = [spec for spec in dataclasses.fields(Connection) if "help" in spec.metadata]


def test_connection_options_name_exactly_the_fields() -> None:
    hints = typing.get_type_hints(ConnectionOptions, None, {"RetryPolicy": RetryPolicy})
    fields = typing.get_type_hints(Connection, None, {"RetryPolicy": RetryPolicy})
    assert hints == fields


@pytest.mark.parametrize("spec", CLI_FIELDS, ids=lambda spec: spec.name)
def test_each_cli_option_has_the_fields_default_and_help(spec: dataclasses.Field[object]) -> None:
    options = {param.name: param for param in export_command.params}
    option = options[spec.name]
    assert isinstance(option, click.Option)
    assert option.default == spec.default
    assert option.help == spec.metadata["help"]
    assert option_name(spec.name) in option.opts


def test_connection_from_takes_every_option_out() -> None:
    values = {spec.name: spec.default for spec in CLI_FIELDS}
    values["other"] = 1
    connection = connection_from(values)
    assert values == {"other": 1}
    assert connection == Connection()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"page_size": 0}, "--page-size must be an integer between 1 and 50, got 0."),
        ({"page_size": 51}, "--page-size must be an integer between 1 and 50, got 51."),
        ({"page_size": True}, "--page-size must be an integer between 1 and 50, got True."),
        ({"concurrency": 2.5}, "--concurrency must be an integer between 1 and 64, got 2.5."),
        ({"timeout": float("nan")}, "--timeout must be a finite number at least 0, got nan."),
        ({"timeout": -1.0}, "--timeout must be a finite number at least 0, got -1.0."),
        (
            {"request_timeout": 0},
            "--request-timeout must be a finite number greater than 0, got 0.",
        ),
        (
            {"request_timeout": float("inf")},
            "--request-timeout must be a finite number greater than 0, got inf.",
        ),
        ({"max_retries": -1}, "--max-retries must be an integer between 0 and 50, got -1."),
    ],
)
def test_out_of_range_values_are_refused_in_one_sentence(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Connection(**options)  # type: ignore[arg-type]
    assert caught.value.message == message


def test_the_cli_refuses_non_finite_numbers() -> None:
    result = CliRunner().invoke(export_command, ["j1", "-o", "out.parquet", "--timeout", "nan"])
    assert result.exit_code == 2
    assert "'nan' is not a finite number." in result.output
