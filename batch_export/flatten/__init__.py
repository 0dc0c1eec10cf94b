"""Flatten: result pages into record batches of the one item schema.

:mod:`~batch_export.flatten.scan` looks a page's bytes over in the fetching threads (msgspec,
no Arrow: the pipeline hands it to the fetch stage as its decoder);
:mod:`~batch_export.flatten.chunks` gathers scanned pages into chunks and
:mod:`~batch_export.flatten.items` reads them into Arrow, or value by value for odd pages.
"""
