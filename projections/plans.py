"""Cards on file and payment plans, per patient; and the plans whose next charge is due."""

from __future__ import annotations

from datetime import date
from typing import TypedDict
from uuid import UUID

from adapters.sql import Database, Tx, rows_as
from domain.cards import Card
from domain.plans import PaymentPlan, PlanState, Schedule, Unit
from projections.base import Projection, handles, iso


class CardRow(TypedDict):
    id: str
    patient_id: str
    state: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    consent: str
    consented_at: str
    source: str
    saved_at: str | None
    removed_at: str | None
    removed_by: str | None
    reason: str | None


class PlanRow(TypedDict):
    id: str
    patient_id: str
    card_id: str
    amount: int
    total: int
    every: int
    unit: str
    start: str
    state: str
    paid: int
    charges: int
    failures: int
    next_due: str | None
    last_failure: str | None
    end_reason: str | None
    created_at: str
    ended_at: str | None


CARD_COLUMNS = (
    "id, patient_id, state, brand, last4, exp_month, exp_year, consent, consented_at, source, "
    "saved_at, removed_at, removed_by, reason"
)
PLAN_COLUMNS = (
    "id, patient_id, card_id, amount, total, every, unit, start, state, paid, charges, "
    "failures, next_due, last_failure, end_reason, created_at, ended_at"
)


