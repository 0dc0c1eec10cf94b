"""Scrape: from a list of URLs to a proven table, each batch submitted exactly once.

The library side of ``batch-export scrape`` and of ``batch_export.scrape``. The modules, in
the order data flows: :mod:`~batch_export.scraping.inputs` (the URLs, a line each),
:mod:`~batch_export.scraping.plan` (options and batches), :mod:`~batch_export.scraping.state`
(the state file), :mod:`~batch_export.scraping.submit` (exactly-once submission),
:mod:`~batch_export.scraping.run` (the rounds: submit, export through the one road,
resubmit), :mod:`~batch_export.scraping.join` and :mod:`~batch_export.scraping.table` (each
job's items back to input lines) and :mod:`~batch_export.scraping.scrape` (the entries).

Example:

    >>> from batch_export.scraping import plan
    >>> print(plan(["https://a.example/", "oops"]).to_text().split(";")[0])
    2 lines: 1 URLs to send (0 repeated), 1 invalid
"""

from __future__ import annotations

from batch_export.scraping.plan import BatchOptions
from batch_export.scraping.scrape import DryRun, ScrapeReport, plan, scrape, scrape_to_file
from batch_export.scraping.state import default_state_path
from batch_export.scraping.submit import SubmitPolicy

__all__ = [
    "BatchOptions",
    "DryRun",
    "ScrapeReport",
    "SubmitPolicy",
    "default_state_path",
    "plan",
    "scrape",
    "scrape_to_file",
]
