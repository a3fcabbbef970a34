"""Collect Payment: a physical terminal, a card keyed in, or a payment request by text or
email. Each form carries its own idempotency key, so a double click takes one payment."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from adapters.processor.cards import card_mistakes
from adapters.processor.port import CardInput
from domain.cards import consent_for
from domain.errors import InvalidValue
from domain.schedule import local_date
from services.app import patient_views, payment_views, plan_views, report_views, request_views
from services.app.inputs import CardChargeIn, CardIn, CardSaveIn, PaymentIn, PaymentRequestIn
from services.app.practices import practice_of
from services.web import render
from services.web.forms import FieldErrors, FormError, dollars_to_cents, optional_date, run
from services.web.pages.common import practice
from services.web.pay import friendly, stripe_element
from services.web.security import STRIPE_CONTENT_SECURITY_POLICY
from services.web.session import Admin, Manager, PostedForm, ctx_of

router = APIRouter(include_in_schema=False)

KINDS = {
    "terminal": "Physical terminal",
    "virtual": "Virtual terminal",
    "request": "Payment request",
}


def patients(request: Request, user: Admin) -> list[dict[str, Any]]:
    """The practice's patients by last name, for the patient picker."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(found) < 1000:
        answer = patient_views.patients_page(ctx_of(request), user.caller, 100, cursor)
        found.extend(answer["items"])
        cursor = answer["next_cursor"]
        if not cursor:
            break
    return found


