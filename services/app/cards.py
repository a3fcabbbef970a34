"""Use cases: keep a card on file (with the patient's consent), charge it, remove it.

Keeping a card is an effect on the processor: the request and the consent are recorded
first (domain/cards.py), the processor is asked once outside any retry, under the card's
id as its reference, and the outcome is recorded. A lost answer leaves the card
`unknown`; the same request again (same Idempotency-Key) asks again under the same
reference, which the processor answers with the same card (nothing kept twice)."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol
from uuid import UUID

from adapters.idempotency_keys import key_is_new
from adapters.processor.port import (
    CardInput,
    Effect,
    OutcomeUnknown,
    ProcessorUnavailable,
    SavedCard,
)
from domain.cards import Card
from domain.errors import Conflict, InvalidValue, NotFound, PaymentsError
from domain.money import check_payment_amount
from domain.payments import Method, Payment
from domain.plans import PaymentPlan
from domain.practices import Practice
from domain.schedule import local_date
from projections.plans import cards_of_patient, live_plans_of_card
from services.app import payments
from services.app.payments import LOST_CHARGE_SETTLES
from services.app.practices import account_of, keyed_id
from services.context import retry_on_conflict


class Needs(payments.Needs, Protocol):
    """The parts these use cases are given (services/context.py)."""


class CardsNotKept(Conflict):
    code = "cards-not-kept"


def save_card(
    ctx: Needs,
    *,
    practice_id: UUID,
    patient_id: UUID,
    consent: str,
    source: str,
    actor: str,
    card: CardInput | None = None,
    payment_method: str | None = None,
    key: str | None = None,
) -> Card:
    """Keep the card at the processor for later charges, with the patient's consent."""
    if not ctx.processor.saves_cards:
        raise CardsNotKept(f"{ctx.processor.name} cannot keep cards for later charges")
    practice = ctx.get(Practice, practice_id, practice_id)
    payments.check_patient(ctx, practice_id, patient_id)
    today = local_date(ctx.clock.now(practice_id), practice.timezone)
    card = payments.check_card_input(ctx, card, payment_method, today)
    if card is None and payment_method is None:
        raise InvalidValue("the card to keep is needed", field="card")
    card_id = keyed_id(practice_id, "card", key)
    kept = request_card(ctx, practice_id, patient_id, card_id, consent, source, actor)
    if not kept.is_open:
        return kept
    wait_for_a_lost_save(ctx, practice_id, kept)
    try:
        saved = ctx.processor.keep_card(
            reference=card_id,
            patient_id=patient_id,
            customer=customer_of_patient(ctx, practice_id, patient_id),
            card=card,
            payment_method=payment_method,
            account=account_of(ctx, practice_id),
        )
    except OutcomeUnknown as error:
        lost = error.detail
        _outcome(
            ctx,
            practice_id,
            card_id,
            actor,
            lambda c, at: c.unknown(error=lost, at=at, actor=actor),
        )
        raise OutcomeUnknown(
            f"{lost.rstrip('.')}. The card is not on file yet: send the same request "
            "again with the same Idempotency-Key to finish keeping it (it is kept once)"
        ) from None
    except PaymentsError as error:
        why = error.detail
        _outcome(
            ctx,
            practice_id,
            card_id,
            actor,
            lambda c, at: c.refuse(reason=why, at=at, actor=actor),
        )
        raise
    return _outcome(
        ctx,
        practice_id,
        card_id,
        actor,
        lambda c, at: c.saved(
            token=saved.token,
            brand=saved.brand,
            last4=saved.last4,
            exp_month=saved.exp_month,
            exp_year=saved.exp_year,
            customer=saved.customer,
            at=at,
            actor=actor,
        ),
    )


def customer_of_patient(ctx: Needs, practice_id: UUID, patient_id: UUID) -> str | None:
    """The patient's customer at the processor (Stripe's `cus_...`), as a card kept for
    them before recorded it; None when none was (the processor makes one)."""
    for row in ctx.reads(cards_of_patient, practice_id, patient_id):
        found = ctx.find(Card, UUID(row["id"]))
        if found is not None and found.practice_id == practice_id and found.customer:
            return found.customer
    return None


def wait_for_a_lost_save(ctx: Needs, practice_id: UUID, card: Card) -> None:
    """With a processor that remembers no key (`key_memory` zero: Clearent), a card asked
    again soon after its answer was lost is read back, never sent: found, the processor's
    save answers it without sending (it reads back by the reference first); not found,
    nothing is sent before the first request has surely arrived or never will, so one
    consent never makes two cards at the processor."""
    if ctx.processor.key_memory != timedelta(0) or card.state != "unknown":
        return
    lost_at = getattr(card, "unknown_at", None)
    now = ctx.clock.now(practice_id)
    if lost_at is None or now - lost_at >= LOST_CHARGE_SETTLES:
        return
    looked = ctx.processor.look_up(
        effect=Effect.SAVE_CARD,
        reference=card.id,
        transaction_id="",
        account=account_of(ctx, practice_id),
    )
    if looked.state == "absent":
        wait = lost_at + LOST_CHARGE_SETTLES - now
        raise OutcomeUnknown(
            f"the first request's answer was lost and {ctx.processor.name} has no record of "
            f"the card yet, which takes no idempotency key: it is not sent again for "
            f"{int(wait.total_seconds() // 60) + 1} more minutes, in case it is still on its "
            "way; send the same request again with the same Idempotency-Key then"
        )


