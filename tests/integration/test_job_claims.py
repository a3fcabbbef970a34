"""A scheduled job's claim (adapters/due_work.py): one holder at a time, across the
schedulers of a database; let go of when the job ends or its holder's connection does."""

from __future__ import annotations

import time

import psycopg

from adapters.due_work import CLAIM_NAMESPACE, AdvisoryClaims, JobClaims, ProcessClaims
from services.context import Components
from tests.conftest import ComponentsFactory


def claims_of(ctx: Components) -> JobClaims:
    return ctx.due_work.claims


def test_one_holder_at_a_time_across_schedulers(
    make_components: ComponentsFactory, backend: str
) -> None:
    one, two = make_components(backend), make_components(backend)  # one database
    mine, theirs = claims_of(one), claims_of(two)
    assert isinstance(mine, AdvisoryClaims if backend == "postgres" else ProcessClaims)
    try:
        assert mine.claim("practice:a")
        assert not mine.claim("practice:a")  # not twice, even by its holder
        assert not theirs.claim("practice:a")
        assert theirs.claim("practice:b")  # another practice is free
        mine.release("practice:a")
        assert theirs.claim("practice:a")
        with one.due_work.claimed("practice:c") as held:
            assert held
            with two.due_work.claimed("practice:c") as also:
                assert not also
        assert theirs.claim("practice:c")  # let go of at the end of the block
    finally:
        mine.close()
        theirs.close()


def test_a_claim_ends_with_its_holders_connection(make_components: ComponentsFactory) -> None:
    one, two = make_components("postgres"), make_components("postgres")
    mine, theirs = claims_of(one), claims_of(two)
    try:
        assert mine.claim("practice:a") and mine.claim("practice:b")
        assert not theirs.claim("practice:a")
        # the server ends the holder's session (a restart, a dropped connection)
        url = one.store.conninfo()
        with psycopg.connect(**url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND classid = %s AND pid <> pg_backend_pid() "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                (CLAIM_NAMESPACE,),
            )
            # pg_terminate_backend only signals: wait until the session is gone
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                row = admin.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND classid = %s AND pid <> pg_backend_pid() AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())",
                    (CLAIM_NAMESPACE,),
                ).fetchone()
                if row is not None and row[0] == 0:
                    break
                time.sleep(0.02)
        assert theirs.claim("practice:b")  # freed with the session
        # the holder's next claim opens a new connection and takes back what its
        # running jobs still hold, where no one took it meanwhile
        assert mine.claim("practice:c")
        assert not theirs.claim("practice:a")
        mine.release("practice:a")
        assert theirs.claim("practice:a")
    finally:
        mine.close()
        theirs.close()
