"""Two-step sign-in and the security log.

``second_factors``: a person's time-based code secret, sealed (adapters/sealed.py),
with when it was turned on (NULL while being set up) and the last time step a code was
accepted for, so that a code is used once. ``recovery_codes``: the ten single-use codes
of an enrolment, each kept only as its Argon2 hash, as passwords are.
``security_log``: who signed in, failed, was locked out, changed a password, a role or
a second factor, and whose sessions ended; append-only (a trigger refuses UPDATE and
DELETE on both stores), read newest first per practice.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

APPEND_ONLY = "the security log is append-only"


def upgrade() -> None:
    op.execute(
        "CREATE TABLE second_factors ("
        "user_id TEXT PRIMARY KEY, practice_id TEXT NOT NULL, secret TEXT NOT NULL, "
        "enabled_at TEXT, last_step BIGINT, created_at TEXT NOT NULL)"
    )
    op.execute(
        "CREATE TABLE recovery_codes ("
        "user_id TEXT NOT NULL, code_hash TEXT NOT NULL, used_at TEXT, "
        "PRIMARY KEY (user_id, code_hash))"
    )
    op.execute(
        "CREATE TABLE security_log ("
        "id TEXT PRIMARY KEY, practice_id TEXT NOT NULL, at TEXT NOT NULL, "
        "kind TEXT NOT NULL, actor TEXT NOT NULL, subject_id TEXT, "
        "client_address TEXT, detail TEXT NOT NULL DEFAULT '')"
    )
    op.execute("CREATE INDEX security_log_by_practice ON security_log (practice_id, at, id)")
    op.execute(
        "CREATE INDEX security_log_by_subject ON security_log (practice_id, subject_id, at, id)"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION security_log_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER security_log_append_only BEFORE UPDATE OR DELETE ON security_log "
            "FOR EACH ROW EXECUTE FUNCTION security_log_refuse()"
        )
    else:
        for change in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER security_log_no_{change.lower()} BEFORE {change} "
                f"ON security_log BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported (docs/design.md, Migrations)")
