"""Use cases: balances (by hand or PMS sync), the AR list and its filters, the filter
library, snoozes, and bulk payment requests."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from adapters.pms.opendental import OpenDental, OpenDentalSettings
from adapters.pms.reader import PmsPatient, PmsReader, PmsUnavailable
from adapters.pms.sandbox import SandboxPmsReader, is_simulated
from domain.errors import AlreadyExists, Conflict, NotFound, PaymentsError
from domain.patients import Patient
from domain.practices import PmsKind, Practice
from domain.receivables import (
    MONEY_COLUMNS,
    AmountRule,
    Balance,
    Candidate,
    Eligibility,
    PmsSync,
    SavedFilter,
    SkipReason,
    SnoozeReason,
    amount_for,
    channel_for,
    check_snooze,
    filter_id_for,
    skip_reason,
    sync_id_for,
)
from domain.requests import Channel
from domain.schedule import local_date
from projections.base import iso
from projections.receivables import (
    ArQuery,
    ArRow,
    due_snooze_ends,
    get_filter,
    last_sync,
    list_ar,
)
from services.app import practices, requests
from services.app.ar_filters import parse_filter
from services.app.practices import patient_id_for, register_patient
from services.app.requests import send_many
from services.context import Aggregates, Configured, PmsConnected, Reading, Timed


class Needs(
    requests.Needs, practices.Needs, Aggregates, Reading, Timed, Configured, PmsConnected, Protocol
):
    """The parts these use cases are given (services/context.py)."""


log = logging.getLogger("payledger.receivables")


def today(ctx: Needs, practice: Practice) -> date:
    return local_date(ctx.clock.now(practice.id), practice.timezone)


# -- filters -------------------------------------------------------------------------


def saved_filter_values(ctx: Needs, practice_id: UUID, filter_id: UUID) -> dict[str, Any]:
    row = ctx.reads(get_filter, practice_id, filter_id)
    if row is None:
        raise NotFound(f"no saved filter {filter_id}")
    values: dict[str, Any] = json.loads(row["filter"])
    return values


def save_filter(
    ctx: Needs, *, practice_id: UUID, name: str, raw: dict[str, Any], actor: str
) -> SavedFilter:
    _, applied = parse_filter(raw)
    now = ctx.clock.now(practice_id)
    existing = ctx.find(SavedFilter, filter_id_for(practice_id, name))
    if existing is not None and existing.practice_id == practice_id:
        existing.save_again(name=name, filter=applied, at=now, actor=actor)
        saved = existing
    else:
        saved = SavedFilter.save_new(
            practice_id=practice_id, name=name, filter=applied, at=now, actor=actor
        )
    try:
        ctx.save(saved)
    except IntegrityError:
        raise Conflict(f"a filter named {name!r} was saved at the same moment") from None
    return saved


def delete_filter(ctx: Needs, *, practice_id: UUID, filter_id: UUID, actor: str) -> None:
    saved = ctx.get(SavedFilter, filter_id, practice_id)
    if saved.deleted:
        raise NotFound(f"no saved filter {filter_id}")
    saved.delete(at=ctx.clock.now(practice_id), actor=actor)
    ctx.save(saved)


# -- balances and PMS sync -------------------------------------------------------------


def record_balance(
    ctx: Needs,
    *,
    practice_id: UUID,
    patient_id: UUID,
    balance: Balance,
    source: str,
    actor: str,
) -> Patient:
    def decide(patient: Patient) -> Patient:
        patient.record_balance(balance, source=source, at=ctx.clock.now(practice_id), actor=actor)
        return patient

    return ctx.change(Patient, patient_id, practice_id, decide)


class PmsSyncFailed(PaymentsError):
    code = "pms-unavailable"


@dataclass(frozen=True)
class SyncResult:
    patients_seen: int
    patients_added: int
    balances_recorded: int


#: patients recorded together, in one transaction (their balances read in parallel)
SYNC_CHUNK = 100
#: chunks whose balances are being read while the one before them is recorded
READ_AHEAD = 3
#: how long `Syncs.wait` waits by default for a practice's sync in the background
SYNC_WAIT = 600.0


@dataclass
class SyncProgress:
    """How far a sync running in this process has come (kept after it ends, until the
    practice's next sync here)."""

    practice_id: UUID
    started_at: datetime
    guarantors_total: int | None = None
    guarantors_done: int = 0
    patients_total: int | None = None
    patients_done: int = 0
    finished_at: datetime | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at) if self.finished_at else None,
            "guarantors_done": self.guarantors_done,
            "guarantors_total": self.guarantors_total,
            "patients_done": self.patients_done,
            "patients_total": self.patients_total,
            "error": self.error,
        }


