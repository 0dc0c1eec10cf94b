"""Fixtures shared by the suite. The API key everywhere is a canary: no output may show it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_export.testing import Emulator

CANARY_KEY = "canary-7f3a9c1e-never-print-me"
SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"
SMALL_JOB = "9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019"


@pytest.fixture
def sample_api() -> Iterator[Emulator]:
    """The emulator serving sample_data/, keyed with the canary."""
    with Emulator(data_dir=SAMPLE_DATA, api_key=CANARY_KEY) as emulator:
        yield emulator


@pytest.fixture
def api_env(sample_api: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The environment a user sets: base URL and key of the sample emulator."""
    return user_env(sample_api, monkeypatch)


def user_env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """Set the environment a CLI user sets (base URL and the canary key) for ``emulator``."""
    monkeypatch.setenv("SCRAPER_API_BASE_URL", emulator.base_url)
    monkeypatch.setenv("GEONODE_SCRAPER_API_KEY", CANARY_KEY)
    return emulator


@pytest.fixture(autouse=True)
def _no_key_leak(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> Iterator[None]:
    """Fail any test after which the canary key shows in output, logs or a written file."""
    caplog.set_level(logging.DEBUG)
    yield
    out, err = capfd.readouterr()
    leaks = [name for name, text in (("stdout", out), ("stderr", err)) if CANARY_KEY in text]
    leaks += [f"log record {r.name}" for r in caplog.records if CANARY_KEY in r.getMessage()]
    leaks += [
        str(path)
        for path in tmp_path.rglob("*")
        if path.is_file() and CANARY_KEY.encode() in path.read_bytes()
    ]
    assert not leaks, f"the API key leaked into: {', '.join(leaks)}"
