"""The read side's own pool, on SQLite and PostgreSQL: reads see what was committed, a
read changes nothing, placeholders are translated outside literals only, and a pool
whose connections the server ended reads again (a one-statement read is repeated on a
new connection; each broken connection is dropped)."""

from __future__ import annotations

import psycopg
import pytest

from services.context import Components
from tests.conftest import ComponentsFactory


def test_a_read_sees_what_a_write_committed(ctx: Components) -> None:
    with ctx.store.database().transaction() as tx:
        tx.execute("INSERT INTO relay_position (name, position) VALUES (?, ?)", ("read-pool", 7))
    row = ctx.store.database().query_one(
        "SELECT position FROM relay_position WHERE name = ?", ("read-pool",)
    )
    assert row is not None and int(row["position"]) == 7


def test_a_read_changes_nothing(ctx: Components) -> None:
    with ctx.store.database().reading() as tx:
        tx.execute("INSERT INTO relay_position (name, position) VALUES (?, ?)", ("read-only", 1))
    assert (
        ctx.store.database().query("SELECT * FROM relay_position WHERE name = ?", ("read-only",))
        == []
    )


def test_a_question_mark_in_a_literal_is_not_a_placeholder(ctx: Components) -> None:
    row = ctx.store.database().query_one("SELECT 'why?' AS q, ? AS v, '100%' AS p", ("ok",))
    assert row == {"q": "why?", "v": "ok", "p": "100%"}


def end_connections(url: str, dbname: str) -> None:
    """What a server restart does to the pool: every connection to the database ended."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        )


def test_reads_come_back_after_the_server_ends_the_pools_connections(
    make_components: ComponentsFactory,
) -> None:
    ctx = make_components("postgres")
    url = ctx.settings.database_url
    assert url is not None
    dbname = url.rsplit("/", 1)[1]
    for _ in range(3):  # a few connections into the pool, idle
        ctx.store.database().query("SELECT 1 AS ok")
    end_connections(url, dbname)
    # a read is repeated on a new connection: the caller sees no failure, and the stale
    # connections are gone from the pool
    assert ctx.store.database().query_one("SELECT 1 AS ok") == {"ok": 1}
    assert ctx.store.database().query("SELECT 2 AS ok") == [{"ok": 2}]
    # a read in a transaction of several statements cannot be repeated for its caller: a
    # connection ended under it fails that read once, then is dropped
    for _ in range(3):
        ctx.store.database().query("SELECT 1 AS ok")
    end_connections(url, dbname)
    failures = 0
    for _ in range(10):
        try:
            with ctx.store.database().reading() as tx:
                assert tx.one("SELECT 1 AS ok") == {"ok": 1}
            break
        except psycopg.OperationalError:
            failures += 1
    else:
        pytest.fail("the pool never read again")
    assert 1 <= failures <= 5  # the ended ones fail once each, then are dropped
