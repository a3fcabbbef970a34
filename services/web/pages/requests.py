"""The Payment requests tab: requests of a date range by status, each with its history, and
the two things staff do to one: cancel it, or resend it (a new request that supersedes it)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from domain.patients import Patient
from projections.users import NamedFeedItem, with_actor_names
from services.app import request_views
from services.app.inputs import PaymentRequestIn
from services.app.practices import practice_of
from services.web import render
from services.web.forms import FormError, optional_date, run
from services.web.pages import common
from services.web.pages.common import practice
from services.web.pages.transactions import badge_count
from services.web.session import Admin, Manager, PostedForm, ctx_of

router = APIRouter(include_in_schema=False)

STATUSES = ["requested", "completed", "cancelled"]
CHANNELS = {"sms": "Text", "email": "Email"}


def filters_of(request: Request) -> dict[str, str]:
    q = request.query_params
    return {
        "from": q.get("from", "").strip(),
        "to": q.get("to", "").strip(),
        "status": q.get("status", "") if q.get("status") in STATUSES else "",
        "cursor": q.get("cursor", ""),
    }


def listing(request: Request, user: Admin, f: dict[str, str]) -> dict[str, Any]:
    answer = run(
        request_views.requests_page,
        ctx_of(request),
        practice_of(user.caller),
        optional_date(f["from"], "from"),
        optional_date(f["to"], "to"),
        f["status"] or None,
        None,
        50,
        f["cursor"] or None,
    )
    shown = {"from": answer["from"], "to": answer["to"], "status": f["status"]}
    kept = {k: v for k, v in shown.items() if v}
    more = answer["next_cursor"] and "?" + urlencode({**kept, "cursor": answer["next_cursor"]})
    return {
        "rows": answer["items"],
        "filters": shown,
        "csv_query": urlencode({"from": answer["from"], "to": answer["to"]}),
        "more": more or "",
    }


@router.get("/payments/requests")
def requests_page(request: Request, user: Admin) -> HTMLResponse:
    f, error = filters_of(request), None
    try:
        data = listing(request, user, f)
    except FormError as refused:
        error = refused.message
        data = listing(request, user, {"from": "", "to": "", "status": "", "cursor": ""})
    return render.page(
        request,
        "payments/requests.html",
        user=user,
        practice=practice(request, user),
        section="payments",
        tab="requests",
        badge=badge_count(request, user),
        error=error,
        status=422 if error else 200,
        statuses=STATUSES,
        channels=CHANNELS,
        **data,
    )


def one_request(request: Request, user: Admin, request_id: UUID) -> dict[str, Any]:
    """The request with its history, and the patient's name."""
    ctx = ctx_of(request)
    pid = practice_of(user.caller)
    found = run(request_views.one_request, ctx, pid, request_id).model_dump(by_alias=True)
    patient = run(ctx.get, Patient, UUID(found["patient_id"]), pid)
    found["patient_name"] = f"{patient.first_name} {patient.last_name}".strip()
    history = ctx.reads(with_actor_names, practice_of(user.caller), found["history"])
    found["events"] = [describe(h) for h in history]
    return found


def describe(item: NamedFeedItem) -> dict[str, Any]:
    """One event of a request's history as a sentence an office reads."""
    data, kind = item["data"], item["type"].removeprefix("PaymentRequest")
    message = "the request" if not data.get("number") else f"reminder {data.get('number')}"
    text = {
        "Sent": lambda: (
            f"Sent {render.money(data.get('amount'))} by "
            f"{CHANNELS.get(data.get('channel', ''), 'message').lower()} "
            f"to {data.get('destination')}"
        ),
        "Reminded": lambda: f"Reminder {data.get('number')} fell due",
        "DeliveryClaimed": lambda: f"Delivering {message} (attempt {data.get('attempt')})",
        "Delivered": lambda: f"Delivered {message}",
        "DeliveryFailed": lambda: f"Could not deliver {message}: {data.get('error')}",
        "PartlyPaid": lambda: f"Paid {render.money(data.get('paid_amount'))} of it",
        "Completed": lambda: f"Paid {render.money(data.get('paid_amount'))}",
        "Reopened": lambda: f"Owed again: {data.get('reason')}",
        "Cancelled": lambda: f"Cancelled (reason: {data.get('reason')})",
    }.get(kind, lambda: render.label(kind))()
    return {**item, "text": text}


def detail_page(
    request: Request,
    user: Admin,
    request_id: UUID,
    template: str,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    return common.detail_page(
        request,
        user,
        template,
        tab="requests",
        missing="Payment request not found",
        load=lambda: {"r": one_request(request, user, request_id)},
        channels=CHANNELS,
        error=error,
        status=status,
    )


@router.get("/payments/requests/{request_id}")
def request_history(request: Request, user: Admin, request_id: UUID) -> HTMLResponse:
    return detail_page(request, user, request_id, "payments/requests_detail.html")


@router.get("/payments/requests/{request_id}/cancel")
def cancel_page(request: Request, user: Manager, request_id: UUID) -> HTMLResponse:
    return detail_page(request, user, request_id, "payments/requests_cancel.html")


@router.post("/payments/requests/{request_id}/cancel")
def cancel(request: Request, user: Admin, form: PostedForm, request_id: UUID) -> Response:
    try:
        cancelled = run(request_views.cancel, ctx_of(request), user.caller, request_id)
    except FormError as refused:
        return detail_page(
            request,
            user,
            request_id,
            "payments/requests_cancel.html",
            error=refused.message,
            status=refused.status,
        )
    return render.redirect(
        request,
        "/payments/requests",
        f"The payment request for {render.money(cancelled.amount.cents)} is cancelled; "
        "its pay link no longer takes a payment.",
    )


@router.get("/payments/requests/{request_id}/resend")
def resend_page(request: Request, user: Manager, request_id: UUID) -> HTMLResponse:
    return detail_page(request, user, request_id, "payments/requests_resend.html")


@router.post("/payments/requests/{request_id}/resend")
def resend(request: Request, user: Admin, form: PostedForm, request_id: UUID) -> Response:
    """A new request for the same patient, amount, channel and destination; sending it
    cancels the patient's outstanding request (reason: superseded)."""
    ctx = ctx_of(request)
    try:
        old = run(request_views.one_request, ctx, practice_of(user.caller), request_id)
        body = run(
            PaymentRequestIn,
            patient_id=old["patient_id"],
            amount=old["amount"],
            channel=old["channel"],
            destination=old["destination"],
            override_snooze=form.get("override_snooze") == "true",
        )
        sent = run(request_views.send, ctx, user.caller, body, form.key(user))
    except FormError as refused:
        return detail_page(
            request,
            user,
            request_id,
            "payments/requests_resend.html",
            error=refused.message,
            status=refused.status,
        )
    how = CHANNELS.get(sent.channel.value, "message").lower()
    superseded = (
        " The earlier request is cancelled (superseded)." if old["status"] == "requested" else ""
    )
    return render.redirect(
        request,
        "/payments/requests",
        f"A new payment request for {render.money(sent.amount.cents)} was sent by {how} "
        f"to {sent.destination}.{superseded}",
    )
