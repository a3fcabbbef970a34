"""Alembic's environment for the durable tables, run by ``adapters.migrations`` only.

There is no alembic.ini and no URL here: ``adapters.migrations`` opens the connection,
begins its transaction (and on PostgreSQL takes the advisory lock in it) and hands the
connection over in the configuration's attributes. Each command run here (stamp,
upgrade) works inside that one transaction, which ``adapters.migrations`` commits.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `payledger migrate` (adapters/migrations)")

context.configure(
    connection=connection,
    # the caller's transaction holds every statement (SQLite too: it begins it itself)
    transactional_ddl=True,
    on_version_apply=context.config.attributes.get("on_version_apply", ()),
)
with context.begin_transaction():
    context.run_migrations()
