"""Values whole, end to end, against a server that misbehaves on purpose (issue 17, points 2,
4 and 5).

- Integers of any size come out exact in every format, the Parquet header and the summary.
- What JSON cannot hold (``NaN``, ``Infinity``, text that is not UTF-8, a lone surrogate) is
  changed by its rule at once, with no retry, and counted in the summary's ``values_changed``.
- One depth bound, 64 levels, on every road: 65, 490 and 100,000 levels end in one sentence
  and exit 7, never a RecursionError or a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from batch_export.errors import ResponseShapeError
from batch_export.export import export
from batch_export.frame import read_job
from tests.conftest import CANARY_KEY
from tests.scripted import Answer, Script, item, job_body, scripted_server

BIG = 2**70
BIG_TEXT = "1180591620717411303424"
NEGATIVE_TEXT = "-36893488147419103232"  # -(2**65)


def serving(
    items: list[dict[str, Any]], edit: Callable[[bytes], bytes] = bytes, **fields: Any
) -> Script:
    """Pages of ``items`` as the API serves them, each answer's bytes passed through ``edit``
    (which can write what json.dumps cannot: NaN, bytes that are not UTF-8)."""

    def answer(_: int, path: str, query: dict[str, str]) -> Answer:
        page, size = int(query.get("page", 1)), int(query.get("page_size", 10))
        body = job_body("j1", items, **fields)
        body["results"] = items[(page - 1) * size : page * size]
        return Answer(body=edit(json.dumps(body).encode()))

    return answer


def _export(script: Script, path: Path, **options: Any) -> Any:
    with scripted_server(script) as server:
        summary = export(
            "j1", path, base_url=server.base_url, api_key=CANARY_KEY, max_retries=3, **options
        )
        return summary, len(server.seen)


# --- integers of any size ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_big_integers_come_out_exact_in_every_format(tmp_path: Path, fmt: str) -> None:
    items = [item(0, seed=BIG, data={"markdown": "m", "depth": [-(2**65)]}), item(1)]
    script = serving(items, batch_config={"formats": ["markdown"], "seed": BIG})
    out, summary_file = tmp_path / f"out.{fmt}", tmp_path / "summary.json"
    summary, _ = _export(script, out, summary_path=summary_file)
    extra = _extra_column(out, fmt)
    assert extra[0] == f'{{"seed":{BIG_TEXT},"data":{{"depth":[{NEGATIVE_TEXT}]}}}}'
    assert extra[1] is None
    assert f'"seed": {BIG_TEXT}' in summary_file.read_text()  # the job's batch_config
    assert "e+21" not in summary_file.read_text() and "e+21" not in out.read_bytes().decode(
        "latin-1"
    )
    assert (
        summary.job["batch_config"]["seed"] == BIG
        and type(summary.job["batch_config"]["seed"]) is int
    )
    assert summary.values_changed == 0
    if fmt == "parquet":
        header = pq.read_schema(out).metadata[b"batch_export.job"].decode()
        assert f'"seed":{BIG_TEXT}' in header


def _extra_column(path: Path, fmt: str) -> list[str | None]:
    if fmt == "parquet":
        return pq.read_table(path).column("extra").to_pylist()
    if fmt == "jsonl":
        return [json.loads(line)["extra"] for line in path.read_text().splitlines()]
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    return [row["extra"] or None for row in rows]


# --- what JSON cannot hold: changed by its rule, at once, counted ---------------------------


def test_nan_and_infinities_become_null_at_once_and_are_counted(tmp_path: Path) -> None:
    items = [item(0, score="NAN"), item(1, data={"markdown": "INF", "html": None, "links": None})]

    def edit(content: bytes) -> bytes:
        content = content.replace(b'"NAN"', b"NaN").replace(b'"INF"', b"Infinity")
        return content.replace(b'"NEGINF"', b"-Infinity")

    script = serving(items, edit, batch_config={"ratio": "NEGINF", "limits": ["NAN", 1]})
    out = tmp_path / "out.jsonl"
    summary, requests = _export(script, out, page_size=50)
    assert requests == 1  # the status with page 1: nothing asked again
    assert summary.requests["retries"] == 0
    assert summary.job["batch_config"] == {"ratio": None, "limits": [None, 1]}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert (rows[0]["extra"], rows[1]["markdown"]) == ('{"score":null}', None)
    assert summary.values_changed == 2 + 2  # two in the job's fields, two in the items
    assert "values    4 changed to be held" in summary.to_text()


def test_text_that_is_not_utf8_and_lone_surrogates_become_ufffd_and_are_counted(
    tmp_path: Path,
) -> None:
    items = [item(0, data={"markdown": "caf_BAD_ x", "html": None, "links": None}), item(1)]
    items.append(item(2, url="https://a.test/_LONE_", note="_LONE_ and _BAD_"))

    def edit(content: bytes) -> bytes:
        return content.replace(b"_BAD_", b"\xff\xfe").replace(b"_LONE_", b"\\ud800")

    out = tmp_path / "out.parquet"
    summary, requests = _export(serving(items, edit), out, page_size=50)
    table = pq.read_table(out)
    assert table.column("markdown")[0].as_py() == "caf\ufffd\ufffd x"
    assert table.column("url")[2].as_py() == "https://a.test/\ufffd"
    assert json.loads(table.column("extra")[2].as_py()) == {"note": "\ufffd and \ufffd\ufffd"}
    assert summary.values_changed == 3  # one markdown, one url, one note
    assert requests == 1


def test_a_job_without_changes_says_nothing_of_them(tmp_path: Path) -> None:
    summary, _ = _export(serving([item(0)]), tmp_path / "out.csv")
    assert summary.values_changed == 0 and "values" not in summary.to_text()
    assert summary.to_dict()["values_changed"] == 0


# --- one depth bound, on every road ----------------------------------------------------------


def _deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def _deep_bytes(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# An item sits 3 levels down (the answer, `results`, the item); `data` 4: a value placed there
# as `levels - 3` (or `levels - 4`) nested arrays makes the answer `levels` deep.
ROADS: dict[
    str, Callable[[int], tuple[list[dict[str, Any]], dict[str, Any], Callable[[bytes], bytes]]]
] = {
    # an undocumented item field: the value-by-value road
    "item extra": lambda n: (
        [item(0, x="DEEP")],
        {},
        lambda c: c.replace(b'"DEEP"', _deep_bytes(n - 3)),
    ),
    # a documented field: the page passes the scan, pyarrow's schema refuses it, then the
    # value-by-value road names it
    "data.links": lambda n: (
        [item(0, data={"markdown": "m", "html": None, "links": "DEEP"})],
        {},
        lambda c: c.replace(b'"DEEP"', _deep_bytes(n - 4)),
    ),
    # the job's own fields
    "batch_config": lambda n: (
        [item(0)],
        {"batch_config": "DEEP"},
        lambda c: c.replace(b'"DEEP"', b'{"a": ' + _deep_bytes(n - 2) + b"}"),
    ),
}


@pytest.mark.parametrize("levels", [65, 490, 100_000])
@pytest.mark.parametrize("road", list(ROADS))
def test_nesting_past_64_levels_is_one_sentence_on_every_road(road: str, levels: int) -> None:
    items, fields, edit = ROADS[road](levels)
    with scripted_server(serving(items, edit, **fields)) as server:
        with pytest.raises(ResponseShapeError) as caught:
            read_job("j1", base_url=server.base_url, api_key=CANARY_KEY, progress=False)
        assert len(server.seen) <= 2  # refused at once: not asked for again
    message = str(caught.value)
    assert message.startswith(
        "Expected an answer nested at most 64 levels deep (arrays and objects)"
    )
    assert caught.value.exit_code == 7 and "\n" not in message


@pytest.mark.parametrize("road", list(ROADS))
def test_nesting_of_64_levels_is_read(road: str) -> None:
    items, fields, edit = ROADS[road](64)
    if road == "data.links":  # a list of strings holds no deeper list: its type is named
        return
    with scripted_server(serving(items, edit, **fields)) as server:
        frame = read_job("j1", base_url=server.base_url, api_key=CANARY_KEY, progress=False)
    assert len(frame) == 1


@pytest.mark.parametrize("levels", [490, 100_000])
def test_the_cli_ends_a_deep_answer_in_one_line_and_exit_7(tmp_path: Path, levels: int) -> None:
    items, fields, edit = ROADS["item extra"](levels)
    with scripted_server(serving(items, edit, **fields)) as server:
        done = subprocess.run(
            [sys.executable, "-m", "batch_export", "export", "j1", "-o", str(tmp_path / "o.csv")],
            capture_output=True,
            env={"GEONODE_SCRAPER_API_KEY": CANARY_KEY, "SCRAPER_API_BASE_URL": server.base_url},
            timeout=60,
            check=False,
        )
    stderr = done.stderr.decode()
    assert done.returncode == 7, stderr[-3000:]
    assert stderr.startswith("Error: Expected an answer nested at most 64 levels deep")
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("levels", [65, 490, 100_000])
def test_a_deep_item_on_a_later_page_is_refused_too(levels: int) -> None:
    items = [item(0), item(1), item(2, x="DEEP")]
    edit = ROADS["item extra"](levels)[2]
    with scripted_server(serving(items, edit)) as server:
        with pytest.raises(ResponseShapeError) as caught:
            read_job(
                "j1", base_url=server.base_url, api_key=CANARY_KEY, page_size=1, progress=False
            )
    assert str(caught.value).startswith("Expected an answer nested at most 64 levels deep")
