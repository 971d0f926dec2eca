"""Lint and type checks run with the tests, so a stray breakpoint() or a type error fails CI.

Ruff runs without its cache: a cached verdict hid an import of a removed module once."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def test_ruff_finds_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_on_headless_packages() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "module", sorted(path.stem for path in (REPO_ROOT / "benchmarks").glob("*.py"))
)
def test_each_benchmark_imports(module: str) -> None:
    """Benchmarks run by hand, so a module they import that moved would go unnoticed."""
    importlib.import_module(f"benchmarks.{module}")
