"""The rate limits' shared counts: how many requests each budget (a caller's or a
practice's reads, writes, pay page) used in each window, so that several API processes
count together (services/http/rate_limits.py).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE rate_limit_counts ("
        "bucket TEXT NOT NULL, window_start BIGINT NOT NULL, used INTEGER NOT NULL, "
        "PRIMARY KEY (bucket, window_start))"
    )


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported (docs/design.md, Migrations)")
