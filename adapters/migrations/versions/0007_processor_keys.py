"""Each practice's key at its card processor (Clearent's API key), sealed.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE processor_keys ("
        "practice_id TEXT NOT NULL, processor TEXT NOT NULL, api_key TEXT NOT NULL, "
        "updated_at TEXT NOT NULL, PRIMARY KEY (practice_id, processor))"
    )


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported (docs/design.md, Migrations)")
