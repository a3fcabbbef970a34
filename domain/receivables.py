"""Accounts receivable: balances from the PMS, snoozes, saved filters, bulk eligibility.

Balances are snapshots the PMS reports per guarantor (family level, as Open
Dental keeps aging on the guarantor). Amounts are integer cents and may be
negative (a credit). A snooze holds a patient out of collection until a date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import PracticeAggregate
from domain.errors import AlreadyExists, Conflict, InvalidValue

BUCKETS = ("bal_0_30", "bal_31_60", "bal_61_90", "bal_over_90")
MONEY_COLUMNS = ("total", *BUCKETS, "insurance_estimate", "patient_portion")
#: at most one hundred million dollars either way in one balance field
MAX_BALANCE = 10_000_000_000


class SnoozeReason(StrEnum):
    CLAIM_NOT_STARTED = "claim_not_started"
    CLAIM_NEEDS_RESUBMISSION = "claim_needs_resubmission"
    ADJUSTMENT_PENDING = "adjustment_pending"
    PERSONAL_ARRANGEMENT = "personal_arrangement"
    OTHER = "other"


class AmountRule(StrEnum):
    TOTAL = "total"
    PATIENT_PORTION = "patient_portion"
    BAL_0_30 = "bal_0_30"
    BAL_31_60 = "bal_31_60"
    BAL_61_90 = "bal_61_90"
    BAL_OVER_90 = "bal_over_90"


class SkipReason(StrEnum):
    SNOOZED = "snoozed"
    BELOW_MINIMUM = "below_minimum"
    NO_CONTACT = "no_contact"
    ON_PAYMENT_PLAN = "on_payment_plan"
    NOT_GUARANTOR = "not_guarantor"
    NO_BALANCE = "no_balance"
    UNKNOWN_PATIENT = "unknown_patient"


class PatientSnoozed(Conflict):
    code = "patient-snoozed"


def default_patient_portion(total: int, insurance_estimate: int) -> int:
    """What the patient owes when the PMS does not say: what insurance is not expected to
    pay, never below zero."""
    return max(0, total - insurance_estimate)


@dataclass(frozen=True)
class Balance:
    total: int
    bal_0_30: int
    bal_31_60: int
    bal_61_90: int
    bal_over_90: int
    insurance_estimate: int
    patient_portion: int
    on_payment_plan: bool
    is_guarantor: bool
    last_payment_date: date | None

    def __post_init__(self) -> None:
        for name in MONEY_COLUMNS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidValue(f"{name} must be whole cents", field=name)
            if abs(value) > MAX_BALANCE:
                raise InvalidValue(f"{name} is out of range", field=name)

    @classmethod
    def from_snapshot(cls, *, patient_portion: int | None = None, **values: Any) -> Balance:
        """A PMS balance snapshot; without a patient portion, the default one."""
        if patient_portion is None:
            patient_portion = default_patient_portion(values["total"], values["insurance_estimate"])
        return cls(patient_portion=patient_portion, **values)

    def as_event_data(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in MONEY_COLUMNS}
        data.update(
            on_payment_plan=self.on_payment_plan,
            is_guarantor=self.is_guarantor,
            last_payment_date=self.last_payment_date.isoformat()
            if self.last_payment_date
            else None,
        )
        return data

    @classmethod
    def from_event_data(cls, data: dict[str, Any]) -> Balance:
        last = data.get("last_payment_date")
        return cls(
            **{name: int(data[name]) for name in MONEY_COLUMNS},
            on_payment_plan=bool(data["on_payment_plan"]),
            is_guarantor=bool(data["is_guarantor"]),
            last_payment_date=date.fromisoformat(last) if last else None,
        )


@dataclass(frozen=True)
class Snooze:
    until: date
    reason: SnoozeReason
    note: str | None

    def active_on(self, day: date) -> bool:
        return day < self.until


def check_snooze(until: date, reason: SnoozeReason, note: str | None, today: date) -> Snooze:
    if until <= today:
        raise InvalidValue(f"snooze until a future date (after {today.isoformat()})", field="until")
    if reason == SnoozeReason.OTHER and not (note or "").strip():
        raise InvalidValue("add a note when the reason is Other", field="note")
    return Snooze(until, reason, (note or "").strip() or None)


@dataclass(frozen=True)
class Eligibility:
    """What the office sets for a bulk send."""

    min_balance: int = 1
    guarantors_only: bool = True
    skip_payment_plan: bool = True
    skip_snoozed: bool = True


@dataclass(frozen=True)
class Candidate:
    """A patient as the AR view knows them, for a bulk decision."""

    patient_id: UUID
    balance: Balance | None
    snoozed: bool
    has_email: bool
    has_phone: bool


def live_balance(snapshot: Balance, collected: int) -> Balance:
    """The balance now: the PMS snapshot less what this ledger collected since that the PMS
    had not counted (payments less refunds, voids of posted payments and lost disputes;
    negative when those outweigh payments, so the family owes that much more).
    A payment pays the oldest bucket first; what it pays beyond the balance is a credit
    in the current bucket; a net refund reopens the current bucket. The insurance
    estimate is the PMS's own; the patient's portion drops by what was paid (not below 0)."""
    if collected == 0:
        return snapshot
    buckets = {name: getattr(snapshot, name) for name in BUCKETS}
    left = collected
    for name in reversed(BUCKETS):  # oldest first
        if left <= 0:
            break
        paid = min(left, max(0, buckets[name]))
        buckets[name] -= paid
        left -= paid
    buckets["bal_0_30"] -= left  # a credit (left > 0) or a net refund (collected < 0)
    return Balance(
        total=snapshot.total - collected,
        **buckets,
        insurance_estimate=snapshot.insurance_estimate,
        patient_portion=max(0, snapshot.patient_portion - collected),
        on_payment_plan=snapshot.on_payment_plan,
        is_guarantor=snapshot.is_guarantor,
        last_payment_date=snapshot.last_payment_date,
    )


def amount_for(balance: Balance, rule: AmountRule) -> int:
    return int(getattr(balance, rule.value))


def skip_reason(
    candidate: Candidate, rules: Eligibility, rule: AmountRule, channel: str
) -> SkipReason | None:
    """Why a patient is left out of a bulk send, or None when they get a request.
    The order is the office's: snoozed first, then the account, then the contact."""
    balance = candidate.balance
    if rules.skip_snoozed and candidate.snoozed:
        return SkipReason.SNOOZED
    if balance is None:
        return SkipReason.NO_BALANCE
    if rules.guarantors_only and not balance.is_guarantor:
        return SkipReason.NOT_GUARANTOR
    if rules.skip_payment_plan and balance.on_payment_plan:
        return SkipReason.ON_PAYMENT_PLAN
    amount = amount_for(balance, rule)
    if balance.total <= 0 or amount <= 0:
        return SkipReason.NO_BALANCE
    if amount < rules.min_balance:
        return SkipReason.BELOW_MINIMUM
    if channel_for(candidate, channel) is None:
        return SkipReason.NO_CONTACT
    return None


