"""The Transactions view, its refunds, and the unassociated-count badge."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypedDict
from uuid import UUID

from adapters.sql import Database, Tx, columns_of, rows_as
from domain.deposits import deposit_id_for
from domain.money import MAX_AMOUNT_CENTS
from domain.patients import Patient
from domain.payments import Payment, Status
from domain.posting import (
    PostedDispute,
    PostedRefund,
    association_of,
    ledger_entries,
    needs_posting,
)
from domain.practices import Practice
from domain.schedule import local_date
from projections.base import Projection, handles, iso


class TransactionRow(TypedDict):
    """A row of ``transactions``: one payment, captured or declined."""

    id: str
    practice_id: str
    occurred_at: str
    local_date: str
    amount: int
    refunded_amount: int
    status: str
    method: str
    terminal_id: str | None
    card_brand: str
    card_last4: str
    transaction_id: str | None
    decline_reason: str | None
    patient_id: str | None
    patient_name: str | None
    request_id: str | None
    association: str
    association_source: str | None
    pms_reference: str | None
    batch_date: str | None
    settles_at: str | None
    batch_id: str | None
    deposit_id: str | None
    settled_at: str | None
    voided_at: str | None
    void_posted: int
    unposted: str  # JSON: the entries that need posting (domain/posting.py)
    unposted_count: int
    actor: str
    dispute_id: str | None
    dispute_status: str | None
    dispute_amount: int | None
    dispute_posted: int


class RefundRow(TypedDict):
    """A row of ``transaction_refunds``: one refund of a payment."""

    id: str
    payment_id: str
    practice_id: str
    amount: int
    occurred_at: str
    local_date: str
    processor_refund_id: str
    batch_id: str | None
    deposit_id: str | None
    association: str
    pms_reference: str | None
    actor: str
    #: why the refund failed after it was made (it counts no more); None otherwise
    failure: str | None


class DueSettlementRow(TypedDict):
    """An approved payment whose batch cut-off has passed."""

    id: str
    batch_date: str  # never NULL here: every approved payment has one (Payment.Captured)
    amount: int


class UnsettledRefundRow(TypedDict):
    id: str
    payment_id: str
    amount: int
    occurred_at: str


class PaymentIdRow(TypedDict):
    id: str


class LostDisputeRow(TypedDict):
    """A payment whose dispute was lost, with when the dispute closed."""

    id: str
    dispute_id: str  # never NULL here: a lost dispute was closed (Payment.DisputeClosed)
    dispute_amount: int  # as dispute_id
    dispute_posted: int
    occurred_at: str


class UnassociatedSummary(TypedDict):
    """The unassociated-count badge."""

    count: int
    transactions: int
    oldest_date: str | None


TRANSACTION_COLUMNS = columns_of(TransactionRow)
REFUND_COLUMNS = columns_of(RefundRow)


class Transactions(Projection):
    name = "transactions"
    role = "work"
    # 2: deposit ids from Settled events; 3: what needs posting (domain/posting.py); 4: disputes;
    # 5: a refund's failure after it was made
    version = 5
    tables = ("transactions", "transaction_refunds", "transaction_zones", "transaction_patients")
    ddl = (
        """CREATE TABLE IF NOT EXISTS transactions (
            id TEXT PRIMARY KEY,
            practice_id TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            local_date TEXT NOT NULL,
            amount BIGINT NOT NULL,
            refunded_amount BIGINT NOT NULL DEFAULT 0,
            status TEXT NOT NULL,
            method TEXT NOT NULL,
            terminal_id TEXT,
            card_brand TEXT NOT NULL,
            card_last4 TEXT NOT NULL,
            transaction_id TEXT,
            decline_reason TEXT,
            patient_id TEXT,
            patient_name TEXT,
            request_id TEXT,
            association TEXT NOT NULL,
            association_source TEXT,
            pms_reference TEXT,
            batch_date TEXT,
            settles_at TEXT,
            batch_id TEXT,
            deposit_id TEXT,
            settled_at TEXT,
            voided_at TEXT,
            void_posted INTEGER NOT NULL DEFAULT 0,
            unposted TEXT NOT NULL DEFAULT '[]',
            unposted_count INTEGER NOT NULL DEFAULT 0,
            actor TEXT NOT NULL,
            dispute_id TEXT,
            dispute_status TEXT,
            dispute_amount BIGINT,
            dispute_posted INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX IF NOT EXISTS transactions_by_association ON transactions "
        "(practice_id, association, local_date)",
        "CREATE INDEX IF NOT EXISTS transactions_by_date ON transactions "
        "(practice_id, local_date, occurred_at, id)",
        "CREATE INDEX IF NOT EXISTS transactions_unsettled ON transactions "
        "(practice_id, status, settles_at)",
        # a search by amount or by a card's last four over any range of dates
        "CREATE INDEX IF NOT EXISTS transactions_by_amount ON transactions "
        "(practice_id, amount, local_date)",
        "CREATE INDEX IF NOT EXISTS transactions_by_card ON transactions "
        "(practice_id, card_last4, local_date)",
        """CREATE TABLE IF NOT EXISTS transaction_refunds (
            id TEXT PRIMARY KEY,
            payment_id TEXT NOT NULL,
            practice_id TEXT NOT NULL,
            amount BIGINT NOT NULL,
            occurred_at TEXT NOT NULL,
            local_date TEXT NOT NULL,
            processor_refund_id TEXT NOT NULL,
            batch_id TEXT,
            deposit_id TEXT,
            association TEXT NOT NULL DEFAULT 'unassociated',
            pms_reference TEXT,
            actor TEXT NOT NULL,
            failure TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS transaction_refunds_by_payment "
        "ON transaction_refunds (payment_id)",
        "CREATE INDEX IF NOT EXISTS transaction_refunds_unsettled "
        "ON transaction_refunds (practice_id, batch_id)",
        """CREATE TABLE IF NOT EXISTS transaction_zones (
            practice_id TEXT PRIMARY KEY,
            timezone TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS transaction_patients (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL
        )""",
    )

    @handles(Practice.Created)
    def practice_created(self, tx: Tx, e: Practice.Created, position: int) -> None:
        tx.execute(
            "INSERT INTO transaction_zones (practice_id, timezone) VALUES (?, ?)",
            (str(e.practice_id), e.timezone),
        )

    @handles(Patient.Registered)
    def patient_registered(self, tx: Tx, e: Patient.Registered, position: int) -> None:
        tx.execute(
            "INSERT INTO transaction_patients (id, name) VALUES (?, ?)",
            (str(e.originator_id), f"{e.first_name} {e.last_name}"),
        )

    @handles(Payment.Captured, Payment.Declined)
    def payment_created(
        self, tx: Tx, e: Payment.Captured | Payment.Declined, position: int
    ) -> None:
        found = tx.one(  # the practice's zone and the patient's name in one round trip
            "SELECT (SELECT timezone FROM transaction_zones WHERE practice_id = ?) AS timezone, "
            "(SELECT name FROM transaction_patients WHERE id = ?) AS name",
            (str(e.practice_id), str(e.patient_id) if e.patient_id else None),
        )
        assert found is not None  # one row, of NULLs when nothing is found
        timezone = str(found["timezone"] or "UTC")
        captured = isinstance(e, Payment.Captured)
        status = Status.APPROVED if captured else Status.DECLINED
        # what needs posting, from the row as written (a new payment: not posted, no
        # refunds, no void, no dispute), without reading it back (as `refresh_posting`)
        entries = ledger_entries(
            payment_id=str(e.originator_id), status=status, amount=e.amount, payment_posted=False
        )
        unposted = needs_posting(entries)
        tx.execute(
            "INSERT INTO transactions (id, practice_id, occurred_at, local_date, amount, status, "
            "method, terminal_id, card_brand, card_last4, transaction_id, decline_reason, "
            "patient_id, patient_name, request_id, association, batch_date, settles_at, actor, "
            "unposted, unposted_count) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(e.originator_id),
                str(e.practice_id),
                iso(e.at),
                local_date(e.at, timezone).isoformat(),
                e.amount,
                status,
                e.method,
                e.terminal_id,
                e.card_brand,
                e.card_last4,
                e.transaction_id if isinstance(e, Payment.Captured) else None,
                e.reason if isinstance(e, Payment.Declined) else None,
                str(e.patient_id) if e.patient_id else None,
                found["name"],
                str(e.request_id) if e.request_id else None,
                association_of(entries).value,
                e.batch_date if isinstance(e, Payment.Captured) else None,
                iso(e.settles_at) if isinstance(e, Payment.Captured) else None,
                e.actor,
                json.dumps([entry.as_dict() for entry in unposted]),
                len(unposted),
            ),
        )

    @handles(Payment.Voided)
    def voided(self, tx: Tx, e: Payment.Voided, position: int) -> None:
        tx.execute(
            "UPDATE transactions SET status = 'voided', voided_at = ?, "
            "decline_reason = COALESCE(?, decline_reason) WHERE id = ?",
            (
                iso(e.at),
                f"capture failed: {e.capture_failure}" if e.capture_failure else None,
                str(e.originator_id),
            ),
        )
        refresh_posting(tx, str(e.originator_id))

    @handles(Payment.Settled)
    def settled(self, tx: Tx, e: Payment.Settled, position: int) -> None:
        tx.execute(
            "UPDATE transactions SET status = 'settled', batch_id = ?, deposit_id = ?, "
            "settled_at = ? WHERE id = ?",
            (str(e.batch_id), str(deposit_id_for(e.batch_id)), iso(e.at), str(e.originator_id)),
        )

    @handles(Payment.Refunded)
    def refunded(self, tx: Tx, e: Payment.Refunded, position: int) -> None:
        tx.execute(
            "INSERT INTO transaction_refunds (id, payment_id, practice_id, amount, occurred_at, "
            "local_date, processor_refund_id, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(e.refund_id),
                str(e.originator_id),
                str(e.practice_id),
                e.amount,
                iso(e.at),
                local_date(e.at, practice_zone(tx, e.practice_id)).isoformat(),
                e.processor_refund_id,
                e.actor,
            ),
        )
        tx.execute(
            "UPDATE transactions SET refunded_amount = refunded_amount + ? WHERE id = ?",
            (e.amount, str(e.originator_id)),
        )
        refresh_posting(tx, str(e.originator_id))

    @handles(Payment.RefundFailed)
    def refund_failed(self, tx: Tx, e: Payment.RefundFailed, position: int) -> None:
        """A refund the processor reported failed after it was made: it says why, and
        the payment's refunded amount no longer counts it."""
        tx.execute(
            "UPDATE transaction_refunds SET failure = ? WHERE id = ?", (e.reason, str(e.refund_id))
        )
        tx.execute(
            "UPDATE transactions SET refunded_amount = refunded_amount - ? WHERE id = ?",
            (e.amount, str(e.originator_id)),
        )

    @handles(Payment.RefundSettled)
    def refund_settled(self, tx: Tx, e: Payment.RefundSettled, position: int) -> None:
        tx.execute(
            "UPDATE transaction_refunds SET batch_id = ?, deposit_id = ? WHERE id = ?",
            (str(e.batch_id), str(deposit_id_for(e.batch_id)), str(e.refund_id)),
        )

    @handles(Payment.Associated)
    def associated(self, tx: Tx, e: Payment.Associated, position: int) -> None:
        tx.execute(
            "UPDATE transactions SET association_source = ?, pms_reference = ? WHERE id = ?",
            (e.source, e.pms_reference, str(e.originator_id)),
        )
        refresh_posting(tx, str(e.originator_id))

    @handles(Payment.RefundAssociated)
    def refund_associated(self, tx: Tx, e: Payment.RefundAssociated, position: int) -> None:
        tx.execute(
            "UPDATE transaction_refunds SET association = 'associated', pms_reference = ? "
            "WHERE id = ?",
            (e.pms_reference, str(e.refund_id)),
        )
        refresh_posting(tx, str(e.originator_id))

    @handles(Payment.VoidAssociated)
    def void_associated(self, tx: Tx, e: Payment.VoidAssociated, position: int) -> None:
        tx.execute("UPDATE transactions SET void_posted = 1 WHERE id = ?", (str(e.originator_id),))
        refresh_posting(tx, str(e.originator_id))

    @handles(Payment.DisputeOpened, Payment.DisputeUpdated, Payment.DisputeClosed)
    def disputed(
        self,
        tx: Tx,
        e: Payment.DisputeOpened | Payment.DisputeUpdated | Payment.DisputeClosed,
        position: int,
    ) -> None:
        tx.execute(
            "UPDATE transactions SET dispute_id = ?, dispute_status = ?, "
            "dispute_amount = COALESCE(?, dispute_amount) WHERE id = ?",
            (
                e.dispute_id,
                e.status,
                None if isinstance(e, Payment.DisputeUpdated) else e.amount,
                str(e.originator_id),
            ),
        )
        refresh_posting(tx, str(e.originator_id))

    @handles(Payment.DisputeAssociated)
    def dispute_associated(self, tx: Tx, e: Payment.DisputeAssociated, position: int) -> None:
        tx.execute(
            "UPDATE transactions SET dispute_posted = 1 WHERE id = ?", (str(e.originator_id),)
        )
        refresh_posting(tx, str(e.originator_id))


def refresh_posting(tx: Tx, payment_id: str) -> None:
    """The row's association and what of it needs posting, by the one definition."""
    row = tx.one("SELECT * FROM transactions WHERE id = ?", (payment_id,))
    if row is None:
        return
    refunds = tx.execute(
        "SELECT id, amount, association FROM transaction_refunds WHERE payment_id = ? "
        "ORDER BY occurred_at, id",
        (payment_id,),
    )
    entries = ledger_entries(
        payment_id=payment_id,
        status=row["status"],
        amount=int(row["amount"]),
        payment_posted=row["association_source"] is not None,
        refunds=[
            PostedRefund(r["id"], int(r["amount"]), r["association"] == "associated")
            for r in refunds
        ],
        void_posted=bool(row["void_posted"]),
        lost_dispute=PostedDispute(
            row["dispute_id"], int(row["dispute_amount"]), bool(row["dispute_posted"])
        )
        if row["dispute_status"] == "lost"
        else None,
    )
    unposted = needs_posting(entries)
    tx.execute(
        "UPDATE transactions SET association = ?, unposted = ?, unposted_count = ? WHERE id = ?",
        (
            association_of(entries).value,
            json.dumps([e.as_dict() for e in unposted]),
            len(unposted),
            payment_id,
        ),
    )


def practice_zone(tx: Tx, practice_id: UUID) -> str:
    row = tx.one(
        "SELECT timezone FROM transaction_zones WHERE practice_id = ?", (str(practice_id),)
    )
    return str(row["timezone"]) if row else "UTC"


def unassociated_summary(db: Database, practice_id: UUID) -> UnassociatedSummary:
    """The badge, over all time: the entries that need posting (payments, refunds, voids of
    posted payments; domain/posting.py), the transactions they belong to and the oldest
    one's date (open the list from there to see them all)."""
    row = db.query_one(
        "SELECT COALESCE(SUM(unposted_count), 0) AS n, COUNT(*) AS t, MIN(local_date) AS oldest "
        "FROM transactions WHERE practice_id = ? AND association = 'unassociated'",
        (str(practice_id),),
    )
    assert row is not None
    return {"count": int(row["n"]), "transactions": int(row["t"]), "oldest_date": row["oldest"]}


#: what a search may be: an amount ("125", "$1,250.5", "125.00") or else words of a name
AMOUNT_TEXT = re.compile(r"\$?\s*(\d{1,3}(,\d{3})+|\d+)(\.\d{1,2})?")


def search_clause(q: str) -> tuple[str, list[Any]]:
    """The rows a search finds: an amount finds the payments of that amount (whole dollars
    or with cents), four digits also the cards ending in them, and any other text the
    patients whose name holds it (case aside)."""
    text = q.strip()
    if AMOUNT_TEXT.fullmatch(text):
        cents = int((Decimal(text.lstrip("$ ").replace(",", "")) * 100).to_integral_value())
        if cents > MAX_AMOUNT_CENTS:  # no payment is that large (and no column holds it)
            cents = -1
        if re.fullmatch(r"\d{4}", text):
            return " AND (amount = ? OR card_last4 = ?)", [cents, text]
        return " AND amount = ?", [cents]
    pattern = "%" + re.sub(r"([\\%_])", r"\\\1", text.lower()) + "%"
    return " AND LOWER(patient_name) LIKE ? ESCAPE '\\'", [pattern]


def filter_clause(
    practice_id: UUID,
    date_from: str,
    date_to: str,
    *,
    association: str | None,
    patient_id: UUID | None,
    status: str | None,
    q: str | None,
) -> tuple[str, list[Any]]:
    """The WHERE clause of a list's filters (the list and its totals share it).
    `status` is a payment status, or `refunded` (settled with refunds)."""
    sql = "WHERE practice_id = ? AND local_date BETWEEN ? AND ?"
    params: list[Any] = [str(practice_id), date_from, date_to]
    if status == "refunded":
        sql += " AND refunded_amount > 0"
    elif status:
        sql += " AND status = ?"
        params.append(status)
    if association is not None:
        sql += " AND association = ?"
        params.append(association)
    if patient_id:
        sql += " AND patient_id = ?"
        params.append(str(patient_id))
    if q and q.strip():
        more, values = search_clause(q)
        sql += more
        params.extend(values)
    return sql, params


def list_transactions(
    db: Database,
    practice_id: UUID,
    *,
    date_from: str,
    date_to: str,
    association: str | None,
    patient_id: UUID | None,
    after: tuple[str, str] | None,
    limit: int,
    status: str | None = None,
    q: str | None = None,
) -> list[TransactionRow]:
    """Newest first; `after` is the (occurred_at, id) of the last row of the previous page."""
    where, params = filter_clause(
        practice_id,
        date_from,
        date_to,
        association=association,
        patient_id=patient_id,
        status=status,
        q=q,
    )
    sql = f"SELECT {TRANSACTION_COLUMNS} FROM transactions {where}"  # noqa: S608 (the row type's columns)
    if after:
        sql += " AND (occurred_at, id) < (?, ?)"
        params.extend(after)
    sql += " ORDER BY occurred_at DESC, id DESC LIMIT ?"
    params.append(limit)
    return rows_as(TransactionRow, db.query(sql, params))


class TransactionTotals(TypedDict):
    """The totals of a filtered list, over all its pages."""

    count: int
    collected: int
    refunded: int


def transaction_totals(
    db: Database,
    practice_id: UUID,
    *,
    date_from: str,
    date_to: str,
    association: str | None,
    patient_id: UUID | None,
    status: str | None = None,
    q: str | None = None,
) -> TransactionTotals:
    """The rows the list's filters find: how many, what they collected (approved and
    settled payments: a decline or a void moves no money) and what was refunded of them."""
    where, params = filter_clause(
        practice_id,
        date_from,
        date_to,
        association=association,
        patient_id=patient_id,
        status=status,
        q=q,
    )
    row = db.query_one(
        "SELECT COUNT(*) AS count, "  # noqa: S608 (the clause is built of fixed text)
        "COALESCE(SUM(CASE WHEN status IN ('approved', 'settled') THEN amount ELSE 0 END), 0) "
        "AS collected, COALESCE(SUM(refunded_amount), 0) AS refunded "
        f"FROM transactions {where}",
        params,
    )
    assert row is not None
    return {
        "count": int(row["count"]),
        "collected": int(row["collected"]),
        "refunded": int(row["refunded"]),
    }


def due_for_settlement(db: Database, practice_id: UUID, now_iso: str) -> list[DueSettlementRow]:
    """Approved payments whose batch cut-off has passed, oldest first."""
    rows = db.query(
        "SELECT id, batch_date, amount FROM transactions WHERE practice_id = ? "
        "AND status = 'approved' AND settles_at <= ? ORDER BY occurred_at, id",
        (str(practice_id), now_iso),
    )
    return rows_as(DueSettlementRow, rows)


def unsettled_refunds(db: Database, practice_id: UUID) -> list[UnsettledRefundRow]:
    rows = db.query(
        "SELECT id, payment_id, amount, occurred_at FROM transaction_refunds "
        "WHERE practice_id = ? AND batch_id IS NULL ORDER BY occurred_at, id",
        (str(practice_id),),
    )
    return rows_as(UnsettledRefundRow, rows)


def settled_unrefunded(db: Database, practice_id: UUID, *, limit: int) -> list[PaymentIdRow]:
    """The newest settled payments with nothing refunded yet."""
    rows = db.query(
        "SELECT id FROM transactions WHERE practice_id = ? AND status = 'settled' "
        "AND refunded_amount = 0 ORDER BY occurred_at DESC LIMIT ?",
        (str(practice_id), limit),
    )
    return rows_as(PaymentIdRow, rows)


def payments_of_day(db: Database, practice_id: UUID, day: str) -> list[TransactionRow]:
    """Every payment captured or declined on a practice-local date, oldest first."""
    rows = db.query(
        f"SELECT {TRANSACTION_COLUMNS} FROM transactions "  # noqa: S608 (the row type's columns)
        "WHERE practice_id = ? AND local_date = ? ORDER BY occurred_at, id",
        (str(practice_id), day),
    )
    return rows_as(TransactionRow, rows)


def refunds_of_day(db: Database, practice_id: UUID, day: str) -> list[RefundRow]:
    rows = db.query(
        f"SELECT {REFUND_COLUMNS} FROM transaction_refunds "  # noqa: S608 (the row type's columns)
        "WHERE practice_id = ? AND local_date = ? ORDER BY occurred_at, id",
        (str(practice_id), day),
    )
    return rows_as(RefundRow, rows)


def payment_of_processor(db: Database, practice_id: UUID, transaction_id: str) -> UUID | None:
    """The ledger payment the processor knows as ``transaction_id`` (a PaymentIntent)."""
    row = db.query_one(
        "SELECT id FROM transactions WHERE practice_id = ? AND transaction_id = ?",
        (str(practice_id), transaction_id),
    )
    return UUID(row["id"]) if row else None


@dataclass(frozen=True)
class DepositPlace:
    """Where a processor's item sits in the ledger: its payment, its refund (for a
    refund), and the deposit that holds it (None until its batch closes)."""

    payment_id: str
    refund_id: str | None
    deposit_id: str | None


def place_of_refund(db: Database, practice_id: UUID, refund_id: str) -> DepositPlace | None:
    row = db.query_one(
        "SELECT payment_id, id AS refund_id, deposit_id FROM transaction_refunds "
        "WHERE practice_id = ? AND id = ?",
        (str(practice_id), refund_id),
    )
    return DepositPlace(**row) if row else None


def place_of_payment(db: Database, practice_id: UUID, transaction_id: str) -> DepositPlace | None:
    row = db.query_one(
        "SELECT id AS payment_id, deposit_id FROM transactions "
        "WHERE practice_id = ? AND transaction_id = ?",
        (str(practice_id), transaction_id),
    )
    return DepositPlace(row["payment_id"], None, row["deposit_id"]) if row else None


def disputes_lost(db: Database, practice_id: UUID) -> list[LostDisputeRow]:
    """The practice's payments whose dispute was lost, with when it closed (from the feed)."""
    rows = db.query(
        "SELECT t.id, t.dispute_id, t.dispute_amount, t.dispute_posted, f.occurred_at "
        "FROM transactions t JOIN event_feed f ON f.aggregate_id = t.id "
        "WHERE t.practice_id = ? AND t.dispute_status = 'lost' AND f.type = 'PaymentDisputeClosed'",
        (str(practice_id),),
    )
    return rows_as(LostDisputeRow, rows)
