"""The durable tables' schema: Alembic revisions, applied once each, in order.

Durable tables hold what cannot be rebuilt from the events (the writeback
journal, idempotency keys, PMS connections, logins and sessions, the sandbox
clock, the sandbox mailbox (table mailbox), pay-page limits, Stripe's webhook
events, positions of the relay and of the projection runners). They are created
and changed here only, at start-up (services/bootstrap.py) and by ``payledger
migrate``, never on a request path. Projection tables are disposable: each
projection creates its own from its definition and rebuilds them when that
changes (projections/runner.py).

The Alembic environment is this package: ``env.py``, the revisions in
``versions/`` (``NNNN_slug.py``, revision ``"NNNN"``, each revising the one
before) and ``script.py.mako``, the skeleton of a new one (docs/design.md,
"Migrations", says how to add one). No alembic.ini is read: the configuration
is made here (``alembic_config``). Alembic records
the schema's revision in ``alembic_version``.

- Fast path: when ``alembic_version`` already names the head revision (one
  query on the store's own connections), nothing else runs and Alembic is not
  even imported.
- Otherwise a SQLAlchemy engine is made from the store's settings, for this
  only, and disposed of after. Everything runs in one transaction: on
  PostgreSQL it first takes an advisory lock (processes starting at once
  migrate one after the other, and the second finds nothing left to do); on
  SQLite it begins with ``BEGIN IMMEDIATE``, which does the same.
- Adoption: a database migrated by the numbered migrator that came before
  Alembic (table ``schema_migrations``, versions 1 to 3) is stamped at the
  matching revision (1 → 0001, 2 → 0002, 3 → 0003) and upgraded from there, so
  no DDL it has runs again. ``schema_migrations`` is left as it is, unused.
  Revision 0001 is the schema as the tables were first made (``CREATE ... IF
  NOT EXISTS``), so a database made before migrations existed is adopted
  without losing a row.

Downgrades are not supported: a revision's ``downgrade`` refuses, but 0008's (a
rename, named back).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from adapters.sql import Database
from adapters.store import EventStore

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext, MigrationInfo
    from sqlalchemy.engine import Connection, Engine

log = logging.getLogger("payledger.migrations")

HERE = Path(__file__).resolve().parent
VERSIONS = HERE / "versions"
#: any constant: the key of the PostgreSQL advisory lock held while migrating
LOCK_KEY = 7_242_017
#: the numbered migrator's versions (table schema_migrations) and their revisions
OLD_VERSIONS = {1: "0001", 2: "0002", 3: "0003"}


@lru_cache(maxsize=1)
def head() -> str:
    """The newest revision, from the files' names (``NNNN_slug.py`` is revision NNNN;
    tests/integration/test_migrations.py checks the names against the revisions)."""
    return max(p.name[:4] for p in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))


def current(db: Database) -> str | None:
    """The revision ``alembic_version`` names; None when the table is not there yet (on
    PostgreSQL asked first, so that a new database's log holds no error for it)."""
    if db.postgres:
        there = db.query_one("SELECT to_regclass('alembic_version') IS NOT NULL AS there")
        if there is None or not there["there"]:
            return None
    try:
        row = db.query_one("SELECT version_num FROM alembic_version")
    except (sqlite3.OperationalError, psycopg.errors.UndefinedTable):
        return None
    return None if row is None else str(row["version_num"])


def quiet_alembic() -> None:
    """Alembic logs each plugin it sets up and each context it makes, at INFO: keep its
    warnings only, unless its level was set elsewhere (this module logs each revision)."""
    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:
        alembic_log.setLevel(logging.WARNING)


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for this package, without an alembic.ini on disk."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("version_locations", str(VERSIONS))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(store: EventStore) -> list[str]:
    """Bring the durable tables to the head revision; returns the revisions applied now."""
    if current(store.database()) == head():
        return []
    quiet_alembic()
    from alembic import command

    done: list[tuple[str, str]] = []

    def record(
        *, ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], **_: Any
    ) -> None:
        revision = step.up_revision  # a Script: a Revision with its docstring as doc
        if step.is_upgrade and not step.is_stamp and revision is not None:
            done.append((revision.revision, getattr(revision, "doc", "")))

    with migrating(store) as connection:
        config = alembic_config(connection)
        at = revision_of(connection)
        old = old_version(connection) if at is None else None
        if old is not None:
            if old not in OLD_VERSIONS:
                raise RuntimeError(
                    f"schema_migrations is at version {old}, which no Alembic revision matches"
                )
            command.stamp(config, OLD_VERSIONS[old])
            log.info("adopted schema_migrations version %s as revision %s", old, OLD_VERSIONS[old])
        config.attributes["on_version_apply"] = record
        command.upgrade(config, "head")
    for revision, doc in done:  # committed
        log.info("applied revision %s: %s", revision, doc)
    return [revision for revision, _ in done]


def applied(store: EventStore) -> list[str]:
    """The revisions the schema has, oldest first (empty before the first migration)."""
    at = current(store.database())
    if at is None:
        return []
    quiet_alembic()
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in script.iterate_revisions(at, "base")][::-1]


def engine_for(store: EventStore) -> Engine:
    """A SQLAlchemy engine on the store's database, from the store's own settings, with no
    pool: it serves one migration and is disposed of after."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import URL
    from sqlalchemy.pool import NullPool

    env = store.env
    if store.is_postgres:
        info = store.conninfo()
        url = URL.create(
            "postgresql+psycopg",
            username=info["user"],
            password=info["password"],
            host=info["host"],
            port=int(info["port"]) if info["port"] else None,
            database=info["dbname"],
        )
        return create_engine(
            url, poolclass=NullPool, connect_args={"connect_timeout": info["connect_timeout"]}
        )
    engine = create_engine(
        URL.create("sqlite", database=env.get("SQLITE_DBNAME", "")),
        poolclass=NullPool,
        connect_args={"timeout": float(env.get("SQLITE_LOCK_TIMEOUT", "10"))},
    )

    # sqlite3 would begin a transaction only before the first INSERT, UPDATE or DELETE,
    # leaving DDL outside it: begin it ourselves, taking the write lock at once.
    @event.listens_for(engine, "connect")
    def no_implicit_transactions(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextmanager
def migrating(store: EventStore) -> Iterator[Connection]:
    """A connection in the one transaction of a migration (committed on success), holding
    PostgreSQL's advisory lock or SQLite's write lock."""
    engine = engine_for(store)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            yield connection
    finally:
        engine.dispose()


def revision_of(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"transactional_ddl": True})
    return context.get_current_revision()


def old_version(connection: Connection) -> int | None:
    """The numbered migrator's last version, when the database has its table and a row."""
    from sqlalchemy import inspect, text

    if not inspect(connection).has_table("schema_migrations"):
        return None
    version = connection.execute(text("SELECT MAX(version) FROM schema_migrations")).scalar()
    return None if version is None else int(version)