class Syncs:
    """This process's PMS syncs in the background: one thread per practice's sync, its
    progress, and a lock per practice so that two starts here at once make one sync (the
    PmsSync claim keeps other processes out)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._starting: dict[UUID, threading.Lock] = {}
        self._threads: dict[UUID, threading.Thread] = {}
        self._progress: dict[UUID, SyncProgress] = {}

    def starting(self, practice_id: UUID) -> threading.Lock:
        with self._lock:
            return self._starting.setdefault(practice_id, threading.Lock())

    def running(self, practice_id: UUID) -> bool:
        with self._lock:
            thread = self._threads.get(practice_id)
        return thread is not None and thread.is_alive()

    def progress(self, practice_id: UUID) -> SyncProgress | None:
        with self._lock:
            return self._progress.get(practice_id)

    def track(self, progress: SyncProgress) -> None:
        with self._lock:
            self._progress[progress.practice_id] = progress

    def run(self, practice_id: UUID, work: Callable[[], None]) -> None:
        thread = threading.Thread(
            target=work, name=f"payledger-pms-sync-{practice_id}", daemon=True
        )
        with self._lock:
            self._threads[practice_id] = thread
        thread.start()

    def wait(self, practice_id: UUID | None = None, timeout: float = SYNC_WAIT) -> bool:
        """Wait until the practice's sync here (or every one) has ended; False if one
        still runs after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = [
                t for p, t in self._threads.items() if practice_id is None or p == practice_id
            ]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)


#: the syncs running in this process
SYNCS = Syncs()


def reader_for(ctx: Needs, practice: Practice) -> PmsReader:
    """Open Dental's API when the practice has its connection; in sandbox mode, else the
    sandbox office."""
    config = ctx.pms_connections.of(str(practice.id))
    if practice.pms == PmsKind.OPENDENTAL and is_simulated(config.get("opendental")):
        return SandboxPmsReader()  # the demo's simulated Open Dental
    if practice.pms == PmsKind.OPENDENTAL and "opendental" in config:
        allowed = ctx.pms_connections.allowed
        return OpenDental(OpenDentalSettings.of_connection(config["opendental"], allowed))
    if ctx.settings.sandbox:
        return SandboxPmsReader()
    raise Conflict(
        f"no PMS reader is configured for {practice.name} ({practice.pms.value}): "
        "set its connection in the practice settings"
    )


def has_reader(ctx: Needs, practice: Practice) -> bool:
    """A PMS the scheduled sync can read: Open Dental with its connection settings."""
    return practice.pms == PmsKind.OPENDENTAL and "opendental" in ctx.pms_connections.of(
        str(practice.id)
    )


def sync_pms(ctx: Needs, *, practice_id: UUID, actor: str) -> SyncResult:
    """Pull patients and family balances through the practice's PMS reader, here and now
    (the demo's set-up; the API and the scheduler start `sync_in_background`); the sync's
    start and outcome are recorded (the AR list and the practice show them)."""
    practice = ctx.get(Practice, practice_id, practice_id)
    reader = reader_for(ctx, practice)
    sync = start_sync(ctx, practice_id, actor)
    assert sync.started_at is not None
    progress = SyncProgress(practice_id, sync.started_at)
    SYNCS.track(progress)
    return run_sync(ctx, sync, reader, actor, progress)


def sync_in_background(ctx: Needs, *, practice_id: UUID, actor: str) -> bool:
    """Start the practice's sync on a thread of its own and answer at once: True when it
    started, False when one is running already (here or in another process; its status
    is the answer). A practice without a PMS to read is a Conflict."""
    practice = ctx.get(Practice, practice_id, practice_id)
    reader = reader_for(ctx, practice)
    with SYNCS.starting(practice_id):
        if SYNCS.running(practice_id):
            return False
        try:
            sync = start_sync(ctx, practice_id, actor)
        except Conflict:
            return False
        assert sync.started_at is not None
        progress = SyncProgress(practice_id, sync.started_at)
        SYNCS.track(progress)

        def work() -> None:
            try:
                run_sync(ctx, sync, reader, actor, progress)
            except PaymentsError as error:
                log.warning("PMS sync of %s failed: %s", practice_id, error.detail)
            except Exception:
                log.exception("PMS sync of %s stopped", practice_id)

        SYNCS.run(practice_id, work)
    return True


