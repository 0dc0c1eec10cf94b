"""`batch_export.__all__` is the public surface: it names what exists, documented, and all of it."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

import batch_export
from batch_export import errors

# Names whose documentation is their module's: values have no docstring of their own.
VALUES = {"ITEM_SCHEMA", "SCHEMA_VERSION", "__version__"}


@pytest.mark.parametrize("name", batch_export.__all__)
def test_every_name_exists(name: str) -> None:
    assert hasattr(batch_export, name), f"__all__ names {name!r}, which batch_export lacks"


@pytest.mark.parametrize("name", sorted(set(batch_export.__all__) - VALUES))
def test_every_name_is_documented(name: str) -> None:
    value = getattr(batch_export, name)
    own = value.__dict__.get("__doc__") if inspect.isclass(value) else value.__doc__
    assert own and own.strip(), f"batch_export.{name} has no docstring of its own"


def test_nothing_public_is_missing() -> None:
    imported = {
        name
        for name, value in vars(batch_export).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and name != "annotations"  # the __future__ import, not an export
    }
    assert imported - set(batch_export.__all__) == set(), "imported but not in __all__"
    assert len(batch_export.__all__) == len(set(batch_export.__all__)), "a name twice"


def test_every_error_can_be_caught_from_the_top() -> None:
    assert set(errors.__all__) <= set(batch_export.__all__)
    tree = {cls.__name__ for cls in _subclasses(errors.BatchExportError)}
    assert tree | {"BatchExportError"} == set(errors.__all__)


@pytest.mark.parametrize(
    "name", ["read_job", "read_jobs", "iter_batches", "read_export", "summarize", "write_report"]
)
def test_notebook_functions_have_a_runnable_example(name: str) -> None:
    assert ">>> " in (getattr(batch_export, name).__doc__ or "")


def test_iter_batches_takes_a_job_id() -> None:
    assert next(iter(inspect.signature(batch_export.iter_batches).parameters)) == "job_id"


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    return found.union(*(_subclasses(sub) for sub in found)) if found else found