def request_card(
    ctx: Needs,
    practice_id: UUID,
    patient_id: UUID,
    card_id: UUID,
    consent: str,
    source: str,
    actor: str,
) -> Card:
    """The card's request with its consent, recorded (or found: the same request again)."""

    def decide() -> Card:
        found = None if key_is_new() else ctx.find(Card, card_id)
        if found is not None:
            if found.practice_id != practice_id or found.patient_id != patient_id:
                raise Conflict("this Idempotency-Key was used for another card")
            return found
        card = Card.request(
            id=card_id,
            practice_id=practice_id,
            patient_id=patient_id,
            consent=consent,
            source=source,
            at=ctx.clock.now(practice_id),
            actor=actor,
        )
        ctx.save(card)
        return card

    return retry_on_conflict(decide)


def _outcome(ctx: Needs, practice_id: UUID, card_id: UUID, actor: str, record: object) -> Card:
    def decide(card: Card) -> Card:
        record(card, ctx.clock.now(practice_id))  # type: ignore[operator]
        return card

    return ctx.change(Card, card_id, practice_id, decide)


def card_of_patient(ctx: Needs, practice_id: UUID, patient_id: UUID, card_id: UUID) -> Card:
    try:
        card = ctx.get(Card, card_id, practice_id)
    except NotFound:
        raise NotFound("no such card on file") from None
    if card.patient_id != patient_id:
        raise NotFound("no such card on file for this patient")
    return card


def saved_card(card: Card) -> SavedCard:
    """The processor's view of a card on file (to charge it)."""
    card.check_usable()
    return held(card)


def held(card: Card) -> SavedCard:
    """What the processor holds of a card kept there."""
    return SavedCard(
        token=card.token or "",
        brand=card.brand or "card",
        last4=card.last4 or "",
        exp_month=card.exp_month or 0,
        exp_year=card.exp_year or 0,
        customer=card.customer,
    )


def charge_card(
    ctx: Needs,
    *,
    practice_id: UUID,
    patient_id: UUID,
    card_id: UUID,
    amount: int,
    actor: str,
    key: str | None = None,
) -> Payment:
    """Charge a card on file (staff, from the patient's page): a payment like any other,
    through the same protocol (the attempt first, one call, the outcome recorded)."""
    money = check_payment_amount(amount)
    practice = ctx.get(Practice, practice_id, practice_id)
    card = card_of_patient(ctx, practice_id, patient_id, card_id)
    stored = saved_card(card)
    payment_id = keyed_id(practice_id, "payment", key)
    existing = ctx.find(Payment, payment_id) if key is not None and not key_is_new() else None
    if existing is not None:
        return existing
    payment = payments.charge(
        ctx,
        practice,
        payment_id=payment_id,
        amount=money,
        method=Method.CARD_ON_FILE,
        card=None,
        terminal_id=None,
        patient_id=patient_id,
        request_id=None,
        at=ctx.clock.now(practice_id),
        actor=actor,
        saved_card=stored,
    )
    ctx.save(payment)
    return payment


#: why a plan stops when its card is removed
CARD_REMOVED = "its card on file was removed"


def remove_card(
    ctx: Needs, *, practice_id: UUID, patient_id: UUID, card_id: UUID, actor: str
) -> Card:
    """Take the card off file; a plan charged to it is cancelled with it (saved together).
    Where the processor keeps the card too (Stripe), it is then taken off there, as an
    effect: asked with the removal, one call, its outcome recorded. A lost answer leaves
    it asked: the same removal again asks again (taking off what is off changes nothing)."""
    card_of_patient(ctx, practice_id, patient_id, card_id)

    def decide() -> Card:
        card = ctx.get(Card, card_id, practice_id)
        if card.is_forgetting:
            return card  # removed here; finish taking it off at the processor
        at = ctx.clock.now(practice_id)
        card.remove(at=at, actor=actor)
        if ctx.processor.forgets_cards and card.token:
            card.ask_to_forget(at=at, actor=actor)
        plans = [
            ctx.get(PaymentPlan, plan_id, practice_id)
            for plan_id in ctx.reads(live_plans_of_card, practice_id, card_id)
        ]
        for plan in plans:
            if plan.is_live:
                plan.cancel(reason=CARD_REMOVED, at=at, actor=actor)
        ctx.save(card, *plans)
        return card

    card = retry_on_conflict(decide)
    if not card.is_forgetting:
        return card
    try:
        ctx.processor.forget_card(
            saved=held(card), reference=card_id, account=account_of(ctx, practice_id)
        )
    except OutcomeUnknown as error:
        lost = error.detail
        _outcome(
            ctx,
            practice_id,
            card_id,
            actor,
            lambda c, at: c.forget_unknown(error=lost, at=at, actor=actor),
        )
        raise OutcomeUnknown(
            f"{lost.rstrip('.')}. The card is off file here and is never charged again; "
            f"{ctx.processor.name.title()} may still hold it: send the same request again to "
            "finish taking it off there"
        ) from None
    except ProcessorUnavailable as error:  # surely not done: the card stays asked
        raise ProcessorUnavailable(
            f"{error.detail.split(';')[0].rstrip('.')}. The card is off file here and is "
            f"never charged again; send the same request again to take it off at "
            f"{ctx.processor.name.title()} too"
        ) from None
    except PaymentsError as error:
        why = error.detail
        return _outcome(
            ctx,
            practice_id,
            card_id,
            actor,
            lambda c, at: c.forget_refused(reason=why, at=at, actor=actor),
        )
    return _outcome(ctx, practice_id, card_id, actor, lambda c, at: c.forgotten(at=at, actor=actor))
