"""The Deposits view: one row per deposit and its itemised payments and refunds."""

from __future__ import annotations

import json
from datetime import date
from typing import Any, TypedDict
from uuid import UUID

from adapters.sql import Database, Tx, columns_of, row_as, rows_as
from domain.deposits import Deposit
from domain.patients import Patient
from domain.payments import Payment
from projections.base import Projection, handles, iso


class DepositRow(TypedDict):
    """A row of ``deposits``: one batch's deposit (a withdrawal when the net is negative)."""

    id: str
    practice_id: str
    batch_id: str
    batch_date: str
    deposit_date: str
    status: str
    gross_amount: int
    refunds_amount: int
    fees_amount: int
    net_amount: int
    sales_count: int
    refunds_count: int
    account: str
    scheduled_at: str
    paid_at: str | None
    payout_id: str | None
    payout_status: str | None
    payout_arrival_date: str | None
    payout_failure: str | None
    payout_fees_amount: int | None
    payout_differences: str  # JSON: the payout's differences from the deposit
    disputes_amount: int


class DepositItemRow(TypedDict):
    """A row of ``deposit_items``: one line of a deposit (a payment, refund or dispute)."""

    deposit_id: str
    line: int
    kind: str
    payment_id: str
    refund_id: str | None
    occurred_at: str
    patient_id: str | None
    patient_name: str | None
    card_brand: str
    card_last4: str
    transaction_id: str
    amount: int
    fee_amount: int
    net_amount: int
    dispute_id: str | None


class DueDepositRow(TypedDict):
    id: str
    deposit_date: str


class Payout(TypedDict):
    """A deposit's payout at the processor, as shown with it."""

    id: str
    status: str | None
    arrival_date: str | None
    failure: str | None
    fees_amount: int | None
    differences: list[Any]


DEPOSIT_COLUMNS = columns_of(DepositRow)
ITEM_COLUMNS = columns_of(DepositItemRow)