def run_sync(
    ctx: Needs, sync: PmsSync, reader: PmsReader, actor: str, progress: SyncProgress
) -> SyncResult:
    """Read and record, then record how the sync ended (whatever stopped it)."""
    assert sync.started_at is not None
    try:
        result = read_balances(ctx, sync.practice_id, reader, sync.started_at, actor, progress)
    except PmsUnavailable as error:
        failed = PmsSyncFailed(f"the PMS could not be read: {error}")
        end_sync(ctx, sync, actor, progress, error=failed.detail)
        raise failed from error
    except PaymentsError as error:
        end_sync(ctx, sync, actor, progress, error=error.detail)
        raise
    except BaseException:
        # whatever stopped it, the sync is finished (failed), so the next one is not refused
        end_sync(
            ctx,
            sync,
            actor,
            progress,
            error="the sync stopped on an unexpected error (the server's log has it)",
        )
        raise
    end_sync(ctx, sync, actor, progress, result=result)
    return result


def end_sync(
    ctx: Needs,
    sync: PmsSync,
    actor: str,
    progress: SyncProgress,
    *,
    result: SyncResult | None = None,
    error: str | None = None,
) -> None:
    progress.error = error
    try:
        finish_sync(ctx, sync, actor, result=result, error=error)
    finally:
        progress.finished_at = ctx.clock.now(sync.practice_id)


def start_sync(ctx: Needs, practice_id: UUID, actor: str) -> PmsSync:
    """Claim the practice's sync: a second one at the same moment is refused."""
    now = ctx.clock.now(practice_id)
    sync = ctx.find(PmsSync, sync_id_for(practice_id, now.date())) or PmsSync.open(
        practice_id=practice_id, at=now, actor=actor
    )
    sync.start(at=now, actor=actor)
    try:
        ctx.save(sync)
    except IntegrityError:
        raise Conflict("a PMS sync of this practice started at the same moment") from None
    return sync


def finish_sync(
    ctx: Needs,
    sync: PmsSync,
    actor: str,
    *,
    result: SyncResult | None = None,
    error: str | None = None,
) -> None:
    sync.finish(
        at=ctx.clock.now(sync.practice_id),
        actor=actor,
        error=error,
        seen=result.patients_seen if result else 0,
        added=result.patients_added if result else 0,
        recorded=result.balances_recorded if result else 0,
    )
    try:
        ctx.save(sync)
    except IntegrityError:  # a stale claim was taken over: that sync reports for itself
        log.warning("PMS sync of %s finished after another one started", sync.practice_id)


#: a roster entry: its place in the roster, the patient, and the balance read for it
Entry = tuple[int, PmsPatient, Balance | None]


