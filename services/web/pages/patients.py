"""Patients: find a patient by name, add one, and a patient's page (payments, requests,
balance and aging, snooze, messages sent, cards on file and payment plans), with Collect
payment and Send request prefilled with the patient."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from domain.cards import consent_for
from domain.errors import InvalidValue, NotFound
from domain.patients import Patient
from domain.plans import PaymentPlan, plan_lines
from domain.schedule import local_date
from projections.directory import find_patients, list_patients
from projections.plans import CardRow, cards_of_patient, plans_of_patient
from projections.receivables import ArQuery, list_ar
from projections.requests import list_requests
from projections.transactions import list_transactions
from projections.users import actor_names
from services.app import patient_views, plan_views
from services.app.inputs import CardChargeIn, CardIn, CardSaveIn, PatientIn, PlanCancelIn, PlanIn
from services.web import render
from services.web.forms import FormError, dollars_to_cents, run
from services.web.pages.collect import whole_number
from services.web.pages.common import practice
from services.web.session import Admin, Manager, PostedForm, ctx_of

router = APIRouter(include_in_schema=False)

#: how the add-a-patient form names the API's fields
FIELD_WORDS = {
    "pms_patient_id": "PMS patient number",
    "first_name": "first name",
    "last_name": "last name",
    "email": "email",
    "phone": "phone",
    "body.pms_patient_id": "PMS patient number",
    "body.first_name": "first name",
    "body.last_name": "last name",
    "body.email": "email",
    "body.phone": "phone",
}
#: the most patients a search lists
SHOWN = 100
#: the most payments and requests the patient's page lists
RECENT = 100


def in_words(refused: FormError) -> str:
    """The refusal with the form's words for the API's fields."""
    message = refused.message
    for field, words in sorted(FIELD_WORDS.items(), key=lambda f: -len(f[0])):
        message = message.replace(field, words)
    return message[:1].upper() + message[1:]


def patients_page(
    request: Request,
    user: Manager,
    *,
    error: str | None = None,
    status: int = 200,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    ctx = ctx_of(request)
    place = practice(request, user)
    q = request.query_params.get("q", "").strip()[:100]
    if q:
        rows = ctx.reads(find_patients, place.id, q, SHOWN + 1)
    else:
        rows = ctx.reads(list_patients, place.id, None, SHOWN + 1)
    return render.page(
        request,
        "payments/patients.html",
        user=user,
        practice=place,
        section="payments",
        tab="patients",
        q=q,
        rows=rows[:SHOWN],
        more=len(rows) > SHOWN,
        error=error,
        status=status,
        values=values or {},
        adding=values is not None,
    )


@router.get("/payments/patients")
def patients(request: Request, user: Manager) -> HTMLResponse:
    return patients_page(request, user)


@router.post("/payments/patients")
def add_patient(request: Request, user: Admin, form: PostedForm) -> Response:
    ctx = ctx_of(request)
    fields = ("pms_patient_id", "first_name", "last_name", "email", "phone")
    values = {k: form.get(k) for k in fields}
    try:
        body = run(PatientIn, **{k: v or None for k, v in values.items()} | _required(values))
        made = run(patient_views.register, ctx, user.caller, body)
    except FormError as refused:
        return patients_page(
            request, user, error=in_words(refused), status=refused.status, values=values
        )
    return render.redirect(
        request,
        f"/payments/patients/{made['id']}",
        f"{made['first_name']} {made['last_name']} was added.",
    )


def _required(values: dict[str, str]) -> dict[str, str]:
    """The required fields as typed (an empty one is refused by the API's rule)."""
    return {k: values[k] for k in ("pms_patient_id", "first_name", "last_name")}


def patient_context(request: Request, user: Manager, patient_id: str) -> dict[str, Any]:
    ctx = ctx_of(request)
    place = practice(request, user)
    pid = patient_uuid(patient_id)
    try:
        patient = ctx.get(Patient, pid, place.id)
    except NotFound:
        raise FormError("There is no such patient in this practice.", 404) from None
    guarantor = patient.guarantor_id or patient.id
    ar = ctx.reads(
        list_ar,
        place.id,
        ArQuery(guarantors_only=False, with_balance_only=False, patient_ids=(str(guarantor),)),
        today=local_date(ctx.clock.now(place.id), place.timezone).isoformat(),
        sort="total",
        after=None,
        limit=1,
    )
    payments = ctx.reads(
        list_transactions,
        place.id,
        date_from="0001-01-01",
        date_to="9999-12-31",
        association=None,
        patient_id=pid,
        after=None,
        limit=RECENT,
    )
    requests_ = ctx.reads(
        list_requests,
        place.id,
        date_from="0001-01-01",
        date_to="9999-12-31",
        status=None,
        patient_id=pid,
        after=None,
        limit=RECENT,
    )
    plan_rows = ctx.reads(plans_of_patient, place.id, pid)
    found = ctx.get_many(PaymentPlan, [UUID(r["id"]) for r in plan_rows], place.id)
    plans = [found[UUID(r["id"])] for r in plan_rows if UUID(r["id"]) in found]
    cards = ctx.reads(cards_of_patient, place.id, pid)
    today = local_date(ctx.clock.now(place.id), place.timezone)
    return {
        "patient": patient,
        "guarantor": ctx.get(Patient, patient.guarantor_id, place.id)
        if patient.guarantor_id
        else None,
        "ar": ar[0] if ar and ar[0]["has_balance"] else None,
        "aging": aging(ar[0]) if ar and ar[0]["has_balance"] else None,
        "payments": payments,
        "requests": requests_,
        "snooze": patient.snooze if patient.is_snoozed(today) else None,
        "cards": cards,
        "usable_cards": [c for c in cards if c["state"] == "saved"],
        "plans": [(plan, plan_lines(plan)) for plan in plans],
        "consent": consent_for(place.name),
        "keeps_cards": ctx.processor.saves_cards,
        "stripe_mode": not ctx.processor.accepts_card_numbers,
        "names": ctx.reads(actor_names, place.id, actors_of(plans, cards)),
        "today": today.isoformat(),
    }


def actors_of(plans: list[PaymentPlan], cards: list[CardRow]) -> set[str]:
    found = {p.created_by for p in plans} | {p.ended_by for p in plans if p.ended_by}
    return found | {c["removed_by"] for c in cards if c["removed_by"]}


def aging(row: Any) -> list[tuple[str, int]]:
    return [
        ("0 to 30 days", int(row["bal_0_30"])),
        ("31 to 60 days", int(row["bal_31_60"])),
        ("61 to 90 days", int(row["bal_61_90"])),
        ("Over 90 days", int(row["bal_over_90"])),
    ]


def patient_page(
    request: Request,
    user: Manager,
    patient_id: str,
    refused: FormError | None = None,
    *,
    values: dict[str, str] | None = None,
    form: str | None = None,
) -> HTMLResponse:
    """The patient's page; after a refused form, with what to fix (`form`: which form to
    open again, with the `values` typed)."""
    place = practice(request, user)
    try:
        context = patient_context(request, user, patient_id)
    except FormError as missing:
        return render.page(
            request,
            "error.html",
            user=user,
            practice=place,
            status=missing.status,
            heading="Patient not found",
            message=missing.message,
        )
    return render.page(
        request,
        "payments/patient.html",
        user=user,
        practice=place,
        section="payments",
        tab="patients",
        error=refused.message if refused else None,
        failed_form=form,
        status=refused.status if refused else 200,
        values=values or {},
        **context,
    )


@router.get("/payments/patients/{patient_id}")
def patient(request: Request, user: Manager, patient_id: str) -> HTMLResponse:
    return patient_page(request, user, patient_id)


def here(patient_id: str, anchor: str) -> str:
    return f"/payments/patients/{patient_id}#{anchor}"


def patient_uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise FormError("There is no such patient in this practice.", 404) from None


@router.post("/payments/patients/{patient_id}/cards")
def keep_card(request: Request, user: Admin, form: PostedForm, patient_id: str) -> Response:
    ctx = ctx_of(request)
    values = {k: v for k, v in form.fields.items() if k in ("exp_month", "exp_year")}
    try:
        if form.get("consent") != "yes":
            raise FormError(
                "The patient's consent is needed to keep a card: read it to them and tick the box."
            )
        card = run(
            CardIn,
            number=form.get("card_number").replace(" ", ""),
            exp_month=run(whole_number, form.get("exp_month"), "expiry month"),
            exp_year=run(whole_number, form.get("exp_year"), "expiry year"),
            cvc=form.get("cvc"),
        )
        body = run(CardSaveIn, card=card, consent=consent_for(practice(request, user).name))
        kept = run(
            plan_views.save_card,
            ctx,
            user.caller,
            patient_uuid(patient_id),
            body,
            form.key(user),
        )
    except FormError as refused:
        return patient_page(request, user, patient_id, refused, values=values, form="card")
    return render.redirect(
        request,
        here(patient_id, "cards"),
        f"The {kept['brand']} card ending {kept['last4']} is on file.",
    )


@router.post("/payments/patients/{patient_id}/cards/{card_id}/charge")
def charge_card(
    request: Request, user: Admin, form: PostedForm, patient_id: str, card_id: str
) -> Response:
    ctx = ctx_of(request)
    try:
        body = run(CardChargeIn, amount=run(dollars_to_cents, form.get("amount")))
        payment = run(
            plan_views.charge_card,
            ctx,
            user.caller,
            patient_uuid(patient_id),
            _uuid(card_id),
            body,
            form.key(user),
        )
    except FormError as refused:
        return patient_page(request, user, patient_id, refused, form="charge")
    if payment["status"] == "declined":
        declined = f"The card was declined ({payment['decline_reason']}). No money was taken."
        return patient_page(request, user, patient_id, FormError(declined, 402), form="charge")
    return render.redirect(
        request,
        here(patient_id, "payments"),
        f"Payment of {render.money(payment['amount'])} approved on the "
        f"{payment['card']['brand']} card ending {payment['card']['last4']}.",
    )


@router.post("/payments/patients/{patient_id}/cards/{card_id}/remove")
def remove_card(
    request: Request, user: Admin, form: PostedForm, patient_id: str, card_id: str
) -> Response:
    try:
        removed = run(
            plan_views.remove_card,
            ctx_of(request),
            user.caller,
            patient_uuid(patient_id),
            _uuid(card_id),
        )
    except FormError as refused:
        return patient_page(request, user, patient_id, refused)
    return render.redirect(
        request,
        here(patient_id, "cards"),
        f"The card ending {removed['last4']} was removed; a plan charged to it was cancelled.",
    )


@router.post("/payments/patients/{patient_id}/plans")
def create_plan(request: Request, user: Admin, form: PostedForm, patient_id: str) -> Response:
    ctx = ctx_of(request)
    fields = ("card_id", "amount", "total", "every", "unit", "start", "note")
    values = {k: form.get(k) for k in fields}
    try:
        body = run(
            PlanIn,
            patient_id=patient_uuid(patient_id),
            card_id=_uuid(values["card_id"], "Choose the card on file to charge."),
            amount=run(dollars_to_cents, values["amount"], "amount of each charge"),
            total=run(dollars_to_cents, values["total"], "total"),
            every=run(whole_number, values["every"], "how often"),
            unit=values["unit"] or "months",
            start=run(start_date, values["start"]),
            note=values["note"] or None,
        )
        plan = run(plan_views.create_plan, ctx, user.caller, body, form.key(user)).model_dump()
    except FormError as refused:
        return patient_page(request, user, patient_id, refused, values=values, form="plan")
    return render.redirect(
        request,
        here(patient_id, f"plan-{plan['id']}"),
        f"Payment plan made: {render.money(plan['amount'])} every {every(plan)} until "
        f"{render.money(plan['total'])}.",
    )


def every(plan: dict[str, Any]) -> str:
    """'month', '2 weeks'."""
    unit = str(plan["unit"])
    return unit.rstrip("s") if plan["every"] == 1 else f"{plan['every']} {unit}"


def start_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidValue(
            "enter the first charge's date, e.g. 2026-04-01", field="start"
        ) from None


@router.post("/payments/patients/{patient_id}/plans/{plan_id}/cancel")
def cancel_plan(
    request: Request, user: Admin, form: PostedForm, patient_id: str, plan_id: str
) -> Response:
    try:
        body = run(PlanCancelIn, reason=form.get("reason") or "cancelled by the office")
        run(
            plan_views.cancel_plan,
            ctx_of(request),
            user.caller,
            _uuid(plan_id),
            body,
        )
    except FormError as refused:
        return patient_page(request, user, patient_id, refused)
    return render.redirect(
        request, here(patient_id, f"plan-{plan_id}"), "The payment plan was cancelled."
    )


def _uuid(text: str, missing: str = "That was not found.") -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise FormError(missing, 422 if text == "" else 404) from None
