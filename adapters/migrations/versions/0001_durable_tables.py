"""The durable tables as first made.

Every statement is ``CREATE ... IF NOT EXISTS``: a database made before migrations
existed already has some of these tables, with its rows, and keeps them as they are.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

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


def upgrade() -> None:
    for statement in BASELINE:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported (docs/design.md, Migrations)")
