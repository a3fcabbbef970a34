"""Cards on file (kept with the patient's consent) and payment plans charged to them."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query

from adapters.processor.port import CardInput
from domain.patients import Patient
from domain.plans import PaymentPlan
from projections.plans import cards_of_patient, plans_of_patient, plans_of_practice
from services.app import answers
from services.app import cards as card_uc
from services.app import plans as plan_uc
from services.app.bounds import Id
from services.app.inputs import CardChargeIn, CardSaveIn, PlanCancelIn, PlanIn
from services.app.practices import practice_of
from services.http.deps import AdminDep, ComponentsDep, KeyDep
from services.http.openapi import problems

cards = APIRouter(prefix="/v1/patients", tags=["cards on file"])
plans = APIRouter(prefix="/v1/payment-plans", tags=["payment plans"])


@cards.post(
    "/{patient_id}/cards",
    response_model=answers.SavedCardOut,
    status_code=201,
    responses=problems(404, 409, 502),
    summary="Keep a card on file, with the patient's consent (its wording and time recorded)",
)
def save_card(
    patient_id: Id, body: CardSaveIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.SavedCardOut:
    card = (
        CardInput(body.card.number, body.card.exp_month, body.card.exp_year, body.card.cvc)
        if body.card
        else None
    )
    ctx.get(Patient, patient_id, practice_of(caller))  # another practice's: 404
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


@cards.get(
    "/{patient_id}/cards",
    response_model=answers.SavedCardList,
    responses=problems(404),
    summary="The patient's cards on file (and removed ones), newest first",
)
def list_cards(patient_id: Id, caller: AdminDep, ctx: ComponentsDep) -> answers.SavedCardList:
    practice_id = practice_of(caller)
    ctx.get(Patient, patient_id, practice_id)  # another practice's: 404
    rows = ctx.reads(cards_of_patient, practice_id, patient_id)
    return answers.SavedCardList(items=[answers.saved_card_row(r) for r in rows])


@cards.delete(
    "/{patient_id}/cards/{card_id}",
    response_model=answers.SavedCardOut,
    responses=problems(404, 409, 502),
    summary="Remove a card on file (a plan charged to it is cancelled with it; taken off at "
    "the processor where it holds it)",
)
def remove_card(
    patient_id: Id, card_id: Id, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.SavedCardOut:
    removed = card_uc.remove_card(
        ctx,
        practice_id=practice_of(caller),
        patient_id=patient_id,
        card_id=card_id,
        actor=caller.actor,
    )
    return answers.saved_card_out(removed)


@cards.post(
    "/{patient_id}/cards/{card_id}/charge",
    response_model=answers.Payment,
    status_code=201,
    responses=problems(404, 409, 502),
    summary="Charge a card on file (a payment like any other: approved or declined)",
)
def charge_card(
    patient_id: Id,
    card_id: Id,
    body: CardChargeIn,
    caller: AdminDep,
    ctx: ComponentsDep,
    key: KeyDep,
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


@plans.post(
    "",
    response_model=answers.PlanOut,
    status_code=201,
    responses=problems(404, 409),
    summary="Make a payment plan: an amount every N weeks or months until a total",
)
def create_plan(body: PlanIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep) -> answers.PlanOut:
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


@plans.get(
    "",
    response_model=answers.PlanList,
    summary="Payment plans, newest first (of one patient with patient_id)",
)
def list_plans(
    caller: AdminDep,
    ctx: ComponentsDep,
    patient_id: Id | None = Query(None, description="only this patient's plans"),
) -> answers.PlanList:
    practice_id = practice_of(caller)
    if patient_id is not None:
        rows = ctx.reads(plans_of_patient, practice_id, patient_id)
    else:
        rows = ctx.reads(plans_of_practice, practice_id, 1000)
    found = ctx.get_many(PaymentPlan, [UUID(r["id"]) for r in rows], practice_id)
    return answers.PlanList(
        items=[answers.plan_out(found[UUID(r["id"])]) for r in rows if UUID(r["id"]) in found]
    )


@plans.get(
    "/{plan_id}",
    response_model=answers.PlanOut,
    responses=problems(404),
    summary="One payment plan: its schedule, charges, failures and how it ended",
)
def get_plan(plan_id: Id, caller: AdminDep, ctx: ComponentsDep) -> answers.PlanOut:
    return answers.plan_out(ctx.get(PaymentPlan, plan_id, practice_of(caller)))


@plans.post(
    "/{plan_id}/cancel",
    response_model=answers.PlanOut,
    responses=problems(404, 409),
    summary="Cancel a payment plan: nothing more is charged (who and when are recorded)",
)
def cancel_plan(
    plan_id: Id, body: PlanCancelIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.PlanOut:
    plan = plan_uc.cancel_plan(
        ctx,
        practice_id=practice_of(caller),
        plan_id=plan_id,
        reason=body.reason,
        actor=caller.actor,
    )
    return answers.plan_out(plan)
