"""Fetch: the HTTP client and everything under it, the waiting, the pages and their proof.

The first stage of the road. Requests go out through :mod:`~batch_export.fetch.client` (its
deadlines, size bounds and key rules over :mod:`~batch_export.fetch.transport`), with
:mod:`~batch_export.fetch.retry`, :mod:`~batch_export.fetch.throttle`,
:mod:`~batch_export.fetch.refusal` (the API's error answers) and
:mod:`~batch_export.fetch.secret` (the key); :mod:`~batch_export.fetch.pages` waits for a job
and reads its pages with a bounded pool, and :mod:`~batch_export.fetch.ledger` proves them
whole. Pages are decoded by a function handed in (the page scan of
:mod:`batch_export.flatten.scan`), so nothing here knows Arrow, pandas or any later stage:
the import contracts in ``pyproject.toml`` hold the whole package to that.
"""
