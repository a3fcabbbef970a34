"""The writeback journal: every entry owed to a PMS, its attempts, outcome and reference.

Rows are keyed by our marker (payment id, refund id, ``void:<payment id>``, request
id), so an event delivered twice makes one row. A worker claims a row before it
calls the PMS and sets ``outcome_unknown`` first: if the process dies mid-call, the
next attempt reads the PMS back before it writes again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from adapters.clock import now_text as now_text  # also the writeback worker's
from adapters.sql import Database, Tx, columns_of, row_as, rows_as


class JournalEntryRow(TypedDict):
    """A row of ``writeback_journal``: one entry owed to a PMS and how its writing goes."""

    id: str
    practice_id: str
    pms: str
    kind: str
    payment_id: str | None
    depends_on: str | None
    position: int
    payload: str  # JSON: what to write
    status: str
    attempts: int
    outcome_unknown: int
    last_error: str | None
    pms_reference: str | None
    next_attempt_at: str
    claimed_until: str | None
    first_attempt_at: str | None
    created_at: str
    updated_at: str


class WritebackStatus(TypedDict, total=False):
    """A practice's row of ``writeback_status``: no keys before its first recorded write."""

    practice_id: str
    failing_since: str | None
    last_error: str | None
    last_error_at: str | None
    last_success_at: str | None


class WritebackPracticeRow(TypedDict):
    """A row of ``writeback_practices``: a practice as the writeback knows it."""

    practice_id: str
    pms: str
    auto_writeback: int
    timezone: str
    pms_payment_type: str | None
    position: int


class WritebackPatientRow(TypedDict):
    """A row of ``writeback_patients``: a patient as the writeback knows them."""

    id: str
    practice_id: str
    pms_patient_id: str
    is_guarantor: int


ENTRY_COLUMNS = columns_of(JournalEntryRow)
STATUS_COLUMNS = columns_of(WritebackStatus)
PRACTICE_COLUMNS = columns_of(WritebackPracticeRow)
PATIENT_COLUMNS = columns_of(WritebackPatientRow)


@dataclass(frozen=True)
class EntryCount:
    pms: str
    status: str
    entries: int


@dataclass(frozen=True)
class Finish:
    """An attempt's end: the row's new status (a row that is done stays done)."""

    item_id: str
    status: str
    reference: str | None = None
    error: str | None = None
    unknown: bool = False
    retry_at: datetime | None = None


@dataclass(frozen=True)
class Release:
    """A row claimed with its batch and never tried (the practice was paused first): as it
    was before the claim."""

    item_id: str
    unknown: bool
    first_attempt_at: str | None


@dataclass(frozen=True)
class Pause:
    """The PMS asked for a pause (Retry-After): the practice's pending rows wait until."""

    practice_id: str
    pms: str
    until: datetime


@dataclass(frozen=True)
class PracticeOutcome:
    """A write to the practice's PMS succeeded (no error) or failed (its error)."""

    practice_id: str
    error: str | None


#: what a batch of attempts records at its end, in one transaction (`Journal.record`)
Outcome = Finish | Release | Pause | PracticeOutcome


#: an attempt's end (a row that is done stays done)
FINISH_SQL = (
    "UPDATE writeback_journal SET status = ?, pms_reference = COALESCE(?, pms_reference), "
    "last_error = ?, outcome_unknown = ?, claimed_until = NULL, next_attempt_at = ?, "
    "updated_at = ? WHERE id = ? AND status <> 'done'"
)


