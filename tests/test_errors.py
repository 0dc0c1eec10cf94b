"""The error tree: each class's exit code is the one its header declares, and the one the
tree drawn in the module's docstring shows."""

from __future__ import annotations

import re

import pytest

from batch_export import errors


def _drawn() -> dict[str, int]:
    """The exit code of each class in the docstring's tree."""
    assert errors.__doc__
    found = re.findall(r"[─ ]([A-Za-z]+) +exit (\d+)", errors.__doc__)
    return {name: int(code) for name, code in found}


def test_the_drawn_tree_names_every_error() -> None:
    assert set(_drawn()) == set(errors.__all__)


@pytest.mark.parametrize("name", errors.__all__)
def test_each_error_exits_with_the_code_drawn(name: str) -> None:
    assert getattr(errors, name).exit_code == _drawn()[name]
