"""The Payment Requests view, and the work list of expiries, reminders and deliveries."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, TypedDict
from uuid import UUID

from adapters.sql import Database, Tx, columns_of, row_as, rows_as
from domain.patients import Patient
from domain.practices import Practice
from domain.requests import PaymentRequest
from domain.schedule import local_date
from projections.base import Projection, forget, handles, iso, parse_iso, remembered

UPSERT_STATUS = (
    "INSERT INTO payment_request_messages (request_id, number, practice_id, status, next_at, "
    "attempts, last_error) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id, number) "
    "DO UPDATE SET status = excluded.status, next_at = excluded.next_at"
)
UPSERT_COUNTED = UPSERT_STATUS + (
    ", attempts = excluded.attempts, last_error = excluded.last_error"
)


@lru_cache(maxsize=64)
def _reminder_text(days: tuple[int, ...]) -> str:
    return json.dumps(list(days))


def reminder_text(days: list[int]) -> str:
    """The request's reminder days as the view keeps them (JSON; a practice has one
    setting, so the text is made once)."""
    return _reminder_text(tuple(days))


def request_zone(tx: Tx, practice_id: UUID) -> str:
    row = tx.one("SELECT timezone FROM request_zones WHERE practice_id = ?", (str(practice_id),))
    return str(row["timezone"]) if row else "UTC"


class PaymentRequestRow(TypedDict):
    """A row of ``payment_requests``: one request to pay, and where its messages stand."""

    id: str
    practice_id: str
    patient_id: str
    patient_name: str | None
    requested_date: str
    sent_at: str
    sender: str
    amount: int
    paid_amount: int | None
    status: str
    cancel_reason: str | None
    cancelled_by: str | None
    closed_at: str | None
    channel: str
    destination: str
    token_hash: str
    expires_at: str
    payment_id: str | None
    reminder_days: str  # JSON: the days after sending that each reminder is due
    reminders_sent: int
    next_reminder_at: str | None
    delivery_status: str
    reopen_reason: str | None  # why a payment of it stopped counting (it was voided)


REQUEST_COLUMNS = columns_of(PaymentRequestRow)


class PaymentRequests(Projection):
    name = "payment_requests"
    role = "work"
    version = 3  # 2: one upsert per message event; 3: partly paid and reopened requests
    tables = ("payment_requests", "payment_request_messages", "request_zones", "request_patients")
    ddl = (
        """CREATE TABLE IF NOT EXISTS payment_requests (
            id TEXT PRIMARY KEY,
            practice_id TEXT NOT NULL,
            patient_id TEXT NOT NULL,
            patient_name TEXT,
            requested_date TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            sender TEXT NOT NULL,
            amount BIGINT NOT NULL,
            paid_amount BIGINT,
            status TEXT NOT NULL,
            cancel_reason TEXT,
            cancelled_by TEXT,
            closed_at TEXT,
            channel TEXT NOT NULL,
            destination TEXT NOT NULL,
            token_hash TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            payment_id TEXT,
            reminder_days TEXT NOT NULL,
            reminders_sent INTEGER NOT NULL DEFAULT 0,
            next_reminder_at TEXT,
            delivery_status TEXT NOT NULL DEFAULT 'pending',
            reopen_reason TEXT
        )""",
        "CREATE UNIQUE INDEX IF NOT EXISTS payment_requests_token ON payment_requests (token_hash)",
        "CREATE INDEX IF NOT EXISTS payment_requests_by_date ON payment_requests "
        "(practice_id, requested_date, sent_at, id)",
        "CREATE INDEX IF NOT EXISTS payment_requests_open ON payment_requests "
        "(practice_id, status, expires_at)",
        "CREATE INDEX IF NOT EXISTS payment_requests_by_patient ON payment_requests "
        "(patient_id, sent_at)",
        """CREATE TABLE IF NOT EXISTS payment_request_messages (
            request_id TEXT NOT NULL,
            number INTEGER NOT NULL,
            practice_id TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at TEXT,
            last_error TEXT,
            PRIMARY KEY (request_id, number)
        )""",
        "CREATE INDEX IF NOT EXISTS payment_request_messages_due ON payment_request_messages "
        "(practice_id, status, next_at)",
        """CREATE TABLE IF NOT EXISTS request_zones (
            practice_id TEXT PRIMARY KEY,
            timezone TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS request_patients (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL
        )""",
    )

    @handles(Practice.Created)
    def practice(self, tx: Tx, e: Practice.Created, position: int) -> None:
        forget(tx, ("request_zone", str(e.practice_id)))
        tx.execute(
            "INSERT INTO request_zones (practice_id, timezone) VALUES (?, ?)",
            (str(e.practice_id), e.timezone),
        )

    @handles(Patient.Registered)
    def patient(self, tx: Tx, e: Patient.Registered, position: int) -> None:
        tx.execute(
            "INSERT INTO request_patients (id, name) VALUES (?, ?)",
            (str(e.originator_id), f"{e.first_name} {e.last_name}"),
        )

    @handles(PaymentRequest.Sent)
    def sent(self, tx: Tx, e: PaymentRequest.Sent, position: int) -> None:
        practice_id, request_id, patient_id = (
            str(e.practice_id),
            str(e.originator_id),
            str(e.patient_id),
        )
        zone = remembered(  # once per page: a practice's zone is written when it is created
            tx, ("request_zone", practice_id), lambda: request_zone(tx, e.practice_id)
        )
        at = e.at
        days = e.reminder_days
        first_reminder = iso(at + timedelta(days=days[0])) if days else None
        tx.execute(
            "INSERT INTO payment_requests (id, practice_id, patient_id, patient_name, "
            "requested_date, sent_at, sender, amount, status, channel, destination, token_hash, "
            "expires_at, reminder_days, next_reminder_at) "
            "VALUES (?, ?, ?, (SELECT name FROM request_patients WHERE id = ?), ?, ?, ?, ?, "
            "'requested', ?, ?, ?, ?, ?, ?)",  # the patient's name read by the insert itself
            (
                request_id,
                practice_id,
                patient_id,
                patient_id,
                local_date(at, zone).isoformat(),
                iso(at),
                e.actor,
                e.amount,
                e.channel,
                e.destination,
                e.token_hash,
                iso(e.expires_at),
                reminder_text(days),
                first_reminder,
            ),
        )
        # its one message, pending (due now, or claimed with it until `claimed_until`);
        # the request's delivery status is its default, pending: no update of it here
        claimed = e.claimed_until
        tx.execute(
            UPSERT_COUNTED,
            (
                request_id,
                0,
                practice_id,
                "pending",
                iso(claimed if claimed is not None else at),
                1 if claimed is not None else 0,
                None,
            ),
        )

    @staticmethod
    def _message(
        tx: Tx,
        request_id: UUID,
        number: int,
        practice_id: UUID,
        status: str,
        next_at: str | None,
        attempts: int | None = None,
        error: str | None = None,
    ) -> None:
        request = str(request_id)
        tx.execute(
            UPSERT_COUNTED if attempts is not None else UPSERT_STATUS,
            (request, number, str(practice_id), status, next_at, attempts or 0, error),
        )
        tx.execute(  # the request's overall delivery status: failed, else pending, else sent
            "UPDATE payment_requests SET delivery_status = (SELECT CASE "
            "WHEN SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) > 0 THEN 'failed' "
            "WHEN SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) > 0 THEN 'pending' "
            "ELSE 'sent' END FROM payment_request_messages WHERE request_id = ?) WHERE id = ?",
            (request, request),
        )

    @handles(PaymentRequest.Reminded)
    def reminded(self, tx: Tx, e: PaymentRequest.Reminded, position: int) -> None:
        row = tx.one(
            "SELECT sent_at, reminder_days FROM payment_requests WHERE id = ?",
            (str(e.originator_id),),
        )
        assert row is not None
        days = json.loads(row["reminder_days"])
        following = (
            iso(parse_iso(row["sent_at"]) + timedelta(days=days[e.number]))
            if e.number < len(days)
            else None
        )
        tx.execute(
            "UPDATE payment_requests SET reminders_sent = ?, next_reminder_at = ? WHERE id = ?",
            (e.number, following, str(e.originator_id)),
        )
        self._message(tx, e.originator_id, e.number, e.practice_id, "pending", iso(e.at))

    @handles(PaymentRequest.DeliveryClaimed)
    def claimed(self, tx: Tx, e: PaymentRequest.DeliveryClaimed, position: int) -> None:
        self._message(
            tx,
            e.originator_id,
            e.number,
            e.practice_id,
            "pending",
            iso(e.until),
            attempts=e.attempt,
        )

    @handles(PaymentRequest.Delivered)
    def delivered(self, tx: Tx, e: PaymentRequest.Delivered, position: int) -> None:
        self._message(tx, e.originator_id, e.number, e.practice_id, "sent", None)

    @handles(PaymentRequest.DeliveryFailed)
    def failed(self, tx: Tx, e: PaymentRequest.DeliveryFailed, position: int) -> None:
        status = "pending" if e.retry_at else "failed"
        self._message(
            tx,
            e.originator_id,
            e.number,
            e.practice_id,
            status,
            iso(e.retry_at) if e.retry_at else None,
            attempts=e.attempt,
            error=e.error,
        )

    @handles(PaymentRequest.PartlyPaid)
    def partly_paid(self, tx: Tx, e: PaymentRequest.PartlyPaid, position: int) -> None:
        """Still requested, for what is owed: the amount less `paid_amount`."""
        tx.execute(
            "UPDATE payment_requests SET paid_amount = COALESCE(paid_amount, 0) + ? WHERE id = ?",
            (e.paid_amount, str(e.originator_id)),
        )

    @handles(PaymentRequest.Completed)
    def completed(self, tx: Tx, e: PaymentRequest.Completed, position: int) -> None:
        tx.execute(
            "UPDATE payment_requests SET status = 'completed', "
            "paid_amount = COALESCE(paid_amount, 0) + ?, payment_id = ?, closed_at = ? "
            "WHERE id = ?",
            (e.paid_amount, str(e.payment_id), iso(e.at), str(e.originator_id)),
        )

    @handles(PaymentRequest.Reopened)
    def reopened(self, tx: Tx, e: PaymentRequest.Reopened, position: int) -> None:
        """The voided payment no longer counts: a completed request is requested again
        (and so back on the expiry, reminder and delivery lists), with the reason."""
        tx.execute(
            "UPDATE payment_requests SET "
            "paid_amount = NULLIF(COALESCE(paid_amount, 0) - ?, 0), "
            "payment_id = CASE WHEN status = 'completed' THEN NULL ELSE payment_id END, "
            "closed_at = CASE WHEN status = 'completed' THEN NULL ELSE closed_at END, "
            "status = CASE WHEN status = 'completed' THEN 'requested' ELSE status END, "
            "reopen_reason = ? WHERE id = ?",
            (e.amount, e.reason, str(e.originator_id)),
        )

    @handles(PaymentRequest.Cancelled)
    def cancelled(self, tx: Tx, e: PaymentRequest.Cancelled, position: int) -> None:
        tx.execute(
            "UPDATE payment_requests SET status = 'cancelled', cancel_reason = ?, "
            "cancelled_by = ?, closed_at = ? WHERE id = ?",
            (e.reason, e.actor, iso(e.at), str(e.originator_id)),
        )


def request_by_token_hash(db: Database, token_hash: str) -> PaymentRequestRow | None:
    row = db.query_one(
        f"SELECT {REQUEST_COLUMNS} FROM payment_requests WHERE token_hash = ?",  # noqa: S608
        (token_hash,),
    )
    return row_as(PaymentRequestRow, row)


def list_requests(
    db: Database,
    practice_id: UUID,
    *,
    date_from: str,
    date_to: str,
    status: str | None,
    patient_id: UUID | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[PaymentRequestRow]:
    sql = (
        f"SELECT {REQUEST_COLUMNS} FROM payment_requests "  # noqa: S608 (the row type's columns)
        "WHERE practice_id = ? AND requested_date BETWEEN ? AND ?"
    )
    params: list[Any] = [str(practice_id), date_from, date_to]
    if status:
        sql += " AND status = ?"
        params.append(status)
    if patient_id:
        sql += " AND patient_id = ?"
        params.append(str(patient_id))
    if after:
        sql += " AND (sent_at, id) < (?, ?)"
        params.extend(after)
    sql += " ORDER BY sent_at DESC, id DESC LIMIT ?"
    params.append(limit)
    return rows_as(PaymentRequestRow, db.query(sql, params))


def due_expiries(db: Database, practice_id: UUID, now: datetime) -> list[str]:
    rows = db.query(
        "SELECT id FROM payment_requests WHERE practice_id = ? AND status = "
        "'requested' AND expires_at <= ? ORDER BY expires_at",
        (str(practice_id), iso(now)),
    )
    return [r["id"] for r in rows]


def due_reminders(db: Database, practice_id: UUID, now: datetime) -> list[str]:
    rows = db.query(
        "SELECT id FROM payment_requests WHERE practice_id = ? AND status = "
        "'requested' AND next_reminder_at <= ? AND expires_at > ? "
        "ORDER BY next_reminder_at",
        (str(practice_id), iso(now), iso(now)),
    )
    return [r["id"] for r in rows]


def due_deliveries(db: Database, practice_id: UUID, now: datetime) -> list[str]:
    rows = db.query(
        "SELECT DISTINCT m.request_id FROM payment_request_messages m JOIN payment_requests r "
        "ON r.id = m.request_id WHERE m.practice_id = ? AND m.status = 'pending' "
        "AND m.next_at <= ? AND r.status = 'requested' AND r.expires_at > ?",
        (str(practice_id), iso(now), iso(now)),
    )
    return [r["request_id"] for r in rows]


def existing_requests(db: Database, ids: list[str]) -> set[str]:
    """Which of these request ids exist (a bulk retry finds what it sent)."""
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        rows = db.query(
            f"SELECT id FROM payment_requests WHERE id IN ({', '.join('?' for _ in part)})",  # noqa: S608
            part,
        )
        found.update(r["id"] for r in rows)
    return found
