"""pytest fixtures that serve the emulated API, registered by installing batch-export.

``emulator`` serves the sample jobs (the repository's ``sample_data/`` when it is there, the
same jobs generated otherwise) with the API key ``"test-key"``; ``emulator_factory`` starts
emulators of your own and stops them all at teardown.

Example (in a test module of your project):

    def test_my_pipeline(emulator_factory):
        emu = emulator_factory(jobs=[generate_job(job_id="j1", items=60)])
        assert my_pipeline(base_url=emu.base_url, api_key="test-key", job_id="j1") == 60
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

import pytest

from batch_export.testing.faults import Faults
from batch_export.testing.jobs import JobDoc, load_jobs
from batch_export.testing.sample import sample_jobs
from batch_export.testing.server import Emulator

__all__ = ["TEST_API_KEY", "EmulatorFactory", "emulator", "emulator_factory"]

TEST_API_KEY = "test-key"
_SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"


class EmulatorFactory(Protocol):
    """The type of the ``emulator_factory`` fixture, for annotating tests."""

    def __call__(
        self,
        *,
        jobs: Iterable[JobDoc] = (),
        data_dir: str | os.PathLike[str] | None = None,
        faults: Faults | None = None,
        api_key: str = TEST_API_KEY,
    ) -> Emulator: ...


@functools.cache
def _sample_docs() -> tuple[JobDoc, ...]:
    if (_SAMPLE_DATA / "small-job.json").is_file():
        return tuple(load_jobs(_SAMPLE_DATA))
    return tuple(sample_jobs().values())


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """An emulator serving the sample jobs, API key ``"test-key"``."""
    with Emulator(jobs=_sample_docs(), api_key=TEST_API_KEY) as served:
        yield served


@pytest.fixture
def emulator_factory() -> Iterator[EmulatorFactory]:
    """Start emulators with given jobs and faults; all are stopped at teardown."""
    started: list[Emulator] = []

    def start(
        *,
        jobs: Iterable[JobDoc] = (),
        data_dir: str | os.PathLike[str] | None = None,
        faults: Faults | None = None,
        api_key: str = TEST_API_KEY,
    ) -> Emulator:
        served = Emulator(jobs=jobs, data_dir=data_dir, faults=faults, api_key=api_key)
        started.append(served.start())
        return served

    yield start
    for served in started:
        served.stop()
