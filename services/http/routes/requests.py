from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from domain.requests import Channel, PaymentRequest
from projections.base import iso
from projections.feed import read_history
from projections.requests import PaymentRequestRow, list_requests
from services.app import requests as uc
from services.app.bounds import HISTORY, Id
from services.app.inputs import PaymentRequestIn
from services.app.practices import practice_of
from services.context import Components
from services.http import answers
from services.http.deps import AdminDep, ComponentsDep, KeyDep
from services.http.openapi import problems
from services.http.ranges import CursorQ, FromQ, LimitQ, ToQ, date_range, dated_page

router = APIRouter(prefix="/v1/payment-requests", tags=["payment requests"])


def request_out(
    ctx: Components, r: PaymentRequest, *, with_history: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(r.id),
        "patient_id": str(r.patient_id),
        "amount": r.amount.cents,
        "paid_amount": r.paid_amount.cents if r.paid_amount else None,
        "status": r.status.value,
        "cancel_reason": r.cancel_reason.value if r.cancel_reason else None,
        "cancelled_by": r.cancelled_by,
        "channel": r.channel.value,
        "destination": r.destination,
        "sent_at": iso(r.sent_at),
        "sender": r.sender,
        "expires_at": iso(r.expires_at),
        "payment_id": str(r.payment_id) if r.payment_id else None,
        "superseded_by": str(r.superseded_by) if r.superseded_by else None,
        "pay_url": uc.pay_url(ctx, r) if r.status.value == "requested" else None,
        "messages": [
            {
                "number": m.number,
                "kind": "reminder" if m.number else "request",
                "status": m.status,
                "attempts": m.attempts,
                "last_error": m.last_error,
                "retry_at": iso(m.retry_at) if m.retry_at else None,
            }
            for m in sorted(r.messages.values(), key=lambda m: m.number)
        ],
    }
    if with_history:
        out["history"] = ctx.reads(read_history, r.practice_id, r.id, 0, HISTORY)
    return out


def row_out(row: PaymentRequestRow) -> dict[str, Any]:
    return {
        "id": row["id"],
        "patient_id": row["patient_id"],
        "patient_name": row["patient_name"],
        "date": row["requested_date"],
        "sent_at": row["sent_at"],
        "amount": int(row["amount"]),
        "paid_amount": int(row["paid_amount"]) if row["paid_amount"] is not None else None,
        "status": row["status"],
        "cancel_reason": row["cancel_reason"],
        "channel": row["channel"],
        "expires_at": row["expires_at"],
        "payment_id": row["payment_id"],
        "reminders_sent": int(row["reminders_sent"]),
        "delivery_status": row["delivery_status"],
    }


@router.post(
    "",
    response_model=answers.PaymentRequest,
    responses=problems(409, 502),
    status_code=201,
    summary="Send a payment request by text or email",
)
def send(
    body: PaymentRequestIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> dict[str, Any]:
    request = uc.send_request(
        ctx,
        practice_id=practice_of(caller),
        patient_id=body.patient_id,
        amount=body.amount,
        channel=Channel(body.channel),
        destination=body.destination,
        actor=caller.actor,
        key=key,
        override_snooze=body.override_snooze,
    )
    return request_out(ctx, request)


@router.get(
    "",
    response_model=answers.RequestPage,
    summary="Payment requests sent in a date range (default: the last 30 days)",
)
def get_requests(
    caller: AdminDep,
    ctx: ComponentsDep,
    from_: FromQ = None,
    to: ToQ = None,
    status: Literal["requested", "completed", "cancelled"] | None = None,
    patient_id: Id | None = None,
    limit: LimitQ = 50,
    cursor_: CursorQ = None,
) -> dict[str, Any]:
    practice_id = practice_of(caller)
    return dated_page(
        ctx,
        practice_id,
        date_range(ctx, practice_id, from_, to),
        cursor_,
        limit,
        query=list_requests,
        out=row_out,
        order=["sent_at", "id"],
        status=status,
        patient_id=patient_id,
    )


@router.get(
    "/{request_id}",
    response_model=answers.PaymentRequestWithHistory,
    responses=problems(404),
    summary="One request with its history",
)
def get_request(request_id: Id, caller: AdminDep, ctx: ComponentsDep) -> dict[str, Any]:
    request = ctx.get(PaymentRequest, request_id, practice_of(caller))
    return request_out(ctx, request, with_history=True)


@router.post(
    "/{request_id}/cancel",
    response_model=answers.PaymentRequest,
    responses=problems(404, 409),
    summary="Cancel a request by hand",
)
def cancel(request_id: Id, caller: AdminDep, ctx: ComponentsDep, key: KeyDep) -> dict[str, Any]:
    request = uc.cancel_request(
        ctx, practice_id=practice_of(caller), request_id=request_id, actor=caller.actor
    )
    return request_out(ctx, request)