def channel_for(candidate: Candidate, channel: str) -> str | None:
    """`sms`, `email`, or `preferred` (a text when there is a phone, else email)."""
    if channel == "sms":
        return "sms" if candidate.has_phone else None
    if channel == "email":
        return "email" if candidate.has_email else None
    if candidate.has_phone:
        return "sms"
    return "email" if candidate.has_email else None


#: the PMS sync interval: hourly by default; 0 turns the scheduled sync off
DEFAULT_SYNC_MINUTES = 60
SYNC_MINUTES_RANGE = (15, 1440)
#: a sync started longer ago than this without finishing is taken as crashed
SYNC_STALE = timedelta(minutes=30)


def check_sync_minutes(value: Any) -> int:
    low, high = SYNC_MINUTES_RANGE
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (value == 0 or low <= value <= high)
    ):
        raise InvalidValue(
            f"the PMS sync interval is in minutes, {low} to {high} "
            "(60 = hourly), or 0 to sync only by hand",
            field="pms_sync_minutes",
        )
    return value


def sync_id_for(practice_id: UUID, day: date) -> UUID:
    """One PmsSync aggregate per practice and (UTC) day, so that none grows without end."""
    return uuid5(NAMESPACE_URL, f"payledger:{practice_id}:pms-sync:{day.isoformat()}")


