"""Use cases: collect a payment, void or refund it, associate it, send its receipt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol
from uuid import UUID

from adapters.idempotency_keys import key_is_new
from adapters.messaging.email import Email, SendFailed
from adapters.messaging.sms import Sms
from adapters.processor.cards import check_card
from adapters.processor.port import CardInput, Effect, OutcomeUnknown, ProcessorRefused, SavedCard
from domain.charges import ChargeAttempt, attempt_id_of
from domain.errors import InvalidCard, InvalidValue, NotFound, PaymentsError
from domain.money import Money, check_payment_amount
from domain.patients import Patient
from domain.payments import AssociationSource, CardSummary, Method, Payment, ReversalKind
from domain.practices import Practice
from domain.schedule import batch_date_for, cutoff_instant, local_date, zone
from services.app import intents, settlement
from services.app.intents import REFUND, VOID, IntentKind, carry_out, record_charge
from services.app.practices import keyed_id, processor_account
from services.app.settlement import close_due_batches
from services.context import Aggregates, Charging, Messaging, Timed, retry_on_conflict


class Needs(settlement.Needs, intents.Needs, Aggregates, Timed, Charging, Messaging, Protocol):
    """The parts these use cases are given (services/context.py)."""


class EmailNotSent(PaymentsError):
    code = "email-not-sent"


def collect_payment(
    ctx: Needs,
    *,
    practice_id: UUID,
    amount: int,
    method: Method,
    actor: str,
    card: CardInput | None = None,
    payment_method: str | None = None,
    terminal_id: str | None = None,
    patient_id: UUID | None = None,
    request_id: UUID | None = None,
    key: str | None = None,
) -> Payment:
    """Authorise (captured when its batch closes); a decline is recorded too (and moves no
    money). The card comes as typed (sandbox) or as a processor's payment method id."""
    money = check_payment_amount(amount)
    practice = ctx.get(Practice, practice_id, practice_id)
    now = ctx.clock.now(practice_id)
    if patient_id is not None:
        check_patient(ctx, practice_id, patient_id)
    if method == Method.VIRTUAL_TERMINAL or method == Method.PAY_LINK:
        card = check_card_input(ctx, card, payment_method, local_date(now, practice.timezone))
        if card is None and payment_method is None:
            raise InvalidValue(f"a {method.value} payment needs the card", field="card")
    elif card is not None or payment_method is not None:
        raise InvalidValue(
            "a terminal payment takes the card at the reader: send the reader, not a card",
            field="card" if card is not None else "payment_method",
        )
    payment_id = keyed_id(practice_id, "payment", key)
    # a retry with the same key finds the first attempt's payment before charging again
    # (a conflict at the insert would come after the processor charged the card); without
    # a key the id is new, and there is nothing to find
    # (a key new to its caller has saved nothing yet: nothing to look for)
    existing = ctx.find(Payment, payment_id) if key is not None and not key_is_new() else None
    if existing is not None:
        return existing
    payment = charge(
        ctx,
        practice,
        payment_id=payment_id,
        amount=money,
        method=method,
        card=card,
        payment_method=payment_method,
        terminal_id=terminal_id,
        patient_id=patient_id,
        request_id=request_id,
        at=now,
        actor=actor,
    )
    ctx.save(payment)
    return payment


def check_card_input(
    ctx: Needs, card: CardInput | None, payment_method: str | None, today: date
) -> CardInput | None:
    """A typed card only where the processor takes card numbers (never with Stripe)."""
    if card is not None and not ctx.processor.accepts_card_numbers:
        raise InvalidCard(
            f"card numbers are not accepted: cards are processed by {ctx.processor.name}, "
            "where the card is entered in its own payment form; send the payment method id "
            "it gives (payment_method) instead of card",
            field="card",
        )
    if card is not None and payment_method is not None:
        raise InvalidValue(
            "send either a card or a Stripe payment method, not both", field="payment_method"
        )
    return check_card(card, today) if card is not None else None


