"""Payment plans: an amount every N weeks or months until a total, charged to a card on
file on schedule (the last charge is what is left of the total).

Each scheduled charge is a payment like any other (method `payment_plan`), made through
the money protocol of every charge; the plan records how each one went:
- approved: `Charged`; the plan is `Completed` when the charges reach its total;
- declined: `ChargeFailed` with the processor's reason. The rule: a declined charge is
  tried once more three days later (`RETRY_AFTER_DAYS`); when that fails too, the plan is
  `PastDue` (no more automatic charges; the office is told and decides);
- `Cancelled` by staff (who and when), or when its card is removed: nothing more is charged.

A plan past due is told to the patient by email, once (`PastDueNotice`): the notice is
claimed before it is sent (`PastDueNoticeClaimed`, so two schedulers never send it twice),
then recorded as sent (`PastDueNoticeSent`, to which address) or failed (retried with
backoff, given up after `MAX_NOTICE_ATTEMPTS`); a patient with no email address on file, or
a plan past due for longer than `NOTICE_WITHIN` when notices began, is recorded as not
notified (`PastDueNoticeNotSent`, with why). The office sees the plan past due on the
patient's page and in AR.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import PracticeAggregate
from domain.errors import Conflict, InvalidValue
from domain.money import check_payment_amount, format_dollars

#: a declined charge is tried again once, this many days later
RETRY_AFTER_DAYS = 3
#: the longest gap between two charges
MAX_EVERY = {"weeks": 52, "months": 12}
#: the most charges a plan may have
MAX_CHARGES = 120
#: the furthest ahead a plan may start
MAX_START_AHEAD_DAYS = 366
#: how long one attempt at the past-due notice holds it (another process waits this long)
NOTICE_CLAIM_FOR = timedelta(minutes=2)
#: attempts at sending the past-due notice before it is given up
MAX_NOTICE_ATTEMPTS = 6
#: a plan past due for longer than this when its notice comes up is not notified (news
#: that old is the office's to give)
NOTICE_WITHIN = timedelta(days=7)


def notice_retry_delay(attempt: int) -> timedelta:
    """1, 2, 4, 8, 16 minutes between attempts."""
    return timedelta(minutes=2 ** (attempt - 1))


class Unit(StrEnum):
    WEEKS = "weeks"
    MONTHS = "months"


class PlanState(StrEnum):
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


def plan_charge_id(plan_id: UUID, installment: int, attempt: int) -> UUID:
    """The payment id of one try of one scheduled charge (the processor's reference)."""
    return uuid5(NAMESPACE_URL, f"payledger:{plan_id}:charge:{installment}:try:{attempt}")


def add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Schedule:
    """When each charge falls due and for how much."""

    amount: int
    total: int
    every: int
    unit: Unit
    start: date

    @property
    def count(self) -> int:
        return -(-self.total // self.amount)

    def due_on(self, installment: int) -> date:
        """The date charge number `installment` (1-based) falls due."""
        steps = (installment - 1) * self.every
        if self.unit == Unit.MONTHS:
            return add_months(self.start, steps)
        return self.start + timedelta(weeks=steps)

    def amount_of(self, installment: int) -> int:
        return min(self.amount, self.total - self.amount * (installment - 1))

    def charges(self) -> list[tuple[int, date, int]]:
        return [(n, self.due_on(n), self.amount_of(n)) for n in range(1, self.count + 1)]


def check_schedule(schedule: Schedule, today: date) -> None:
    check_payment_amount(schedule.amount)
    check_payment_amount(schedule.total, field="total")
    if schedule.total < schedule.amount:
        raise InvalidValue(
            f"the total ({format_dollars(schedule.total)}) is less than one charge "
            f"({format_dollars(schedule.amount)})",
            field="total",
        )
    if not 1 <= schedule.every <= MAX_EVERY[schedule.unit.value]:
        raise InvalidValue(
            f"charges can be every 1 to {MAX_EVERY[schedule.unit.value]} {schedule.unit.value}",
            field="every",
        )
    if schedule.count > MAX_CHARGES:
        raise InvalidValue(
            f"a plan has at most {MAX_CHARGES} charges: raise the amount of each",
            field="amount",
        )
    if schedule.start < today:
        raise InvalidValue("the first charge cannot be in the past", field="start")
    if schedule.start > today + timedelta(days=MAX_START_AHEAD_DAYS):
        raise InvalidValue("the first charge must be within a year", field="start")


@dataclass(frozen=True)
class PlanCharge:
    installment: int
    payment_id: UUID
    amount: int
    at: datetime


@dataclass(frozen=True)
class PlanFailure:
    installment: int
    payment_id: UUID | None
    reason: str
    at: datetime
    retry_on: date | None


@dataclass(frozen=True)
class PastDueNotice:
    """The email telling the patient that the plan is past due: pending (to send), sent,
    failed (given up) or not_sent (nowhere to send it, or too late)."""

    installment: int
    past_due_at: datetime
    status: str = "pending"
    attempts: int = 0
    claimed_until: datetime | None = None
    retry_at: datetime | None = None
    email: str | None = None
    sent_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class DueCharge:
    installment: int
    attempt: int
    amount: int


class PaymentPlan(PracticeAggregate):
    if TYPE_CHECKING:
        patient_id: UUID
        card_id: UUID
        schedule: Schedule
        note: str | None
        state: PlanState
        charges: list[PlanCharge]
        failures: list[PlanFailure]
        retry_on: date | None
        created_at: datetime
        created_by: str
        ended_at: datetime | None
        ended_by: str | None
        end_reason: str | None

    #: the past-due notice, once the plan is past due (plans made before notices: None)
    notice: PastDueNotice | None = None

    class Created(PracticeAggregate.Created):
        patient_id: UUID
        card_id: UUID
        amount: int
        total: int
        every: int
        unit: str
        start: str
        note: str | None

        def apply(self, plan: PaymentPlan) -> None:
            plan.practice_id = self.practice_id
            plan.patient_id = self.patient_id
            plan.card_id = self.card_id
            plan.schedule = Schedule(
                self.amount, self.total, self.every, Unit(self.unit), date.fromisoformat(self.start)
            )
            plan.note = self.note
            plan.state = PlanState.ACTIVE
            plan.charges = []
            plan.failures = []
            plan.retry_on = None
            plan.created_at = self.at
            plan.created_by = self.actor
            plan.ended_at = plan.ended_by = plan.end_reason = None

    class Charged(PracticeAggregate.Event):
        installment: int
        payment_id: UUID
        amount: int

        def apply(self, plan: PaymentPlan) -> None:
            plan.charges.append(PlanCharge(self.installment, self.payment_id, self.amount, self.at))
            plan.retry_on = None

    class ChargeFailed(PracticeAggregate.Event):
        installment: int
        payment_id: UUID | None
        reason: str
        retry_on: str | None

        def apply(self, plan: PaymentPlan) -> None:
            retry = date.fromisoformat(self.retry_on) if self.retry_on else None
            plan.failures.append(
                PlanFailure(self.installment, self.payment_id, self.reason, self.at, retry)
            )
            plan.retry_on = retry

    class PastDue(PracticeAggregate.Event):
        installment: int
        reason: str

        def apply(self, plan: PaymentPlan) -> None:
            plan.state = PlanState.PAST_DUE
            plan.end_reason = self.reason
            plan.notice = PastDueNotice(self.installment, self.at)

    class PastDueNoticeClaimed(PracticeAggregate.Event):
        """An attempt at the past-due email begins; it holds the notice `until` then."""

        installment: int
        attempt: int
        until: datetime

        def apply(self, plan: PaymentPlan) -> None:
            assert plan.notice is not None
            plan.notice = replace(plan.notice, attempts=self.attempt, claimed_until=self.until)

    class PastDueNoticeSent(PracticeAggregate.Event):
        installment: int
        email: str
        message_id: str

        def apply(self, plan: PaymentPlan) -> None:
            assert plan.notice is not None
            plan.notice = replace(
                plan.notice,
                status="sent",
                email=self.email,
                sent_at=self.at,
                claimed_until=None,
                retry_at=None,
                reason=None,
            )

    class PastDueNoticeFailed(PracticeAggregate.Event):
        """The email could not be handed over: tried again at `retry_at`, or given up."""

        installment: int
        email: str
        error: str
        retry_at: datetime | None

        def apply(self, plan: PaymentPlan) -> None:
            assert plan.notice is not None
            plan.notice = replace(
                plan.notice,
                status="pending" if self.retry_at else "failed",
                email=self.email,
                claimed_until=None,
                retry_at=self.retry_at,
                reason=self.error,
            )

    class PastDueNoticeNotSent(PracticeAggregate.Event):
        installment: int
        reason: str

        def apply(self, plan: PaymentPlan) -> None:
            assert plan.notice is not None
            plan.notice = replace(plan.notice, status="not_sent", reason=self.reason)

    class Cancelled(PracticeAggregate.Event):
        reason: str

        def apply(self, plan: PaymentPlan) -> None:
            plan.state = PlanState.CANCELLED
            plan.ended_at, plan.ended_by, plan.end_reason = self.at, self.actor, self.reason

    class Completed(PracticeAggregate.Event):
        def apply(self, plan: PaymentPlan) -> None:
            plan.state = PlanState.COMPLETED
            plan.ended_at, plan.ended_by, plan.end_reason = self.at, self.actor, None

    @classmethod
    def create(
        cls,
        *,
        id: UUID,
        practice_id: UUID,
        patient_id: UUID,
        card_id: UUID,
        schedule: Schedule,
        note: str | None,
        today: date,
        at: datetime,
        actor: str,
    ) -> PaymentPlan:
        check_schedule(schedule, today)
        return cls._create(
            cls.Created,
            id=id,
            practice_id=practice_id,
            patient_id=patient_id,
            card_id=card_id,
            amount=schedule.amount,
            total=schedule.total,
            every=schedule.every,
            unit=schedule.unit.value,
            start=schedule.start.isoformat(),
            note=note,
            at=at,
            actor=actor,
        )

    @property
    def paid(self) -> int:
        return sum(c.amount for c in self.charges)

    @property
    def next_installment(self) -> int:
        return len(self.charges) + 1

    def next_due_on(self) -> date | None:
        """When the next charge is tried (a retry's date after a decline); None once the
        plan charges nothing more."""
        if self.state != PlanState.ACTIVE:
            return None
        return self.retry_on or self.schedule.due_on(self.next_installment)

    def due(self, today: date) -> DueCharge | None:
        """The charge to make today, if one is due."""
        when = self.next_due_on()
        if when is None or when > today:
            return None
        n = self.next_installment
        tries = sum(1 for f in self.failures if f.installment == n)
        return DueCharge(n, tries + 1, self.schedule.amount_of(n))

    def check_charge(self, due: DueCharge) -> None:
        if self.state != PlanState.ACTIVE or due.installment != self.next_installment:
            raise Conflict("this charge of the plan was recorded already")

    def record_charged(self, *, due: DueCharge, payment_id: UUID, at: datetime, actor: str) -> None:
        self.check_charge(due)
        self.record(
            self.Charged,
            at=at,
            actor=actor,
            installment=due.installment,
            payment_id=payment_id,
            amount=due.amount,
        )
        if self.paid >= self.schedule.total:
            self.record(self.Completed, at=at, actor=actor)

    def record_failed(
        self,
        *,
        due: DueCharge,
        payment_id: UUID | None,
        reason: str,
        today: date,
        at: datetime,
        actor: str,
    ) -> None:
        """A declined (or refused) charge: tried again once after RETRY_AFTER_DAYS, then
        the plan is past due."""
        self.check_charge(due)
        retry = today + timedelta(days=RETRY_AFTER_DAYS) if due.attempt == 1 else None
        self.record(
            self.ChargeFailed,
            at=at,
            actor=actor,
            installment=due.installment,
            payment_id=payment_id,
            reason=reason,
            retry_on=retry.isoformat() if retry else None,
        )
        if retry is None:
            self.record(
                self.PastDue,
                at=at,
                actor=actor,
                installment=due.installment,
                reason=f"charge {due.installment} was declined twice ({reason})",
            )

    def cancel(self, *, reason: str, at: datetime, actor: str) -> None:
        if self.state in (PlanState.CANCELLED, PlanState.COMPLETED):
            raise Conflict(f"this plan is {self.state.value.replace('_', ' ')} already")
        if not reason.strip():
            raise InvalidValue("say why the plan is cancelled", field="reason")
        self.record(self.Cancelled, at=at, actor=actor, reason=reason.strip())

    # -- the past-due notice -------------------------------------------------------------

    def notice_due(self, now: datetime) -> bool:
        """The past-due email is to be attempted now: pending, not held by a live attempt,
        its retry time come."""
        n = self.notice
        return (
            n is not None
            and n.status == "pending"
            and (n.claimed_until is None or n.claimed_until <= now)
            and (n.retry_at is None or n.retry_at <= now)
        )

    def claim_notice(self, *, at: datetime, actor: str) -> int:
        """Hold the past-due notice for one attempt (saved before the email is sent: of two
        processes, one saves the claim, the other's save clashes); its attempt number."""
        if not self.notice_due(at):
            raise Conflict("the past-due notice of this plan is not due")
        assert self.notice is not None
        attempt = self.notice.attempts + 1
        self.record(
            self.PastDueNoticeClaimed,
            at=at,
            actor=actor,
            installment=self.notice.installment,
            attempt=attempt,
            until=at + NOTICE_CLAIM_FOR,
        )
        return attempt

    def record_notice_sent(self, *, email: str, message_id: str, at: datetime, actor: str) -> None:
        assert self.notice is not None
        if self.notice.status != "pending":
            raise Conflict("the past-due notice of this plan was recorded already")
        self.record(
            self.PastDueNoticeSent,
            at=at,
            actor=actor,
            installment=self.notice.installment,
            email=email,
            message_id=message_id,
        )

    def record_notice_failed(self, *, email: str, error: str, at: datetime, actor: str) -> None:
        assert self.notice is not None
        if self.notice.status != "pending":
            raise Conflict("the past-due notice of this plan was recorded already")
        attempt = self.notice.attempts
        retry = at + notice_retry_delay(attempt) if attempt < MAX_NOTICE_ATTEMPTS else None
        self.record(
            self.PastDueNoticeFailed,
            at=at,
            actor=actor,
            installment=self.notice.installment,
            email=email,
            error=error[:500],
            retry_at=retry,
        )

    def record_notice_not_sent(self, *, reason: str, at: datetime, actor: str) -> None:
        assert self.notice is not None
        if self.notice.status != "pending":
            raise Conflict("the past-due notice of this plan was recorded already")
        self.record(
            self.PastDueNoticeNotSent,
            at=at,
            actor=actor,
            installment=self.notice.installment,
            reason=reason,
        )

    @property
    def is_live(self) -> bool:
        return self.state in (PlanState.ACTIVE, PlanState.PAST_DUE)


@dataclass(frozen=True)
class PlanLine:
    """One charge of the schedule as it stands: paid, failed (past due), retrying (a
    retry is due), scheduled, or not charged (the plan ended first)."""

    number: int
    due_on: date
    amount: int
    status: str
    payment_id: UUID | None


def plan_lines(plan: PaymentPlan) -> list[PlanLine]:
    paid = {c.installment: c for c in plan.charges}
    lines = []
    for number, due_on, amount in plan.schedule.charges():
        charge = paid.get(number)
        failed = [f for f in plan.failures if f.installment == number]
        if charge is not None:
            line = PlanLine(number, due_on, charge.amount, "paid", charge.payment_id)
        elif failed and plan.state == PlanState.PAST_DUE:
            line = PlanLine(number, due_on, amount, "failed", failed[-1].payment_id)
        elif failed and plan.state == PlanState.ACTIVE:
            line = PlanLine(number, due_on, amount, "retrying", failed[-1].payment_id)
        elif plan.state == PlanState.ACTIVE:
            line = PlanLine(number, due_on, amount, "scheduled", None)
        else:
            line = PlanLine(number, due_on, amount, "not_charged", None)
        lines.append(line)
    return lines
