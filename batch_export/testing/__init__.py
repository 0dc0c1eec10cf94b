"""A faithful, loopback-only emulator of the Geonode Scraper API, for testing pipelines.

Like moto for AWS: start an :class:`Emulator` with job documents (from JSON files, or made by
:func:`generate_job`), point the client at its ``base_url``, and it answers over real HTTP,
misbehaving on purpose when given :class:`Faults`. Installed with the package, the pytest
fixtures ``emulator`` and ``emulator_factory`` come with it.

Example:

    >>> import requests
    >>> from batch_export.testing import Emulator, generate_job
    >>> with Emulator(jobs=[generate_job(job_id="j1", items=3)], api_key="k") as emu:
    ...     answer = requests.get(f"{emu.base_url}/v1/batch/j1", headers={"X-Api-Key": "k"},
    ...                           timeout=5)
    >>> answer.json()["total_urls"], len(emu.requests)
    (3, 1)
"""

from __future__ import annotations

from batch_export.testing.faults import Faults
from batch_export.testing.jobs import generate_account, generate_job, load_jobs
from batch_export.testing.server import Emulator, RequestRecord

__all__ = [
    "Emulator",
    "Faults",
    "RequestRecord",
    "generate_account",
    "generate_job",
    "load_jobs",
]
