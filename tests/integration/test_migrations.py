"""A database made before migrations existed is upgraded without losing a row; the
durable tables are made by migrations only, at start-up and by `payledger migrate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.migrations import MIGRATIONS, applied
from adapters.store import StoreConfig, open_store
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


def settings_for(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    return Settings(
        data_dir=tmp_path / "var",
        database_url=url,
        operator_token=OPERATOR_TOKEN,
        run_scheduler=False,
    )


def make_old_database(settings: Settings, *, added_columns: bool) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(StoreConfig(settings.database_url, settings.sqlite_path))
    try:
        with store.database().transaction() as tx:
            for statement in OLD_DDL + (ADDED if added_columns else ()):
                tx.execute(statement)
            tx.execute(f"INSERT INTO writeback_journal VALUES ({', '.join('?' * 18)})", JOURNAL)
            tx.execute(
                "INSERT INTO idempotency_keys (scope, key, fingerprint, status_code, "
                "content_type, body, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                KEY,
            )
            tx.execute("INSERT INTO pms_connections VALUES (?, ?, ?)", CONNECTION)
            tx.execute("INSERT INTO sandbox_clock VALUES (?, ?)", ("p1", 3600.0))
    finally:
        store.close()


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
        assert applied(db) == [m.version for m in MIGRATIONS]
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


def test_migrate_applies_each_migration_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "var")
    assert main(["--data-dir", data, "migrate"]) == 0
    last = MIGRATIONS[-1].version
    assert capsys.readouterr().out.strip() == (
        f"applied {', '.join(str(m.version) for m in MIGRATIONS)}; schema at version {last}"
    )
    assert main(["--data-dir", data, "migrate"]) == 0
    assert capsys.readouterr().out.strip() == f"applied nothing; schema at version {last}"
