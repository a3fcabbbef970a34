"""The layers keep to their side of the persistence seam (docs/design.md, "Layers").

The use cases (services/app), the API (services/http), the pages (services/web), the
workers (services/workers) and the command line (services/cli.py) import no SQL driver
and no SQL interface, and never hold a database: they read through ``ctx.reads`` and
the query objects under adapters/. Adapters and projections import nothing from
services.

Nothing under services/ asks which card processor it talks to (an ``isinstance`` with a
processor class, a processor's ``.name`` compared with a processor's name), nor imports
a processor's adapter (services/bootstrap.py alone chooses one): it asks the port what
the processor can do (``CardProcessor.capabilities``, ``settles_by``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from services.settings import PROCESSORS

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


def named(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def processor_classes(node: ast.AST) -> list[str]:
    """The processor classes an expression names (`StripeProcessor`, `a.B | CProcessor`,
    a tuple of them)."""
    return [
        n
        for part in ast.walk(node)
        if (n := named(part)) is not None and n.endswith("Processor") and n != "CardProcessor"
    ]


def processor_names(node: ast.AST) -> list[str]:
    """The processors' names an expression holds ("stripe", ("stripe", "clearent"))."""
    return [
        part.value
        for part in ast.walk(node)
        if isinstance(part, ast.Constant) and isinstance(part.value, str)
        if part.value in PROCESSORS
    ]


