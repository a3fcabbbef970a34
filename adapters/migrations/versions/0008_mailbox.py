"""The sandbox mailbox's table is named for what it is: ``outbox`` becomes ``mailbox``
(and its index ``outbox_by_practice``, where the database has it, ``mailbox_by_practice``).
Every row stays. The only revision that can be undone: its downgrade names them back, for
a release rolled back to one that reads ``outbox``.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import inspect

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def rename(old: str, new: str) -> None:
    """Rename the table and its index (SQLite renames no index: it is made again, under
    the new name, only where the old one was); on PostgreSQL its primary key's too."""
    bind = op.get_bind()
    indexes = {ix["name"] for ix in inspect(bind).get_indexes(old)}
    op.execute(f"ALTER TABLE {old} RENAME TO {new}")
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER INDEX IF EXISTS {old}_pkey RENAME TO {new}_pkey")
    if f"{old}_by_practice" in indexes:
        op.execute(f"DROP INDEX {old}_by_practice")
        op.execute(f"CREATE INDEX {new}_by_practice ON {new} (practice_id, sent_at)")


def upgrade() -> None:
    rename("outbox", "mailbox")


def downgrade() -> None:
    rename("mailbox", "outbox")
