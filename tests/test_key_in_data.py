"""The API key, echoed by the server into the data, written nowhere: every output scanned.

A hostile (or careless) server puts the canary key into every text field of a job: item URLs,
error codes and messages, markdown, html, links, unknown fields and field names (``extra``),
the job's ``batch_config``, an unknown job field, the invalid URLs. Every output is then read
back whole (Parquet decoded, not its compressed bytes) and searched for any 8 characters of
the key in a row: the three formats, the summary (stdout and JSON), the HTML report, the
failed URLs, stderr, a notebook frame, and each sync destination (Parquet dataset, Delta,
DuckDB, PostgreSQL), every table and file of it. Each run of the key must also be counted.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as adbc_postgres
import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from deltalake import DeltaTable

from batch_export.cli import main
from batch_export.fetch.client import ApiClient
from batch_export.fetch.secret import HIDDEN, Secret, key_patterns, redact
from batch_export.frame import read_job
from batch_export.sync.listing import iter_account_jobs
from batch_export.testing import Emulator, generate_job
from tests.conftest import CANARY_KEY
from tests.postgres import PostgresServer, running_postgres
from tests.scripted import Answer, item, job_body, paged, scripted_server

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

KEY = CANARY_KEY
PIECES = sorted({KEY[i : i + 8] for i in range(len(KEY) - 7)})
HOSTILE_JOB = "5b0c7a52-2f7e-4b8e-9d1c-0c1e0f6a7b11"
PLAIN_JOB = "5b0c7a52-2f7e-4b8e-9d1c-0c1e0f6a7b22"
# The runs of the key that hostile_job() puts in its answers, each to be counted once.
RUNS = 15


def hostile_job() -> dict[str, Any]:
    """A finished job whose every text field holds the key, whole, cut or twice in a row."""
    doc = generate_job(
        job_id=HOSTILE_JOB,
        items=60,
        formats=("markdown", "html"),
        links_per_item=3,
        failure_rate=0.2,
        invalid_urls=1,
        seed=17,
    )
    first, odd = [row for row in doc["results"] if row["status"] == "completed"][:2]
    first["url"] = f"https://e.test/{KEY[:12]}"  # 1
    first["data"].update(
        markdown=f"# Page\nThe key is {KEY} here.",  # 1
        html=f"<p>{KEY}{KEY}</p>",  # 2
        links=[f"https://e.test/?k={KEY}", "https://e.test/ok"],  # 1
    )
    failed = next(row for row in doc["results"] if row["status"] == "failed")
    failed.update(
        url=f"https://e.test/fail?key={KEY}",  # 1, also in the failed URLs
        error_code=KEY,  # 1
        error_message=f"auth {KEY[5:20]} refused",  # 1
    )
    odd["note"] = KEY  # 1: an unknown field
    odd["data"]["summary"] = {"secret": KEY}  # 1: unknown, nested
    odd["metadata"]["trace"] = [KEY]  # 1
    odd[KEY[:10]] = "a field named by the key"  # 1: a field name
    doc["batch_config"]["headers"] = {"X-Api-Key": KEY}  # 1
    doc["echo"] = {"api_key": KEY}  # 1: an unknown field of the job
    doc["invalid_urls"] = [f"htp://bad/{KEY}"]  # 1
    return doc


def leaks(text: str | bytes) -> list[str]:
    """The pieces of 8 characters of the key that ``text`` shows."""
    shown = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
    return [piece for piece in PIECES if piece in shown]


def as_text(rows: Any) -> str:
    return json.dumps(rows, default=str, ensure_ascii=False)


def file_texts(root: Path) -> dict[str, str]:
    """Every file under ``root`` as text: Parquet decoded (rows and key-value metadata)."""
    texts: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            metadata = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
            texts[str(path)] = as_text([table.to_pylist(), metadata])
        texts[f"{path} (bytes)"] = path.read_bytes().decode("utf-8", errors="replace")
    return texts


def no_leaks(texts: dict[str, str]) -> None:
    found = {name: leaks(text) for name, text in texts.items() if leaks(text)}
    assert not found, f"the key shows in: {sorted(found)}"


def cli(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def api() -> Iterator[Emulator]:
    plain = generate_job(job_id=PLAIN_JOB, items=30, seed=3)
    with Emulator(jobs=[hostile_job(), plain], api_key=KEY) as emulator:
        yield emulator


def env_of(emulator: Emulator) -> dict[str, str]:
    return {"SCRAPER_API_BASE_URL": emulator.base_url, "GEONODE_SCRAPER_API_KEY": KEY}


# --- the rule itself -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hidden", "count"),
    [
        (f"x {KEY} y", f"x {HIDDEN} y", 1),
        (f"{KEY}{KEY}", f"{HIDDEN}{HIDDEN}", 2),
        (f"a{KEY[3:11]}b", f"a{HIDDEN}b", 1),  # 8 characters: a run
        (f"a{KEY[3:10]}b", f"a{KEY[3:10]}b", 0),  # 7: not one
        (f"{KEY[:9]}-{KEY[9:20]}", f"{HIDDEN}-{HIDDEN}", 2),
        ("no key here", "no key here", 0),
    ],
)
def test_every_run_of_eight_or_more_is_hidden_and_counted(
    text: str, hidden: str, count: int
) -> None:
    assert Secret(KEY).hide(text) == (hidden, count)
    assert redact(text, KEY) == hidden


def test_what_is_left_holds_no_eight_characters_of_the_key() -> None:
    # Every cut of the key between two of its own runs: nothing of 8 or more survives.
    for start in range(len(KEY)):
        for end in range(start + 1, len(KEY) + 1):
            text = f"<{KEY[start:end]}>{KEY[end:]}{KEY[:start]}"
            assert not leaks(Secret(KEY).hide(text)[0]), text


def test_a_key_with_regex_characters_is_taken_literally() -> None:
    key = "a.b*c+d?e(f)g[h]i{j}k|l^m$n\\o p"
    patterns = key_patterns(key)
    assert patterns is not None and key not in repr(patterns)
    assert Secret(key).hide(f"x{key}y") == (f"x{HIDDEN}y", 1)
    assert Secret(key).hide("a-b-c-d-e-f-g-h-i") == ("a-b-c-d-e-f-g-h-i", 0)


def test_two_names_the_key_makes_alike_keep_both_values() -> None:
    value = {f"a{KEY}": 1, f"a{KEY[:20]}": 2, "b": [{KEY: 3}]}
    assert Secret(KEY).hide(value) == (
        {f"a{HIDDEN}": 1, f"a{HIDDEN} (2)": 2, "b": [{HIDDEN: 3}]},
        3,
    )


def test_a_short_key_hides_nothing_in_data_but_errors_hide_it_whole() -> None:
    assert key_patterns("k-123") is None
    assert Secret("k-123").hide("a k-123 b") == ("a k-123 b", 0)
    assert redact("a k-123 b", "k-123") == f"a {HIDDEN} b"


# --- export: every format and side file ----------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_export_writes_the_key_nowhere_and_counts_it(
    api: Emulator, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"items.{fmt}"
    result = cli(
        "export", HOSTILE_JOB, "-o", str(out),
        "--summary", str(tmp_path / "summary.json"),
        "--failed-urls", str(tmp_path / "failed.txt"),
        "--report", str(tmp_path / "report.html"),
        env=env_of(api),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    no_leaks({"stdout": result.stdout, "stderr": result.stderr, **file_texts(tmp_path)})
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["api_key_hidden"] == RUNS
    assert f"api key   {RUNS} runs in the API's answers, written <hidden>" in result.stdout
    assert (
        f"{RUNS} runs of the API key written &lt;hidden&gt;"
        in (tmp_path / "report.html").read_text()
    )
    assert f"https://e.test/fail?key={HIDDEN}\n" in (tmp_path / "failed.txt").read_text()
    assert summary["failure_codes"].get(HIDDEN) == 1


def test_a_clean_job_counts_nothing(api: Emulator, tmp_path: Path) -> None:
    result = cli("export", PLAIN_JOB, "-o", str(tmp_path / "o.csv"), env=env_of(api))
    assert result.exit_code == 0, result.output
    assert "api key" not in result.stdout
    frame = read_job(PLAIN_JOB, base_url=api.base_url, api_key=KEY, progress=False)
    assert frame.attrs["summary"]["api_key_hidden"] == 0


def test_a_notebook_frame_holds_no_key(api: Emulator) -> None:
    frame = read_job(HOSTILE_JOB, base_url=api.base_url, api_key=KEY, progress=False)
    no_leaks({"frame": frame.to_json(), "attrs": as_text(frame.attrs)})
    assert frame.attrs["summary"]["api_key_hidden"] == RUNS


def test_the_job_fields_and_item_statuses_hold_no_key(tmp_path: Path) -> None:
    # The job's own texts (timestamps), an item's status and an unknown status: through a
    # scripted server, as the emulator keeps statuses to the documented ones.
    results = [item(0, status=f"done-{KEY}"), item(1)]
    script = paged(PLAIN_JOB, results, created_at=KEY, completed_at=f"x{KEY[2:12]}")
    with scripted_server(script) as server:
        result = cli(
            "export", PLAIN_JOB, "-o", str(tmp_path / "o.jsonl"), "--report",
            str(tmp_path / "r.html"), "--summary", str(tmp_path / "s.json"),
            env={"SCRAPER_API_BASE_URL": server.base_url, "GEONODE_SCRAPER_API_KEY": KEY},
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    no_leaks({"stdout": result.stdout, **file_texts(tmp_path)})
    assert json.loads((tmp_path / "s.json").read_text())["api_key_hidden"] == 3


def test_an_error_that_quotes_the_server_hides_the_key(tmp_path: Path) -> None:
    # A value of the wrong type is named in the error, with the item's URL: both the server's.
    bad = item(0, url=f"https://e.test/{KEY}", input_index=f"zero {KEY}")
    with scripted_server([Answer(body=job_body(PLAIN_JOB, [bad]))]) as server:
        result = cli(
            "export", PLAIN_JOB, "-o", str(tmp_path / "o.csv"), "--base-url", server.base_url,
            env={"GEONODE_SCRAPER_API_KEY": KEY},
        )  # fmt: skip
    assert result.exit_code == 7, result.output
    assert HIDDEN in result.stderr and not leaks(result.stderr + result.stdout)


# --- sync: every destination ---------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


_roles = itertools.count()


def destination(kind: str, folder: Path, request: pytest.FixtureRequest) -> list[str]:
    """The `sync` options of a new, empty destination of ``kind``."""
    if kind == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        role = f"key_{os.getpid()}_{next(_roles)}"
        server.psql(f"CREATE ROLE {role} LOGIN; CREATE SCHEMA {role} AUTHORIZATION {role}")
        return ["--dest", server.url(user=role)]
    if kind == "duckdb":
        return ["--dest", f"duckdb://{folder}/warehouse.duckdb"]
    table_format = "delta" if kind == "delta" else "parquet"
    return ["--dest", str(folder / "warehouse"), "--table-format", table_format]


def stored(kind: str, dest: str, folder: Path) -> dict[str, str]:
    """Everything the destination holds, every table read whole, as text."""
    if kind == "postgresql":
        with adbc_postgres.connect(dest) as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
            tables = [row[0] for row in cursor.fetchall()]
            texts = {}
            for table in tables:
                cursor.execute(f'SELECT row_to_json(t)::text FROM "{table}" t')
                texts[f"postgresql {table}"] = as_text(cursor.fetchall())
        assert {"items", "jobs"} <= set(tables)
        return texts
    if kind == "duckdb":
        with duckdb.connect(dest.removeprefix("duckdb://"), read_only=True) as con:
            tables = [row[0] for row in con.sql("SHOW TABLES").fetchall()]
            texts = {
                f"duckdb {t}": as_text(con.sql(f'SELECT * FROM "{t}"').fetchall()) for t in tables
            }
        assert {"items", "jobs"} <= set(tables)
        return {**texts, **file_texts(folder)}
    if kind == "delta":
        read = {name: DeltaTable(f"{dest}/{name}").to_pyarrow_table() for name in ("items", "jobs")}
        return {
            **{f"delta {name}": as_text(table.to_pylist()) for name, table in read.items()},
            **file_texts(folder),
        }
    return file_texts(folder)


@pytest.mark.parametrize("kind", ["parquet", "delta", "duckdb", "postgresql"])
def test_sync_stores_the_key_nowhere_and_counts_it(
    api: Emulator, tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    args = destination(kind, tmp_path, request)
    result = cli("sync", *args, "--log-format", "json", env=env_of(api))
    assert result.exit_code == 0, result.output
    texts = stored(kind, args[1], tmp_path)
    no_leaks({"stdout": result.stdout, "stderr": result.stderr, **texts})
    summary = json.loads(result.stdout)
    exported = {job["job_id"]: job for job in summary["exported"]}
    assert exported[HOSTILE_JOB]["api_key_hidden"] == RUNS
    assert "api_key_hidden" not in exported[PLAIN_JOB]
    assert summary["api_key_hidden"] == RUNS
    items = "".join(text for name, text in texts.items() if "items" in name)
    assert HIDDEN in items and HIDDEN in "".join(texts.values())


def test_the_listing_is_kept_from_showing_the_key() -> None:
    listing = {
        "jobs": [
            {"job_id": PLAIN_JOB, "status": "completed", "completed_at": f"at {KEY}"},
            {"job_id": KEY, "status": "completed"},
        ],
        "page": 1,
        "page_size": 50,
        "page_count": 1,
    }
    with scripted_server([Answer(body=listing)]) as server:
        jobs = list(iter_account_jobs(ApiClient(base_url=server.base_url, api_key=KEY)))
    assert [job.job_id for job in jobs] == [PLAIN_JOB, "(page 1 entry 1)"]
    assert jobs[0].fingerprint["completed_at"] == f"at {HIDDEN}" and jobs[0].hidden == 1
    assert jobs[1].problem is not None and HIDDEN in jobs[1].problem
    assert not leaks(repr(jobs))