def charge(
    ctx: Needs,
    practice: Practice,
    *,
    payment_id: UUID,
    amount: Money,
    method: Method,
    card: CardInput | None,
    terminal_id: str | None,
    patient_id: UUID | None,
    request_id: UUID | None,
    at: datetime,
    actor: str,
    payment_method: str | None = None,
    saved_card: SavedCard | None = None,
) -> Payment:
    """Authorise through the processor (captured when its batch closes); the payment
    (approved or declined), not yet saved. The attempt is recorded first
    (domain/charges.py); a refusal or a lost answer is recorded on it before it is raised."""
    wait_for_a_lost_charge(ctx, practice, payment_id, at)
    attempt_id = ask_to_charge(ctx, practice.id, payment_id, amount, method, at, actor)
    try:
        result = ctx.processor.charge(
            reference=payment_id,
            amount=amount.cents,
            card=card,
            terminal_id=terminal_id,
            payment_method=payment_method,
            account=processor_account(ctx.processor, practice),
            saved_card=saved_card,
        )
    except OutcomeUnknown as error:
        record_charge(ctx, practice.id, attempt_id, actor, "unknown", error.detail)
        raise OutcomeUnknown(
            f"{error.detail.rstrip('.')}. The payment is not recorded: send the same request "
            "again with the same Idempotency-Key to finish it (it is authorised once); "
            "otherwise the ledger reads it back and releases any hold on the card"
        ) from None
    except PaymentsError as error:
        record_charge(ctx, practice.id, attempt_id, actor, "refused", error.detail)
        raise
    except Exception as error:
        record_charge(ctx, practice.id, attempt_id, actor, "unknown", type(error).__name__)
        raise
    summary = CardSummary(result.brand, result.last4)
    common = {
        "id": payment_id,
        "practice_id": practice.id,
        "amount": amount,
        "method": method,
        "card": summary,
        "terminal_id": terminal_id,
        "patient_id": patient_id,
        "request_id": request_id,
        "at": at,
        "actor": actor,
    }
    if result.approved and result.transaction_id:
        batch_date = batch_date_for(at, practice.timezone, practice.batch_cutoff)
        return Payment.capture(
            transaction_id=result.transaction_id,
            batch_date=batch_date,
            settles_at=cutoff_instant(batch_date, practice.timezone, practice.batch_cutoff),
            **common,  # type: ignore[arg-type]
        )
    return Payment.decline(reason=result.decline_reason or "declined", **common)  # type: ignore[arg-type]


#: how long a charge whose answer was lost is left before it may be sent again, where the
#: processor keeps no idempotency key (Clearent): a request may still be on its way
LOST_CHARGE_SETTLES = timedelta(minutes=15)


def wait_for_a_lost_charge(ctx: Needs, practice: Practice, payment_id: UUID, at: datetime) -> None:
    """With a processor that remembers no key (`key_memory` zero: Clearent), a charge asked
    again soon after its answer was lost is read back, never sent: found, the processor's
    charge answers it without sending (it reads back by the reference first); not found,
    nothing is sent before the first request has surely arrived or never will."""
    if ctx.processor.key_memory != timedelta(0):
        return
    attempt = ctx.find(ChargeAttempt, attempt_id_of(payment_id))
    if (
        attempt is None
        or attempt.state != "unknown"
        or at - attempt.asked_at >= LOST_CHARGE_SETTLES
    ):
        return
    looked = ctx.processor.look_up(
        effect=Effect.CHARGE,
        reference=payment_id,
        transaction_id="",
        account=processor_account(ctx.processor, practice),
    )
    if looked.state == "absent":
        wait = attempt.asked_at + LOST_CHARGE_SETTLES - at
        raise OutcomeUnknown(
            f"the first request's answer was lost and {ctx.processor.name} has no record of "
            f"it yet, which takes no idempotency key: it is not sent again for "
            f"{int(wait.total_seconds() // 60) + 1} more minutes, in case it is still on its "
            "way; send the same request again with the same Idempotency-Key then"
        )


def ask_to_charge(
    ctx: Needs,
    practice_id: UUID,
    payment_id: UUID,
    amount: Money,
    method: Method,
    at: datetime,
    actor: str,
) -> UUID:
    """Record the authorisation's intent (or, for the same request again, that it asks
    again); refuses when the reconciler released an authorisation under this id."""
    attempt_id = attempt_id_of(payment_id)
    # a request whose Idempotency-Key is new to its caller has no attempt yet: it is saved
    # without a read first (when there was one after all, the insert conflicts and the
    # retry reads it)
    tries = [0]

    def ask() -> None:
        tries[0] += 1
        fresh = tries[0] == 1 and key_is_new()
        attempt = None if fresh else ctx.find(ChargeAttempt, attempt_id)
        if attempt is None:
            attempt = ChargeAttempt.request(
                practice_id=practice_id,
                payment_id=payment_id,
                amount=amount.cents,
                method=method.value,
                at=at,
                actor=actor,
            )
        else:
            attempt.ask_again(at=at, actor=actor)
        ctx.save(attempt, show=False)

    retry_on_conflict(ask)
    return attempt_id


