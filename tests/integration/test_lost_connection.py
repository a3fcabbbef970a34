"""A connection that breaks inside a transaction never reads as a commit.

psycopg leaves the transaction of a connection that broke alone when its block ends
without an exception: nothing is committed and nothing is raised. A block that caught
the break itself (the inline views do: their failure must not undo the events) would
then tell its callers that a write happened that did not, and a payment answered 201
would be missing from the ledger. Here the break is real: the transaction's own backend
is terminated (as a PostgreSQL restart does), and the error is caught where it happens.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import OperationalError

from tests.conftest import ComponentsFactory, PinnedClock
from tests.integration.test_store_contract import new_practice

pytestmark = pytest.mark.postgres

TERMINATE = "SELECT pg_terminate_backend(pg_backend_pid())"


def test_a_save_whose_connection_broke_in_the_inline_views_is_written_again(
    make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    ctx = make_components("postgres", clock)
    recorder = ctx.store.ledger_recorder
    views = recorder.inline
    breaks = [1]

    def break_once(tx: Any, head: int, written: Any) -> Any:
        if breaks:
            breaks.pop()
            tx.execute(TERMINATE)  # raises; the recorder catches the views' errors
        return views(tx, head, written) if views else None

    recorder.inline = break_once
    practice = new_practice(ctx)

    assert not breaks  # the connection did break
    events = ctx.store.recorder.select_events(practice.id)
    assert len(events) == practice.version  # written once, by the second attempt


def test_a_table_write_whose_connection_broke_inside_raises(
    make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    ctx = make_components("postgres", clock)
    db = ctx.store.database()
    with pytest.raises(OperationalError, match="not committed"), db.transaction() as tx:
        tx.execute("INSERT INTO relay_position (name, position) VALUES (?, ?)", ("lost", 7))
        with contextlib.suppress(Exception):
            tx.execute(TERMINATE)
    assert db.query("SELECT * FROM relay_position WHERE name = 'lost'") == []


def test_the_views_thread_outlives_the_database_going_away(
    make_components: ComponentsFactory, clock: PinnedClock, postgres_server: str
) -> None:
    """Every connection of the store is cut (as by a PostgreSQL restart) while the views'
    background thread runs: it says so in the log and goes on, and catches up a view that
    was left behind meanwhile (here: saved without the inline views)."""
    ctx = make_components("postgres", clock)
    ctx.projector.start(interval=0.05)
    try:
        database = ctx.store.env.get("POSTGRES_DBNAME")
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            # no new connection for half a second, and every one there is cut
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            try:
                for _ in range(5):
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        (database,),
                    )
                    time.sleep(0.1)
            finally:
                admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        assert ctx.projector.running

        ctx.store.ledger_recorder.inline = None  # left to the thread
        practice = new_practice(ctx)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not ctx.store.database().query(
            "SELECT 1 FROM practices WHERE id = ?", (str(practice.id),)
        ):
            time.sleep(0.05)
        assert ctx.store.database().query(
            "SELECT name FROM practices WHERE id = ?", (str(practice.id),)
        ) == [{"name": "Contract Dental"}]
    finally:
        ctx.projector.stop()