def processor_checks(source: str) -> list[str]:
    """Where a module asks which processor it talks to instead of what it can do: an
    isinstance (or issubclass) with a processor class, a type compared with one, or a
    `.name` compared (or matched) with a processor's name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if (
            isinstance(node, ast.Call)
            and named(node.func) in ("isinstance", "issubclass")
            and len(node.args) == 2
            and processor_classes(node.args[1])
        ):
            found.append(f"line {line}: isinstance with {processor_classes(node.args[1])[0]}")
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(named(o) == "name" for o in operands if isinstance(o, ast.Attribute)):
                names = [n for o in operands for n in processor_names(o)]
                if names:
                    found.append(f"line {line}: .name compared with {names[0]!r}")
            classes = [c for o in operands if named(o) is not None for c in processor_classes(o)]
            if classes:
                found.append(f"line {line}: compared with {classes[0]}")
        elif (
            isinstance(node, ast.Match)
            and isinstance(node.subject, ast.Attribute)
            and node.subject.attr == "name"
            and any(processor_names(case.pattern) for case in node.cases)
        ):
            found.append(f"line {line}: .name matched with a processor's name")
    return found


SERVICES = modules("services")
#: the one module that chooses the processor's adapter, from the settings
COMPOSITION_ROOT = ROOT / "services/bootstrap.py"
#: the processors' adapters: above the port only the port is imported
ADAPTER_MODULES = tuple(f"adapters.processor.{p}" for p in PROCESSORS)


def adapter_imports(source: str) -> set[str]:
    return {
        m
        for m in imported_modules(ast.parse(source))
        for adapter in ADAPTER_MODULES
        if within(m, adapter)
    }


@pytest.mark.parametrize("module", SERVICES, ids=name)
def test_nothing_above_the_port_asks_which_processor_it_talks_to(module: Path) -> None:
    assert processor_checks(module.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("module", [m for m in SERVICES if m != COMPOSITION_ROOT], ids=name)
def test_nothing_above_the_port_imports_a_processors_adapter(module: Path) -> None:
    assert adapter_imports(module.read_text(encoding="utf-8")) == set()


def test_the_adapter_import_check_catches_an_adapter_and_lets_the_port_through() -> None:
    assert adapter_imports("from adapters.processor.stripe import PayoutItem") != set()
    assert adapter_imports("def f():\n    from adapters.processor import clearent") != set()
    assert adapter_imports("import adapters.processor.sandbox") != set()
    assert adapter_imports("from adapters.processor.port import Capability") == set()
    assert adapter_imports("from adapters.processor.cards import card_mistakes") == set()


@pytest.mark.parametrize(
    "source",
    [
        "if isinstance(ctx.processor, StripeProcessor):\n    pass",
        "ok = not isinstance(processor, ClearentProcessor)",
        "ok = isinstance(p, stripe.StripeProcessor | ClearentProcessor)",
        "ok = isinstance(p, (SandboxProcessor, StripeProcessor))",
        "ok = issubclass(type(p), StripeProcessor)",
        "ok = type(ctx.processor) is StripeProcessor",
        "ok = ctx.processor.name == 'stripe'",
        "ok = 'clearent' == processor.name",
        "ok = ctx.processor.name != 'stripe'",
        "ok = ctx.processor.name in ('stripe', 'clearent')",
        "ok = self._ctx.processor.name not in {'sandbox'}",
        "match ctx.processor.name:\n    case 'stripe':\n        pass",
        "def f(ctx):\n    return ctx.processor.name == 'clearent' and ctx.x",
    ],
)
def test_the_processor_check_catches_a_question_of_which_processor(source: str) -> None:
    assert processor_checks(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "ok = ctx.processor.can(Capability.READERS)",
        "ok = ctx.processor.settles_by == SettledBy.PAYOUTS",
        "ok = isinstance(error, stripe.InvalidRequestError | stripe.CardError)",
        "ok = isinstance(ctx.processor, CardProcessor)",
        "ok = practice.name == 'Smile Dental'",
        "detail = f'cards are processed by {ctx.processor.name}'",
        "ok = kind == 'stripe'",
        "from adapters.processor.sandbox import SandboxProcessor",
        "processor = SandboxProcessor()",
    ],
)
def test_the_processor_check_lets_capabilities_through(source: str) -> None:
    assert processor_checks(source) == []


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


# -- the entry points stand side by side --------------------------------------------------

#: each entry point, by the module prefix it is imported as
ENTRY_POINTS = {
    "services.http": "services/http",
    "services.web": "services/web",
    "services.workers": "services/workers",
    "services.cli": "services/cli.py",
}
#: where the entry points meet: the composition root and the served application
COMPOSITION = ("services.bootstrap", "services.asgi")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def entry_point_of(module: str) -> str | None:
    return next((entry for entry in ENTRY_POINTS if within(module, entry)), None)


def crossings(module: str, source: str) -> set[str]:
    """What a module imports that its floor must not: another entry point's modules from
    an entry point; an entry point or the composition from below the entry points (the
    use cases, queries, adapters, projections, domain)."""
    imported = {m for m in imported_modules(ast.parse(source)) if within(m, "services")}
    own = entry_point_of(module)
    if own is not None:
        return {m for m in imported if entry_point_of(m) not in (None, own)}
    if any(within(module, c) for c in COMPOSITION):
        return set()
    return {
        m
        for m in imported
        if entry_point_of(m) is not None or any(within(m, c) for c in COMPOSITION)
    }


ENTRY_MODULES = [
    *modules("services/http", "services/web", "services/workers"),
    ROOT / "services/cli.py",
]
BELOW_THE_ENTRY_POINTS = [
    p
    for p in modules("services", "adapters", "projections", "domain")
    if entry_point_of(module_name(p)) is None
    and not any(within(module_name(p), c) for c in COMPOSITION)
]


def test_there_are_entry_points_and_floors_below_them() -> None:
    assert {module_name(p) for p in ENTRY_MODULES} >= {
        "services.http.app",
        "services.web.app",
        "services.workers.scheduler",
        "services.cli",
    }
    assert {module_name(p) for p in BELOW_THE_ENTRY_POINTS} >= {
        "services.app.payments",
        "services.app.inputs",
        "services.app.writeback_status",
        "services.app.audit_export",
        "services.cursor",
        "services.problems",
        "services.context",
        "adapters.sql",
        "projections.catalog",
        "domain.payments",
    }


@pytest.mark.parametrize("module", ENTRY_MODULES, ids=name)
def test_an_entry_point_imports_no_other(module: Path) -> None:
    assert crossings(module_name(module), module.read_text(encoding="utf-8")) == set()


@pytest.mark.parametrize("module", BELOW_THE_ENTRY_POINTS, ids=name)
def test_below_the_entry_points_nothing_imports_them_or_the_composition(module: Path) -> None:
    assert crossings(module_name(module), module.read_text(encoding="utf-8")) == set()


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("services.web.pages.ledger", "from services.http.routes import payments"),
        ("services.web.forms", "def f():\n    from services.http.errors import status_for"),
        ("services.web.pages.transactions", "from services.workers.writeback import Worker"),
        ("services.http.app", "from services.web import app as web"),
        ("services.http.app", "import services.workers.scheduler"),
        ("services.http.routes.payments", "from services.workers import writeback"),
        ("services.workers.scheduler", "from services.http.deps import practice_of"),
        ("services.cli", "from services.workers.relay import Relay"),
        ("services.http.app", "from services import web"),
        ("services.app.audit_export", "from services.bootstrap import all_projections"),
        ("services.app.payments", "from services.asgi import create_app"),
        ("services.app.payments", "from services.http.errors import status_for"),
        ("services.cursor", "from services.http.errors import HttpProblem"),
        ("adapters.reads", "from services.bootstrap import build_components"),
        ("projections.feed", "import services.web.render"),
        ("domain.payments", "from services.cli import main"),
    ],
)
def test_the_entry_point_check_catches_a_crossing(module: str, source: str) -> None:
    assert crossings(module, source) != set()


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("services.web.pages.ledger", "from services.app.inputs import AssociateIn"),
        ("services.web.pages.ledger", "from services.web.forms import run"),
        ("services.http.routes.payments", "from services.app.writeback_status import x"),
        ("services.http.routes.payments", "from services.http.deps import AdminDep"),
        ("services.cli", "from services.bootstrap import build_components"),
        ("services.cli", "from services.asgi import create_app"),
        ("services.asgi", "from services.web import app as web"),
        ("services.bootstrap", "from services.workers.writeback import take_in"),
        ("services.app.audit_export", "from projections.catalog import all_projections"),
        ("services.cursor", "from services.problems import HttpProblem"),
    ],
)
def test_the_entry_point_check_lets_the_floors_through(module: str, source: str) -> None:
    assert crossings(module, source) == set()
