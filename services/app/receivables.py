"""Use cases: balances (by hand or PMS sync), the AR list and its filters, the filter
library, snoozes, and bulk payment requests."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from adapters.pms.opendental import OpenDental, OpenDentalSettings
from adapters.pms.reader import PmsReader, PmsUnavailable
from adapters.pms.sandbox import SandboxPmsReader
from domain.errors import Conflict, NotFound, PaymentsError
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


def reader_for(ctx: Needs, practice: Practice) -> PmsReader:
    """Open Dental's API when the practice has its connection; in sandbox mode, else the
    sandbox office."""
    config = ctx.pms_connections.of(str(practice.id))
    if practice.pms == PmsKind.OPENDENTAL and "opendental" in config:
        return OpenDental(OpenDentalSettings.of_connection(config["opendental"]))
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
    """Pull patients and family balances through the practice's PMS reader; the sync's
    start and outcome are recorded (the AR list and the practice show them)."""
    practice = ctx.get(Practice, practice_id, practice_id)
    reader = reader_for(ctx, practice)
    sync = start_sync(ctx, practice_id, actor)
    assert sync.started_at is not None
    try:
        result = read_balances(ctx, practice_id, reader, sync.started_at, actor)
    except PmsUnavailable as error:
        failed = PmsSyncFailed(f"the PMS could not be read: {error}")
        finish_sync(ctx, sync, actor, error=failed.detail)
        raise failed from error
    except PaymentsError as error:
        finish_sync(ctx, sync, actor, error=error.detail)
        raise
    except BaseException as error:
        # whatever stopped it, the sync is finished (failed), so the next one is not refused
        finish_sync(ctx, sync, actor, error=f"the sync stopped: {type(error).__name__}")
        raise
    finish_sync(ctx, sync, actor, result=result)
    return result


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


def read_balances(
    ctx: Needs, practice_id: UUID, reader: PmsReader, read_at: datetime, actor: str
) -> SyncResult:
    """Register new patients and record each changed balance, as of when the read began."""
    by_pms: dict[str, UUID] = {}
    seen = added = recorded = 0
    try:
        pms_patients = list(reader.patients())
    except PmsUnavailable:
        raise
    except Exception as error:  # a reader that did not expect what the PMS answered
        raise PmsUnavailable(f"its answer could not be read ({error!r})") from error
    for pms_patient in pms_patients:
        seen += 1
        guarantor = by_pms.get(pms_patient.guarantor_pms_id or "")
        patient = ctx.find(Patient, patient_id_for(practice_id, pms_patient.pms_patient_id))
        if patient is None:
            patient = register_patient(
                ctx,
                practice_id=practice_id,
                pms_patient_id=pms_patient.pms_patient_id,
                first_name=pms_patient.first_name,
                last_name=pms_patient.last_name,
                email=pms_patient.email,
                phone=pms_patient.phone,
                guarantor_id=guarantor,
                actor=actor,
            )
            added += 1
        by_pms[pms_patient.pms_patient_id] = patient.id
        if pms_patient.balance is not None and patient.record_balance(
            pms_patient.balance,
            source="pms-sync",
            at=ctx.clock.now(practice_id),
            actor=actor,
            as_of=read_at,
        ):
            ctx.save(patient)
            recorded += 1
    return SyncResult(seen, added, recorded)


def sync_due(ctx: Needs, practice_id: UUID) -> int:
    """The scheduled sync: when the practice's interval has passed since the last one
    started (Open Dental with its connection only). Its failure is recorded, not raised."""
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
        sync_pms(ctx, practice_id=practice_id, actor="system:pms-sync")
    except (PmsSyncFailed, Conflict) as error:
        log.warning("scheduled PMS sync of %s failed: %s", practice_id, error)
        return 0
    return 1


def sync_status(ctx: Needs, practice: Practice) -> dict[str, Any]:
    """How fresh the practice's balances are: the last sync, its outcome and the next one."""
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
    return {
        "interval_minutes": practice.pms_sync_minutes,
        "scheduled": scheduled,
        "last_started_at": last.get("started_at"),
        "last_finished_at": last.get("finished_at"),
        "outcome": "running"
        if last.get("started_at") and (last.get("finished_at") or "") < last["started_at"]
        else last.get("outcome"),
        "error": last.get("error"),
        "last_ok_at": last.get("last_ok_at"),
        "patients_seen": last.get("patients_seen"),
        "balances_recorded": last.get("balances_recorded"),
        "next_due_at": next_due,
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
