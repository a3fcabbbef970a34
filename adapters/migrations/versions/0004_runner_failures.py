"""Each runner's failure beside its position, for the processes that do not run it.

A projection's runner that fails keeps its error and how many times in a row it
failed in ``projection_tracking``; API processes whose runners run elsewhere
(``payledger projections run``) show them on /healthz and /metrics and do not wait
for a failing view.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE projection_tracking ADD COLUMN error TEXT")
    op.execute("ALTER TABLE projection_tracking ADD COLUMN failures INTEGER NOT NULL DEFAULT 0")


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported (docs/design.md, Migrations)")
