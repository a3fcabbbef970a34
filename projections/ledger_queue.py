"""The manual posting queue (Post to Ledger): what staff must enter in the PMS by hand.

A payment is queued when its practice posts by hand (Dentrix, or automatic writeback
off) or when it has no patient to match in the PMS. Each item holds exactly the
Enter Payment fields: date, payment type, amount, payment number (our transaction
id), provider, patient, note. Marking it associated (manual or inbox) takes it off
the queue with the user and time; a void of an unposted payment takes it off too;
a refund of a payment adds a negative item, and so does a dispute the practice lost.
"""

from __future__ import annotations

from typing import Any, TypedDict
from uuid import UUID

from adapters.sql import Database, Tx, columns_of, rows_as
from domain.money import format_dollars
from domain.patients import Patient
from domain.payments import Payment
from domain.posting import dispute_marker
from domain.practices import Practice
from domain.schedule import local_date
from projections.base import Projection, forget, handles, iso, remembered


class LedgerQueueRow(TypedDict):
    """A row of ``ledger_queue``: one entry to post in the PMS by hand (a payment, or a
    refund, void or lost dispute of one: negative), and whether it was."""

    id: str
    practice_id: str
    kind: str
    payment_id: str
    refund_id: str | None
    date: str
    payment_type: str
    amount: int
    payment_number: str
    provider: str | None
    patient_id: str | None
    patient_name: str | None
    pms_patient_id: str | None
    note: str
    reason: str
    status: str
    queued_at: str
    done_at: str | None
    done_by: str | None
    done_source: str | None
    pms_reference: str | None


QUEUE_COLUMNS = columns_of(LedgerQueueRow)