class Journal:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- intake ------------------------------------------------------------------------

    @contextmanager
    def intake(self) -> Iterator[JournalIntake]:
        """The intake's tables in one transaction (the Kafka consumer's: its rows commit
        before its offsets)."""
        with self.db.transaction() as tx:
            yield JournalIntake(tx)

    # -- the worker -------------------------------------------------------------------

    def due(
        self, pms: str | None, limit: int = 100, practice_id: str | None = None
    ) -> list[JournalEntryRow]:
        """Pending rows that are due and not held by another attempt, oldest first.

        No row waits for another of its practice except where order matters: a
        reversal waits for its payment (the worker defers it until then)."""
        stamp = now_text()
        sql = (
            f"SELECT {ENTRY_COLUMNS} FROM writeback_journal "  # noqa: S608 (the row's columns)
            "WHERE status = 'pending' AND next_attempt_at <= ? "
            "AND (claimed_until IS NULL OR claimed_until < ?)"
        )
        params: list[Any] = [stamp, stamp]
        if pms:
            sql += " AND pms = ?"
            params.append(pms)
        if practice_id:
            sql += " AND practice_id = ?"
            params.append(practice_id)
        rows = self.db.query(sql + " ORDER BY position LIMIT ?", [*params, limit])
        return rows_as(JournalEntryRow, rows)

    def due_practices(self, pms: str | None, limit: int, busy: Sequence[str] = ()) -> list[str]:
        """The practices with due rows (as `due` finds them), the one whose oldest due row
        is oldest first, leaving out `busy` ones (those a worker is writing now)."""
        stamp = now_text()
        sql = (
            "SELECT practice_id, MIN(position) AS first FROM writeback_journal "
            "WHERE status = 'pending' AND next_attempt_at <= ? "
            "AND (claimed_until IS NULL OR claimed_until < ?)"
        )
        params: list[Any] = [stamp, stamp]
        if pms:
            sql += " AND pms = ?"
            params.append(pms)
        if busy:
            sql += f" AND practice_id NOT IN ({', '.join('?' for _ in busy)})"
            params.extend(busy)
        rows = self.db.query(sql + " GROUP BY practice_id ORDER BY first LIMIT ?", [*params, limit])
        return [str(r["practice_id"]) for r in rows]

    def pause_practice(self, practice_id: str, pms: str, until: datetime) -> None:
        """The PMS asked us to wait (Retry-After): none of the practice's rows for it
        is tried before then."""
        self.record([Pause(practice_id, pms, until)])

    def claim(self, item: JournalEntryRow, seconds: float = 120) -> bool:
        """Take the row for one attempt; the outcome is unknown until recorded."""
        return bool(self.claim_many([item], seconds))

    def claim_many(self, items: Sequence[JournalEntryRow], seconds: float) -> list[str]:
        """Take many rows (one practice's batch) for one attempt each, in one transaction,
        before any of their calls: each outcome is unknown until recorded. `seconds` is
        how long they are held (the attempt extends it while it works: `extend`). The
        ids taken, in order; a row another attempt holds or finished meanwhile is not."""
        if not items:
            return []
        stamp = now_text()
        until = now_text(datetime.now(UTC) + timedelta(seconds=seconds))
        pairs = ", ".join("(?, ?)" for _ in items)
        with self.db.transaction() as tx:
            rows = tx.execute(
                "UPDATE writeback_journal SET claimed_until = ?, attempts = attempts + 1, "  # noqa: S608
                "outcome_unknown = 1, first_attempt_at = COALESCE(first_attempt_at, ?), "
                "updated_at = ? WHERE status = 'pending' "
                "AND (claimed_until IS NULL OR claimed_until < ?) "
                f"AND (id, attempts) IN ({pairs}) RETURNING id",
                [
                    until,
                    stamp,
                    stamp,
                    stamp,
                    *(v for item in items for v in (item["id"], item["attempts"])),
                ],
            )
        claimed = {str(r["id"]) for r in rows}
        return [item["id"] for item in items if item["id"] in claimed]

    def extend(self, ids: Sequence[str], seconds: float) -> list[str]:
        """Hold rows this attempt still holds (not finished, not taken over after their
        claim ran out) for `seconds` more from now; the ids still held."""
        stamp = now_text()
        until = now_text(datetime.now(UTC) + timedelta(seconds=seconds))
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        with self.db.transaction() as tx:
            rows = tx.execute(
                "UPDATE writeback_journal SET claimed_until = ? WHERE "  # noqa: S608
                f"id IN ({marks}) AND status = 'pending' AND claimed_until >= ? RETURNING id",
                [until, *ids, stamp],
            )
        kept = {str(r["id"]) for r in rows}
        return [item_id for item_id in ids if item_id in kept]

    def finish(
        self,
        item_id: str,
        *,
        status: str,
        reference: str | None = None,
        error: str | None = None,
        unknown: bool = False,
        retry_at: datetime | None = None,
        succeeded_for: str | None = None,
    ) -> None:
        """Record an attempt's end; `succeeded_for`: a write to this practice's PMS
        succeeded, recorded on its status in the same transaction. A row that is done
        (the entry was associated meanwhile, e.g. posted by hand) stays done."""
        self.record(
            [
                Finish(item_id, status, reference, error, unknown, retry_at),
                *([PracticeOutcome(succeeded_for, None)] if succeeded_for else []),
            ]
        )

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """A batch's outcomes in one transaction, in order: rows finished, rows released
        untried, a practice paused, the practice's status after each write."""
        if not outcomes:
            return
        stamp = now_text()
        finishes: list[tuple[Any, ...]] = []
        #: each practice's last status outcome recorded here: the same one again (same
        #: stamp, same transaction) changes nothing, so a batch's writes record it once
        last: dict[str, PracticeOutcome] = {}
        with self.db.transaction() as tx:

            def finish_rows() -> None:  # consecutive rows' ends in one round trip
                if finishes:
                    tx.executemany(FINISH_SQL, finishes)
                    finishes.clear()

            for outcome in outcomes:
                if isinstance(outcome, Finish):
                    finishes.append(
                        (
                            outcome.status,
                            outcome.reference,
                            outcome.error,
                            int(outcome.unknown),
                            now_text(outcome.retry_at),
                            stamp,
                            outcome.item_id,
                        )
                    )
                    continue
                finish_rows()
                if isinstance(outcome, Release):
                    tx.execute(
                        "UPDATE writeback_journal SET claimed_until = NULL, "
                        "attempts = attempts - 1, outcome_unknown = ?, first_attempt_at = ? "
                        "WHERE id = ? AND status = 'pending'",
                        (int(outcome.unknown), outcome.first_attempt_at, outcome.item_id),
                    )
                elif isinstance(outcome, Pause):
                    later = now_text(outcome.until)
                    tx.execute(
                        "UPDATE writeback_journal SET next_attempt_at = ? WHERE practice_id = ? "
                        "AND pms = ? AND status = 'pending' AND next_attempt_at < ?",
                        (later, outcome.practice_id, outcome.pms, later),
                    )
                elif last.get(outcome.practice_id) == outcome:
                    continue
                else:
                    last[outcome.practice_id] = outcome
                    if outcome.error is None:
                        self._succeeded(tx, outcome.practice_id, stamp)
                    else:
                        self._failing(tx, outcome.practice_id, outcome.error, stamp)
            finish_rows()

    def defer(self, item_id: str, seconds: float) -> None:
        """Not now, without counting an attempt (waiting for the entry it depends on)."""
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE writeback_journal SET next_attempt_at = ?, claimed_until = NULL, "
                "attempts = attempts - 1 WHERE id = ?",
                (now_text(datetime.now(UTC) + timedelta(seconds=seconds)), item_id),
            )

    def get(self, item_id: str) -> JournalEntryRow | None:
        row = self.db.query_one(
            f"SELECT {ENTRY_COLUMNS} FROM writeback_journal WHERE id = ?",  # noqa: S608
            (item_id,),
        )
        return row_as(JournalEntryRow, row)

    def of_payment(self, payment_id: str) -> list[JournalEntryRow]:
        return self.of_payments([payment_id]).get(payment_id, [])

    def of_payments(self, payment_ids: list[str]) -> dict[str, list[JournalEntryRow]]:
        """The rows of many payments in one query, by payment, in log order."""
        found: dict[str, list[JournalEntryRow]] = {}
        if not payment_ids:
            return found
        marks = ", ".join("?" for _ in payment_ids)
        rows = self.db.query(
            f"SELECT {ENTRY_COLUMNS} FROM writeback_journal "  # noqa: S608 (the row's columns)
            f"WHERE payment_id IN ({marks}) ORDER BY position",
            payment_ids,
        )
        for row in rows_as(JournalEntryRow, rows):
            found.setdefault(str(row["payment_id"]), []).append(row)
        return found

    def retry_failed(self, practice_id: str, payment_id: str | None = None) -> int:
        """Make writes due at once after their cause was fixed: failed ones (with a fresh
        set of attempts) and pending ones waiting out a backoff. With a payment, the
        count is that payment's rows; the practice's other waiting rows are made due too,
        as entries are written in order per practice and an earlier one would hold it."""
        stamp = now_text()
        waiting = (
            "practice_id = ? AND (status = 'failed' OR (status = 'pending' AND "
            "next_attempt_at > ? AND (claimed_until IS NULL OR claimed_until < ?)))"
        )
        with self.db.transaction() as tx:
            count = tx.one(
                f"SELECT COUNT(*) AS n FROM writeback_journal WHERE {waiting}"  # noqa: S608
                + (" AND payment_id = ?" if payment_id else ""),
                [practice_id, stamp, stamp, *([payment_id] if payment_id else [])],
            )
            tx.execute(
                "UPDATE writeback_journal SET attempts = 0, last_error = NULL "
                "WHERE practice_id = ? AND status = 'failed'",
                (practice_id,),
            )
            tx.execute(
                f"UPDATE writeback_journal SET status = 'pending', "  # noqa: S608
                f"next_attempt_at = ?, updated_at = ? WHERE {waiting}",
                (stamp, stamp, practice_id, stamp, stamp),
            )
            return int(count["n"]) if count else 0

    # -- the practice's status ----------------------------------------------------------

    def record_outcome(self, practice_id: str, error: str | None) -> None:
        """A write failed (or was refused): the practice is failing from now until a write
        succeeds. A success: back to ok."""
        self.record([PracticeOutcome(practice_id, error)])

    @staticmethod
    def _failing(tx: Tx, practice_id: str, error: str, stamp: str) -> None:
        tx.execute(
            "INSERT INTO writeback_status (practice_id, failing_since, last_error, "
            "last_error_at) VALUES (?, ?, ?, ?) ON CONFLICT (practice_id) DO UPDATE SET "
            "failing_since = COALESCE(writeback_status.failing_since, "
            "excluded.failing_since), last_error = excluded.last_error, "
            "last_error_at = excluded.last_error_at",
            (practice_id, stamp, error, stamp),
        )

    @staticmethod
    def _succeeded(tx: Tx, practice_id: str, stamp: str) -> None:
        tx.execute(
            "INSERT INTO writeback_status (practice_id, last_success_at) VALUES (?, ?) "
            "ON CONFLICT (practice_id) DO UPDATE SET failing_since = NULL, "
            "last_success_at = excluded.last_success_at",
            (practice_id, stamp),
        )

    def status(self, practice_id: str) -> WritebackStatus:
        row = self.db.query_one(
            f"SELECT {STATUS_COLUMNS} FROM writeback_status WHERE practice_id = ?",  # noqa: S608
            (practice_id,),
        )
        return row_as(WritebackStatus, row) or {}

    def timezone(self, practice_id: str) -> str:
        """The practice's time zone as the writeback knows it (UTC if unknown)."""
        row = self.db.query_one(
            "SELECT timezone FROM writeback_practices WHERE practice_id = ?", (practice_id,)
        )
        return str(row["timezone"]) if row else "UTC"

    def summary(self, practice_id: str) -> dict[str, int]:
        rows = self.db.query(
            "SELECT status, COUNT(*) AS n FROM writeback_journal "
            "WHERE practice_id = ? GROUP BY status",
            (practice_id,),
        )
        return {str(r["status"]): int(r["n"]) for r in rows}

    def counts(self) -> list[EntryCount]:
        """How many entries each PMS has in each status, over all practices."""
        rows = self.db.query(
            "SELECT pms, status, COUNT(*) AS n FROM writeback_journal GROUP BY pms, status"
        )
        return [EntryCount(str(r["pms"]), str(r["status"]), int(r["n"])) for r in rows]


