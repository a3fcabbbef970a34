"""Use cases: make a payment plan, cancel it, and charge what falls due (part of the due
work, so the sandbox clock moves it too).

A scheduled charge is a payment (method `payment_plan`) made through the protocol of every
charge (services/app/payments.py `charge`): its attempt is recorded first, the processor
is called once outside any retry under the payment's id (derived from the plan, the
charge's number and the try), and the outcome is recorded: approved or declined, saved
with the plan's `Charged` or `ChargeFailed` in one transaction. A lost answer leaves the
attempt open: the next run asks again under the same reference, which the processor
answers once (the reconciler reads it back meanwhile, as for any charge).

A plan that goes past due is told to its patient by email (`notify_past_due`, part of the
due work too): the notice is claimed and the claim saved first (two schedulers never both
send it), the email handed to the messaging port once, and its outcome recorded on the
plan (sent, to which address; or failed, tried again later). Replaying or retrying sends
nothing again: a notice recorded as sent is never due."""

from __future__ import annotations

import logging
from datetime import date
from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from adapters.messaging.email import Email, SendFailed
from adapters.processor.port import OutcomeUnknown
from domain.cards import Card
from domain.charges import AuthorisationReleased
from domain.errors import InvalidValue, PaymentsError
from domain.money import Money, format_dollars
from domain.patients import Patient
from domain.payments import Method, Payment, Status
from domain.plans import NOTICE_WITHIN, DueCharge, PaymentPlan, Schedule, Unit, plan_charge_id
from domain.practices import Practice
from domain.schedule import local_date
from projections.plans import due_plans, past_due_notices
from services.app import cards, payments
from services.app.practices import keyed_id

log = logging.getLogger("payledger.plans")

#: the actor of scheduled charges
SCHEDULER = "system:payment-plan"


class Needs(cards.Needs, Protocol):
    """The parts these use cases are given (services/context.py)."""


def create_plan(
    ctx: Needs,
    *,
    practice_id: UUID,
    patient_id: UUID,
    card_id: UUID,
    amount: int,
    total: int,
    every: int,
    unit: str,
    start: date,
    note: str | None,
    actor: str,
    key: str | None = None,
) -> PaymentPlan:
    practice = ctx.get(Practice, practice_id, practice_id)
    payments.check_patient(ctx, practice_id, patient_id)
    card = cards.card_of_patient(ctx, practice_id, patient_id, card_id)
    card.check_usable()
    try:
        every_unit = Unit(unit)
    except ValueError:
        raise InvalidValue("charges are every so many weeks or months", field="unit") from None
    plan_id = keyed_id(practice_id, "plan", key)
    found = ctx.find(PaymentPlan, plan_id) if key is not None else None
    if found is not None:
        return found
    now = ctx.clock.now(practice_id)
    plan = PaymentPlan.create(
        id=plan_id,
        practice_id=practice_id,
        patient_id=patient_id,
        card_id=card_id,
        schedule=Schedule(amount, total, every, every_unit, start),
        note=note,
        today=local_date(now, practice.timezone),
        at=now,
        actor=actor,
    )
    try:
        ctx.save(plan)
    except IntegrityError:  # the same request at the same moment: the first one's plan
        return ctx.get(PaymentPlan, plan_id, practice_id)
    return plan


def cancel_plan(
    ctx: Needs, *, practice_id: UUID, plan_id: UUID, reason: str, actor: str
) -> PaymentPlan:
    def decide(plan: PaymentPlan) -> PaymentPlan:
        plan.cancel(reason=reason, at=ctx.clock.now(practice_id), actor=actor)
        return plan

    return ctx.change(PaymentPlan, plan_id, practice_id, decide)


def charge_due_plans(ctx: Needs, practice_id: UUID) -> int:
    """Charge every plan's charges that fell due by today (the practice's date); the
    number of charges made (approved or declined)."""
    practice = ctx.get(Practice, practice_id, practice_id)
    today = local_date(ctx.clock.now(practice_id), practice.timezone)
    made = 0
    for plan_id in ctx.reads(due_plans, practice_id, today):
        # a clock moved far ahead makes several charges due: each in turn, each once
        while charge_plan_once(ctx, practice, plan_id, today):
            made += 1
    return made


def charge_plan_once(ctx: Needs, practice: Practice, plan_id: UUID, today: date) -> bool:
    """Make the plan's charge due today, if any; True when an outcome was recorded."""
    plan = ctx.get(PaymentPlan, plan_id, practice.id)
    due = plan.due(today)
    if due is None:
        return False
    payment_id = plan_charge_id(plan.id, due.installment, due.attempt)
    payment = ctx.find(Payment, payment_id)
    recorded = payment is not None
    if payment is None:
        card = ctx.get(Card, plan.card_id, practice.id)
        if card.state != "saved":
            record_failure(
                ctx, plan, due, None, f"the card on file is {card.describe_state()}", today
            )
            return True
        try:
            payment = payments.charge(
                ctx,
                practice,
                payment_id=payment_id,
                amount=Money(due.amount),
                method=Method.PAYMENT_PLAN,
                card=None,
                terminal_id=None,
                patient_id=plan.patient_id,
                request_id=None,
                at=ctx.clock.now(practice.id),
                actor=SCHEDULER,
                saved_card=cards.saved_card(card),
            )
        except OutcomeUnknown:
            log.warning("plan %s charge %s: outcome unknown", plan.id, due.installment)
            return False  # asked again under the same reference on the next run
        except AuthorisationReleased as error:
            record_failure(ctx, plan, due, None, error.detail, today)
            return True
        except PaymentsError as error:
            record_failure(ctx, plan, due, None, error.detail, today)
            return True
    record_payment(ctx, plan, due, payment, today, recorded=recorded)
    return True


