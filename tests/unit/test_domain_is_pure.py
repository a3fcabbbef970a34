"""The domain is pure: it imports only the standard library's pure modules, eventsourcing's
domain module and itself, and never reads a clock or a random source (docs/design.md, "Layers").
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
MODULES = sorted(DOMAIN.glob("*.py"))

#: standard-library modules that do no I/O and read no clock or random source
PURE_STDLIB = frozenset(
    {
        "__future__",
        "abc",
        "calendar",
        "collections",
        "dataclasses",
        "datetime",
        "decimal",
        "enum",
        "functools",
        "itertools",
        "math",
        "operator",
        "re",
        "typing",
        "uuid",
        "zoneinfo",
    }
)
#: modules the domain must never import (I/O, clocks, randomness, processes)
IMPURE = frozenset(
    {
        "asyncio",
        "http",
        "logging",
        "os",
        "pathlib",
        "random",
        "requests",
        "secrets",
        "shutil",
        "socket",
        "sqlite3",
        "subprocess",
        "sys",
        "threading",
        "time",
        "urllib",
    }
)
#: calls that read the clock or a random source
IMPURE_CALLS = frozenset({"now", "utcnow", "today", "uuid1", "uuid4", "random", "randint"})


def imported_modules(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # a relative import stays inside the package
                names.append("domain." + (node.module or ""))
            else:
                names.append(node.module or "")
    return names


def is_allowed(module: str) -> bool:
    top = module.partition(".")[0]
    return top in PURE_STDLIB or module == "eventsourcing.domain" or top == "domain"


def forbidden_imports(source: str) -> list[str]:
    return [m for m in imported_modules(ast.parse(source)) if not is_allowed(m)]


def impure_calls(source: str) -> list[str]:
    """Names of clock or random readers used in the source (called, or imported by name)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in IMPURE_CALLS:
                found.append(name)
        elif isinstance(node, ast.ImportFrom):
            found.extend(a.name for a in node.names if a.name in IMPURE_CALLS)
    return found


def test_the_domain_has_modules_to_check() -> None:
    names = {m.name for m in MODULES}
    assert {"payments.py", "money.py", "schedule.py", "base.py"} <= names


def test_the_allowed_modules_are_all_standard_library_and_none_impure() -> None:
    assert set(sys.stdlib_module_names) >= PURE_STDLIB
    assert not PURE_STDLIB & IMPURE


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_a_domain_module_imports_only_pure_stdlib_eventsourcing_domain_and_domain(
    module: Path,
) -> None:
    assert forbidden_imports(module.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_a_domain_module_reads_no_clock_and_no_random_source(module: Path) -> None:
    assert impure_calls(module.read_text(encoding="utf-8")) == []


# -- the checks themselves catch what they are for ---------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "import os",
        "import sqlite3",
        "import random",
        "from time import monotonic",
        "import urllib.request",
        "from http import client",
        "import requests",
        "from socket import socket",
        "from eventsourcing.application import Application",
        "import eventsourcing",
        "from adapters.clock import Clock",
        "import services.app",
        "def f():\n    import psycopg",
    ],
)
def test_the_import_check_catches_an_impure_import(source: str) -> None:
    assert forbidden_imports(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "from __future__ import annotations",
        "from datetime import UTC, datetime",
        "from collections.abc import Container",
        "from eventsourcing.domain import Aggregate",
        "from domain.errors import InvalidValue",
        "from .money import Money",
    ],
)
def test_the_import_check_lets_pure_imports_through(source: str) -> None:
    assert forbidden_imports(source) == []


@pytest.mark.parametrize(
    "source",
    [
        "x = datetime.now(UTC)",
        "x = datetime.datetime.utcnow()",
        "x = date.today()",
        "x = uuid.uuid4()",
        "from uuid import uuid4",
        "x = uuid4()",
        "x = random.random()",
    ],
)
def test_the_call_check_catches_a_clock_or_random_read(source: str) -> None:
    assert impure_calls(source) != []


def test_the_call_check_lets_deterministic_ids_through() -> None:
    assert impure_calls("from uuid import uuid5\nx = uuid5(NAMESPACE_URL, 'a')") == []
