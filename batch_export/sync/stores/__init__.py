"""Every store a sync can load into, behind one interface (:class:`~batch_export.sync.store.Store`).

- :mod:`~batch_export.sync.stores.dataset`: a hive-partitioned Parquet dataset in a folder or
  any fsspec URL (``s3://``), with :mod:`~batch_export.sync.stores.destination` (its files),
  :mod:`~batch_export.sync.stores.dataset_state` (what it holds) and
  :mod:`~batch_export.sync.stores.lock` (one writer at a time);
- :mod:`~batch_export.sync.stores.delta`: Delta Lake tables in a folder or ``s3://``;
- :mod:`~batch_export.sync.stores.duckdb`: a DuckDB database file (``duckdb:///path``);
- :mod:`~batch_export.sync.stores.postgres`: a PostgreSQL database (``postgresql://...``).

The table stores share :mod:`~batch_export.sync.stores.tables` (the jobs row, the spool, the
schema-evolution rule); the SQL ones, :mod:`~batch_export.sync.stores.sql` (scan, prepare and
load written once over a dialect's hooks). :mod:`~batch_export.sync.stores.values` is the rule
for values a destination cannot hold, and :mod:`~batch_export.sync.stores.native` what their
native libraries print and how their errors are told.

Delta, DuckDB and PostgreSQL need their optional package (``pip install
'batch-export[delta]'``, ``[duckdb]``, ``[postgres]``), so each store is imported only when
chosen, by :func:`~batch_export.sync.store.open_store`, which says what to install when the
import fails.
"""

from __future__ import annotations

__all__: list[str] = []
