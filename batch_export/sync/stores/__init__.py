"""The table stores a sync can load into, besides the Parquet dataset of the folder store.

=====================================  ===============================================
module                                 destination
=====================================  ===============================================
:mod:`~batch_export.sync.stores.delta`     Delta Lake tables in a folder or ``s3://``
:mod:`~batch_export.sync.stores.duckdb`    a DuckDB database file (``duckdb:///path``)
:mod:`~batch_export.sync.stores.postgres`  a PostgreSQL database (``postgresql://...``)
=====================================  ===============================================

Each follows :class:`~batch_export.sync.store.Store` and needs its optional package
(``pip install 'batch-export[delta]'``, ``[duckdb]``, ``[postgres]``), so each is imported only
when chosen, by :func:`~batch_export.sync.store.open_store`, which says what to install when
the import fails.
:mod:`~batch_export.sync.stores.tables` holds what they share: the jobs row they record and
the schema-evolution rule.
"""

from __future__ import annotations

__all__: list[str] = []
