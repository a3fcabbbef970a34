"""Open intents: effects asked of the processor whose outcome is not recorded yet.

One row per intent (a refund, a void, a capture at the cut-off) from the event that
records it until the event that records its outcome. The reconciler's work list, and
what the payment, Practice status, the daily close and /metrics show of them.
"""

from __future__ import annotations

from typing import TypedDict
from uuid import UUID

from adapters.sql import Database, Tx, columns_of, row_as, rows_as
from domain.base import PracticeAggregate
from domain.charges import ChargeAttempt
from domain.payments import Payment
from projections.base import Projection, handles, iso


class OpenIntentRow(TypedDict):
    """A row of ``open_intents``: one effect under way, `unknown_since` set once its answer
    was lost."""

    id: str
    practice_id: str
    payment_id: str
    effect: str
    amount: int
    requested_at: str
    requested_by: str
    unknown_since: str | None
    attempts: int
    last_error: str | None
    last_tried_at: str | None


class IntentTotals(TypedDict):
    """Open intents of every practice (or one): how many, how many unknown, the oldest."""

    open: int
    unknown: int
    oldest: str | None


OPEN_INTENT_COLUMNS = columns_of(OpenIntentRow)


class OpenIntents(Projection):
    name = "open_intents"
    role = "work"
    tables = ("open_intents",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS open_intents (
            id TEXT PRIMARY KEY,
            practice_id TEXT NOT NULL,
            payment_id TEXT NOT NULL,
            effect TEXT NOT NULL,
            amount INTEGER NOT NULL,
            requested_at TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            unknown_since TEXT,
            attempts INTEGER NOT NULL,
            last_error TEXT,
            last_tried_at TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS open_intents_by_practice ON open_intents "
        "(practice_id, requested_at)",
        "CREATE INDEX IF NOT EXISTS open_intents_by_payment ON open_intents (payment_id)",
    )

    def _open(self, tx: Tx, intent_id: str, e: Payment.Event, effect: str, amount: int) -> None:
        insert_intent(tx, intent_id, e, str(e.originator_id), effect, amount)

    def _unknown(self, tx: Tx, intent_id: str, e: PracticeAggregate.Event, error: str) -> None:
        tx.execute(
            "UPDATE open_intents SET unknown_since = COALESCE(unknown_since, ?), "
            "attempts = attempts + 1, last_error = ?, last_tried_at = ? WHERE id = ?",
            (iso(e.at), error[:500], iso(e.at), intent_id),
        )

    def _close(self, tx: Tx, intent_id: str) -> None:
        tx.execute("DELETE FROM open_intents WHERE id = ?", (intent_id,))

    @handles(ChargeAttempt.Requested, ChargeAttempt.Asked)
    def charge_asked(
        self, tx: Tx, e: ChargeAttempt.Requested | ChargeAttempt.Asked, position: int
    ) -> None:
        """Asked (again, after a refusal or a lost answer): open, asked just now."""
        intent_id = str(e.originator_id)
        tx.execute("DELETE FROM open_intents WHERE id = ?", (intent_id,))
        insert_intent(tx, intent_id, e, str(e.payment_id), "charge", e.amount)

    @handles(ChargeAttempt.OutcomeUnknown)
    def charge_unknown(self, tx: Tx, e: ChargeAttempt.OutcomeUnknown, position: int) -> None:
        self._unknown(tx, str(e.originator_id), e, e.error)

    @handles(ChargeAttempt.Refused, ChargeAttempt.NotMade, ChargeAttempt.Released)
    def charge_ended(self, tx: Tx, e: ChargeAttempt.Event, position: int) -> None:
        self._close(tx, str(e.originator_id))

    @handles(Payment.Captured, Payment.Declined)
    def charge_recorded(self, tx: Tx, e: Payment.Event, position: int) -> None:
        tx.execute(
            "DELETE FROM open_intents WHERE payment_id = ? AND effect = 'charge'",
            (str(e.originator_id),),
        )

    @handles(Payment.RefundRequested)
    def refund_requested(self, tx: Tx, e: Payment.RefundRequested, position: int) -> None:
        self._open(tx, str(e.refund_id), e, "refund", e.amount)

    @handles(Payment.RefundOutcomeUnknown)
    def refund_unknown(self, tx: Tx, e: Payment.RefundOutcomeUnknown, position: int) -> None:
        self._unknown(tx, str(e.refund_id), e, e.error)

    @handles(Payment.Refunded)
    def refunded(self, tx: Tx, e: Payment.Refunded, position: int) -> None:
        self._close(tx, str(e.refund_id))

    @handles(Payment.RefundRefused)
    def refund_refused(self, tx: Tx, e: Payment.RefundRefused, position: int) -> None:
        self._close(tx, str(e.refund_id))

    @handles(Payment.VoidRequested)
    def void_requested(self, tx: Tx, e: Payment.VoidRequested, position: int) -> None:
        self._open(tx, str(e.void_id), e, "void", 0)

    @handles(Payment.VoidOutcomeUnknown)
    def void_unknown(self, tx: Tx, e: Payment.VoidOutcomeUnknown, position: int) -> None:
        self._unknown(tx, str(e.void_id), e, e.error)

    @handles(Payment.VoidRefused)
    def void_refused(self, tx: Tx, e: Payment.VoidRefused, position: int) -> None:
        self._close(tx, str(e.void_id))

    @handles(Payment.Voided)
    def voided(self, tx: Tx, e: Payment.Voided, position: int) -> None:
        # a void ends its own intent and a capture under way (a capture refused at the
        # cut-off is recorded as a void)
        tx.execute(
            "DELETE FROM open_intents WHERE payment_id = ? AND effect IN ('void', 'capture')",
            (str(e.originator_id),),
        )

    @handles(Payment.CaptureRequested)
    def capture_requested(self, tx: Tx, e: Payment.CaptureRequested, position: int) -> None:
        self._open(tx, str(e.reference), e, "capture", 0)

    @handles(Payment.Settled)
    def settled(self, tx: Tx, e: Payment.Settled, position: int) -> None:
        tx.execute(
            "DELETE FROM open_intents WHERE payment_id = ? AND effect = 'capture'",
            (str(e.originator_id),),
        )


def insert_intent(
    tx: Tx,
    intent_id: str,
    e: PracticeAggregate.Event,
    payment_id: str,
    effect: str,
    amount: int,
) -> None:
    values = [intent_id, str(e.practice_id), payment_id, effect, amount, iso(e.at), e.actor]
    tx.execute(
        "INSERT INTO open_intents (id, practice_id, payment_id, effect, amount, "
        "requested_at, requested_by, unknown_since, attempts, last_error, last_tried_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0, NULL, NULL)",
        values,
    )


def open_intents(db: Database, practice_id: UUID, before: str | None = None) -> list[OpenIntentRow]:
    """The practice's open intents, oldest first (requested at `before` or earlier)."""
    sql = f"SELECT {OPEN_INTENT_COLUMNS} FROM open_intents WHERE practice_id = ?"  # noqa: S608
    params: list[str] = [str(practice_id)]
    if before is not None:
        sql += " AND requested_at <= ?"
        params.append(before)
    return rows_as(OpenIntentRow, db.query(sql + " ORDER BY requested_at, id", params))


def open_intents_of_payment(db: Database, payment_id: UUID) -> list[OpenIntentRow]:
    sql = f"SELECT {OPEN_INTENT_COLUMNS} FROM open_intents WHERE payment_id = ?"  # noqa: S608
    return rows_as(OpenIntentRow, db.query(sql + " ORDER BY requested_at, id", [str(payment_id)]))


def intent_totals(db: Database, practice_id: UUID | None = None) -> IntentTotals:
    sql = (
        "SELECT COUNT(*) AS open, COUNT(unknown_since) AS unknown, "
        "MIN(requested_at) AS oldest FROM open_intents"
    )
    params: list[str] = []
    if practice_id is not None:
        sql += " WHERE practice_id = ?"
        params.append(str(practice_id))
    row = row_as(IntentTotals, db.query_one(sql, params))
    assert row is not None
    return {"open": int(row["open"]), "unknown": int(row["unknown"]), "oldest": row["oldest"]}