class Deposits(Projection):
    name = "deposits"
    version = 3  # 2: the processor's payout of each deposit (Stripe); 3: dispute lines
    tables = ("deposits", "deposit_items", "deposit_sources", "deposit_patients")
    ddl = (
        """CREATE TABLE IF NOT EXISTS deposits (
            id TEXT PRIMARY KEY,
            practice_id TEXT NOT NULL,
            batch_id TEXT NOT NULL,
            batch_date TEXT NOT NULL,
            deposit_date TEXT NOT NULL,
            status TEXT NOT NULL,
            gross_amount BIGINT NOT NULL,
            refunds_amount BIGINT NOT NULL,
            fees_amount BIGINT NOT NULL,
            net_amount BIGINT NOT NULL,
            sales_count INTEGER NOT NULL,
            refunds_count INTEGER NOT NULL,
            account TEXT NOT NULL,
            scheduled_at TEXT NOT NULL,
            paid_at TEXT,
            payout_id TEXT,
            payout_status TEXT,
            payout_arrival_date TEXT,
            payout_failure TEXT,
            payout_fees_amount BIGINT,
            payout_differences TEXT NOT NULL DEFAULT '[]',
            disputes_amount BIGINT NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX IF NOT EXISTS deposits_by_date ON deposits (practice_id, deposit_date, id)",
        # the latest scheduled deposit (the list's default end) is the index's last entry
        "CREATE INDEX IF NOT EXISTS deposits_by_status_date "
        "ON deposits (practice_id, status, deposit_date)",
        """CREATE TABLE IF NOT EXISTS deposit_items (
            deposit_id TEXT NOT NULL,
            line INTEGER NOT NULL,
            kind TEXT NOT NULL,
            payment_id TEXT NOT NULL,
            refund_id TEXT,
            occurred_at TEXT NOT NULL,
            patient_id TEXT,
            patient_name TEXT,
            card_brand TEXT NOT NULL,
            card_last4 TEXT NOT NULL,
            transaction_id TEXT NOT NULL,
            amount BIGINT NOT NULL,
            fee_amount BIGINT NOT NULL,
            net_amount BIGINT NOT NULL,
            dispute_id TEXT,
            PRIMARY KEY (deposit_id, line)
        )""",
        """CREATE TABLE IF NOT EXISTS deposit_sources (
            id TEXT PRIMARY KEY,
            occurred_at TEXT NOT NULL,
            patient_id TEXT,
            card_brand TEXT NOT NULL,
            card_last4 TEXT NOT NULL,
            transaction_id TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS deposit_patients (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL
        )""",
    )

    @handles(Patient.Registered)
    def patient(self, tx: Tx, e: Patient.Registered, position: int) -> None:
        tx.execute(
            "INSERT INTO deposit_patients (id, name) VALUES (?, ?)",
            (str(e.originator_id), f"{e.first_name} {e.last_name}"),
        )

    @handles(Payment.Captured)
    def captured(self, tx: Tx, e: Payment.Captured, position: int) -> None:
        tx.execute(
            "INSERT INTO deposit_sources (id, occurred_at, patient_id, card_brand, card_last4, "
            "transaction_id) VALUES (?, ?, ?, ?, ?, ?)",
            (
                str(e.originator_id),
                iso(e.at),
                str(e.patient_id) if e.patient_id else None,
                e.card_brand,
                e.card_last4,
                e.transaction_id,
            ),
        )

    @handles(Payment.Refunded)
    def refunded(self, tx: Tx, e: Payment.Refunded, position: int) -> None:
        payment = tx.one(
            "SELECT patient_id, card_brand, card_last4 FROM deposit_sources WHERE id = ?",
            (str(e.originator_id),),
        )
        assert payment is not None, "a refund follows its payment's capture"
        tx.execute(
            "INSERT INTO deposit_sources (id, occurred_at, patient_id, card_brand, card_last4, "
            "transaction_id) VALUES (?, ?, ?, ?, ?, ?)",
            (
                str(e.refund_id),
                iso(e.at),
                payment["patient_id"],
                payment["card_brand"],
                payment["card_last4"],
                e.processor_refund_id,
            ),
        )

    @handles(Deposit.Scheduled)
    def scheduled(self, tx: Tx, e: Deposit.Scheduled, position: int) -> None:
        lines = e.lines
        tx.execute(
            "INSERT INTO deposits (id, practice_id, batch_id, batch_date, deposit_date, status, "
            "gross_amount, refunds_amount, fees_amount, net_amount, sales_count, refunds_count, "
            "account, scheduled_at) VALUES (?, ?, ?, ?, ?, 'scheduled', ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(e.originator_id),
                str(e.practice_id),
                str(e.batch_id),
                e.batch_date,
                e.deposit_date,
                e.gross_amount,
                e.refunds_amount,
                e.fees_amount,
                e.net_amount,
                sum(1 for line in lines if line["kind"] == "payment"),
                sum(1 for line in lines if line["kind"] == "refund"),
                e.account,
                iso(e.at),
            ),
        )
        sources = line_sources(tx, [source_of(line) for line in lines])
        for number, line in enumerate(lines, start=1):
            source = sources.get(source_of(line))
            assert source is not None, "a deposit line follows its payment or refund"
            amount, fee = int(str(line["amount"])), int(str(line["fee_amount"]))
            tx.execute(
                "INSERT INTO deposit_items (deposit_id, line, kind, payment_id, refund_id, "
                "occurred_at, patient_id, patient_name, card_brand, card_last4, transaction_id, "
                "amount, fee_amount, net_amount) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(e.originator_id),
                    number,
                    line["kind"],
                    line["payment_id"],
                    line["refund_id"],
                    source["occurred_at"],
                    source["patient_id"],
                    source["patient_name"],
                    source["card_brand"],
                    source["card_last4"],
                    source["transaction_id"],
                    amount,
                    fee,
                    amount - fee,
                ),
            )

    @handles(Deposit.Paid)
    def paid(self, tx: Tx, e: Deposit.Paid, position: int) -> None:
        tx.execute(
            "UPDATE deposits SET status = 'paid', paid_at = ? WHERE id = ?",
            (iso(e.at), str(e.originator_id)),
        )

    @handles(Deposit.PayoutReconciled)
    def payout_reconciled(self, tx: Tx, e: Deposit.PayoutReconciled, position: int) -> None:
        # the differences of other payouts recorded on this deposit (PayoutAdjusted) stay
        others = [d for d in differences_of(tx, str(e.originator_id)) if d.get("payout_id")]
        tx.execute(
            "UPDATE deposits SET payout_id = ?, payout_status = 'paid', payout_arrival_date = ?, "
            "payout_failure = NULL, payout_fees_amount = ?, payout_differences = ? WHERE id = ?",
            (
                e.payout_id,
                e.arrival_date,
                sum(int(i["stripe_fee"]) for i in e.items),
                json.dumps([*e.differences, *others]),
                str(e.originator_id),
            ),
        )
        for line in e.adjustments or []:
            self.adjustment(tx, str(e.originator_id), line)

    @handles(Deposit.PayoutAdjusted)
    def payout_adjusted(self, tx: Tx, e: Deposit.PayoutAdjusted, position: int) -> None:
        """Another payout's dispute lines and differences, on this deposit."""
        kept = differences_of(tx, str(e.originator_id))
        added = [{**d, "payout_id": e.payout_id} for d in e.differences]
        tx.execute(
            "UPDATE deposits SET payout_differences = ? WHERE id = ?",
            (json.dumps([*kept, *added]), str(e.originator_id)),
        )
        for line in e.adjustments:
            self.adjustment(tx, str(e.originator_id), line)

    def adjustment(self, tx: Tx, deposit_id: str, line: dict[str, Any]) -> None:
        """A dispute's line, added by the payout that carried it."""
        source = tx.one(
            "SELECT s.*, p.name AS patient_name FROM deposit_sources s "
            "LEFT JOIN deposit_patients p ON p.id = s.patient_id WHERE s.id = ?",
            (str(line["payment_id"]),),
        )
        assert source is not None, "a dispute line follows its payment"
        number = tx.one(
            "SELECT COALESCE(MAX(line), 0) + 1 AS n FROM deposit_items WHERE deposit_id = ?",
            (deposit_id,),
        )
        amount, fee = int(line["amount"]), int(line["fee_amount"])
        tx.execute(
            "INSERT INTO deposit_items (deposit_id, line, kind, payment_id, refund_id, "
            "occurred_at, patient_id, patient_name, card_brand, card_last4, transaction_id, "
            "amount, fee_amount, net_amount, dispute_id) "
            "VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                deposit_id,
                int(number["n"]) if number else 1,
                line["kind"],
                str(line["payment_id"]),
                source["occurred_at"],
                source["patient_id"],
                source["patient_name"],
                source["card_brand"],
                source["card_last4"],
                line["balance_transaction"],
                amount,
                fee,
                amount - fee,
                line["dispute_id"],
            ),
        )
        tx.execute(
            "UPDATE deposits SET net_amount = net_amount + ?, fees_amount = fees_amount + ?, "
            "disputes_amount = disputes_amount + ? WHERE id = ?",
            (amount - fee, fee, amount, deposit_id),
        )

    @handles(Deposit.PayoutFailed)
    def payout_failed(self, tx: Tx, e: Deposit.PayoutFailed, position: int) -> None:
        tx.execute(
            "UPDATE deposits SET payout_id = ?, payout_status = 'failed', payout_failure = ? "
            "WHERE id = ?",
            (e.payout_id, f"{e.failure_code}: {e.failure_message}", str(e.originator_id)),
        )


#: deposit lines' sources read per statement
SOURCES_AT_ONCE = 500


def source_of(line: Any) -> str:
    """The id of what a deposit line pays out: its refund's, else its payment's."""
    return str(line["refund_id"] if line["kind"] == "refund" else line["payment_id"])


def line_sources(tx: Tx, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The deposit lines' sources with their patients' names, by id (a few statements for
    a deposit's lines, not one a line)."""
    found: dict[str, dict[str, Any]] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), SOURCES_AT_ONCE):
        chunk = unique[start : start + SOURCES_AT_ONCE]
        rows = tx.execute(
            "SELECT s.*, p.name AS patient_name FROM deposit_sources s "  # noqa: S608
            "LEFT JOIN deposit_patients p ON p.id = s.patient_id "
            f"WHERE s.id IN ({', '.join('?' for _ in chunk)})",
            chunk,
        )
        for row in rows:
            found[str(row["id"])] = row
    return found


def differences_of(tx: Tx, deposit_id: str) -> list[dict[str, Any]]:
    row = tx.one("SELECT payout_differences FROM deposits WHERE id = ?", (deposit_id,))
    found: list[dict[str, Any]] = json.loads((row or {}).get("payout_differences") or "[]")
    return found


def latest_deposit_of_practice(db: Database, practice_id: UUID) -> UUID | None:
    """The practice's deposit of the latest batch date (None before its first)."""
    row = db.query_one(
        "SELECT id FROM deposits WHERE practice_id = ? ORDER BY batch_date DESC, id DESC LIMIT 1",
        (str(practice_id),),
    )
    return UUID(row["id"]) if row else None


def payout_of(row: DepositRow) -> Payout | None:
    """A deposit's payout at the processor, as shown with it (None before any)."""
    payout_id = row.get("payout_id")
    if not payout_id:
        return None
    return {
        "id": payout_id,
        "status": row["payout_status"],
        "arrival_date": row["payout_arrival_date"],
        "failure": row["payout_failure"],
        "fees_amount": row["payout_fees_amount"],
        "differences": json.loads(row["payout_differences"] or "[]"),
    }


def list_deposits(
    db: Database,
    practice_id: UUID,
    *,
    date_from: str,
    date_to: str,
    after: tuple[str, str] | None,
    limit: int,
) -> list[DepositRow]:
    """Newest deposit date first; within a date, newest batch first. `after`: the last
    row's ("deposit_date batch_date", id)."""
    sql = (
        f"SELECT {DEPOSIT_COLUMNS} FROM deposits "  # noqa: S608 (the row type's columns)
        "WHERE practice_id = ? AND deposit_date BETWEEN ? AND ?"
    )
    params: list[Any] = [str(practice_id), date_from, date_to]
    if after:
        sql += " AND (deposit_date || ' ' || batch_date, id) < (?, ?)"
        params.extend(after)
    sql += " ORDER BY deposit_date DESC, batch_date DESC, id DESC LIMIT ?"
    params.append(limit)
    return rows_as(DepositRow, db.query(sql, params))


def latest_scheduled_date(db: Database, practice_id: UUID) -> date | None:
    """The date of the practice's latest scheduled (not yet paid) deposit."""
    row = db.query_one(
        "SELECT MAX(deposit_date) AS latest FROM deposits WHERE practice_id = ? "
        "AND status = 'scheduled'",
        (str(practice_id),),
    )
    return date.fromisoformat(row["latest"]) if row and row["latest"] else None


def get_deposit(db: Database, practice_id: UUID, deposit_id: UUID) -> DepositRow | None:
    row = db.query_one(
        f"SELECT {DEPOSIT_COLUMNS} FROM deposits "  # noqa: S608 (the row type's columns)
        "WHERE practice_id = ? AND id = ?",
        (str(practice_id), str(deposit_id)),
    )
    return row_as(DepositRow, row)


def deposit_items(db: Database, deposit_id: UUID) -> list[DepositItemRow]:
    rows = db.query(
        f"SELECT {ITEM_COLUMNS} FROM deposit_items "  # noqa: S608 (the row type's columns)
        "WHERE deposit_id = ? ORDER BY line",
        (str(deposit_id),),
    )
    return rows_as(DepositItemRow, rows)


def due_deposits(db: Database, practice_id: UUID, local_today: date) -> list[DueDepositRow]:
    rows = db.query(
        "SELECT id, deposit_date FROM deposits WHERE practice_id = ? AND status = 'scheduled' "
        "AND deposit_date <= ? ORDER BY deposit_date, id",
        (str(practice_id), local_today.isoformat()),
    )
    return rows_as(DueDepositRow, rows)


def deposits_of_batch_date(db: Database, practice_id: UUID, batch_date: str) -> list[DepositRow]:
    rows = db.query(
        f"SELECT {DEPOSIT_COLUMNS} FROM deposits "  # noqa: S608 (the row type's columns)
        "WHERE practice_id = ? AND batch_date = ? ORDER BY batch_id",
        (str(practice_id), batch_date),
    )
    return rows_as(DepositRow, rows)


def latest_deposit_of(db: Database, deposit_ids: list[UUID]) -> UUID | None:
    """The deposit of the latest batch date among these (None if none is in the view)."""
    marks = ", ".join("?" for _ in deposit_ids)
    row = db.query_one(
        f"SELECT id FROM deposits WHERE id IN ({marks}) "  # noqa: S608
        "ORDER BY batch_date DESC, id DESC LIMIT 1",
        [str(d) for d in deposit_ids],
    )
    return UUID(row["id"]) if row else None


def batches_matched(db: Database, practice_id: UUID, payout_ids: list[str]) -> set[str]:
    """Which of these payouts (or Clearent batches) a deposit of the practice records."""
    if not payout_ids:
        return set()
    marks = ", ".join("?" for _ in payout_ids)
    rows = db.query(
        f"SELECT payout_id FROM deposits WHERE practice_id = ? AND payout_id IN ({marks})",  # noqa: S608
        [str(practice_id), *payout_ids],
    )
    return {str(r["payout_id"]) for r in rows}
