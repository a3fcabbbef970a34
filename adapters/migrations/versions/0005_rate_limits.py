"""The rate limits' shared counts: how many requests each budget (a caller's or a
practice's reads and writes, a pay link's, a client address's) used in each window, so
that several API processes count together (services/http/rate_limiter.py).

The key leads with the window, so that purging old windows reads one range of the key.
On PostgreSQL the table is UNLOGGED: counts of the last few seconds are not worth a
write-ahead log entry per sync, and a crash that empties the table only forgets them.

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
    unlogged = "UNLOGGED " if op.get_bind().dialect.name == "postgresql" else ""
    op.execute(
        f"CREATE {unlogged}TABLE rate_limit_counts ("
        "window_start BIGINT NOT NULL, bucket TEXT NOT NULL, used INTEGER NOT NULL, "
        "PRIMARY KEY (window_start, bucket))"
    )


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported (docs/design.md, Migrations)")
