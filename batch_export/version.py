"""The package's version, in one place: ``pyproject.toml`` reads it from here.

It sits at the bottom of the package and imports nothing, so that the road, the sync and the
CLI can name it without importing the package's face (:mod:`batch_export`).

Example:

    >>> __version__.count(".") >= 1
    True
"""

__version__ = "0.1.0"
