"""Integers of any size land exact in every store (issue 17, point 2): the item's unknown
fields (`extra`) and the job's `batch_config` (`config`) keep 2**70 as 1180591620717411303424,
never 1.1805916207174113e+21, in the Parquet dataset, Delta, DuckDB and PostgreSQL."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from batch_export.cli import main
from batch_export.testing import Emulator, generate_job
from tests.conftest import CANARY_KEY
from tests.postgres import PostgresServer, running_postgres
from tests.scripted import Answer, Script, scripted_server
from tests.sync.warehouses import KINDS, WAREHOUSES, Warehouse

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

BIG_TEXT = "1180591620717411303424"  # 2**70
NEGATIVE_TEXT = "-36893488147419103232"  # -(2**65)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


def _warehouse(kind: str, folder: Path, postgres: PostgresServer | None) -> Warehouse:
    """An empty destination of ``kind``: under ``folder``, or a new role's schema."""
    if kind == "postgresql":
        assert postgres is not None
        role = f"values_{os.getpid()}_{folder.name[-12:].replace('-', '_').lower()}"
        postgres.psql(f"CREATE ROLE {role} LOGIN; CREATE SCHEMA {role} AUTHORIZATION {role}")
        return WAREHOUSES[kind](kind, postgres.url(user=role))
    if kind == "duckdb":
        return WAREHOUSES[kind](kind, f"duckdb://{folder}/warehouse.duckdb")
    return WAREHOUSES[kind](kind, str(folder / "warehouse"))


def _big_numbers(upstream: str) -> Script:
    """A gateway in front of the emulator: the job's answers gain big integers."""

    def answer(_: int, path: str, query: dict[str, str]) -> Answer:
        reply = requests.get(
            upstream + path, params=query, headers={"X-Api-Key": CANARY_KEY}, timeout=10
        )
        if reply.status_code != 200 or path != "/v1/batch/big":
            return Answer(status=reply.status_code, body=reply.content)
        body: dict[str, Any] = reply.json()
        body["batch_config"] = {**(body.get("batch_config") or {}), "seed": 2**70}
        for item in body["results"]:
            item["seed"] = 2**70
            item["metadata"] = {**(item.get("metadata") or {}), "cost": -(2**65)}
        return Answer(body=json.dumps(body).encode())  # json.dumps writes them exactly

    return answer


@pytest.mark.parametrize("kind", KINDS)
def test_big_integers_land_exact_in_every_store(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("postgres") if kind == "postgresql" else None
    warehouse = _warehouse(kind, tmp_path, server)
    job = generate_job(job_id="big", items=3, seed=2)
    with Emulator(jobs=[job], api_key=CANARY_KEY) as emulator:
        with scripted_server(_big_numbers(emulator.base_url)) as gateway:
            env = {"SCRAPER_API_BASE_URL": gateway.base_url, "GEONODE_SCRAPER_API_KEY": CANARY_KEY}
            result = CliRunner().invoke(main, ["sync", *warehouse.args()], env=env)
    assert result.exit_code == 0, result.output
    extras = [str(text) for text in warehouse.items_table().column("extra").to_pylist()]
    assert len(extras) == 3
    for extra in extras:
        assert BIG_TEXT in extra and NEGATIVE_TEXT in extra, extra
        assert json.loads(extra)["seed"] == 2**70
        assert type(json.loads(extra)["seed"]) is int
    [config] = warehouse.jobs_table().column("config").to_pylist()
    assert BIG_TEXT in str(config) and "e+21" not in str(config), config
