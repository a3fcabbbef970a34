"""No full card number or CVC in storage or logs, whatever happens to the payment."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api

NUMBERS = ["4242424242424242", "4000000000000002", "4000000000009995"]
CVC = "9071"


def exercise(api: Api) -> None:
    for number in NUMBERS:
        body = {
            "method": "virtual_terminal",
            "amount": 5000,
            "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": CVC},
        }
        assert api.post("/v1/payments", body).status_code == 201
    # a refused one too (bad amount) with the card in the body
    body = {
        "method": "virtual_terminal",
        "amount": -1,
        "card": {"number": NUMBERS[0], "exp_month": 12, "exp_year": 2030, "cvc": CVC},
    }
    refused = api.post("/v1/payments", body)
    assert refused.status_code == 422
    assert NUMBERS[0] not in refused.text
    paid = api.pay(7000).json()
    api.post(
        f"/v1/payments/{paid['id']}/receipt/send",
        {"email": "p@example.com", "confirm_email": "p@example.com"},
    )
    api.advance(86400)
    api.post(f"/v1/payments/{paid['id']}/refund", {"amount": 100})


def test_sqlite_file_and_logs_hold_no_card_number(
    api_for: Any, clock: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = api_for("sqlite", clock).setup()
    exercise(api)
    files = list((tmp_path / "var").glob("payledger.sqlite3*"))
    assert files, "the store should be in the data dir"
    for path in files:
        data = path.read_bytes()
        for number in NUMBERS:
            assert number.encode() not in data, f"{number} found in {path.name}"
    for number in NUMBERS:
        assert number not in caplog.text
    assert f'"{CVC}"' not in caplog.text


def test_postgres_tables_hold_no_card_number(
    api_for: Any, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = api_for("postgres", clock).setup()
    exercise(api)
    db = api.client.app.state.ctx.store.database()  # type: ignore[attr-defined]
    tables = [
        r["table_name"]
        for r in db.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    ]
    assert "payledger_events" in tables
    for table in tables:
        for row in db.query(f"SELECT * FROM {table}"):
            text = repr(row)  # bytes columns (event state) show their ASCII text here
            for number in NUMBERS:
                assert number not in text, f"{number} found in {table}"
    for number in NUMBERS:
        assert number not in caplog.text
