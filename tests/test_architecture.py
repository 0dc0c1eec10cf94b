"""The house: ARCHITECTURE.md names every module, and the import contracts catch what they say.

The contracts (``pyproject.toml``) name packages, so a module added to a stage is held to the
stage's rules without a list to edit. These tests add such a module to a copy of the package
and run ``lint-imports`` on it: the contracts must break.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "batch_export"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def modules() -> list[str]:
    """Every module of the package, as its path below ``batch_export/``."""
    return sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" or path.parent == PACKAGE
    )


def test_architecture_names_every_module() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = [module for module in modules() if f"`{module}`" not in text]
    assert not missing, f"ARCHITECTURE.md does not name {missing}"


def test_nothing_below_the_package_root_imports_it() -> None:
    graph = grimp.build_graph("batch_export", include_external_packages=False)
    importers = graph.find_modules_that_directly_import("batch_export")
    assert importers == set()


@pytest.fixture
def house(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for a copy of the package: outside ``tmp_path``, whose files the key-leak
    check reads (the package's own doctests name the tests' canary key)."""
    return tmp_path_factory.mktemp("house")


def _lint_copy(tmp_path: Path, change: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on a copy of the package with ``change`` (path: text to append)."""
    copy = tmp_path / "batch_export"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for relative, text in change.items():
        target = copy / relative
        target.write_text(
            (target.read_text(encoding="utf-8") if target.exists() else "") + text,
            encoding="utf-8",
        )
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_copy_itself_keeps_every_contract(house: Path) -> None:
    result = _lint_copy(house, {})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "broken"),
    [
        # A new module of the fetch package that reaches for Arrow, named in no list.
        ({"fetch/newcomer.py": "import pyarrow\n"}, "The fetch package knows no Arrow"),
        # ... or for a later stage, even only for the type checker.
        (
            {
                "fetch/newcomer.py": "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from batch_export.summary.counts import Summary\n"
            },
            "The fetch package knows no Arrow",
        ),
        # Two modules of one stage leaning on each other.
        ({"flatten/items.py": "\nimport batch_export.flatten.chunks\n"}, "No import cycles"),
        # An arrow back up: a stage importing the road.
        ({"summary/counts.py": "\nimport batch_export.pipeline\n"}, "Layers"),
    ],
    ids=["arrow-in-fetch", "type-checking-import", "cycle", "arrow-up"],
)
def test_the_contracts_break_on(house: Path, change: dict[str, str], broken: str) -> None:
    result = _lint_copy(house, change)
    assert result.returncode != 0
    assert f"{broken}" in result.stdout
    assert "BROKEN" in result.stdout