def record_payment(
    ctx: Needs,
    plan: PaymentPlan,
    due: DueCharge,
    payment: Payment,
    today: date,
    *,
    recorded: bool,
) -> None:
    """The charge's payment and the plan's record of it, saved together (`recorded`: the
    payment was saved before)."""
    at = ctx.clock.now(plan.practice_id)
    if payment.status == Status.DECLINED:
        plan.record_failed(
            due=due,
            payment_id=payment.id,
            reason=payment.decline_reason or "declined",
            today=today,
            at=at,
            actor=SCHEDULER,
        )
    else:
        plan.record_charged(due=due, payment_id=payment.id, at=at, actor=SCHEDULER)
    try:
        ctx.save(plan) if recorded else ctx.save(payment, plan)
    except IntegrityError:  # another process recorded it first (the processor answered once)
        log.info("plan %s charge %s recorded by another process", plan.id, due.installment)


def record_failure(
    ctx: Needs,
    plan: PaymentPlan,
    due: DueCharge,
    payment_id: UUID | None,
    reason: str,
    today: date,
) -> None:
    plan.record_failed(
        due=due,
        payment_id=payment_id,
        reason=reason,
        today=today,
        at=ctx.clock.now(plan.practice_id),
        actor=SCHEDULER,
    )
    try:
        ctx.save(plan)
    except IntegrityError:
        log.info("plan %s charge %s recorded by another process", plan.id, due.installment)


# -- the past-due notice -------------------------------------------------------------


def notify_past_due(ctx: Needs, practice_id: UUID) -> int:
    """Email the patient of every plan that went past due and was not told yet; the number
    of notices sent."""
    sent = 0
    for plan_id in ctx.reads(past_due_notices, practice_id):
        sent += notify_once(ctx, practice_id, plan_id)
    return sent


def notify_once(ctx: Needs, practice_id: UUID, plan_id: UUID) -> bool:
    """Claim, send and record one plan's past-due notice; True when it was sent."""
    plan = ctx.get(PaymentPlan, plan_id, practice_id)
    now = ctx.clock.now(practice_id)
    if not plan.notice_due(now):
        return False
    assert plan.notice is not None
    patient = ctx.get(Patient, plan.patient_id, practice_id)
    why_not = (
        "the patient has no email address on file"
        if not patient.email
        else "the plan was past due for more than a week before notices were sent"
        if now - plan.notice.past_due_at > NOTICE_WITHIN
        else None
    )
    if why_not is not None:
        plan.record_notice_not_sent(reason=why_not, at=now, actor=SCHEDULER)
        try:
            ctx.save(plan)
        except IntegrityError:
            log.info("plan %s past-due notice recorded by another process", plan.id)
        return False
    plan.claim_notice(at=now, actor=SCHEDULER)
    try:
        ctx.save(plan)
    except IntegrityError:
        return False  # another process claimed it
    practice = ctx.get(Practice, practice_id, practice_id)
    email = patient.email or ""
    try:
        message_id = ctx.email.send(past_due_email(practice, patient, plan, email))
    except SendFailed as failure:
        log.warning("plan %s past-due notice not sent: %s", plan.id, failure)
        record_notice(ctx, plan, email, None, str(failure))
        return False
    record_notice(ctx, plan, email, message_id, None)
    return True


def record_notice(
    ctx: Needs, plan: PaymentPlan, email: str, message_id: str | None, error: str | None
) -> None:
    def decide(fresh: PaymentPlan) -> None:
        at = ctx.clock.now(fresh.practice_id)
        if message_id is not None:
            fresh.record_notice_sent(email=email, message_id=message_id, at=at, actor=SCHEDULER)
        else:
            fresh.record_notice_failed(
                email=email, error=error or "not sent", at=at, actor=SCHEDULER
            )

    ctx.change(PaymentPlan, plan.id, plan.practice_id, decide)


def past_due_email(practice: Practice, patient: Patient, plan: PaymentPlan, to: str) -> Email:
    """The patient's notice: which charge, why, what is paid and left; nothing clinical and
    no card number beyond what the office says by phone."""
    assert plan.notice is not None
    number = plan.notice.installment
    failures = [f for f in plan.failures if f.installment == number]
    reason = failures[-1].reason if failures else "declined"
    due_on = plan.schedule.due_on(number)
    left = plan.schedule.total - plan.paid
    subject = f"{practice.name}: your payment plan is past due"
    body = (
        f"Dear {patient.first_name},\n\n"
        f"The {format_dollars(plan.schedule.amount_of(number))} charge of your payment plan "
        f"with {practice.name}, due {due_on:%B} {due_on.day}, {due_on.year}, was declined twice "
        f"({reason}). No more charges will be made to your card for this plan.\n\n"
        f"Paid so far: {format_dollars(plan.paid)} of {format_dollars(plan.schedule.total)}; "
        f"{format_dollars(left)} is left to pay.\n\n"
        f"Please call {practice.name} to update your card or to arrange the rest."
    )
    return Email(to, subject, body, practice.id)