class Plans(Projection):
    name = "plans"
    role = "work"  # the due work reads which plans are due
    tables = ("saved_cards", "payment_plans")
    ddl = (
        """CREATE TABLE IF NOT EXISTS saved_cards (
            id TEXT PRIMARY KEY,
            practice_id TEXT NOT NULL,
            patient_id TEXT NOT NULL,
            state TEXT NOT NULL,
            brand TEXT,
            last4 TEXT,
            exp_month INTEGER,
            exp_year INTEGER,
            consent TEXT NOT NULL,
            consented_at TEXT NOT NULL,
            source TEXT NOT NULL,
            saved_at TEXT,
            removed_at TEXT,
            removed_by TEXT,
            reason TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS saved_cards_by_patient ON saved_cards "
        "(practice_id, patient_id, consented_at)",
        """CREATE TABLE IF NOT EXISTS payment_plans (
            id TEXT PRIMARY KEY,
            practice_id TEXT NOT NULL,
            patient_id TEXT NOT NULL,
            card_id TEXT NOT NULL,
            amount BIGINT NOT NULL,
            total BIGINT NOT NULL,
            every INTEGER NOT NULL,
            unit TEXT NOT NULL,
            start TEXT NOT NULL,
            state TEXT NOT NULL,
            paid BIGINT NOT NULL DEFAULT 0,
            charges INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            retry_on TEXT,
            next_due TEXT,
            last_failure TEXT,
            end_reason TEXT,
            created_at TEXT NOT NULL,
            ended_at TEXT,
            notice TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS payment_plans_by_patient ON payment_plans "
        "(practice_id, patient_id, created_at)",
        "CREATE INDEX IF NOT EXISTS payment_plans_due ON payment_plans (practice_id, next_due)",
        "CREATE INDEX IF NOT EXISTS payment_plans_by_card ON payment_plans (card_id)",
        "CREATE INDEX IF NOT EXISTS payment_plans_notices ON payment_plans (practice_id, notice)",
    )

    @handles(Card.SaveRequested)
    def card_requested(self, tx: Tx, e: Card.SaveRequested, position: int) -> None:
        tx.execute(
            "INSERT INTO saved_cards (id, practice_id, patient_id, state, consent, "
            "consented_at, source) VALUES (?, ?, ?, 'saving', ?, ?, ?)",
            (
                str(e.originator_id),
                str(e.practice_id),
                str(e.patient_id),
                e.consent,
                iso(e.consented_at),
                e.source,
            ),
        )

    @handles(Card.Saved)
    def card_saved(self, tx: Tx, e: Card.Saved, position: int) -> None:
        tx.execute(
            "UPDATE saved_cards SET state = 'saved', brand = ?, last4 = ?, exp_month = ?, "
            "exp_year = ?, saved_at = ?, reason = NULL WHERE id = ?",
            (e.brand, e.last4, e.exp_month, e.exp_year, iso(e.at), str(e.originator_id)),
        )

    @handles(Card.SaveRefused, Card.SaveOutcomeUnknown)
    def card_not_saved(
        self, tx: Tx, e: Card.SaveRefused | Card.SaveOutcomeUnknown, position: int
    ) -> None:
        refused = isinstance(e, Card.SaveRefused)
        tx.execute(
            "UPDATE saved_cards SET state = ?, reason = ? WHERE id = ?",
            (
                "refused" if refused else "unknown",
                e.reason if isinstance(e, Card.SaveRefused) else e.error,
                str(e.originator_id),
            ),
        )

    @handles(Card.Removed)
    def card_removed(self, tx: Tx, e: Card.Removed, position: int) -> None:
        tx.execute(
            "UPDATE saved_cards SET state = 'removed', removed_at = ?, removed_by = ? WHERE id = ?",
            (iso(e.at), e.actor, str(e.originator_id)),
        )

    @handles(PaymentPlan.Created)
    def plan_created(self, tx: Tx, e: PaymentPlan.Created, position: int) -> None:
        tx.execute(
            "INSERT INTO payment_plans (id, practice_id, patient_id, card_id, amount, total, "
            "every, unit, start, state, next_due, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)",
            (
                str(e.originator_id),
                str(e.practice_id),
                str(e.patient_id),
                str(e.card_id),
                e.amount,
                e.total,
                e.every,
                e.unit,
                e.start,
                e.start,
                iso(e.at),
            ),
        )

    @handles(PaymentPlan.Charged)
    def plan_charged(self, tx: Tx, e: PaymentPlan.Charged, position: int) -> None:
        plan_id = str(e.originator_id)
        row = tx.one(
            "SELECT amount, total, every, unit, start, charges FROM payment_plans WHERE id = ?",
            (plan_id,),
        )
        if row is None:
            return
        schedule = Schedule(
            int(row["amount"]),
            int(row["total"]),
            int(row["every"]),
            Unit(str(row["unit"])),
            date.fromisoformat(str(row["start"])),
        )
        charges = int(row["charges"]) + 1
        tx.execute(
            "UPDATE payment_plans SET paid = paid + ?, charges = ?, retry_on = NULL, "
            "next_due = ? WHERE id = ?",
            (e.amount, charges, schedule.due_on(charges + 1).isoformat(), plan_id),
        )

    @handles(PaymentPlan.ChargeFailed)
    def plan_charge_failed(self, tx: Tx, e: PaymentPlan.ChargeFailed, position: int) -> None:
        tx.execute(
            "UPDATE payment_plans SET failures = failures + 1, last_failure = ?, retry_on = ?, "
            "next_due = COALESCE(?, next_due) WHERE id = ?",
            (e.reason, e.retry_on, e.retry_on, str(e.originator_id)),
        )

    @handles(PaymentPlan.PastDue)
    def plan_past_due(self, tx: Tx, e: PaymentPlan.PastDue, position: int) -> None:
        self._end(tx, e, PlanState.PAST_DUE, e.reason, None)
        tx.execute(
            "UPDATE payment_plans SET notice = 'pending' WHERE id = ?", (str(e.originator_id),)
        )

    @handles(PaymentPlan.PastDueNoticeSent)
    def notice_sent(self, tx: Tx, e: PaymentPlan.PastDueNoticeSent, position: int) -> None:
        self._notice(tx, e, "sent")

    @handles(PaymentPlan.PastDueNoticeFailed)
    def notice_failed(self, tx: Tx, e: PaymentPlan.PastDueNoticeFailed, position: int) -> None:
        self._notice(tx, e, "pending" if e.retry_at else "failed")

    @handles(PaymentPlan.PastDueNoticeNotSent)
    def notice_not_sent(self, tx: Tx, e: PaymentPlan.PastDueNoticeNotSent, position: int) -> None:
        self._notice(tx, e, "not_sent")

    def _notice(self, tx: Tx, e: PaymentPlan.Event, status: str) -> None:
        tx.execute(
            "UPDATE payment_plans SET notice = ? WHERE id = ?", (status, str(e.originator_id))
        )

    @handles(PaymentPlan.Cancelled)
    def plan_cancelled(self, tx: Tx, e: PaymentPlan.Cancelled, position: int) -> None:
        self._end(tx, e, PlanState.CANCELLED, e.reason, iso(e.at))

    @handles(PaymentPlan.Completed)
    def plan_completed(self, tx: Tx, e: PaymentPlan.Completed, position: int) -> None:
        self._end(tx, e, PlanState.COMPLETED, None, iso(e.at))

    def _end(
        self,
        tx: Tx,
        e: PaymentPlan.Event,
        state: PlanState,
        reason: str | None,
        ended_at: str | None,
    ) -> None:
        tx.execute(
            "UPDATE payment_plans SET state = ?, next_due = NULL, end_reason = ?, ended_at = ? "
            "WHERE id = ?",
            (state.value, reason, ended_at, str(e.originator_id)),
        )


def cards_of_patient(db: Database, practice_id: UUID, patient_id: UUID) -> list[CardRow]:
    rows = db.query(
        f"SELECT {CARD_COLUMNS} FROM saved_cards WHERE practice_id = ? AND patient_id = ? "  # noqa: S608
        "ORDER BY consented_at DESC, id",
        (str(practice_id), str(patient_id)),
    )
    return rows_as(CardRow, rows)


def plans_of_patient(db: Database, practice_id: UUID, patient_id: UUID) -> list[PlanRow]:
    rows = db.query(
        f"SELECT {PLAN_COLUMNS} FROM payment_plans WHERE practice_id = ? AND patient_id = ? "  # noqa: S608
        "ORDER BY created_at DESC, id",
        (str(practice_id), str(patient_id)),
    )
    return rows_as(PlanRow, rows)


def plans_of_practice(db: Database, practice_id: UUID, limit: int) -> list[PlanRow]:
    rows = db.query(
        f"SELECT {PLAN_COLUMNS} FROM payment_plans WHERE practice_id = ? "  # noqa: S608
        "ORDER BY created_at DESC, id LIMIT ?",
        (str(practice_id), limit),
    )
    return rows_as(PlanRow, rows)


def live_plans_of_card(db: Database, practice_id: UUID, card_id: UUID) -> list[UUID]:
    rows = db.query(
        "SELECT id FROM payment_plans WHERE practice_id = ? AND card_id = ? "
        "AND state IN ('active', 'past_due')",
        (str(practice_id), str(card_id)),
    )
    return [UUID(str(r["id"])) for r in rows]


def due_plans(db: Database, practice_id: UUID, today: date) -> list[UUID]:
    rows = db.query(
        "SELECT id FROM payment_plans WHERE practice_id = ? AND next_due IS NOT NULL "
        "AND next_due <= ? ORDER BY next_due, id",
        (str(practice_id), today.isoformat()),
    )
    return [UUID(str(r["id"])) for r in rows]


def past_due_notices(db: Database, practice_id: UUID) -> list[UUID]:
    """The plans whose past-due email is still to send (or to try again)."""
    rows = db.query(
        "SELECT id FROM payment_plans WHERE practice_id = ? AND notice = 'pending' "
        "ORDER BY created_at, id",
        (str(practice_id),),
    )
    return [UUID(str(r["id"])) for r in rows]


def plan_holders(
    db: Database, practice_id: UUID, patient_ids: list[str]
) -> dict[str, dict[str, str]]:
    """The live plan of each of these patients that has one (patient id -> its `id` and
    `state`: active or past_due)."""
    if not patient_ids:
        return {}
    marks = ", ".join("?" for _ in patient_ids)
    rows = db.query(
        f"SELECT patient_id, id, state FROM payment_plans WHERE practice_id = ? "  # noqa: S608
        f"AND patient_id IN ({marks}) AND state IN ('active', 'past_due') ORDER BY created_at",
        (str(practice_id), *patient_ids),
    )
    return {str(r["patient_id"]): {"id": str(r["id"]), "state": str(r["state"])} for r in rows}
