"""The AR view: one row per patient with their PMS balance, last payment, last request,
snooze and contact channels; and the practice's library of saved filters."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypedDict
from uuid import UUID

from adapters.sql import Database, Tx, columns_of, row_as, rows_as
from domain.patients import Patient
from domain.payments import Payment
from domain.posting import dispute_marker
from domain.practices import Practice
from domain.receivables import MONEY_COLUMNS, Balance, PmsSync, SavedFilter, live_balance
from domain.requests import PaymentRequest
from domain.schedule import local_date
from projections.base import Projection, forget, handles, iso, remembered

#: columns a list can be sorted by (all indexed with practice_id and id)
SORTABLE = (*MONEY_COLUMNS, "last_name", "last_payment_date", "last_request_date", "snooze_until")
NULLABLE = ("last_payment_date", "last_request_date", "snooze_until")
REQUEST_STATUSES = ("requested", "completed", "cancelled", "none")


class ArRow(TypedDict):
    """A row of ``ar_patients``: one patient, with live balances (the money columns,
    MONEY_COLUMNS, are integer cents) when the PMS reported any (``has_balance``)."""

    id: str
    practice_id: str
    pms_patient_id: str
    first_name: str
    last_name: str
    search_name: str
    email: str | None
    phone: str | None
    has_email: int
    has_phone: int
    guarantor_id: str | None
    has_balance: int
    is_guarantor: int
    total: int
    bal_0_30: int
    bal_31_60: int
    bal_61_90: int
    bal_over_90: int
    insurance_estimate: int
    patient_portion: int
    on_payment_plan: int
    pms_last_payment_date: str | None
    last_payment_date: str | None
    balance_as_of: str | None
    balance_source: str | None
    snapshot: str | None  # JSON: the PMS's balance as recorded
    collected_since: int
    last_request_id: str | None
    last_request_date: str | None
    last_request_amount: int | None
    last_request_status: str
    snooze_until: str | None
    snooze_reason: str | None
    snooze_note: str | None


class ArFilterRow(TypedDict):
    """A row of ``ar_filters``: one saved filter of the practice's library."""

    id: str
    practice_id: str
    name: str
    filter: str  # JSON: the filter's values by name
    saved_at: str
    deleted: int


class ArSyncRow(TypedDict):
    """A row of ``ar_syncs``: the practice's last PMS sync."""

    practice_id: str
    started_at: str | None
    finished_at: str | None
    outcome: str | None
    error: str | None
    last_ok_at: str | None
    patients_seen: int | None
    patients_added: int | None
    balances_recorded: int | None


AR_COLUMNS = columns_of(ArRow)
FILTER_COLUMNS = columns_of(ArFilterRow)
SYNC_COLUMNS = columns_of(ArSyncRow)


