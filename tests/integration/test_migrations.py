"""The durable tables are made by Alembic's revisions only, at start-up and by
`payledger migrate`: a database made before migrations existed, or migrated by the
numbered migrator that came before Alembic, is upgraded without losing a row and
without running again the DDL it has; every revision applies on an empty database,
and each way to the head gives the same schema."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from importlib import import_module
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory

from adapters import migrations
from adapters.migrations import OLD_VERSIONS, alembic_config, applied, head, migrate, migrating
from adapters.sql import Database, Tx
from adapters.store import EventStore, StoreConfig, open_store
from services.bootstrap import build_components
from services.cli import main
from services.settings import Settings
from tests.conftest import OPERATOR_TOKEN, PinnedClock

#: the durable tables as the code made them before migrations (one statement each)
OLD_DDL = (
    """CREATE TABLE IF NOT EXISTS projection_tracking (
        name TEXT PRIMARY KEY, position BIGINT NOT NULL, schema TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS writeback_journal (
        id TEXT PRIMARY KEY, practice_id TEXT NOT NULL, pms TEXT NOT NULL, kind TEXT NOT NULL,
        payment_id TEXT, depends_on TEXT, position BIGINT NOT NULL, payload TEXT NOT NULL,
        status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        outcome_unknown INTEGER NOT NULL DEFAULT 0, last_error TEXT, pms_reference TEXT,
        next_attempt_at TEXT NOT NULL, claimed_until TEXT, first_attempt_at TEXT,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS writeback_due ON writeback_journal "
    "(pms, status, next_attempt_at, position)",
    """CREATE TABLE IF NOT EXISTS pms_connections (
        practice_id TEXT PRIMARY KEY, config TEXT NOT NULL, updated_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,
        status_code INTEGER, content_type TEXT, body TEXT, claimed_at TEXT NOT NULL,
        PRIMARY KEY (scope, key))""",
    """CREATE TABLE IF NOT EXISTS sandbox_clock (
        practice_id TEXT PRIMARY KEY, offset_seconds DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS outbox (
        id TEXT PRIMARY KEY, practice_id TEXT, channel TEXT NOT NULL, recipient TEXT NOT NULL,
        subject TEXT, body TEXT NOT NULL, sent_at TEXT NOT NULL)""",
)
#: what the code of the time added to idempotency keys on start-up
ADDED = (
    "ALTER TABLE idempotency_keys ADD COLUMN claimant TEXT",
    "ALTER TABLE idempotency_keys ADD COLUMN secrets TEXT",
)
JOURNAL = (
    "j1",
    "p1",
    "opendental",
    "payment",
    "pay1",
    None,
    7,
    '{"amount": 1250}',
    "pending",
    2,
    0,
    "timeout",
    None,
    "2026-03-04T05:06:07.000000Z",
    None,
    "2026-03-04T05:00:00.000000Z",
    "2026-03-04T04:00:00.000000Z",
    "2026-03-04T05:00:00.000000Z",
)
KEY = ("practice:p1", "key-1", "f" * 64, 201, "application/json", '{"id": "x"}', "2026-03-04")
#: kept in clear by the old version: sealed at start-up, and still the same settings
CONFIG = {"opendental": {"base_url": "https://od.example/api/v1", "customer_key": "ck-1"}}
CONNECTION = ("p1", json.dumps(CONFIG), "2026-03-04T05:00:00.000000Z")

#: every revision, oldest first
REVISIONS = [r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()][
    ::-1
]

#: The numbered migrator's versions (adapters/migrations.py before Alembic), statement
#: for statement: version 1 moved unchanged into revision 0001.
NUMBERED: dict[int, tuple[str, ...]] = {
    1: import_module("adapters.migrations.versions.0001_durable_tables").BASELINE,
    2: ADDED,
    3: (
        """CREATE TABLE IF NOT EXISTS stripe_events (
        id TEXT PRIMARY KEY, type TEXT NOT NULL, account TEXT, created BIGINT NOT NULL,
        received_at TEXT NOT NULL, payload TEXT NOT NULL, applied_at TEXT, outcome TEXT)""",
        "CREATE INDEX IF NOT EXISTS stripe_events_pending "
        "ON stripe_events (applied_at, received_at)",
    ),
}
NUMBERED_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""

#: the durable tables (docs/design.md, "Tables"), as the head revision makes them
DURABLE = {
    "projection_tracking",
    "writeback_journal",
    "writeback_practices",
    "writeback_patients",
    "writeback_status",
    "pms_connections",
    "idempotency_keys",
    "user_logins",
    "web_sessions",
    "login_failures",
    "sandbox_clock",
    "mailbox",
    "pay_attempt_windows",
    "due_work_status",
    "relay_position",
    "stripe_events",
    "second_factors",
    "recovery_codes",
    "security_log",
}


def settings_for(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    return Settings(
        data_dir=tmp_path / "var",
        database_url=url,
        operator_token=OPERATOR_TOKEN,
        run_scheduler=False,
    )


@contextmanager
def opened(settings: Settings) -> Iterator[EventStore]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(StoreConfig(settings.database_url, settings.sqlite_path))
    try:
        yield store
    finally:
        store.close()


def insert_rows(tx: Tx) -> None:
    tx.execute(f"INSERT INTO writeback_journal VALUES ({', '.join('?' * 18)})", JOURNAL)
    tx.execute(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, status_code, "
        "content_type, body, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        KEY,
    )
    tx.execute("INSERT INTO pms_connections VALUES (?, ?, ?)", CONNECTION)
    tx.execute("INSERT INTO sandbox_clock VALUES (?, ?)", ("p1", 3600.0))


def make_old_database(settings: Settings, *, added_columns: bool) -> None:
    with opened(settings) as store, store.database().transaction() as tx:
        for statement in OLD_DDL + (ADDED if added_columns else ()):
            tx.execute(statement)
        insert_rows(tx)


def make_numbered_database(settings: Settings, version: int) -> None:
    """A database as the numbered migrator left it at `version`, with rows."""
    with opened(settings) as store, store.database().transaction() as tx:
        tx.execute(NUMBERED_TABLE)
        for each in range(1, version + 1):
            for statement in NUMBERED[each]:
                tx.execute(statement)
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (each, f"version {each}", "2026-03-01T00:00:00+00:00"),
            )
        insert_rows(tx)
        # Made by version 1 and dropped here: were version 1's DDL run again (IF NOT
        # EXISTS leaves the tables as they are), the index would be back.
        tx.execute("DROP INDEX outbox_by_practice")


def index_exists(db: Database, name: str) -> bool:
    if db.postgres:
        sql = "SELECT indexname FROM pg_indexes WHERE indexname = ?"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND name = ?"
    return bool(db.query(sql, (name,)))


def schema(db: Database) -> dict[str, list[str]]:
    """Each durable table's columns, in order, and each index (as table "index <name>")."""
    if db.postgres:
        rows = db.query(
            "SELECT table_name AS t, column_name AS c FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        )
        indexes = db.query(
            "SELECT tablename AS t, indexname AS i FROM pg_indexes "
            "WHERE schemaname = current_schema()"
        )
    else:
        rows = db.query(
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p "
            "WHERE m.type = 'table' ORDER BY m.name, p.cid"
        )
        indexes = db.query(
            "SELECT tbl_name AS t, name AS i FROM sqlite_master "
            "WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'"
        )
    found: dict[str, list[str]] = {}
    for row in rows:
        if row["t"] in DURABLE:
            found.setdefault(row["t"], []).append(row["c"])
    for row in indexes:
        if row["t"] in DURABLE:
            found[f"index {row['i']}"] = [row["t"]]
    return found


@pytest.mark.parametrize("added_columns", [True, False], ids=["latest", "first"])
def test_an_old_database_is_upgraded_without_losing_a_row(
    tmp_path: Path,
    backend: str,
    request: pytest.FixtureRequest,
    clock: PinnedClock,
    added_columns: bool,
) -> None:
    settings = settings_for(tmp_path, backend, request)
    make_old_database(settings, added_columns=added_columns)
    ctx = build_components(settings, real_clock=clock)
    try:
        db = ctx.store.database()
        assert applied(ctx.store) == REVISIONS
        journal = db.query("SELECT * FROM writeback_journal")
        assert [tuple(row.values()) for row in journal] == [JOURNAL]
        keys = db.query(
            "SELECT scope, key, fingerprint, status_code, content_type, body, claimed_at, "
            "claimant, secrets FROM idempotency_keys"
        )
        assert [tuple(row.values()) for row in keys] == [(*KEY, None, None)]
        [connection] = db.query("SELECT * FROM pms_connections")
        assert connection["practice_id"] == "p1" and "ck-1" not in connection["config"]
        assert ctx.pms_connections.of("p1") == CONFIG
        assert db.query("SELECT offset_seconds FROM sandbox_clock") == [{"offset_seconds": 3600.0}]
        # the tables the old database lacked are there too
        assert db.query("SELECT COUNT(*) AS n FROM web_sessions") == [{"n": 0}]
    finally:
        ctx.store.close()


def read_rows(db: Database) -> None:
    journal = db.query("SELECT * FROM writeback_journal")
    assert [tuple(row.values()) for row in journal] == [JOURNAL]
    keys = db.query(
        "SELECT scope, key, fingerprint, status_code, content_type, body, claimed_at "
        "FROM idempotency_keys"
    )
    assert [tuple(row.values()) for row in keys] == [KEY]
    assert db.query("SELECT offset_seconds FROM sandbox_clock") == [{"offset_seconds": 3600.0}]


@pytest.mark.parametrize("version", sorted(OLD_VERSIONS))
def test_a_database_of_the_numbered_migrator_is_adopted_at_its_revision(
    tmp_path: Path,
    backend: str,
    request: pytest.FixtureRequest,
    clock: PinnedClock,
    version: int,
) -> None:
    settings = settings_for(tmp_path, backend, request)
    make_numbered_database(settings, version)
    with opened(settings) as store:
        db = store.database()
        # stamped at its revision: only the later revisions run
        assert migrate(store) == REVISIONS[version:]
        assert applied(store) == REVISIONS
        assert db.query("SELECT version_num FROM alembic_version") == [{"version_num": head()}]
        # version 1's DDL did not run again (its index would be back, renamed by 0008)
        assert not index_exists(db, "mailbox_by_practice")
        assert index_exists(db, "stripe_events_pending")
        # the numbered migrator's table stays, as it was
        versions = db.query("SELECT version FROM schema_migrations ORDER BY version")
        assert [row["version"] for row in versions] == list(range(1, version + 1))
        read_rows(db)
        assert migrate(store) == []
    ctx = build_components(settings, real_clock=clock)
    try:
        read_rows(ctx.store.database())
        assert ctx.pms_connections.of("p1") == CONFIG
        keys = ctx.store.database().query("SELECT claimant, secrets FROM idempotency_keys")
        assert keys == [{"claimant": None, "secrets": None}]
    finally:
        ctx.store.close()


def test_a_version_the_revisions_do_not_know_is_refused(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    settings = settings_for(tmp_path, backend, request)
    make_numbered_database(settings, 3)
    with opened(settings) as store:
        with store.database().transaction() as tx:
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (4, "a version of another branch", "2026-03-02T00:00:00+00:00"),
            )
        with pytest.raises(RuntimeError, match="version 4"):
            migrate(store)
        assert applied(store) == []  # nothing stamped, nothing run


def test_every_revision_applies_in_turn_on_an_empty_database(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """Each revision on its own, in order, on an empty database; only 0008 can be undone
    (docs/design.md, "Migrations")."""
    with opened(settings_for(tmp_path, backend, request)) as store:
        for done, revision in enumerate(REVISIONS, start=1):
            with migrating(store) as connection:
                command.upgrade(alembic_config(connection), revision)
            assert applied(store) == REVISIONS[:done]
        assert set(schema(store.database())) >= DURABLE
        assert migrate(store) == []


MESSAGE = ("m1", "p1", "email", "ruth@example.com", "Your receipt", "Paid $12.50", "2026-03-04")


def test_0008_renames_the_sandbox_mailbox_and_back_keeping_its_rows(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """The one revision that can be undone: `outbox` becomes `mailbox` (its index too) with
    every row, and the downgrade (a release rolled back) names them back."""
    with opened(settings_for(tmp_path, backend, request)) as store:
        db = store.database()
        with migrating(store) as connection:
            command.upgrade(alembic_config(connection), "0007")
        with db.transaction() as tx:
            tx.execute(f"INSERT INTO outbox VALUES ({', '.join('?' * 7)})", MESSAGE)

        assert migrate(store) == ["0008"]
        assert [tuple(r.values()) for r in db.query("SELECT * FROM mailbox")] == [MESSAGE]
        assert index_exists(db, "mailbox_by_practice")
        assert not index_exists(db, "outbox_by_practice")
        assert "outbox" not in schema(db)
        assert not any("outbox" in name for name in schema(db))  # its primary key's too

        with migrating(store) as connection:
            command.downgrade(alembic_config(connection), "0007")
        assert applied(store) == REVISIONS[: REVISIONS.index("0007") + 1]
        assert [tuple(r.values()) for r in db.query("SELECT * FROM outbox")] == [MESSAGE]
        assert index_exists(db, "outbox_by_practice")
        assert not index_exists(db, "mailbox_by_practice")
        assert not any("mailbox" in name for name in schema(db))

        assert migrate(store) == ["0008"]  # and up again
        assert [tuple(r.values()) for r in db.query("SELECT * FROM mailbox")] == [MESSAGE]
        assert index_exists(db, "mailbox_by_practice")


def db_tables(store: EventStore) -> set[str]:
    return {t for t in schema(store.database()) if not t.startswith("index ")}


def test_the_revisions_before_0008_refuse_to_be_undone(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    with opened(settings_for(tmp_path, backend, request)) as store:
        migrate(store)
        # to 0006: 0008's downgrade runs, then 0007's refuses, and the one transaction
        # is undone
        with pytest.raises(NotImplementedError, match="not supported"), migrating(store) as c:
            command.downgrade(alembic_config(c), "0006")
        assert applied(store) == REVISIONS
        assert db_tables(store) >= {"mailbox"}


@pytest.fixture
def databases(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], Settings]]:
    """Settings for a database of its own each call: a data dir on SQLite, a database
    made on the server (dropped at the end) on PostgreSQL."""
    made: list[str] = []

    def new(name: str) -> Settings:
        url = None
        if backend == "postgres":
            admin = request.getfixturevalue("postgres_server")
            database = f"payledger_test_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{database}"')
            made.append(database)
            url = f"{admin.rsplit('/', 1)[0]}/{database}"
        return Settings(
            data_dir=tmp_path / name,
            database_url=url,
            operator_token=OPERATOR_TOKEN,
            run_scheduler=False,
        )

    yield new
    if made:
        with psycopg.connect(request.getfixturevalue("postgres_server"), autocommit=True) as conn:
            for database in made:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_every_way_to_the_head_gives_the_same_schema(
    databases: Callable[[str], Settings],
) -> None:
    """From an empty database, from one made before migrations, and from one the numbered
    migrator left at each of its versions: the same durable tables, columns and indexes."""
    ways: dict[str, dict[str, list[str]]] = {}
    for way in ("empty", "before migrations", *(f"numbered {v}" for v in OLD_VERSIONS)):
        settings = databases(way.replace(" ", "-"))
        if way == "before migrations":
            make_old_database(settings, added_columns=False)
        elif way.startswith("numbered"):
            make_numbered_database(settings, int(way.split()[1]))
        with opened(settings) as store:
            migrate(store)
            ways[way] = schema(store.database())
    made = ways.pop("empty")
    assert {t for t in made if not t.startswith("index ")} == DURABLE
    for way, found in ways.items():
        # a numbered database lost outbox_by_practice on purpose (make_numbered_database),
        # and so has no mailbox_by_practice (0008 renames the index where it is)
        missing = {"index mailbox_by_practice"} if way.startswith("numbered") else set()
        assert found == {k: v for k, v in made.items() if k not in missing}, way


def test_processes_starting_at_once_migrate_once(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """Three stores (as three processes would have) migrate an empty database at once:
    one applies every revision, the others wait for it and find nothing left to do."""
    settings = settings_for(tmp_path, backend, request)
    results: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3, timeout=30)

    def start_up(store: EventStore) -> None:
        try:
            start.wait()
            results.append(migrate(store))
        except BaseException as error:
            errors.append(error)

    with ExitStack() as stores:
        # one after the other: the event store makes its own table when opened
        threads = [
            threading.Thread(target=start_up, args=(stores.enter_context(opened(settings)),))
            for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    assert sorted(results) == [[], [], REVISIONS]


def test_at_the_head_nothing_but_one_query_runs(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    with opened(settings_for(tmp_path, backend, request)) as store:
        assert migrate(store) == REVISIONS

        def no_engine(store: EventStore) -> None:
            raise AssertionError("an engine was made for a schema at its head")

        monkeypatch.setattr(migrations, "engine_for", no_engine)
        assert migrate(store) == []


def test_the_revisions_are_named_numbered_and_chained() -> None:
    """Each file is NNNN_slug.py with revision "NNNN", revising the one before: the fast
    path reads the head from the files' names."""
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [head()]
    files = sorted(p for p in migrations.VERSIONS.glob("*.py") if p.name != "__init__.py")
    assert [p.name[:4] for p in files] == [f"{n:04d}" for n in range(1, len(files) + 1)]
    previous = None
    for path in files:
        revision = script.get_revision(path.name[:4])
        assert revision is not None and Path(revision.path).name == path.name
        assert revision.down_revision == previous
        previous = revision.revision
    assert [p.name[:4] for p in files] == REVISIONS
    assert all(OLD_VERSIONS[v] == REVISIONS[v - 1] for v in OLD_VERSIONS)


def test_migrate_applies_each_revision_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "var")
    assert main(["--data-dir", data, "migrate"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"applied {', '.join(REVISIONS)}; schema at revision {head()}"
    )
    assert main(["--data-dir", data, "migrate"]) == 0
    assert capsys.readouterr().out.strip() == f"applied nothing; schema at revision {head()}"
