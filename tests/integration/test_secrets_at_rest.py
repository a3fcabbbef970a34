"""Secrets at rest and in logs: the SQLite files are private to their owner, and pay-link
tokens never reach the access log."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from services.api.access_log import redact_path
from services.api.app import create_app
from services.context import Ledger
from tests.conftest import LedgerFactory


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_files_are_readable_by_their_owner_only(
    make_ledger: LedgerFactory, tmp_path: Path
) -> None:
    old = os.umask(0o022)  # the usual umask: files would be world-readable by default
    try:
        ledger = make_ledger("sqlite")
        with ledger.db.transaction() as tx:
            tx.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    finally:
        os.umask(old)
    files = sorted((tmp_path / "var").glob("payledger.sqlite3*"))
    assert files, "no database file"
    for path in files:
        assert mode(path) & 0o077 == 0, (path.name, oct(mode(path)))
    assert mode(tmp_path / "var") & 0o077 == 0


def test_an_existing_world_readable_database_is_made_private(
    make_ledger: LedgerFactory, tmp_path: Path
) -> None:
    (tmp_path / "var").mkdir()
    database = tmp_path / "var" / "payledger.sqlite3"
    database.touch(mode=0o644)
    database.chmod(0o644)
    make_ledger("sqlite")
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
    make_ledger: LedgerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    ledger: Ledger = make_ledger("sqlite")
    create_app(ledger, scheduler=False)
    access = logging.getLogger("uvicorn.access")
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        # as uvicorn's access logger writes a line
        access.info(
            '%s - "%s %s HTTP/%s" %d', "10.0.0.1:5000", "GET", "/pay/s3cr3tT0ken", "1.1", 200
        )
    assert "s3cr3tT0ken" not in caplog.text
    assert "/pay/[redacted]" in caplog.text