def read_balances(
    ctx: Needs,
    practice_id: UUID,
    reader: PmsReader,
    read_at: datetime,
    actor: str,
    progress: SyncProgress | None = None,
) -> SyncResult:
    """Register new patients and record each changed balance, as of when the read began.

    The roster first (guarantors before their family members), then chunk by chunk: the
    chunk's balances read in parallel (the reader's `concurrency`; the next chunks' calls
    under way while this one is recorded), and the chunk recorded in one transaction.
    When a read fails, what the chunk read is recorded before the failure is raised: a
    failure loses nothing already read, and the next sync reads again (as of its own
    start)."""
    progress = progress or SyncProgress(practice_id, read_at)
    try:
        roster = reader.roster()
    except PmsUnavailable:
        raise
    except Exception as error:  # a reader that did not expect what the PMS answered
        raise PmsUnavailable("its answer was not what its documentation says") from error
    progress.patients_total = len(roster)
    progress.guarantors_total = sum(1 for p in roster if p.guarantor_pms_id is None)
    first_at: dict[str, int] = {}
    for index, pms_patient in enumerate(roster):
        first_at.setdefault(pms_patient.pms_patient_id, index)
    numbered = list(enumerate(roster))
    chunks = [numbered[start : start + SYNC_CHUNK] for start in range(0, len(roster), SYNC_CHUNK)]
    added = recorded = 0
    with ThreadPoolExecutor(
        max(1, reader.concurrency), thread_name_prefix=f"pms-sync-{practice_id}"
    ) as pool:

        def submit(chunk: list[tuple[int, PmsPatient]]) -> list[tuple[int, PmsPatient, Any]]:
            return [
                (
                    index,
                    p,
                    pool.submit(reader.balance_of, p) if p.guarantor_pms_id is None else None,
                )
                for index, p in chunk
            ]

        ahead = deque(submit(chunk) for chunk in chunks[:READ_AHEAD])
        for number in range(len(chunks)):
            current = ahead.popleft()
            if number + READ_AHEAD < len(chunks):
                ahead.append(submit(chunks[number + READ_AHEAD]))
            entries: list[Entry] = []
            failure: BaseException | None = None
            for index, pms_patient, future in current:
                if future is None:
                    entries.append((index, pms_patient, pms_patient.balance))
                    continue
                try:
                    entries.append((index, pms_patient, future.result()))
                except BaseException as error:
                    failure = failure or error
            chunk_added, chunk_recorded = record_chunk(
                ctx, practice_id, entries, first_at, read_at, actor
            )
            added += chunk_added
            recorded += chunk_recorded
            progress.patients_done += len(entries)
            progress.guarantors_done += sum(1 for _, p, _ in entries if p.guarantor_pms_id is None)
            if failure is not None:
                for waiting in ahead:
                    for _, _, future in waiting:
                        if future is not None:
                            future.cancel()
                if isinstance(failure, PmsUnavailable):
                    raise failure
                raise PmsUnavailable("its answer was not what its documentation says") from failure
    return SyncResult(len(roster), added, recorded)


def record_chunk(
    ctx: Needs,
    practice_id: UUID,
    entries: list[Entry],
    first_at: Mapping[str, int],
    read_at: datetime,
    actor: str,
) -> tuple[int, int]:
    """Register the chunk's new patients and record its changed balances (the events a
    patient registered and a balance recorded by hand make), saved in one transaction;
    when another writer changed one of them meanwhile, one patient at a time. Returns
    (patients added, balances recorded)."""
    ids = list(dict.fromkeys(patient_id_for(practice_id, p.pms_patient_id) for _, p, _ in entries))
    known = ctx.get_many(Patient, ids, practice_id)
    now = ctx.clock.now(practice_id)
    changed: dict[UUID, Patient] = {}
    added = recorded = 0
    for index, pms_patient, balance in entries:
        patient_id = patient_id_for(practice_id, pms_patient.pms_patient_id)
        patient = known.get(patient_id)
        if patient is None:
            patient = Patient.register(
                id=patient_id,
                practice_id=practice_id,
                pms_patient_id=pms_patient.pms_patient_id,
                first_name=pms_patient.first_name,
                last_name=pms_patient.last_name,
                email=pms_patient.email,
                phone=pms_patient.phone,
                guarantor_id=guarantor_of(practice_id, pms_patient, index, first_at),
                at=now,
                actor=actor,
            )
            known[patient_id] = patient
            added += 1
        if balance is not None and patient.record_balance(
            balance, source="pms-sync", at=now, actor=actor, as_of=read_at
        ):
            recorded += 1
        if patient.pending_events:
            changed[patient_id] = patient
    if not changed:
        return added, recorded
    try:
        position = ctx.save(*changed.values(), show=False)
    except IntegrityError:
        return record_one_by_one(ctx, practice_id, entries, first_at, read_at, actor)
    ctx.show(position)
    return added, recorded


def record_one_by_one(
    ctx: Needs,
    practice_id: UUID,
    entries: list[Entry],
    first_at: Mapping[str, int],
    read_at: datetime,
    actor: str,
) -> tuple[int, int]:
    added = recorded = 0
    for index, pms_patient, balance in entries:
        patient_id = patient_id_for(practice_id, pms_patient.pms_patient_id)
        if ctx.find(Patient, patient_id) is None:
            try:
                register_patient(
                    ctx,
                    practice_id=practice_id,
                    pms_patient_id=pms_patient.pms_patient_id,
                    first_name=pms_patient.first_name,
                    last_name=pms_patient.last_name,
                    email=pms_patient.email,
                    phone=pms_patient.phone,
                    guarantor_id=guarantor_of(practice_id, pms_patient, index, first_at),
                    actor=actor,
                )
                added += 1
            except AlreadyExists:
                pass
        if balance is None:
            continue

        def decide(patient: Patient, read: Balance = balance) -> bool:
            return patient.record_balance(
                read, source="pms-sync", at=ctx.clock.now(practice_id), actor=actor, as_of=read_at
            )

        if ctx.change(Patient, patient_id, practice_id, decide):
            recorded += 1
    return added, recorded


