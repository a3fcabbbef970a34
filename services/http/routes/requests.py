from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from domain.requests import Channel, PaymentRequest
from projections.base import iso
from projections.feed import read_history
from projections.requests import PaymentRequestRow, list_requests
from services.app import requests as uc
from services.context import Components
from services.http import answers
from services.http.bounds import HISTORY, Id
from services.http.deps import AdminDep, ComponentsDep, KeyDep, practice_of
from services.http.openapi import problems
from services.http.ranges import CursorQ, FromQ, LimitQ, ToQ, date_range, dated_page
from services.http.schemas import PaymentRequestIn

router = APIRouter(prefix="/v1/payment-requests", tags=["payment requests"])


def request_out(ctx: Components, r: PaymentRequest) -> answers.PaymentRequest:
    return answers.PaymentRequest(**request_fields(ctx, r))


def request_with_history(ctx: Components, r: PaymentRequest) -> answers.PaymentRequestWithHistory:
    return answers.PaymentRequestWithHistory(
        **request_fields(ctx, r),
        history=[
            answers.Event.model_validate(item)
            for item in ctx.reads(read_history, r.practice_id, r.id, 0, HISTORY)
        ],
    )


def request_fields(ctx: Components, r: PaymentRequest) -> dict[str, Any]:
    """The fields of a PaymentRequest answer, shared by the answers that extend it."""
    return {
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
            answers.RequestMessage(
                number=m.number,
                kind="reminder" if m.number else "request",
                status=m.status,
                attempts=m.attempts,
                last_error=m.last_error,
                retry_at=iso(m.retry_at) if m.retry_at else None,
            )
            for m in sorted(r.messages.values(), key=lambda m: m.number)
        ],
    }


def row_out(row: PaymentRequestRow) -> answers.RequestRow:
    return answers.RequestRow(
        id=row["id"],
        patient_id=row["patient_id"],
        patient_name=row["patient_name"],
        date=row["requested_date"],
        sent_at=row["sent_at"],
        amount=int(row["amount"]),
        paid_amount=int(row["paid_amount"]) if row["paid_amount"] is not None else None,
        status=row["status"],
        cancel_reason=row["cancel_reason"],
        channel=row["channel"],
        expires_at=row["expires_at"],
        payment_id=row["payment_id"],
        reminders_sent=int(row["reminders_sent"]),
        delivery_status=row["delivery_status"],
    )


@router.post(
    "",
    response_model=answers.PaymentRequest,
    responses=problems(409, 502),
    status_code=201,
    summary="Send a payment request by text or email",
)
def send(
    body: PaymentRequestIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.PaymentRequest:
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
) -> answers.RequestPage:
    practice_id = practice_of(caller)
    found = dated_page(
        ctx,
        practice_id,
        date_range(ctx, practice_id, from_, to),
        cursor_,
        limit,
        query=list_requests,
        out=row_out,
        order=lambda row: [row["sent_at"], row["id"]],
        status=status,
        patient_id=patient_id,
    )
    return answers.RequestPage(
        items=found.items, next_cursor=found.next_cursor, from_=found.date_from, to=found.date_to
    )


@router.get(
    "/{request_id}",
    response_model=answers.PaymentRequestWithHistory,
    responses=problems(404),
    summary="One request with its history",
)
def get_request(
    request_id: Id, caller: AdminDep, ctx: ComponentsDep
) -> answers.PaymentRequestWithHistory:
    request = ctx.get(PaymentRequest, request_id, practice_of(caller))
    return request_with_history(ctx, request)


@router.post(
    "/{request_id}/cancel",
    response_model=answers.PaymentRequest,
    responses=problems(404, 409),
    summary="Cancel a request by hand",
)
def cancel(
    request_id: Id, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.PaymentRequest:
    request = uc.cancel_request(
        ctx, practice_id=practice_of(caller), request_id=request_id, actor=caller.actor
    )
    return request_out(ctx, request)