class Receivables(Projection):
    """Money columns are live: the PMS snapshot (kept in `snapshot`, as of `balance_as_of`)
    less `collected_since`, what this ledger collected since that the PMS had not counted
    (`ar_movements`: payments, refunds, voids of posted payments and lost disputes, each
    in the PMS from its association, or if never associated from when it happened).
    "Last paid" is the latest of the PMS's date and the days of this ledger's payments
    that still stand (a voided payment does not count; a declined one never did)."""

    name = "receivables"
    role = "work"
    # 2: live balances and PMS syncs; 3: lost disputes, last paid after voids; 4: last paid
    # after full refunds, and the PMS's date when it is a payment that no longer stands
    version = 4
    tables = ("ar_patients", "ar_filters", "ar_zones", "ar_movements", "ar_syncs")
    ddl = (
        f"""CREATE TABLE IF NOT EXISTS ar_patients (
            id TEXT PRIMARY KEY,
            practice_id TEXT NOT NULL,
            pms_patient_id TEXT NOT NULL,
            first_name TEXT NOT NULL,
            last_name TEXT NOT NULL,
            search_name TEXT NOT NULL,
            email TEXT,
            phone TEXT,
            has_email INTEGER NOT NULL,
            has_phone INTEGER NOT NULL,
            guarantor_id TEXT,
            has_balance INTEGER NOT NULL DEFAULT 0,
            is_guarantor INTEGER NOT NULL DEFAULT 1,
            {", ".join(f"{c} BIGINT NOT NULL DEFAULT 0" for c in MONEY_COLUMNS)},
            on_payment_plan INTEGER NOT NULL DEFAULT 0,
            pms_last_payment_date TEXT,
            last_payment_date TEXT,
            balance_as_of TEXT,
            balance_source TEXT,
            snapshot TEXT,
            collected_since BIGINT NOT NULL DEFAULT 0,
            last_request_id TEXT,
            last_request_date TEXT,
            last_request_amount BIGINT,
            last_request_status TEXT NOT NULL DEFAULT 'none',
            snooze_until TEXT,
            snooze_reason TEXT,
            snooze_note TEXT
        )""",
        *(
            f"CREATE INDEX IF NOT EXISTS ar_by_{c} ON ar_patients "
            f"(practice_id, has_balance, {c}, id)"
            for c in SORTABLE
        ),
        "CREATE INDEX IF NOT EXISTS ar_by_guarantor ON ar_patients (guarantor_id)",
        """CREATE TABLE IF NOT EXISTS ar_filters (
            id TEXT PRIMARY KEY,
            practice_id TEXT NOT NULL,
            name TEXT NOT NULL,
            filter TEXT NOT NULL,
            saved_at TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE IF NOT EXISTS ar_zones (
            practice_id TEXT PRIMARY KEY,
            timezone TEXT NOT NULL,
            pms TEXT NOT NULL DEFAULT '',
            auto_writeback INTEGER NOT NULL DEFAULT 0,
            writes_back INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE IF NOT EXISTS ar_movements (
            id TEXT PRIMARY KEY,
            practice_id TEXT NOT NULL,
            guarantor_id TEXT NOT NULL,
            payment_id TEXT NOT NULL,
            amount BIGINT NOT NULL,
            at TEXT NOT NULL,
            written_back INTEGER NOT NULL DEFAULT 0,
            associated_at TEXT,
            patient_id TEXT,
            day TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS ar_movements_by_guarantor ON ar_movements (guarantor_id)",
        "CREATE INDEX IF NOT EXISTS ar_movements_by_payment ON ar_movements (payment_id)",
        # "last paid" after a void reads a patient's movements (refresh_last_paid)
        "CREATE INDEX IF NOT EXISTS ar_movements_by_patient ON ar_movements (patient_id)",
        """CREATE TABLE IF NOT EXISTS ar_syncs (
            practice_id TEXT PRIMARY KEY,
            started_at TEXT,
            finished_at TEXT,
            outcome TEXT,
            error TEXT,
            last_ok_at TEXT,
            patients_seen INTEGER,
            patients_added INTEGER,
            balances_recorded INTEGER
        )""",
    )

    @handles(Practice.Created)
    def practice(self, tx: Tx, e: Practice.Created, position: int) -> None:
        forget(tx, ("ar_zone", str(e.practice_id)))
        forget(tx, ("ar_writes_back", str(e.practice_id)))
        tx.execute(
            "INSERT INTO ar_zones (practice_id, timezone, pms, auto_writeback, writes_back) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                str(e.practice_id),
                e.timezone,
                e.pms,
                int(e.auto_writeback),
                int(writes_back(e.pms, e.auto_writeback)),
            ),
        )

    @handles(Practice.SettingsChanged)
    def settings(self, tx: Tx, e: Practice.SettingsChanged, position: int) -> None:
        if "pms" not in e.changes and "auto_writeback" not in e.changes:
            return
        row = tx.one("SELECT * FROM ar_zones WHERE practice_id = ?", (str(e.practice_id),))
        if row is None:
            return
        forget(tx, ("ar_writes_back", str(e.practice_id)))
        pms = str(e.changes.get("pms", row["pms"]))
        auto = bool(e.changes.get("auto_writeback", row["auto_writeback"]))
        tx.execute(
            "UPDATE ar_zones SET pms = ?, auto_writeback = ?, writes_back = ? "
            "WHERE practice_id = ?",
            (pms, int(auto), int(writes_back(pms, auto)), str(e.practice_id)),
        )

    @handles(Patient.Registered)
    def registered(self, tx: Tx, e: Patient.Registered, position: int) -> None:
        tx.execute(
            "INSERT INTO ar_patients (id, practice_id, pms_patient_id, first_name, last_name, "
            "search_name, email, phone, has_email, has_phone, guarantor_id, is_guarantor) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(e.originator_id),
                str(e.practice_id),
                e.pms_patient_id,
                e.first_name,
                e.last_name,
                f"{e.first_name} {e.last_name} {e.last_name}, {e.first_name}".lower(),
                e.email,
                e.phone,
                int(bool(e.email)),
                int(bool(e.phone)),
                str(e.guarantor_id) if e.guarantor_id else None,
                int(e.guarantor_id is None),
            ),
        )

    @handles(Patient.BalanceRecorded)
    def balance(self, tx: Tx, e: Patient.BalanceRecorded, position: int) -> None:
        b = e.balance
        as_of = getattr(e, "as_of", None) or e.at
        tx.execute(
            "UPDATE ar_patients SET has_balance = 1, snapshot = ?, on_payment_plan = ?, "
            "is_guarantor = ?, pms_last_payment_date = ?, balance_as_of = ?, "
            "balance_source = ? WHERE id = ?",
            (
                json.dumps(b, sort_keys=True),
                int(b["on_payment_plan"]),
                int(b["is_guarantor"]),
                b["last_payment_date"],
                iso(as_of),
                e.source,
                str(e.originator_id),
            ),
        )
        refresh_live(tx, str(e.originator_id))
        refresh_last_paid(tx, None, str(e.originator_id))

    @handles(Patient.Snoozed)
    def snoozed(self, tx: Tx, e: Patient.Snoozed, position: int) -> None:
        tx.execute(
            "UPDATE ar_patients SET snooze_until = ?, snooze_reason = ?, snooze_note = ? "
            "WHERE id = ?",
            (e.until, e.reason, e.note, str(e.originator_id)),
        )

    @handles(Patient.SnoozeEnded)
    def snooze_ended(self, tx: Tx, e: Patient.SnoozeEnded, position: int) -> None:
        tx.execute(
            "UPDATE ar_patients SET snooze_until = NULL, snooze_reason = NULL, "
            "snooze_note = NULL WHERE id = ?",
            (str(e.originator_id),),
        )

    @handles(Payment.Captured)
    def paid(self, tx: Tx, e: Payment.Captured, position: int) -> None:
        if e.patient_id is None:
            return
        add_movement(tx, e, str(e.originator_id), e.amount)
        zone = practice_zone(tx, str(e.practice_id))
        day = local_date(e.at, zone).isoformat()
        tx.execute(
            "UPDATE ar_patients SET last_payment_date = ? WHERE (last_payment_date IS NULL OR "
            "last_payment_date < ?) AND (id = ? OR id = (SELECT guarantor_id FROM ar_patients "
            "WHERE id = ?))",
            (day, day, str(e.patient_id), str(e.patient_id)),
        )

    @handles(Payment.Voided)
    def voided(self, tx: Tx, e: Payment.Voided, position: int) -> None:
        """Voided before it reached the PMS: it never counted. After: take it back too.
        Either way the family owes it again, and it is nobody's last payment."""
        payment = tx.one(
            "SELECT id, guarantor_id, amount, associated_at, patient_id FROM ar_movements "
            "WHERE id = ?",
            (str(e.originator_id),),
        )
        if payment is None:
            return
        if payment["associated_at"] is None:
            tx.execute("DELETE FROM ar_movements WHERE id = ?", (payment["id"],))
            refresh_live(tx, payment["guarantor_id"])
        else:
            add_movement(tx, e, f"void:{e.originator_id}", -int(payment["amount"]))
        refresh_last_paid(tx, payment["patient_id"], payment["guarantor_id"])

    @handles(Payment.Refunded)
    def refunded(self, tx: Tx, e: Payment.Refunded, position: int) -> None:
        """Owed again; refunded in full, it is nobody's last payment any more."""
        payment = tx.one(
            "SELECT guarantor_id, patient_id FROM ar_movements WHERE id = ?",
            (str(e.originator_id),),
        )
        if payment is not None:
            add_movement(tx, e, str(e.refund_id), -e.amount)
            refresh_last_paid(tx, payment["patient_id"], payment["guarantor_id"])

    @handles(Payment.DisputeClosed)
    def dispute_closed(self, tx: Tx, e: Payment.DisputeClosed, position: int) -> None:
        """A lost dispute took the money back for good: the family owes it again (a
        negative movement, as a refund; the PMS counts it once its entry is posted)."""
        if e.status != "lost":
            return
        if tx.one("SELECT 1 AS x FROM ar_movements WHERE id = ?", (str(e.originator_id),)):
            add_movement(tx, e, dispute_marker(e.dispute_id), -e.amount)

    @handles(
        Payment.Associated,
        Payment.RefundAssociated,
        Payment.VoidAssociated,
        Payment.DisputeAssociated,
    )
    def posted(
        self,
        tx: Tx,
        e: Payment.Associated
        | Payment.RefundAssociated
        | Payment.VoidAssociated
        | Payment.DisputeAssociated,
        position: int,
    ) -> None:
        """From now on the PMS counts it (its next snapshot holds it)."""
        if isinstance(e, Payment.RefundAssociated):
            marker = str(e.refund_id)
        elif isinstance(e, Payment.VoidAssociated):
            marker = f"void:{e.originator_id}"
        elif isinstance(e, Payment.DisputeAssociated):
            marker = dispute_marker(e.dispute_id)
        else:
            marker = str(e.originator_id)
        movement = tx.one("SELECT guarantor_id FROM ar_movements WHERE id = ?", (marker,))
        if movement is None:
            return
        tx.execute("UPDATE ar_movements SET associated_at = ? WHERE id = ?", (iso(e.at), marker))
        refresh_live(tx, movement["guarantor_id"])

    @handles(PmsSync.Started)
    def sync_started(self, tx: Tx, e: PmsSync.Started, position: int) -> None:
        tx.execute(
            "INSERT INTO ar_syncs (practice_id, started_at) VALUES (?, ?) ON CONFLICT "
            "(practice_id) DO UPDATE SET started_at = excluded.started_at",
            (str(e.practice_id), iso(e.at)),
        )

    @handles(PmsSync.Finished)
    def sync_finished(self, tx: Tx, e: PmsSync.Finished, position: int) -> None:
        ok = e.outcome == "ok"
        tx.execute(
            "UPDATE ar_syncs SET finished_at = ?, outcome = ?, error = ?, patients_seen = ?, "
            "patients_added = ?, balances_recorded = ?, last_ok_at = CASE WHEN ? = 1 THEN ? "
            "ELSE last_ok_at END WHERE practice_id = ?",
            (
                iso(e.at),
                e.outcome,
                e.error,
                e.patients_seen,
                e.patients_added,
                e.balances_recorded,
                int(ok),
                iso(e.started_at),
                str(e.practice_id),
            ),
        )
        if ok:
            confirm_snapshots(tx, str(e.practice_id), iso(e.started_at))

    @handles(PaymentRequest.Sent)
    def request_sent(self, tx: Tx, e: PaymentRequest.Sent, position: int) -> None:
        zone = practice_zone(tx, str(e.practice_id))
        tx.execute(
            "UPDATE ar_patients SET last_request_id = ?, last_request_date = ?, "
            "last_request_amount = ?, last_request_status = 'requested' WHERE id = ?",
            (
                str(e.originator_id),
                local_date(e.at, zone).isoformat(),
                e.amount,
                str(e.patient_id),
            ),
        )

    @handles(PaymentRequest.Reopened)
    def request_reopened(self, tx: Tx, e: PaymentRequest.Reopened, position: int) -> None:
        """Its payment was voided: a completed request is requested again."""
        tx.execute(
            "UPDATE ar_patients SET last_request_status = 'requested' WHERE last_request_id = ? "
            "AND last_request_status = 'completed'",
            (str(e.originator_id),),
        )

    @handles(PaymentRequest.Completed, PaymentRequest.Cancelled)
    def request_closed(
        self, tx: Tx, e: PaymentRequest.Completed | PaymentRequest.Cancelled, position: int
    ) -> None:
        status = "completed" if isinstance(e, PaymentRequest.Completed) else "cancelled"
        tx.execute(
            "UPDATE ar_patients SET last_request_status = ? WHERE last_request_id = ?",
            (status, str(e.originator_id)),
        )

    @handles(SavedFilter.Saved, SavedFilter.Resaved)
    def filter_saved(
        self, tx: Tx, e: SavedFilter.Saved | SavedFilter.Resaved, position: int
    ) -> None:
        tx.execute(
            "INSERT INTO ar_filters (id, practice_id, name, filter, saved_at, deleted) "
            "VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
            "filter = excluded.filter, saved_at = excluded.saved_at, deleted = 0",
            (
                str(e.originator_id),
                str(e.practice_id),
                e.name,
                json.dumps(e.filter, sort_keys=True),
                iso(e.at),
            ),
        )

    @handles(SavedFilter.Deleted)
    def filter_deleted(self, tx: Tx, e: SavedFilter.Deleted, position: int) -> None:
        tx.execute("UPDATE ar_filters SET deleted = 1 WHERE id = ?", (str(e.originator_id),))


def writes_back(pms: str, auto_writeback: bool) -> bool:
    """Payments reach this practice's PMS by the automatic writeback (not by hand)."""
    return auto_writeback and pms in ("opendental", "eaglesoft")


def practice_zone(tx: Tx, practice_id: str) -> str:
    """The practice's time zone ("UTC" before it is known); read once per page where the
    page's transaction keeps values (it is only written when the practice is created)."""

    def load() -> str:
        row = tx.one("SELECT timezone FROM ar_zones WHERE practice_id = ?", (practice_id,))
        return str(row["timezone"]) if row else "UTC"

    return str(remembered(tx, ("ar_zone", practice_id), load))


def practice_writes_back(tx: Tx, practice_id: str) -> int:
    """1 when the practice's payments reach its PMS by the automatic writeback; read once
    per page where the page's transaction keeps values (its settings handler forgets it)."""

    def load() -> int:
        row = tx.one("SELECT writes_back FROM ar_zones WHERE practice_id = ?", (practice_id,))
        return int(row["writes_back"]) if row else 0

    return int(remembered(tx, ("ar_writes_back", practice_id), load))


def add_movement(tx: Tx, e: Any, marker: str, amount: int) -> None:
    """A payment (positive), refund or void (negative) of a patient's family."""
    payment_id = str(e.originator_id)
    patient: str | None
    if isinstance(e, Payment.Captured):
        family = tx.one(
            "SELECT COALESCE(guarantor_id, id) AS guarantor FROM ar_patients WHERE id = ?",
            (str(e.patient_id),),
        )
        guarantor = family["guarantor"] if family else None
        patient = str(e.patient_id)
    else:
        payment = tx.one(
            "SELECT guarantor_id, patient_id FROM ar_movements WHERE id = ?", (payment_id,)
        )
        guarantor = payment["guarantor_id"] if payment else None
        patient = payment["patient_id"] if payment else None
    if guarantor is None:
        return
    practice_id = str(e.practice_id)
    tx.execute(
        "INSERT INTO ar_movements (id, practice_id, guarantor_id, payment_id, amount, at, "
        "written_back, patient_id, day) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING",
        (
            marker,
            str(e.practice_id),
            guarantor,
            payment_id,
            amount,
            iso(e.at),
            practice_writes_back(tx, practice_id),
            patient,
            local_date(e.at, practice_zone(tx, practice_id)).isoformat(),
        ),
    )
    refresh_live(tx, guarantor)


def refresh_last_paid(tx: Tx, patient_id: str | None, guarantor_id: str) -> None:
    """ "Last paid" of the patient and of its guarantor: the latest of the PMS's date and
    the days of the payments here that still stand. A payment stands unless it was voided
    or refunded in full (a lost dispute leaves it: the patient did pay). The PMS's date
    does not count when it is the day of a payment here that no longer stands, or of its
    void or refund (the PMS's own entries for them, written back or posted by hand), and
    no payment here that stands is of that day: the PMS's date is then about a payment
    that was given back."""
    for row_id in {patient_id or guarantor_id, guarantor_id}:
        row = tx.one("SELECT pms_last_payment_date FROM ar_patients WHERE id = ?", (row_id,))
        if row is None:
            continue
        moves = tx.execute(
            "SELECT id, payment_id, amount, day FROM ar_movements WHERE patient_id = ? "
            "UNION SELECT id, payment_id, amount, day FROM ar_movements WHERE guarantor_id = ?",
            (row_id, row_id),
        )
        by_payment: dict[str, list[Any]] = {}
        for move in moves:
            by_payment.setdefault(str(move["payment_id"]), []).append(move)
        standing: set[str] = set()
        given_back: set[str] = set()
        for payment_id, its in by_payment.items():
            own = [m for m in its if m["id"] == payment_id]
            voided = any(str(m["id"]).startswith("void:") for m in its)
            refunds = sum(
                int(m["amount"])
                for m in its
                if m["id"] != payment_id and not str(m["id"]).startswith(("void:", "dispute:"))
            )
            if own and not voided and int(own[0]["amount"]) + refunds > 0:
                standing |= {str(m["day"]) for m in own if m["day"]}
            else:
                given_back |= {str(m["day"]) for m in its if m["day"]}
        pms = row["pms_last_payment_date"]
        if pms in given_back and pms not in standing:
            pms = None
        latest = [d for d in (pms, max(standing) if standing else None) if d]
        tx.execute(
            "UPDATE ar_patients SET last_payment_date = ? WHERE id = ?",
            (max(latest) if latest else None, row_id),
        )


def refresh_live(tx: Tx, guarantor_id: str) -> None:
    """The row's live money columns: its snapshot less what the PMS had not counted."""
    row = tx.one(LIVE_READ, (guarantor_id,))
    if row is None or row["snapshot"] is None:
        return
    collected = int(row["n"])
    tx.execute(LIVE_UPDATE, (*live_columns(row["snapshot"], collected), collected, guarantor_id))


#: the row's snapshot and the sum of the family's movements the PMS had not counted at it
#: (`balance_as_of`): posted at or after it; or not posted and either waiting for the
#: automatic writeback (so certainly not in the PMS) or, posted by hand, made after it
LIVE_READ = (
    "SELECT p.snapshot, (SELECT COALESCE(SUM(m.amount), 0) FROM ar_movements m WHERE "
    "m.guarantor_id = p.id AND (m.associated_at >= p.balance_as_of OR (m.associated_at IS "
    "NULL AND (m.written_back = 1 OR m.at > p.balance_as_of)))) AS n FROM ar_patients p "
    "WHERE p.id = ?"
)
LIVE_UPDATE = (
    f"UPDATE ar_patients SET {', '.join(f'{c} = ?' for c in MONEY_COLUMNS)}, "  # noqa: S608
    "collected_since = ? WHERE id = ?"
)


@lru_cache(maxsize=4096)
def live_columns(snapshot: str, collected: int) -> tuple[int, ...]:
    """The money columns of a snapshot (its JSON) less what was collected since (the same
    snapshots and sums recur: kept)."""
    live = live_balance(Balance.from_event_data(json.loads(snapshot)), collected)
    return tuple(getattr(live, c) for c in MONEY_COLUMNS)


def confirm_snapshots(tx: Tx, practice_id: str, read_at: str) -> None:
    """A sync read every balance from the PMS at `read_at`: the unchanged ones (not
    recorded again) hold as of then too, with what was posted to the PMS before."""
    tx.execute(
        "UPDATE ar_patients SET balance_as_of = ? WHERE practice_id = ? AND has_balance = 1 "
        "AND balance_source = 'pms-sync' AND balance_as_of < ?",
        (read_at, practice_id, read_at),
    )
    for row in tx.execute(
        "SELECT DISTINCT guarantor_id FROM ar_movements WHERE practice_id = ?", (practice_id,)
    ):
        refresh_live(tx, row["guarantor_id"])


def last_sync(db: Database, practice_id: UUID) -> ArSyncRow | None:
    row = db.query_one(
        f"SELECT {SYNC_COLUMNS} FROM ar_syncs WHERE practice_id = ?",  # noqa: S608
        (str(practice_id),),
    )
    return row_as(ArSyncRow, row)


@dataclass(frozen=True)
class ArQuery:
    """Validated filter values (the model in services/app/ar_filters.py makes them)."""

    ranges: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    last_request_status: tuple[str, ...] = ()
    q: str | None = None
    snoozed: bool | None = None
    has_email: bool | None = None
    has_phone: bool | None = None
    on_payment_plan: bool | None = None
    guarantors_only: bool = True
    with_balance_only: bool = True
    patient_ids: tuple[str, ...] = ()


def where(query: ArQuery, practice_id: UUID, today: str) -> tuple[str, list[Any]]:
    clauses = ["practice_id = ?"]
    if query.with_balance_only:
        # a balance the PMS reported that is still owed (or owed back): a family paid to
        # $0.00 here since is no longer one "with a balance"
        clauses.append("has_balance = 1 AND total <> 0")
    params: list[Any] = [str(practice_id)]
    for column, (low, high) in query.ranges.items():
        if low is not None:
            clauses.append(f"{column} >= ?")
            params.append(low)
        if high is not None:
            clauses.append(f"{column} <= ?")
            params.append(high)
    if query.last_request_status:
        clauses.append(
            f"last_request_status IN ({', '.join('?' for _ in query.last_request_status)})"
        )
        params.extend(query.last_request_status)
    if query.q:
        clauses.append("search_name LIKE ?")
        params.append("%" + query.q.lower().replace("%", "").replace("_", "") + "%")
    if query.snoozed is not None:
        clauses.append(
            "(snooze_until IS NOT NULL AND snooze_until > ?)"
            if query.snoozed
            else "(snooze_until IS NULL OR snooze_until <= ?)"
        )
        params.append(today)
    for flag in ("has_email", "has_phone", "on_payment_plan"):
        value = getattr(query, flag)
        if value is not None:
            clauses.append(f"{flag} = ?")
            params.append(int(value))
    if query.guarantors_only:
        clauses.append("is_guarantor = 1")
    if query.patient_ids:
        clauses.append(f"id IN ({', '.join('?' for _ in query.patient_ids)})")
        params.extend(query.patient_ids)
    return " AND ".join(clauses), params


def list_ar(
    db: Database,
    practice_id: UUID,
    query: ArQuery,
    *,
    today: str,
    sort: str,
    after: tuple[Any, str] | None,
    limit: int | None,
) -> list[ArRow]:
    """Rows in `sort` order (a column, '-' first for descending), keyset-paged on (sort, id)."""
    descending = sort.startswith("-")
    column = sort.lstrip("-")
    assert column in SORTABLE
    condition, params = where(query, practice_id, today)
    op, direction = ("<", "DESC") if descending else (">", "ASC")
    nullable = column in NULLABLE
    if after is not None:
        if after[0] is None:
            condition += f" AND {column} IS NULL AND id {op} ?"
            params.append(after[1])
        else:
            null_side = f" OR {column} IS NULL" if nullable else ""
            condition += f" AND (({column}, id) {op} (?, ?){null_side})"
            params.extend(after)
    order = f"{column} {direction}" + (" NULLS LAST" if nullable else "")
    sql = f"SELECT {AR_COLUMNS} FROM ar_patients WHERE {condition} ORDER BY {order}, id {direction}"  # noqa: S608 (columns are whitelisted)
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return rows_as(ArRow, db.query(sql, params))


def sort_value(row: ArRow, column: str) -> Any:
    """The row's value in a sortable column (SORTABLE: what a page's cursor holds)."""
    columns: Mapping[str, Any] = row
    return columns[column]


def list_filters(db: Database, practice_id: UUID) -> list[ArFilterRow]:
    rows = db.query(
        f"SELECT {FILTER_COLUMNS} FROM ar_filters "  # noqa: S608 (the row type's columns)
        "WHERE practice_id = ? AND deleted = 0 ORDER BY name",
        (str(practice_id),),
    )
    return rows_as(ArFilterRow, rows)


def get_filter(db: Database, practice_id: UUID, filter_id: UUID) -> ArFilterRow | None:
    row = db.query_one(
        f"SELECT {FILTER_COLUMNS} FROM ar_filters "  # noqa: S608 (the row type's columns)
        "WHERE practice_id = ? AND id = ? AND deleted = 0",
        (str(practice_id), str(filter_id)),
    )
    return row_as(ArFilterRow, row)


def due_snooze_ends(db: Database, practice_id: UUID, today: str) -> list[str]:
    rows = db.query(
        "SELECT id FROM ar_patients WHERE practice_id = ? AND snooze_until "
        "IS NOT NULL AND snooze_until <= ?",
        (str(practice_id), today),
    )
    return [r["id"] for r in rows]