def guarantor_of(
    practice_id: UUID, pms_patient: PmsPatient, index: int, first_at: Mapping[str, int]
) -> UUID | None:
    """The family's guarantor when the roster listed it before this patient."""
    guarantor = pms_patient.guarantor_pms_id
    if guarantor is None or first_at.get(guarantor, index) >= index:
        return None
    return patient_id_for(practice_id, guarantor)


def sync_due(ctx: Needs, practice_id: UUID) -> int:
    """The scheduled sync, started in the background when the practice's interval has
    passed since the last one started (Open Dental with its connection only): 1 when it
    started. Its failure is recorded on the sync, not raised."""
    practice = ctx.get(Practice, practice_id, practice_id)
    if practice.pms_sync_minutes == 0 or not has_reader(ctx, practice):
        return 0
    last = ctx.reads(last_sync, practice_id)
    now = ctx.clock.now(practice_id)
    if last is not None and last["started_at"]:
        started = datetime.fromisoformat(last["started_at"].replace("Z", "+00:00"))
        if now < started + timedelta(minutes=practice.pms_sync_minutes):
            return 0
    try:
        return int(sync_in_background(ctx, practice_id=practice_id, actor="system:pms-sync"))
    except Conflict as error:
        log.warning("scheduled PMS sync of %s could not start: %s", practice_id, error)
        return 0


def sync_status(ctx: Needs, practice: Practice) -> dict[str, Any]:
    """How fresh the practice's balances are: the last sync, its outcome and progress,
    and the next one."""
    found = ctx.reads(last_sync, practice.id)
    last: Mapping[str, Any] = found or {}
    scheduled = practice.pms_sync_minutes > 0 and has_reader(ctx, practice)
    next_due = None
    if scheduled:
        started = last.get("started_at")
        next_due = (
            iso(
                datetime.fromisoformat(started.replace("Z", "+00:00"))
                + timedelta(minutes=practice.pms_sync_minutes)
            )
            if started
            else iso(ctx.clock.now(practice.id))
        )
    running = bool(last.get("started_at")) and (last.get("finished_at") or "") < last["started_at"]
    return {
        "interval_minutes": practice.pms_sync_minutes,
        "scheduled": scheduled,
        "last_started_at": last.get("started_at"),
        "last_finished_at": last.get("finished_at"),
        "outcome": "running" if running else last.get("outcome"),
        "error": last.get("error"),
        "last_ok_at": last.get("last_ok_at"),
        "patients_seen": last.get("patients_seen"),
        "balances_recorded": last.get("balances_recorded"),
        "next_due_at": next_due,
        "progress": progress_of(practice.id, last, running),
    }


def progress_of(practice_id: UUID, last: Mapping[str, Any], running: bool) -> dict[str, Any]:
    """The last sync's progress: counted by this process when it ran the sync here; else
    its times (and, once finished, the patients it read)."""
    started = last.get("started_at")
    mine = SYNCS.progress(practice_id)
    if mine is not None and started is not None and iso(mine.started_at) == started:
        answer = mine.as_dict()
        if not running:  # the recorded end is the one shown
            answer["finished_at"] = last.get("finished_at")
            answer["error"] = last.get("error")
        return answer
    seen = None if running else last.get("patients_seen")
    return {
        "started_at": started,
        "finished_at": None if running else last.get("finished_at"),
        "guarantors_done": None,
        "guarantors_total": None,
        "patients_done": seen,
        "patients_total": seen,
        "error": None if running else last.get("error"),
    }


# -- snoozes ---------------------------------------------------------------------------


def snooze(
    ctx: Needs,
    *,
    practice_id: UUID,
    patient_id: UUID,
    until: date,
    reason: SnoozeReason,
    note: str | None,
    actor: str,
) -> Patient:
    practice = ctx.get(Practice, practice_id, practice_id)

    def decide(patient: Patient) -> Patient:
        patient.snooze_until(
            check_snooze(until, reason, note, today(ctx, practice)),
            at=ctx.clock.now(practice_id),
            actor=actor,
        )
        return patient

    return ctx.change(Patient, patient_id, practice_id, decide)