def check_patient(ctx: Needs, practice_id: UUID, patient_id: UUID) -> Patient:
    try:
        return ctx.get(Patient, patient_id, practice_id)
    except NotFound:
        raise InvalidValue(
            f"the patient {patient_id} is not a patient of this practice", field="patient_id"
        ) from None


@dataclass(frozen=True)
class Reversal:
    kind: ReversalKind
    payment: Payment
    amount: int
    refund_id: UUID | None


def refund_payment(
    ctx: Needs,
    *,
    practice_id: UUID,
    payment_id: UUID,
    amount: int | None,
    actor: str,
    key: str | None = None,
    reason: str | None = None,
    note: str | None = None,
) -> Reversal:
    """The one refund action: a void while unprocessed, a refund once settled.

    Money moves once per intent (services/app/intents.py). The intent's id is fixed here,
    once, from the key; the decision (void or refund, judged at the moment asked) and its
    intent are saved inside a retry on conflict that decides only; the processor is
    called once after it, and its outcome is recorded. The same request again (same key)
    answers the first outcome, or resumes an intent whose outcome is unknown by reading it
    back first. Other intents left open are the reconciler's: never sent from here.
    """
    close_due_batches(ctx, practice_id)
    refund_id = keyed_id(payment_id, "refund", key)
    void_id = keyed_id(payment_id, "void", key)
    asked_at = ctx.clock.now(practice_id)
    wanted = None if amount is None else check_payment_amount(amount)

    def decide() -> Reversal | tuple[IntentKind, UUID, bool]:
        payment = ctx.get(Payment, payment_id, practice_id)
        answered = answer_again(payment, void_id, refund_id)
        if answered is not None:
            return answered
        if payment.pending_void is not None and payment.pending_void.id == void_id:
            return (VOID, void_id, True)
        if refund_id in payment.pending_refunds:
            return (REFUND, refund_id, True)
        if payment.reversal_kind(asked_at) == ReversalKind.VOID:
            payment.check_void(asked_at, wanted)
            payment.request_void(
                void_id=void_id, at=asked_at, actor=actor, reason=reason, note=note
            )
            ctx.save(payment)
            return (VOID, void_id, False)
        refund_amount = wanted or payment.remaining
        payment.request_refund(
            refund_id=refund_id,
            amount=refund_amount,
            at=asked_at,
            actor=actor,
            reason=reason,
            note=note,
        )
        ctx.save(payment)
        return (REFUND, refund_id, False)

    decided = retry_on_conflict(decide)
    if isinstance(decided, Reversal):
        return decided
    kind, intent_id, resumed = decided
    payment = carry_out(
        ctx, kind, practice_id, payment_id, intent_id, actor=actor, read_first=resumed
    )
    answered = answer_again(payment, void_id, refund_id)
    if answered is None:  # a resumed intent still open: its outcome is not known yet
        raise OutcomeUnknown(
            f"the outcome of this {kind.effect} is not known yet; the ledger reads it back "
            "from the processor and records it (shown on the payment)"
        )
    return answered


def answer_again(payment: Payment, void_id: UUID, refund_id: UUID) -> Reversal | None:
    """The recorded outcome of the intents under these ids: the reversal made, or the
    processor's refusal raised again; None while neither has an outcome."""
    if payment.void_id == void_id:
        return Reversal(ReversalKind.VOID, payment, payment.amount.cents, None)
    done = next((r for r in payment.refunds if r.id == refund_id), None)
    if done is not None:
        return Reversal(ReversalKind.REFUND, payment, done.amount, refund_id)
    refused = payment.refused_voids.get(void_id) or payment.refused_refunds.get(refund_id)
    if refused is not None:
        raise ProcessorRefused(f"the processor refused it: {refused}")
    return None