#: the practice's settings the intake keeps, by the name the settings event gives them
PRACTICE_SETTINGS = {
    "pms": "pms",
    "auto_writeback": "auto_writeback",
    "pms_payment_type": "pms_payment_type",
}


class JournalIntake:
    """What the intake records, inside one transaction (the Kafka consumer's, or the
    intake projection's with its tracking position): the practices and patients as the
    writeback knows them, and the journal's new rows."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx
        #: what the page's transaction keeps for the rest of it (PipelinedTx.memo in
        #: adapters/sql.py), if any:
        #: a practice's row is read once per page, not once per event
        self._memo: dict[Any, Any] | None = getattr(tx, "memo", None)

    def _forget_practice(self, practice_id: str) -> None:
        if self._memo is not None:
            self._memo.pop(("writeback_practice", practice_id), None)

    def practice_created(
        self, practice_id: str, *, pms: str, auto_writeback: bool, timezone: str, position: int
    ) -> None:
        self._tx.execute(
            "INSERT INTO writeback_practices (practice_id, pms, auto_writeback, timezone, "
            "pms_payment_type, position) VALUES (?, ?, ?, ?, NULL, ?) ON CONFLICT (practice_id) "
            "DO NOTHING",
            (practice_id, pms, int(auto_writeback), timezone, position),
        )
        self._forget_practice(practice_id)

    def practice_setting_changed(
        self, practice_id: str, setting: str, value: Any, position: int
    ) -> None:
        """One of PRACTICE_SETTINGS changed at ``position`` (an older change is ignored)."""
        column = PRACTICE_SETTINGS[setting]
        self._tx.execute(
            f"UPDATE writeback_practices SET {column} = ?, position = ? "  # noqa: S608
            "WHERE practice_id = ? AND position < ?",
            (int(value) if isinstance(value, bool) else value, position, practice_id, position),
        )
        self._forget_practice(practice_id)

    def patient_registered(
        self, patient_id: str, *, practice_id: str, pms_patient_id: Any, is_guarantor: bool
    ) -> None:
        self._tx.execute(
            "INSERT INTO writeback_patients (id, practice_id, pms_patient_id, is_guarantor) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (patient_id, practice_id, pms_patient_id, int(is_guarantor)),
        )

    def practice(self, practice_id: str) -> WritebackPracticeRow | None:
        key = ("writeback_practice", practice_id)
        if self._memo is not None and key in self._memo:
            return row_as(WritebackPracticeRow, self._memo[key])
        row = self._tx.one(
            f"SELECT {PRACTICE_COLUMNS} FROM writeback_practices "  # noqa: S608 (the row's columns)
            "WHERE practice_id = ?",
            (practice_id,),
        )
        if self._memo is not None:
            self._memo[key] = row
        return row_as(WritebackPracticeRow, row)

    def timezone(self, practice_id: str) -> str:
        """The practice's time zone as the writeback knows it (UTC if unknown)."""
        row = self._tx.one(
            "SELECT timezone FROM writeback_practices WHERE practice_id = ?", (practice_id,)
        )
        return str(row["timezone"]) if row else "UTC"

    def patient(self, patient_id: str) -> WritebackPatientRow | None:
        row = self._tx.one(
            f"SELECT {PATIENT_COLUMNS} FROM writeback_patients WHERE id = ?",  # noqa: S608
            (patient_id,),
        )
        return row_as(WritebackPatientRow, row)

    def payment_entry(self, payment_id: str) -> JournalEntryRow | None:
        """The journal's row of a payment's own entry."""
        row = self._tx.one(
            f"SELECT {ENTRY_COLUMNS} FROM writeback_journal "  # noqa: S608 (the row's columns)
            "WHERE id = ? AND kind = 'payment'",
            (payment_id,),
        )
        return row_as(JournalEntryRow, row)

    def associated(self, entry_id: str, reference: str | None) -> None:
        """The entry is in the PMS ledger by our events (written, posted by hand or
        matched from the inbox): its row, however its writing went, is done, with no
        call to the PMS. A row under an attempt now is finished too; the attempt, when it
        ends, asks the ledger again before anything is re-sent."""
        self._tx.execute(
            "UPDATE writeback_journal SET status = 'done', pms_reference = COALESCE(?, "
            "pms_reference), last_error = NULL, outcome_unknown = 0, updated_at = ? "
            "WHERE id = ? AND status IN ('pending', 'failed', 'unmatched')",
            (reference, now_text(), entry_id),
        )

    def add(
        self,
        *,
        id: str,
        practice_id: str,
        pms: str,
        kind: str,
        payment_id: str | None,
        position: int,
        payload: dict[str, Any],
        status: str = "pending",
        depends_on: str | None = None,
    ) -> None:
        stamp = now_text()
        self._tx.execute(
            "INSERT INTO writeback_journal (id, practice_id, pms, kind, payment_id, depends_on, "
            "position, payload, status, next_attempt_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                id,
                practice_id,
                pms,
                kind,
                payment_id,
                depends_on,
                position,
                json.dumps(payload, sort_keys=True),
                status,
                stamp,
                stamp,
                stamp,
            ),
        )
