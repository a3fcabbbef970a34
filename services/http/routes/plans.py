"""Cards on file (kept with the patient's consent) and payment plans charged to them."""

from __future__ import annotations

from fastapi import APIRouter, Query

from services.app import answers
from services.app import plan_views as views
from services.app.bounds import Id
from services.app.inputs import CardChargeIn, CardSaveIn, PlanCancelIn, PlanIn
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
    return views.save_card(ctx, caller, patient_id, body, key)


@cards.get(
    "/{patient_id}/cards",
    response_model=answers.SavedCardList,
    responses=problems(404),
    summary="The patient's cards on file (and removed ones), newest first",
)
def list_cards(patient_id: Id, caller: AdminDep, ctx: ComponentsDep) -> answers.SavedCardList:
    return views.cards(ctx, caller, patient_id)


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
    return views.remove_card(ctx, caller, patient_id, card_id)


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
    return views.charge_card(ctx, caller, patient_id, card_id, body, key)


@plans.post(
    "",
    response_model=answers.PlanOut,
    status_code=201,
    responses=problems(404, 409),
    summary="Make a payment plan: an amount every N weeks or months until a total",
)
def create_plan(body: PlanIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep) -> answers.PlanOut:
    return views.create_plan(ctx, caller, body, key)


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
    return views.plans(ctx, caller, patient_id)


@plans.get(
    "/{plan_id}",
    response_model=answers.PlanOut,
    responses=problems(404),
    summary="One payment plan: its schedule, charges, failures and how it ended",
)
def get_plan(plan_id: Id, caller: AdminDep, ctx: ComponentsDep) -> answers.PlanOut:
    return views.plan(ctx, caller, plan_id)


@plans.post(
    "/{plan_id}/cancel",
    response_model=answers.PlanOut,
    responses=problems(404, 409),
    summary="Cancel a payment plan: nothing more is charged (who and when are recorded)",
)
def cancel_plan(
    plan_id: Id, body: PlanCancelIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.PlanOut:
    return views.cancel_plan(ctx, caller, plan_id, body)