def associate_payment(
    ctx: Needs,
    *,
    practice_id: UUID,
    payment_id: UUID,
    source: AssociationSource,
    pms_reference: str | None,
    actor: str,
    refund_id: UUID | None = None,
    void: bool = False,
    dispute: bool = False,
) -> Payment:
    """Mark the payment (or one of its refunds, its void or its lost dispute) as recorded in
    the PMS ledger."""

    def decide(payment: Payment) -> Payment:
        now = ctx.clock.now(practice_id)
        if refund_id is not None:
            payment.associate_refund(
                refund_id=refund_id, source=source, pms_reference=pms_reference, at=now, actor=actor
            )
        elif void:
            payment.associate_void(source=source, pms_reference=pms_reference, at=now, actor=actor)
        elif dispute:
            payment.associate_dispute(
                source=source, pms_reference=pms_reference, at=now, actor=actor
            )
        else:
            payment.associate(source=source, pms_reference=pms_reference, at=now, actor=actor)
        return payment

    return ctx.change(Payment, payment_id, practice_id, decide)


def send_receipt(
    ctx: Needs,
    *,
    practice_id: UUID,
    payment_id: UUID,
    email: str | None,
    refund_id: UUID | None,
    actor: str,
    phone: str | None = None,
) -> Payment:
    """Send a copy of a payment's (or one refund's) receipt, by email or by text (`phone`),
    and record that it was sent (and where)."""
    payment = ctx.get(Payment, payment_id, practice_id)
    practice = ctx.get(Practice, practice_id, practice_id)
    now = ctx.clock.now(practice_id)
    payment.check_receipt(refund_id)
    try:
        if phone is not None:
            reference = f"receipt:{payment.id}:{refund_id or ''}:{payment.receipts_sent + 1}"
            ctx.sms.send(
                Sms(phone, receipt_text(practice, payment, refund_id), reference, practice.id)
            )
        elif email is not None:
            ctx.email.send(receipt_email(practice, payment, refund_id, email, now))
        else:
            raise InvalidValue("give an email address or a phone number", field="email")
    except SendFailed as error:
        how = "texted" if phone is not None else "emailed"
        raise EmailNotSent(
            f"the receipt could not be {how} ({error}); nothing was recorded, try again"
        ) from error

    def decide(fresh: Payment) -> Payment:
        at = ctx.clock.now(practice_id)
        fresh.record_receipt_sent(
            email=email if phone is None else None,
            phone=phone,
            refund_id=refund_id,
            at=at,
            actor=actor,
        )
        return fresh

    return ctx.change(Payment, payment_id, practice_id, decide)


def receipt_text(practice: Practice, payment: Payment, refund_id: UUID | None) -> str:
    """The receipt as one text message."""
    if refund_id is not None:
        refund = payment.find_refund(refund_id)
        what, amount, when, ref = (
            "Refund",
            Money(refund.amount),
            refund.at,
            refund.processor_refund_id,
        )
    else:
        what, amount, when = "Payment", payment.amount, payment.occurred_at
        ref = payment.transaction_id or ""
    local = when.astimezone(zone(practice.timezone))
    status = payment.receipt_status(refund_id).value.capitalize()
    return (
        f"{practice.name}: {what.lower()} receipt. {amount}, {status}, {local:%Y-%m-%d %H:%M}, "
        f"card ending {payment.card.last4}"
        + (f", transaction {ref}" if ref else "")
        + ". Thank you."
    )


def receipt_email(
    practice: Practice, payment: Payment, refund_id: UUID | None, to: str, now: datetime
) -> Email:
    if refund_id is not None:
        refund = payment.find_refund(refund_id)
        what, amount, when = "Refund", Money(refund.amount), refund.at
        ref = refund.processor_refund_id
    else:
        what, amount, when = "Payment", payment.amount, payment.occurred_at
        ref = payment.transaction_id or ""
    local = when.astimezone(zone(practice.timezone))
    body = "\n".join(
        [
            f"{practice.name}",
            "",
            f"{what} receipt",
            f"Amount: {amount}",
            f"Date: {local:%Y-%m-%d %H:%M} ({practice.timezone})",
            f"Status: {payment.receipt_status(refund_id).value}",
            f"Transaction id: {ref}",
            f"Card: {payment.card}",
            "",
            f"Sent: {now.astimezone(zone(practice.timezone)):%Y-%m-%d %H:%M}",
            "Thank you.",
        ]
    )
    return Email(
        to=to,
        subject=f"{practice.name}: {what.lower()} receipt {amount}",
        body=body,
        practice_id=practice.id,
    )
