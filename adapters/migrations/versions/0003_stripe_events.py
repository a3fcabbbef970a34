"""Stripe's webhook events, each recorded once by its id.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute(
        """CREATE TABLE IF NOT EXISTS stripe_events (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        account TEXT,
        created BIGINT NOT NULL,
        received_at TEXT NOT NULL,
        payload TEXT NOT NULL,
        applied_at TEXT,
        outcome TEXT
    )"""
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS stripe_events_pending "
        "ON stripe_events (applied_at, received_at)"
    )


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported (docs/design.md, Migrations)")
