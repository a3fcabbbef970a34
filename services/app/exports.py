"""CSV exports for the practice's accountant: transactions, deposits with their items,
payment requests.

Every cell goes through `spreadsheet_cell`: a text that a spreadsheet would read as a
formula (it begins with `=`, `+`, `-`, `@`, a tab, a carriage return or a line feed, or
the full-width forms of the first four) is written with a leading `'`, so that a
patient named `=HYPERLINK(...)` is shown as text, never run (OWASP, CSV injection).
Amounts are written by us as numbers (`Decimal`, e.g. -12.50 for a refund) and stay
numbers: only text is changed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from domain.money import Money
from projections.deposits import deposit_items, list_deposits
from projections.requests import list_requests
from projections.transactions import list_transactions
from services.context import Reading


class Needs(Reading, Protocol):
    """The parts these use cases are given (services/context.py)."""


PAGE = 500

TRANSACTION_COLUMNS = [
    "id",
    "occurred_at",
    "date",
    "status",
    "method",
    "amount",
    "refunded_amount",
    "card_brand",
    "card_last4",
    "transaction_id",
    "decline_reason",
    "patient_id",
    "patient_name",
    "association",
    "pms_reference",
    "batch_id",
    "deposit_id",
]
DEPOSIT_COLUMNS = [
    "deposit_id",
    "deposit_date",
    "status",
    "batch_date",
    "account",
    "deposit_gross_amount",
    "deposit_refunds_amount",
    "deposit_fees_amount",
    "deposit_net_amount",
    "line",
    "kind",
    "payment_id",
    "refund_id",
    "occurred_at",
    "patient_name",
    "card_last4",
    "transaction_id",
    "amount",
    "fee_amount",
    "net_amount",
]


#: what a spreadsheet takes as the start of a formula (or of a cell it re-reads as one)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def dollars(cents: Any) -> Decimal:
    """An amount as a number in dollars with cents (Decimal('-12.50')): written as it is,
    since a number is never a formula."""
    return Decimal(Money(int(cents)).dollars())


def spreadsheet_cell(value: Any) -> Any:
    """A cell as written to a CSV file: text that would start a formula gets a leading
    `'` (shown as text by spreadsheets); numbers, empty cells and other text unchanged.
    The one place every CSV cell of the service passes through."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SpreadsheetSafeWriter:
    """`csv.writer` whose every row passes through `spreadsheet_cell`."""

    def __init__(self, stream: io.StringIO) -> None:
        self._writer = csv.writer(stream)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([spreadsheet_cell(cell) for cell in row])


def transactions_rows(
    ctx: Needs, practice_id: UUID, date_from: str, date_to: str
) -> Iterator[list[Any]]:
    after: tuple[str, str] | None = None
    while True:
        rows = ctx.reads(
            list_transactions,
            practice_id,
            date_from=date_from,
            date_to=date_to,
            association=None,
            patient_id=None,
            after=after,
            limit=PAGE,
        )
        for r in rows:
            yield [
                r["id"],
                r["occurred_at"],
                r["local_date"],
                r["status"],
                r["method"],
                dollars(r["amount"]),
                dollars(r["refunded_amount"]),
                r["card_brand"],
                r["card_last4"],
                r["transaction_id"],
                r["decline_reason"],
                r["patient_id"],
                r["patient_name"],
                r["association"],
                r["pms_reference"],
                r["batch_id"],
                r["deposit_id"],
            ]
        if len(rows) < PAGE:
            return
        after = (rows[-1]["occurred_at"], rows[-1]["id"])


def deposits_rows(
    ctx: Needs, practice_id: UUID, date_from: str, date_to: str
) -> Iterator[list[Any]]:
    after: tuple[str, str] | None = None
    while True:
        deposits = ctx.reads(
            list_deposits,
            practice_id,
            date_from=date_from,
            date_to=date_to,
            after=after,
            limit=PAGE,
        )
        for d in deposits:
            head = [
                d["id"],
                d["deposit_date"],
                d["status"],
                d["batch_date"],
                d["account"],
                dollars(d["gross_amount"]),
                dollars(d["refunds_amount"]),
                dollars(d["fees_amount"]),
                dollars(d["net_amount"]),
            ]
            for i in ctx.reads(deposit_items, UUID(d["id"])):
                yield [
                    *head,
                    i["line"],
                    i["kind"],
                    i["payment_id"],
                    i["refund_id"],
                    i["occurred_at"],
                    i["patient_name"],
                    i["card_last4"],
                    i["transaction_id"],
                    dollars(i["amount"]),
                    dollars(i["fee_amount"]),
                    dollars(i["net_amount"]),
                ]
        if len(deposits) < PAGE:
            return
        after = (deposits[-1]["deposit_date"], deposits[-1]["id"])


REQUEST_COLUMNS = [
    "id",
    "date",
    "sent_at",
    "patient_id",
    "patient_name",
    "channel",
    "amount",
    "paid_amount",
    "status",
    "cancel_reason",
    "expires_at",
    "payment_id",
    "reminders_sent",
]


def requests_rows(
    ctx: Needs, practice_id: UUID, date_from: str, date_to: str
) -> Iterator[list[Any]]:
    after: tuple[str, str] | None = None
    while True:
        rows = ctx.reads(
            list_requests,
            practice_id,
            date_from=date_from,
            date_to=date_to,
            status=None,
            patient_id=None,
            after=after,
            limit=PAGE,
        )
        for r in rows:
            paid = dollars(r["paid_amount"]) if r["paid_amount"] is not None else ""
            yield [
                r["id"],
                r["requested_date"],
                r["sent_at"],
                r["patient_id"],
                r["patient_name"],
                r["channel"],
                dollars(r["amount"]),
                paid,
                r["status"],
                r["cancel_reason"],
                r["expires_at"],
                r["payment_id"],
                r["reminders_sent"],
            ]
        if len(rows) < PAGE:
            return
        after = (rows[-1]["sent_at"], rows[-1]["id"])


Rows = Callable[[Needs, UUID, str, str], Iterator[list[Any]]]

#: view name -> (columns, rows); amounts in the CSV are dollars with cents ("125.00")
VIEWS: dict[str, tuple[list[str], Rows]] = {
    "transactions": (TRANSACTION_COLUMNS, transactions_rows),
    "deposits": (DEPOSIT_COLUMNS, deposits_rows),
    "payment-requests": (REQUEST_COLUMNS, requests_rows),
}


def export_csv(
    ctx: Needs, view: str, practice_id: UUID, date_from: str, date_to: str
) -> Iterator[str]:
    columns, rows = VIEWS[view]
    buffer = io.StringIO()
    writer = SpreadsheetSafeWriter(buffer)
    writer.writerow(columns)
    for row in rows(ctx, practice_id, date_from, date_to):
        writer.writerow(row)
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
