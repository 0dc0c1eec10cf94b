"""Summary: what went by, counted on the way, and how it is shown.

:mod:`~batch_export.summary.counts` accumulates counts, tokens and failure codes from the
batches that pass; :mod:`~batch_export.summary.report` draws them as a self-contained HTML
page; :mod:`~batch_export.summary.progress` shows progress bars while a job is read.
"""
