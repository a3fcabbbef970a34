"""Secrets at rest and in logs: the SQLite files are private to their owner, and pay-link
tokens never reach the access log."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from services.asgi import create_app
from services.context import Components
from services.http.access_log import redact_path
from tests.conftest import ComponentsFactory


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_files_are_readable_by_their_owner_only(
    make_components: ComponentsFactory, tmp_path: Path
) -> None:
    old = os.umask(0o022)  # the usual umask: files would be world-readable by default
    try:
        ctx = make_components("sqlite")
        with ctx.store.database().transaction() as tx:
            tx.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    finally:
        os.umask(old)
    files = sorted((tmp_path / "var").glob("payledger.sqlite3*"))
    assert files, "no database file"
    for path in files:
        assert mode(path) & 0o077 == 0, (path.name, oct(mode(path)))
    assert mode(tmp_path / "var") & 0o077 == 0


def test_an_existing_world_readable_database_is_made_private(
    make_components: ComponentsFactory, tmp_path: Path
) -> None:
    (tmp_path / "var").mkdir()
    database = tmp_path / "var" / "payledger.sqlite3"
    database.touch(mode=0o644)
    database.chmod(0o644)
    make_components("sqlite")
    assert mode(database) == 0o600


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/pay/AbC-123_xyz", "/pay/[redacted]"),
        ("/pay/AbC-123_xyz?x=1", "/pay/[redacted]?x=1"),
        ("/v1/payments", "/v1/payments"),
    ],
)
def test_pay_link_tokens_are_redacted_from_paths(path: str, logged: str) -> None:
    assert redact_path(path) == logged


def test_the_access_log_holds_no_pay_link_token(
    make_components: ComponentsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    ctx: Components = make_components("sqlite")
    create_app(ctx, scheduler=False)
    access = logging.getLogger("uvicorn.access")
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        # as uvicorn's access logger writes a line
        access.info(
            '%s - "%s %s HTTP/%s" %d', "10.0.0.1:5000", "GET", "/pay/s3cr3tT0ken", "1.1", 200
        )
    assert "s3cr3tT0ken" not in caplog.text
    assert "/pay/[redacted]" in caplog.text


# -- PMS keys ---------------------------------------------------------------------------

KEYS = {
    "base_url": "http://od.example/api/v1",
    "developer_key": "dev-Secret-1",
    "customer_key": "cust-Secret-2",
}


def test_pms_keys_are_kept_sealed_and_read_back(make_components: ComponentsFactory) -> None:
    ctx: Components = make_components("sqlite")
    ctx.pms_connections.keep("p1", {"opendental": KEYS})
    stored = ctx.store.database().query_one(
        "SELECT config FROM pms_connections WHERE practice_id = 'p1'"
    )
    assert stored is not None
    assert "dev-Secret-1" not in stored["config"] and "cust-Secret-2" not in stored["config"]
    assert stored["config"].startswith("sealed:v1:")
    assert ctx.pms_connections.of("p1") == {"opendental": KEYS}


def test_keys_kept_in_clear_by_an_older_version_are_sealed_at_start(
    make_components: ComponentsFactory,
) -> None:
    first: Components = make_components("sqlite")
    with first.store.database().transaction() as tx:
        tx.execute(
            "INSERT INTO pms_connections (practice_id, config, updated_at) VALUES (?, ?, ?)",
            ("p1", json.dumps({"opendental": KEYS}), "2026-01-01T00:00:00.000000Z"),
        )
    first.store.close()
    again: Components = make_components("sqlite")
    stored = again.store.database().query_one(
        "SELECT config FROM pms_connections WHERE practice_id = 'p1'"
    )
    assert stored is not None and "dev-Secret-1" not in stored["config"]
    assert again.pms_connections.of("p1") == {"opendental": KEYS}


def test_keys_sealed_under_another_secret_key_read_as_no_connection(
    make_components: ComponentsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    first: Components = make_components("sqlite", secret_key="the-first-key")
    first.pms_connections.keep("p1", {"opendental": KEYS})
    first.store.close()
    again: Components = make_components("sqlite", secret_key="another-key")
    with caplog.at_level(logging.ERROR):
        assert again.pms_connections.of("p1") == {}
    assert "unreadable" in caplog.text and "dev-Secret-1" not in caplog.text
