"""readback.py: a file read back is untrusted input too (issue 17, point 4).

The job's header of a Parquet export (``batch_export.job``) and a saved frame's attrs are
checked before anything walks them: nested past 64 levels, not JSON, or a figure of the wrong
type is one sentence and the reading command's exit code (2: a file given is not usable).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from batch_export.cli import main
from batch_export.errors import InvalidInputError
from batch_export.frame import read_export, summarize
from batch_export.schema import ITEM_SCHEMA, JOB_METADATA_KEY

HEADER = {"job_id": "j1", "status": "completed", "total_urls": 1, "completed_urls": 1}
ROW = {"job_id": "j1", "input_index": 0, "status": "completed", "tokens_charged": 1}


def _export(folder: Path, metadata: dict[bytes, bytes]) -> Path:
    table = pa.Table.from_pylist([ROW], schema=ITEM_SCHEMA)
    path = folder / "out.parquet"
    pq.write_table(table.replace_schema_metadata(metadata), path)
    return path


def _nested(levels: int) -> bytes:
    """A header whose `batch_config` makes it ``levels`` deep (the header the first level)."""
    arrays = b"[" * (levels - 2) + b"]" * (levels - 2)  # the header and batch_config: 2
    return json.dumps(HEADER).encode()[:-1] + b', "batch_config": {"a": ' + arrays + b"}}"


def _report(path: Path, out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["report", str(path), "-o", str(out), "-q"])
    return result.exit_code, result.output


@pytest.mark.parametrize("levels", [65, 490, 100_000])
def test_a_header_nested_past_the_bound_is_one_sentence(tmp_path: Path, levels: int) -> None:
    path = _export(tmp_path, {JOB_METADATA_KEY.encode(): _nested(levels)})
    code, output = _report(path, tmp_path / "r.html")
    assert (code, output) == (
        2,
        f"Error: {path} is not an export that batch-export can read: its `batch_export.job` "
        "metadata nests deeper than 64 levels.\n",
    )
    with pytest.raises(InvalidInputError):
        read_export(path)
    assert not (tmp_path / "r.html").exists()


def test_a_header_at_the_bound_is_read(tmp_path: Path) -> None:
    path = _export(tmp_path, {JOB_METADATA_KEY.encode(): _nested(64)})
    assert summarize(path).job_status == "completed"


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (
            HEADER | {"total_urls": "1"},
            "does not fit: expected `total_urls` to be an integer from 0 to 1000000 for job j1, "
            "got '1'",
        ),
        (
            HEADER | {"tokens_charged_total": 1.5},
            "does not fit: expected `tokens_charged_total` to be an integer",
        ),
        (HEADER | {"status": ["x"]}, "does not fit: expected `status` to be a string"),
        (HEADER | {"invalid_urls": "x"}, "does not fit: expected `invalid_urls` to be a list"),
        ("j1", "does not fit: expected a job's figures with a `job_id` string, got 'j1'"),
    ],
)
def test_a_header_of_the_wrong_types_is_one_sentence(
    tmp_path: Path, header: object, problem: str
) -> None:
    path = _export(tmp_path, {JOB_METADATA_KEY.encode(): json.dumps(header).encode()})
    code, output = _report(path, tmp_path / "r.html")
    assert code == 2
    assert output.startswith(
        f"Error: {path} is not an export that batch-export can read: its `batch_export.job` "
        f"metadata {problem}"
    )
    assert output.count("\n") == 1


def test_a_header_that_is_not_json_is_one_sentence(tmp_path: Path) -> None:
    path = _export(tmp_path, {JOB_METADATA_KEY.encode(): b'{"job_id": "j1", '})
    assert _report(path, tmp_path / "r.html") == (
        2,
        f"Error: {path} is not an export that batch-export can read: its `batch_export.job` "
        "metadata is not JSON.\n",
    )


def test_a_header_with_a_big_integer_keeps_it_exact(tmp_path: Path) -> None:
    header = json.dumps(HEADER | {"batch_config": {"seed": 2**70}}).encode()
    path = _export(tmp_path, {JOB_METADATA_KEY.encode(): header})
    summary = summarize(path)
    assert '"seed": 1180591620717411303424' in summary.to_json()


@pytest.mark.parametrize(
    ("attrs", "problem"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper than 64 levels"),
        (b"[1]", "is not a JSON object"),
        (b"{", "is not JSON"),
        (
            json.dumps({"job": HEADER | {"failed_urls": "2"}}).encode(),
            "does not fit: expected `failed_urls` to be an integer",
        ),
        (
            json.dumps({"jobs": {"j1": HEADER | {"created_at": 5}}}).encode(),
            "does not fit: expected `created_at` to be a string",
        ),
    ],
)
def test_a_saved_frames_attrs_are_checked_too(tmp_path: Path, attrs: bytes, problem: str) -> None:
    path = _export(tmp_path, {b"PANDAS_ATTRS": attrs})
    with pytest.raises(InvalidInputError) as caught:
        read_export(path)
    assert str(caught.value).startswith(
        f"{path} is not an export that batch-export can read: its `PANDAS_ATTRS` metadata {problem}"
    )


def test_the_report_command_on_a_100k_deep_header_ends_in_one_line(tmp_path: Path) -> None:
    # A real process: no RecursionError, no traceback, whatever the interpreter's stack.
    path = _export(tmp_path, {JOB_METADATA_KEY.encode(): _nested(100_000)})
    done = subprocess.run(
        [sys.executable, "-m", "batch_export", "report", str(path), "-o", str(tmp_path / "r.html")],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.decode().count("\n") == 1, done.stderr.decode()[-2000:]
    assert "nests deeper than 64 levels" in done.stderr.decode()
