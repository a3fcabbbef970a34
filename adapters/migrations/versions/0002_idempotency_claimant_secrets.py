"""Idempotency keys: who claims a key, and which secret fields an answer left out.

Each column is added unless the table has it already, as the tables of a database
made before migrations do (the code of the time added them at start-up).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

COLUMNS = (("claimant", "TEXT"), ("secrets", "TEXT"))


def upgrade() -> None:
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("idempotency_keys")}
    for name, kind in COLUMNS:
        if name not in have:
            op.execute(f"ALTER TABLE idempotency_keys ADD COLUMN {name} {kind}")


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported (docs/design.md, Migrations)")