class LedgerQueue(Projection):
    name = "ledger_queue"
    version = 3  # 2: voids of posted payments; 3: lost disputes
    tables = ("ledger_queue", "ledger_queue_practices", "ledger_queue_patients")
    ddl = (
        """CREATE TABLE IF NOT EXISTS ledger_queue (
            id TEXT PRIMARY KEY,
            practice_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            payment_id TEXT NOT NULL,
            refund_id TEXT,
            date TEXT NOT NULL,
            payment_type TEXT NOT NULL,
            amount BIGINT NOT NULL,
            payment_number TEXT NOT NULL,
            provider TEXT,
            patient_id TEXT,
            patient_name TEXT,
            pms_patient_id TEXT,
            note TEXT NOT NULL,
            reason TEXT NOT NULL,
            status TEXT NOT NULL,
            queued_at TEXT NOT NULL,
            done_at TEXT,
            done_by TEXT,
            done_source TEXT,
            pms_reference TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS ledger_queue_open ON ledger_queue "
        "(practice_id, status, queued_at)",
        """CREATE TABLE IF NOT EXISTS ledger_queue_practices (
            practice_id TEXT PRIMARY KEY,
            pms TEXT NOT NULL,
            auto_writeback INTEGER NOT NULL,
            timezone TEXT NOT NULL,
            payment_type TEXT
        )""",
        """CREATE TABLE IF NOT EXISTS ledger_queue_patients (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            pms_patient_id TEXT NOT NULL
        )""",
    )

    @handles(Practice.Created)
    def practice(self, tx: Tx, e: Practice.Created, position: int) -> None:
        forget(tx, ("ledger_queue_practice", str(e.practice_id)))
        tx.execute(
            "INSERT INTO ledger_queue_practices (practice_id, pms, auto_writeback, "
            "timezone) VALUES (?, ?, ?, ?)",
            (str(e.practice_id), e.pms, int(e.auto_writeback), e.timezone),
        )

    @handles(Practice.SettingsChanged)
    def settings(self, tx: Tx, e: Practice.SettingsChanged, position: int) -> None:
        forget(tx, ("ledger_queue_practice", str(e.practice_id)))
        for name, column in (
            ("pms", "pms"),
            ("auto_writeback", "auto_writeback"),
            ("pms_payment_type", "payment_type"),
        ):
            if name in e.changes:
                value = e.changes[name]
                tx.execute(
                    f"UPDATE ledger_queue_practices SET {column} = ? "  # noqa: S608
                    "WHERE practice_id = ?",
                    (int(value) if isinstance(value, bool) else value, str(e.practice_id)),
                )

    @handles(Patient.Registered)
    def patient(self, tx: Tx, e: Patient.Registered, position: int) -> None:
        tx.execute(
            "INSERT INTO ledger_queue_patients (id, name, pms_patient_id) VALUES (?, ?, ?)",
            (str(e.originator_id), f"{e.first_name} {e.last_name}", e.pms_patient_id),
        )

    @handles(Payment.Captured)
    def captured(self, tx: Tx, e: Payment.Captured, position: int) -> None:
        practice = practice_row(tx, str(e.practice_id))
        if practice is None:
            return
        by_hand = practice["pms"] == "dentrix" or not practice["auto_writeback"]
        if not by_hand and e.patient_id is not None:
            return
        patient = (
            tx.one("SELECT * FROM ledger_queue_patients WHERE id = ?", (str(e.patient_id),))
            if e.patient_id
            else None
        )
        tx.execute(
            "INSERT INTO ledger_queue (id, practice_id, kind, payment_id, date, payment_type, "
            "amount, payment_number, patient_id, patient_name, pms_patient_id, note, reason, "
            "status, queued_at) VALUES (?, ?, 'payment', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)",
            (
                str(e.originator_id),
                str(e.practice_id),
                str(e.originator_id),
                local_date(e.at, practice["timezone"]).isoformat(),
                practice["payment_type"] or "Credit Card",
                e.amount,
                e.transaction_id,
                str(e.patient_id) if e.patient_id else None,
                patient["name"] if patient else None,
                patient["pms_patient_id"] if patient else None,
                f"{e.card_brand} ****{e.card_last4} card payment [ref:{e.originator_id}]",
                "posted by hand" if by_hand else "no patient to match",
                iso(e.at),
            ),
        )

    @handles(Payment.Associated)
    def associated(self, tx: Tx, e: Payment.Associated, position: int) -> None:
        tx.execute(
            "UPDATE ledger_queue SET status = 'done', done_at = ?, done_by = ?, "
            "done_source = ?, pms_reference = ? WHERE id = ? AND status = 'open'",
            (iso(e.at), e.actor, e.source, e.pms_reference, str(e.originator_id)),
        )

    @handles(Payment.Voided)
    def voided(self, tx: Tx, e: Payment.Voided, position: int) -> None:
        """Not yet posted: nothing to post. Posted already: post its reversal."""
        payment = tx.one("SELECT * FROM ledger_queue WHERE id = ?", (str(e.originator_id),))
        if payment is None:
            return
        if payment["status"] == "open":
            tx.execute(
                "UPDATE ledger_queue SET status = 'voided', done_at = ? WHERE id = ?",
                (iso(e.at), str(e.originator_id)),
            )
            return
        practice = tx.one(
            "SELECT timezone FROM ledger_queue_practices WHERE practice_id = ?",
            (str(e.practice_id),),
        )
        tx.execute(
            "INSERT INTO ledger_queue (id, practice_id, kind, payment_id, date, payment_type, "
            "amount, payment_number, patient_id, patient_name, pms_patient_id, note, reason, "
            "status, queued_at) VALUES (?, ?, 'void', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)",
            (
                f"void:{e.originator_id}",
                str(e.practice_id),
                str(e.originator_id),
                local_date(e.at, practice["timezone"] if practice else "UTC").isoformat(),
                payment["payment_type"],
                -int(payment["amount"]),
                e.processor_void_id,
                payment["patient_id"],
                payment["patient_name"],
                payment["pms_patient_id"],
                f"void of [ref:{e.originator_id}] (posted before it was voided)",
                payment["reason"],
                iso(e.at),
            ),
        )

    @handles(Payment.VoidAssociated)
    def void_associated(self, tx: Tx, e: Payment.VoidAssociated, position: int) -> None:
        tx.execute(
            "UPDATE ledger_queue SET status = 'done', done_at = ?, done_by = ?, "
            "done_source = ?, pms_reference = ? WHERE id = ? AND status = 'open'",
            (iso(e.at), e.actor, e.source, e.pms_reference, f"void:{e.originator_id}"),
        )

    @handles(Payment.Refunded)
    def refunded(self, tx: Tx, e: Payment.Refunded, position: int) -> None:
        payment = tx.one("SELECT * FROM ledger_queue WHERE id = ?", (str(e.originator_id),))
        if payment is None:
            return
        practice = tx.one(
            "SELECT timezone FROM ledger_queue_practices WHERE practice_id = ?",
            (str(e.practice_id),),
        )
        tx.execute(
            "INSERT INTO ledger_queue (id, practice_id, kind, payment_id, refund_id, date, "
            "payment_type, amount, payment_number, patient_id, patient_name, pms_patient_id, "
            "note, reason, status, queued_at) "
            "VALUES (?, ?, 'refund', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)",
            (
                str(e.refund_id),
                str(e.practice_id),
                str(e.originator_id),
                str(e.refund_id),
                local_date(e.at, practice["timezone"] if practice else "UTC").isoformat(),
                payment["payment_type"],
                -e.amount,
                e.processor_refund_id,
                payment["patient_id"],
                payment["patient_name"],
                payment["pms_patient_id"],
                f"refund {format_dollars(e.amount)} of [ref:{e.originator_id}] [ref:{e.refund_id}]",
                payment["reason"],
                iso(e.at),
            ),
        )

    @handles(Payment.RefundAssociated)
    def refund_associated(self, tx: Tx, e: Payment.RefundAssociated, position: int) -> None:
        tx.execute(
            "UPDATE ledger_queue SET status = 'done', done_at = ?, done_by = ?, "
            "done_source = ?, pms_reference = ? WHERE id = ? AND status = 'open'",
            (iso(e.at), e.actor, e.source, e.pms_reference, str(e.refund_id)),
        )

    @handles(Payment.DisputeClosed)
    def dispute_closed(self, tx: Tx, e: Payment.DisputeClosed, position: int) -> None:
        """A lost dispute of a queued payment: the money is taken back, a negative item."""
        if e.status != "lost":
            return
        payment = tx.one("SELECT * FROM ledger_queue WHERE id = ?", (str(e.originator_id),))
        if payment is None:
            return
        practice = tx.one(
            "SELECT timezone FROM ledger_queue_practices WHERE practice_id = ?",
            (str(e.practice_id),),
        )
        tx.execute(
            "INSERT INTO ledger_queue (id, practice_id, kind, payment_id, date, payment_type, "
            "amount, payment_number, patient_id, patient_name, pms_patient_id, note, reason, "
            "status, queued_at) VALUES (?, ?, 'dispute', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?) "
            "ON CONFLICT (id) DO NOTHING",
            (
                dispute_marker(e.dispute_id),
                str(e.practice_id),
                str(e.originator_id),
                local_date(e.at, practice["timezone"] if practice else "UTC").isoformat(),
                payment["payment_type"],
                -e.amount,
                e.dispute_id,
                payment["patient_id"],
                payment["patient_name"],
                payment["pms_patient_id"],
                f"lost card dispute {format_dollars(e.amount)} of [ref:{e.originator_id}]",
                payment["reason"],
                iso(e.at),
            ),
        )

    @handles(Payment.DisputeAssociated)
    def dispute_associated(self, tx: Tx, e: Payment.DisputeAssociated, position: int) -> None:
        tx.execute(
            "UPDATE ledger_queue SET status = 'done', done_at = ?, done_by = ?, "
            "done_source = ?, pms_reference = ? WHERE id = ? AND status = 'open'",
            (iso(e.at), e.actor, e.source, e.pms_reference, dispute_marker(e.dispute_id)),
        )


def practice_row(tx: Tx, practice_id: str) -> dict[str, Any] | None:
    """The practice's row of ``ledger_queue_practices`` (read only), read once per page where
    the page's transaction keeps values (its handlers forget it when they write it)."""
    row: dict[str, Any] | None = remembered(
        tx,
        ("ledger_queue_practice", practice_id),
        lambda: tx.one(
            "SELECT * FROM ledger_queue_practices WHERE practice_id = ?", (practice_id,)
        ),
    )
    return row


def open_items(
    db: Database, practice_id: UUID, after: tuple[str, str] | None, limit: int
) -> list[LedgerQueueRow]:
    sql = (
        f"SELECT {QUEUE_COLUMNS} FROM ledger_queue "  # noqa: S608 (the row type's columns)
        "WHERE practice_id = ? AND status = 'open'"
    )
    params: list[Any] = [str(practice_id)]
    if after:
        sql += " AND (queued_at, id) > (?, ?)"
        params.extend(after)
    return rows_as(
        LedgerQueueRow, db.query(sql + " ORDER BY queued_at, id LIMIT ?", [*params, limit])
    )
