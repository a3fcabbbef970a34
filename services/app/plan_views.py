"""Cards on file and payment plans as the API and the pages are asked for them: a
request's model in (services/app/inputs.py), turned into the use case's arguments, the
answer model out. The API answers it as JSON, a page as HTML."""

from __future__ import annotations

from uuid import UUID

from adapters.processor.port import CardInput
from domain.patients import Patient
from domain.plans import PaymentPlan
from projections.plans import cards_of_patient, plans_of_patient, plans_of_practice
from services.app import answers
from services.app import cards as card_uc
from services.app import plans as plan_uc
from services.app.inputs import CardChargeIn, CardSaveIn, PlanCancelIn, PlanIn
from services.app.practices import Caller, practice_of
from services.context import Components


def save_card(
    ctx: Components, caller: Caller, patient_id: UUID, body: CardSaveIn, key: str | None
) -> answers.SavedCardOut:
    """Keep a card on file with the patient's consent (a card typed in, or the processor's
    payment method)."""
    card = (
        CardInput(body.card.number, body.card.exp_month, body.card.exp_year, body.card.cvc)
        if body.card
        else None
    )
    ctx.get(Patient, patient_id, practice_of(caller))  # another practice's: not found
    kept = card_uc.save_card(
        ctx,
        practice_id=practice_of(caller),
        patient_id=patient_id,
        consent=body.consent,
        source="api",
        actor=caller.actor,
        card=card,
        payment_method=body.payment_method,
        key=key,
    )
    return answers.saved_card_out(kept)


def cards(ctx: Components, caller: Caller, patient_id: UUID) -> answers.SavedCardList:
    """The patient's cards on file (and removed ones), newest first."""
    practice_id = practice_of(caller)
    ctx.get(Patient, patient_id, practice_id)  # another practice's: not found
    rows = ctx.reads(cards_of_patient, practice_id, patient_id)
    return answers.SavedCardList(items=[answers.saved_card_row(r) for r in rows])


def remove_card(
    ctx: Components, caller: Caller, patient_id: UUID, card_id: UUID
) -> answers.SavedCardOut:
    removed = card_uc.remove_card(
        ctx,
        practice_id=practice_of(caller),
        patient_id=patient_id,
        card_id=card_id,
        actor=caller.actor,
    )
    return answers.saved_card_out(removed)


def charge_card(
    ctx: Components,
    caller: Caller,
    patient_id: UUID,
    card_id: UUID,
    body: CardChargeIn,
    key: str | None,
) -> answers.Payment:
    payment = card_uc.charge_card(
        ctx,
        practice_id=practice_of(caller),
        patient_id=patient_id,
        card_id=card_id,
        amount=body.amount,
        actor=caller.actor,
        key=key,
    )
    return answers.payment_out(ctx, payment)


def create_plan(ctx: Components, caller: Caller, body: PlanIn, key: str | None) -> answers.PlanOut:
    plan = plan_uc.create_plan(
        ctx,
        practice_id=practice_of(caller),
        patient_id=body.patient_id,
        card_id=body.card_id,
        amount=body.amount,
        total=body.total,
        every=body.every,
        unit=body.unit,
        start=body.start,
        note=body.note,
        actor=caller.actor,
        key=key,
    )
    return answers.plan_out(plan)


def plans(ctx: Components, caller: Caller, patient_id: UUID | None) -> answers.PlanList:
    """The practice's payment plans (or one patient's), newest first."""
    practice_id = practice_of(caller)
    if patient_id is not None:
        rows = ctx.reads(plans_of_patient, practice_id, patient_id)
    else:
        rows = ctx.reads(plans_of_practice, practice_id, 1000)
    found = ctx.get_many(PaymentPlan, [UUID(r["id"]) for r in rows], practice_id)
    return answers.PlanList(
        items=[answers.plan_out(found[UUID(r["id"])]) for r in rows if UUID(r["id"]) in found]
    )


def plan(ctx: Components, caller: Caller, plan_id: UUID) -> answers.PlanOut:
    return answers.plan_out(ctx.get(PaymentPlan, plan_id, practice_of(caller)))


def cancel_plan(
    ctx: Components, caller: Caller, plan_id: UUID, body: PlanCancelIn
) -> answers.PlanOut:
    cancelled = plan_uc.cancel_plan(
        ctx,
        practice_id=practice_of(caller),
        plan_id=plan_id,
        reason=body.reason,
        actor=caller.actor,
    )
    return answers.plan_out(cancelled)