def end_snooze(ctx: Needs, *, practice_id: UUID, patient_id: UUID, actor: str) -> Patient:
    practice = ctx.get(Practice, practice_id, practice_id)

    def decide(patient: Patient) -> Patient:
        if not patient.is_snoozed(today(ctx, practice)):
            raise Conflict(f"{patient.name} is not snoozed")
        patient.end_snooze(how="early", at=ctx.clock.now(practice_id), actor=actor)
        return patient

    return ctx.change(Patient, patient_id, practice_id, decide)


def end_due_snoozes(ctx: Needs, practice_id: UUID) -> int:
    """Record the end of each snooze whose date has come (it stopped counting already)."""
    practice = ctx.get(Practice, practice_id, practice_id)
    day = today(ctx, practice)
    ended = 0
    for patient_id in ctx.reads(due_snooze_ends, practice_id, day.isoformat()):
        patient = ctx.get(Patient, UUID(patient_id), practice_id)
        if patient.snooze is None or patient.is_snoozed(day):
            continue
        patient.end_snooze(how="expired", at=ctx.clock.now(practice_id), actor="system:scheduler")
        try:
            ctx.save(patient)
        except IntegrityError:
            continue
        ended += 1
    return ended


# -- bulk requests ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    patient_id: str
    outcome: str  # "sent" or "skipped"
    reason: str | None = None
    request_id: str | None = None
    amount: int | None = None
    channel: str | None = None


def candidate_of(row: Mapping[str, Any], day: str) -> Candidate:
    balance = (
        Balance(
            **{c: int(row[c]) for c in MONEY_COLUMNS},
            on_payment_plan=bool(row["on_payment_plan"]),
            is_guarantor=bool(row["is_guarantor"]),
            last_payment_date=None,
        )
        if row["has_balance"]
        else None
    )
    return Candidate(
        UUID(row["id"]),
        balance,
        snoozed=bool(row["snooze_until"] and row["snooze_until"] > day),
        has_email=bool(row["has_email"]),
        has_phone=bool(row["has_phone"]),
    )


def bulk_send(
    ctx: Needs,
    *,
    practice_id: UUID,
    patient_ids: list[UUID] | None,
    raw_filter: dict[str, Any] | None,
    channel: str,
    rule: AmountRule,
    rules: Eligibility,
    actor: str,
    key: str | None,
) -> list[Outcome]:
    """One request to each selected patient who is eligible; every selected patient
    gets an outcome. With an Idempotency-Key a retry sends nothing twice."""
    ctx.catch_up()
    practice = ctx.get(Practice, practice_id, practice_id)
    day = today(ctx, practice).isoformat()
    if patient_ids is not None:
        wanted = list(dict.fromkeys(str(p) for p in patient_ids))
        query = ArQuery(guarantors_only=False, with_balance_only=False, patient_ids=tuple(wanted))
        found = {
            r["id"]: r
            for r in ctx.reads(
                list_ar, practice_id, query, today=day, sort="last_name", after=None, limit=None
            )
        }
        selected: list[tuple[str, ArRow | None]] = [(p, found.get(p)) for p in wanted]
    else:
        query, _ = parse_filter(raw_filter or {})
        selected = [
            (r["id"], r)
            for r in ctx.reads(
                list_ar, practice_id, query, today=day, sort="last_name", after=None, limit=None
            )
        ]
    outcomes: dict[str, Outcome] = {}
    to_send: list[tuple[UUID, int, Channel]] = []
    for pid, row in selected:
        if row is None:
            outcomes[pid] = Outcome(pid, "skipped", SkipReason.UNKNOWN_PATIENT.value)
            continue
        candidate = candidate_of(row, day)
        reason = skip_reason(candidate, rules, rule, channel)
        if reason is not None:
            outcomes[pid] = Outcome(pid, "skipped", reason.value)
            continue
        assert candidate.balance is not None
        chosen = channel_for(candidate, channel)
        assert chosen is not None
        to_send.append((candidate.patient_id, amount_for(candidate.balance, rule), Channel(chosen)))
    for patient_id, request in send_many(ctx, practice, to_send, actor=actor, key=key):
        outcomes[str(patient_id)] = Outcome(
            str(patient_id),
            "sent",
            None,
            str(request.id),
            request.amount.cents,
            request.channel.value,
        )
    return [outcomes[pid] for pid, _ in selected]
