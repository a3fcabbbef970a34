"""The layers keep to their side of the persistence seam (docs/design.md, "Layers").

The use cases (services/app), the API (services/http), the pages (services/web), the
workers (services/workers) and the command line (services/cli.py) import no SQL driver
and no SQL interface, and never hold a database: they read through ``ctx.reads`` and
the query objects under adapters/. Adapters and projections import nothing from
services.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


ABOVE_THE_SEAM = [
    *modules("services/app", "services/http", "services/web", "services/workers"),
    ROOT / "services/cli.py",
    ROOT / "services/context.py",
]
BELOW_THE_SEAM = modules("adapters", "projections")

#: what above the seam must not import: SQL drivers, pools, the SQL interface, the
#: event store's persistence modules
SQL_MODULES = (
    "sqlite3",
    "psycopg",
    "psycopg_pool",
    "sqlalchemy",
    "adapters.sql",
    "eventsourcing.sqlite",
    "eventsourcing.postgres",
)
#: attributes that are a database or a connection in hand
CONNECTION_ATTRIBUTES = frozenset({"db", "datastore", "database"})


def imported_modules(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            module = node.module or ""
            names.append(module)
            # "from adapters import sql" imports the module adapters.sql
            names.extend(f"{module}.{alias.name}" for alias in node.names)
    return names


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def seam_violations(source: str) -> set[str]:
    """What a module above the seam does that it must not: each SQL import, and each
    use of an attribute that is a database or a connection."""
    tree = ast.parse(source)
    found = {
        f"import {prefix}"
        for module in imported_modules(tree)
        for prefix in SQL_MODULES
        if within(module, prefix)
    }
    found |= {
        f".{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in CONNECTION_ATTRIBUTES
    }
    return found


def service_imports(source: str) -> set[str]:
    return {m for m in imported_modules(ast.parse(source)) if within(m, "services")}


def test_there_are_modules_on_both_sides() -> None:
    names = {name(p) for p in ABOVE_THE_SEAM}
    assert {
        "services/http/idempotency.py",
        "services/web/pay.py",
        "services/app/due.py",
        "services/workers/relay.py",
        "services/workers/writeback.py",
        "services/cli.py",
    } <= names
    assert {"adapters/sql.py", "adapters/idempotency_keys.py", "adapters/relay_positions.py"} <= {
        name(p) for p in BELOW_THE_SEAM
    }


@pytest.mark.parametrize("module", ABOVE_THE_SEAM, ids=name)
def test_use_cases_routes_and_pages_hold_no_sql_and_no_connection(module: Path) -> None:
    assert seam_violations(module.read_text(encoding="utf-8")) == set()


@pytest.mark.parametrize("module", BELOW_THE_SEAM, ids=name)
def test_adapters_and_projections_import_nothing_from_services(module: Path) -> None:
    assert service_imports(module.read_text(encoding="utf-8")) == set()


# -- the checks themselves catch what they are for ---------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "import sqlite3",
        "import psycopg",
        "from psycopg.rows import dict_row",
        "from psycopg_pool import ConnectionPool",
        "from adapters.sql import Database",
        "from adapters import sql",
        "import adapters.sql",
        "from eventsourcing.sqlite import SQLiteDatastore",
        "from eventsourcing.postgres import PostgresDatastore",
        "def f():\n    import sqlite3",
        "rows = ctx.db.query('SELECT 1')",
        "x = list_patients(ctx.db, practice_id, None, 10)",
        "db = self.db",
        "db = ctx.store.database()",
        "d = store.recorder.datastore",
    ],
)
def test_the_seam_check_catches_sql_and_connections(source: str) -> None:
    assert seam_violations(source) != set()


@pytest.mark.parametrize(
    "source",
    [
        "from adapters.clock import iso",
        "from adapters.idempotency_keys import IdempotencyKeys",
        "from projections.directory import practice_ids",
        "ids = ctx.reads(practice_ids)",
        "keys = ctx.idempotency_keys",
        "import adapters.sqlite_helpers_that_do_not_exist",
        "from eventsourcing.persistence import IntegrityError",
    ],
)
def test_the_seam_check_lets_the_seam_through(source: str) -> None:
    assert seam_violations(source) == set()


@pytest.mark.parametrize(
    "source",
    [
        "from services.context import Components",
        "import services.app.due",
        "from services import settings",
        "def f():\n    from services.bootstrap import build_components",
    ],
)
def test_the_service_import_check_catches_an_import_of_services(source: str) -> None:
    assert service_imports(source) != set()


def test_the_service_import_check_lets_other_imports_through() -> None:
    assert service_imports("from adapters.sql import Database\nimport servicesx") == set()
