"""batch-export: Geonode Scraper API batch jobs as analysis-ready tables.

The public names load on first use (PEP 562), so that ``import batch_export`` and the CLI
start without pyarrow, pandas or the HTTP stack; ``__all__`` lists them all.

Example:

    >>> import batch_export
    >>> batch_export.ITEM_SCHEMA.names[:2]
    ['job_id', 'input_index']
"""

from __future__ import annotations

import importlib
import sys
import types
import typing

from batch_export.errors import __all__ as _ERRORS  # light: it imports nothing of its own
from batch_export.version import __version__

if typing.TYPE_CHECKING:
    from batch_export.connection import Connection
    from batch_export.errors import *  # noqa: F403
    from batch_export.export import export
    from batch_export.fetch.client import ApiClient
    from batch_export.fetch.retry import RetryPolicy
    from batch_export.frame import iter_batches, read_export, read_job, read_jobs, summarize
    from batch_export.job import JobStatus
    from batch_export.schema import ITEM_SCHEMA, SCHEMA_VERSION
    from batch_export.scraping import scrape
    from batch_export.summary.counts import Summary
    from batch_export.summary.report import render_report, write_report

# Where each public name lives; a name is imported from its module on first use.
_HOMES: dict[str, str] = {
    "ApiClient": "fetch.client",
    "Connection": "connection",
    **dict.fromkeys(_ERRORS, "errors"),
    "export": "export",
    **dict.fromkeys(["iter_batches", "read_export", "read_job", "read_jobs", "summarize"], "frame"),
    "JobStatus": "job",
    "render_report": "summary.report",
    "write_report": "summary.report",
    "RetryPolicy": "fetch.retry",
    "ITEM_SCHEMA": "schema",
    "SCHEMA_VERSION": "schema",
    "scrape": "scraping",
    "Summary": "summary.counts",
}

__all__ = sorted([*_HOMES, "__version__"])


def __getattr__(name: str) -> typing.Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'batch_export' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"batch_export.{home}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


class _Package(types.ModuleType):
    """The package, whose ``export`` stays the function when ``batch_export.export`` loads.

    Python sets a package's attribute to each submodule it loads; the submodule
    ``batch_export.export`` would then hide the function of the same name.
    """

    def __setattr__(self, name: str, value: typing.Any) -> None:
        if name == "export" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