def collect_page(
    request: Request,
    user: Admin,
    kind: str,
    *,
    error: str | None = None,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    place = practice(request, user)
    stripe = stripe_element(ctx_of(request), place.stripe_account if place else None, 50)
    response = render.page(
        request,
        "payments/collect.html",
        user=user,
        practice=place,
        section="payments",
        tab="transactions",
        kind=kind,
        kinds=KINDS,
        patients=patients(request, user),
        error=error,
        status=status,
        values=values or dict(request.query_params),
        errors=errors or {},
        stripe=stripe,
        consent=consent_for(place.name),
        keeps_cards=ctx_of(request).processor.saves_cards,
    )
    if stripe is not None and kind == "virtual":
        response.headers["Content-Security-Policy"] = STRIPE_CONTENT_SECURITY_POLICY
    return response


@router.get("/payments/collect/{kind}")
def collect_form(request: Request, user: Manager, kind: str) -> HTMLResponse:
    if kind not in KINDS:
        kind = "terminal"
    return collect_page(request, user, kind)


def refuse_no_card() -> str:
    raise FormError("The card form did not send the card: enter the card again.", 422)


def whole_number(text: str, field: str) -> int:
    if not text.strip().isascii() or not text.strip().isdigit():
        raise InvalidValue(f"{field} must be a number", field=field)
    return int(text.strip())


#: the card's fields as the API and the card checks name them -> the form's inputs
CARD_FIELDS = {
    "card.number": "card_number",
    "card.exp_month": "exp_month",
    "card.exp_year": "exp_year",
    "card.cvc": "cvc",
    "number": "card_number",
    "exp_month": "exp_month",
    "exp_year": "exp_year",
    "cvc": "cvc",
}


def typed_card(fields: dict[str, str], errors: FieldErrors, today: date) -> CardInput | None:
    """The card as typed, each of its fields checked on its own (every mistake kept in
    `errors`, in the card holder's words); None when any is wrong."""
    month = errors.check("exp_month", whole_number, fields.get("exp_month", ""), "expiry month")
    year = errors.check("exp_year", whole_number, fields.get("exp_year", ""), "expiry year")
    card = CardInput(
        number=fields.get("card_number", "").strip(),
        exp_month=month if month is not None else 0,
        exp_year=year if year is not None else 0,
        cvc=fields.get("cvc", "").strip(),
    )
    for mistake in card_mistakes(card, today):
        errors.add(CARD_FIELDS.get(mistake.field or "", "card_number"), friendly(mistake))
    return None if errors.fields else card


@router.post("/payments/collect/{kind}")
def collect(request: Request, user: Admin, form: PostedForm, kind: str) -> Response:
    ctx = ctx_of(request)
    values = {k: v for k, v in form.fields.items() if k not in ("card_number", "cvc")}
    patient = form.get("patient_id") or None
    keep = kind == "virtual" and form.get("keep_card") == "yes"
    # every field is checked before anything is sent, so all mistakes show at once
    errors = FieldErrors(CARD_FIELDS)
    note: str | None = None  # what became of the card to keep on file
    try:
        if keep and not patient:
            errors.add(
                "patient_id", "Choose the patient whose card is kept on file, or untick the box"
            )
        amount = errors.check("amount", dollars_to_cents, form.get("amount"))
        if kind == "request":
            if not patient:
                errors.add("patient_id", "Choose the patient to send the request to")
            body: Any = errors.check(
                "destination",
                PaymentRequestIn,
                patient_id=patient or "",
                amount=amount or 1,
                channel=form.get("channel") or "email",
                destination=form.get("destination") or None,
                override_snooze=form.get("override_snooze") == "true",
            )
            errors.done()
            answer = run(request_views.send_answer, ctx, user.caller, body, form.key(user))
            return render.redirect(
                request,
                "/payments/requests",
                f"A payment request for {render.money(answer['amount'])} was sent by "
                f"{'text' if answer['channel'] == 'sms' else 'email'}.",
            )
        if kind == "terminal":
            if not form.get("terminal_id"):
                errors.add("terminal_id", "Enter the terminal the patient pays at")
            errors.done()
            body = run(
                PaymentIn,
                method="terminal",
                amount=amount,
                terminal_id=form.get("terminal_id") or None,
                patient_id=patient,
            )
        elif not ctx.processor.accepts_card_numbers:
            errors.done()
            method = form.get("payment_method") or refuse_no_card()
            if keep and patient and ctx.processor.saves_cards:
                # Stripe: kept first (a card paid with once cannot be attached to the
                # patient's Customer afterwards), then charged as the card on file
                kept, note = keep_method(request, user, form, method)
                if kept is not None:
                    charged = run(
                        plan_views.charge_card,
                        ctx,
                        user.caller,
                        UUID(patient),
                        UUID(kept["id"]),
                        run(CardChargeIn, amount=amount),
                        form.key(user),
                    )
                    return collected(request, user, kind, values, charged, patient, note)
            body = run(
                PaymentIn,
                method="virtual_terminal",
                amount=amount,
                payment_method=method,
                patient_id=patient,
            )
        else:
            place = practice(request, user)
            today = local_date(ctx.clock.now(place.id), place.timezone)
            typed = typed_card(form.fields, errors, today)
            card = typed and errors.check(
                "card_number",
                CardIn,
                number=typed.number,
                exp_month=typed.exp_month,
                exp_year=typed.exp_year,
                cvc=typed.cvc,
            )
            errors.done()
            body = run(
                PaymentIn,
                method="virtual_terminal",
                amount=amount,
                card=card,
                patient_id=patient,
            )
        payment = run(payment_views.collect, ctx, user.caller, body, form.key(user))
    except FormError as refused:
        return collect_page(request, user, kind, values=values, **refused.shown)
    if keep and patient and note is None:
        note = keep_card(request, user, form)
    return collected(request, user, kind, values, payment, patient, note)


def collected(
    request: Request,
    user: Admin,
    kind: str,
    values: dict[str, str],
    payment: Any,
    patient: str | None,
    kept: str | None,
) -> Response:
    """The page after a collect: the decline, or where it leads with what was done."""
    if payment["status"] == "declined":
        return collect_page(
            request,
            user,
            kind,
            error=f"The card was declined ({payment['decline_reason']}). No money was taken.",
            status=402,
            values=values,
        )
    card_text = f"{payment['card']['brand']} ending {payment['card']['last4']}"
    done = f"Payment of {render.money(payment['amount'])} approved on {card_text}."
    if kept is not None and patient:
        return render.redirect(request, f"/payments/patients/{patient}#cards", done + kept)
    return render.redirect(request, "/payments/transactions", done)


def keep_method(
    request: Request, user: Admin, form: PostedForm, payment_method: str
) -> tuple[Any, str]:
    """Keep the card of Stripe's Payment Element on file before it is charged (the
    patient ticked the consent): the card kept, or None, and what to say."""
    key = form.key(user)
    try:
        body = run(
            CardSaveIn,
            payment_method=payment_method,
            consent=consent_for(practice(request, user).name),
        )
        kept = run(
            plan_views.save_card,
            ctx_of(request),
            user.caller,
            UUID(form.get("patient_id")),
            body,
            f"{key}:card" if key else None,
        )
    except FormError as refused:
        return None, f" The card was not kept on file: {refused.message}"
    return kept, f" The card ending {kept['last4']} is on file."


def keep_card(request: Request, user: Admin, form: PostedForm) -> str:
    """Keep the card just charged on file (the patient ticked the consent); what to say."""
    card = CardIn(
        number=form.get("card_number").replace(" ", ""),
        exp_month=int(form.get("exp_month")),
        exp_year=int(form.get("exp_year")),
        cvc=form.get("cvc"),
    )
    key = form.key(user)
    try:
        body = run(CardSaveIn, card=card, consent=consent_for(practice(request, user).name))
        kept = run(
            plan_views.save_card,
            ctx_of(request),
            user.caller,
            UUID(form.get("patient_id")),
            body,
            f"{key}:card" if key else None,
        )
    except FormError as refused:
        return f" The card was not kept on file: {refused.message}"
    return f" The card ending {kept['last4']} is on file."


@router.get("/payments/exports/{view}.csv")
def export(request: Request, user: Admin, view: str) -> Response:
    q = request.query_params
    try:
        made = run(
            report_views.csv_export,
            ctx_of(request),
            practice_of(user.caller),
            view,
            optional_date(q.get("from", ""), "from"),
            optional_date(q.get("to", ""), "to"),
        )
    except FormError as refused:
        return HTMLResponse(refused.message, status_code=refused.status)
    return StreamingResponse(made.chunks, media_type=made.media_type, headers=made.headers)


__all__ = ["UUID", "router"]
