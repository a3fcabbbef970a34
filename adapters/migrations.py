"""The durable tables' schema: numbered migrations, applied once each, in order.

Durable tables hold what cannot be rebuilt from the events (the writeback
journal, idempotency keys, PMS connections, logins and sessions, the sandbox
clock, the sandbox mailbox (table outbox), pay-page limits, positions of the relay and
of the projection runners). They are created and changed here only, at start-up
(``build_ledger``) and by ``payledger migrate``, never on a request path.
Projection tables are disposable: each projection creates its own from its
definition and rebuilds them when that changes (projections/runner.py).

``schema_migrations`` records each applied version. A migration runs in one
transaction with its row; on PostgreSQL an advisory lock keeps two processes
starting at once from migrating together. Version 1 is the schema as the
tables were first made (``CREATE ... IF NOT EXISTS``), so a database made
before migrations existed is adopted without losing a row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from adapters.sql import Database, Tx

log = logging.getLogger("payledger.migrations")

#: any constant: the key of the PostgreSQL advisory lock held while migrating
LOCK_KEY = 7_242_017


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Sequence[str] = ()
    steps: Sequence[Callable[[Tx, bool], None]] = field(default_factory=tuple)


BASELINE = (
    # the projection runners' positions
    """CREATE TABLE IF NOT EXISTS projection_tracking (
        name TEXT PRIMARY KEY,
        position BIGINT NOT NULL,
        schema TEXT NOT NULL DEFAULT ''
    )""",
    # the writeback journal, what it knows of practices and patients, PMS connections
    """CREATE TABLE IF NOT EXISTS writeback_journal (
        id TEXT PRIMARY KEY,
        practice_id TEXT NOT NULL,
        pms TEXT NOT NULL,
        kind TEXT NOT NULL,
        payment_id TEXT,
        depends_on TEXT,
        position BIGINT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        outcome_unknown INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        pms_reference TEXT,
        next_attempt_at TEXT NOT NULL,
        claimed_until TEXT,
        first_attempt_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS writeback_due ON writeback_journal "
    "(pms, status, next_attempt_at, position)",
    "CREATE INDEX IF NOT EXISTS writeback_by_payment ON writeback_journal (payment_id)",
    "CREATE INDEX IF NOT EXISTS writeback_by_practice ON writeback_journal "
    "(practice_id, status, position)",
    """CREATE TABLE IF NOT EXISTS writeback_practices (
        practice_id TEXT PRIMARY KEY,
        pms TEXT NOT NULL,
        auto_writeback INTEGER NOT NULL,
        timezone TEXT NOT NULL,
        pms_payment_type TEXT,
        position BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS writeback_patients (
        id TEXT PRIMARY KEY,
        practice_id TEXT NOT NULL,
        pms_patient_id TEXT NOT NULL,
        is_guarantor INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS writeback_status (
        practice_id TEXT PRIMARY KEY,
        failing_since TEXT,
        last_error TEXT,
        last_error_at TEXT,
        last_success_at TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS pms_connections (
        practice_id TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    # idempotency keys (the columns added later are migration 2)
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status_code INTEGER,
        content_type TEXT,
        body TEXT,
        claimed_at TEXT NOT NULL,
        PRIMARY KEY (scope, key)
    )""",
    # logins, web sessions, failed sign-ins
    """CREATE TABLE IF NOT EXISTS user_logins (
        email TEXT PRIMARY KEY,
        user_id TEXT NOT NULL UNIQUE,
        practice_id TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS web_sessions (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        practice_id TEXT NOT NULL,
        csrf_token TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        signed_out_at TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS web_sessions_by_user ON web_sessions (user_id, signed_out_at)",
    """CREATE TABLE IF NOT EXISTS login_failures (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL,
        client_address TEXT NOT NULL,
        at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS login_failures_by_email ON login_failures (email, at)",
    "CREATE INDEX IF NOT EXISTS login_failures_by_address ON login_failures (client_address, at)",
    # the sandbox clock
    """CREATE TABLE IF NOT EXISTS sandbox_clock (
        practice_id TEXT PRIMARY KEY,
        offset_seconds DOUBLE PRECISION NOT NULL
    )""",
    # the sandbox mailbox (email and text messages kept instead of sent)
    """CREATE TABLE IF NOT EXISTS outbox (
        id TEXT PRIMARY KEY,
        practice_id TEXT,
        channel TEXT NOT NULL,
        recipient TEXT NOT NULL,
        subject TEXT,
        body TEXT NOT NULL,
        sent_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS outbox_by_practice ON outbox (practice_id, sent_at)",
    # pay-page attempt windows
    """CREATE TABLE IF NOT EXISTS pay_attempt_windows (
        scope TEXT PRIMARY KEY,
        window_start TEXT NOT NULL,
        attempts INTEGER NOT NULL
    )""",
    # each practice's due work: failing or not, and how often it failed
    """CREATE TABLE IF NOT EXISTS due_work_status (
        practice_id TEXT PRIMARY KEY,
        failing INTEGER NOT NULL,
        consecutive INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        last_error TEXT,
        failed_at TEXT
    )""",
    # the Kafka relay's position
    """CREATE TABLE IF NOT EXISTS relay_position (
        name TEXT PRIMARY KEY,
        position BIGINT NOT NULL
    )""",
)


def columns(tx: Tx, table: str, postgres: bool) -> set[str]:
    if postgres:
        rows = tx.execute(
            "SELECT column_name AS name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
    else:
        rows = tx.execute(f"PRAGMA table_info({table})")
    return {str(r["name"]) for r in rows}


def add_column(table: str, name: str, kind: str) -> Callable[[Tx, bool], None]:
    """Add a column unless the table already has it (as tables made before migrations do)."""

    def step(tx: Tx, postgres: bool) -> None:
        if name not in columns(tx, table, postgres):
            tx.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    return step


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the durable tables as first made", statements=BASELINE),
    Migration(
        2,
        "idempotency keys: who claims a key, and which secret fields an answer left out",
        steps=(
            add_column("idempotency_keys", "claimant", "TEXT"),
            add_column("idempotency_keys", "secrets", "TEXT"),
        ),
    ),
    Migration(
        3,
        "Stripe's webhook events, each recorded once by its id",
        statements=(
            """CREATE TABLE IF NOT EXISTS stripe_events (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        account TEXT,
        created BIGINT NOT NULL,
        received_at TEXT NOT NULL,
        payload TEXT NOT NULL,
        applied_at TEXT,
        outcome TEXT
    )""",
            "CREATE INDEX IF NOT EXISTS stripe_events_pending "
            "ON stripe_events (applied_at, received_at)",
        ),
    ),
)

SCHEMA_MIGRATIONS = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""


def applied(db: Database) -> list[int]:
    with db.transaction() as tx:
        tx.execute(SCHEMA_MIGRATIONS)
        rows = tx.execute("SELECT version FROM schema_migrations ORDER BY version")
    return [int(r["version"]) for r in rows]


def migrate(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply every migration not yet applied, in order; returns the versions applied now."""
    done: list[int] = []
    with db.transaction() as tx:
        if db.postgres:
            tx.execute("SELECT pg_advisory_xact_lock(?)", (LOCK_KEY,))
        tx.execute(SCHEMA_MIGRATIONS)
        have = {int(r["version"]) for r in tx.execute("SELECT version FROM schema_migrations")}
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in have:
                continue
            for statement in migration.statements:
                tx.execute(statement)
            for step in migration.steps:
                step(tx, db.postgres)
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, datetime.now(UTC).isoformat()),
            )
            log.info("applied migration %s: %s", migration.version, migration.name)
            done.append(migration.version)
    return done