class PmsSync(PracticeAggregate):
    """A practice's PMS syncs: each one started (a claim: two schedulers never run the same
    practice's sync at once) and finished with its outcome."""

    class Created(PracticeAggregate.Created):
        def apply(self, sync: PmsSync) -> None:
            sync.practice_id = self.practice_id
            sync.started_at = None
            sync.finished_at = None

    class Started(PracticeAggregate.Event):
        def apply(self, sync: PmsSync) -> None:
            sync.started_at = self.at
            sync.finished_at = None

    class Finished(PracticeAggregate.Event):
        started_at: datetime
        outcome: str  # ok or failed
        error: str | None
        patients_seen: int
        patients_added: int
        balances_recorded: int

        def apply(self, sync: PmsSync) -> None:
            sync.finished_at = self.at

    if TYPE_CHECKING:
        started_at: datetime | None
        finished_at: datetime | None

    @classmethod
    def open(cls, *, practice_id: UUID, at: datetime, actor: str) -> PmsSync:
        return cls._create(
            cls.Created,
            id=sync_id_for(practice_id, at.date()),
            practice_id=practice_id,
            at=at,
            actor=actor,
        )

    def is_running(self, now: datetime) -> bool:
        return (
            self.started_at is not None
            and self.finished_at is None
            and now - self.started_at < SYNC_STALE
        )

    def start(self, *, at: datetime, actor: str) -> None:
        if self.is_running(at):
            assert self.started_at is not None
            raise Conflict(
                f"a PMS sync is running since {self.started_at.isoformat()}; try again later"
            )
        self.record(self.Started, at=at, actor=actor)

    def finish(
        self,
        *,
        at: datetime,
        actor: str,
        error: str | None,
        seen: int = 0,
        added: int = 0,
        recorded: int = 0,
    ) -> None:
        assert self.started_at is not None
        self.record(
            self.Finished,
            at=at,
            actor=actor,
            started_at=self.started_at,
            outcome="failed" if error else "ok",
            error=error,
            patients_seen=seen,
            patients_added=added,
            balances_recorded=recorded,
        )


def filter_id_for(practice_id: UUID, name: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"payledger:{practice_id}:ar-filter:{name.strip().lower()}")


class SavedFilter(PracticeAggregate):
    """A named AR filter in the practice's library; names are unique per practice."""

    class Saved(PracticeAggregate.Created):
        name: str
        filter: dict[str, Any]

        def apply(self, saved: SavedFilter) -> None:
            saved.practice_id = self.practice_id
            saved.name = self.name
            saved.filter = dict(self.filter)
            saved.deleted = False
            saved.saved_at = self.at

    class Resaved(PracticeAggregate.Event):
        name: str
        filter: dict[str, Any]

        def apply(self, saved: SavedFilter) -> None:
            saved.name = self.name
            saved.filter = dict(self.filter)
            saved.deleted = False
            saved.saved_at = self.at

    class Deleted(PracticeAggregate.Event):
        def apply(self, saved: SavedFilter) -> None:
            saved.deleted = True

    if TYPE_CHECKING:
        name: str
        filter: dict[str, Any]
        deleted: bool
        saved_at: datetime

    @classmethod
    def save_new(
        cls,
        *,
        practice_id: UUID,
        name: str,
        filter: dict[str, Any],
        at: datetime,
        actor: str,
    ) -> SavedFilter:
        name = check_filter_name(name)
        return cls._create(
            cls.Saved,
            id=filter_id_for(practice_id, name),
            practice_id=practice_id,
            name=name,
            filter=filter,
            at=at,
            actor=actor,
        )

    def save_again(
        self,
        *,
        name: str,
        filter: dict[str, Any],
        at: datetime,
        actor: str,
    ) -> None:
        if not self.deleted:
            raise AlreadyExists(f"a filter named {self.name!r} already exists", field="name")
        self.record(self.Resaved, at=at, actor=actor, name=check_filter_name(name), filter=filter)

    def delete(self, *, at: datetime, actor: str) -> None:
        if self.deleted:
            raise Conflict("this filter was already deleted")
        self.record(self.Deleted, at=at, actor=actor)


def check_filter_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 80:
        raise InvalidValue("a filter's name is 1 to 80 characters", field="name")
    return name
