"""Payment requests as the API and the pages show and send them: a request with its
messages (and history), the list's rows, and the send and cancel use cases asked with a
request's model (services/app/inputs.py)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal
from uuid import UUID

from domain.requests import Channel, PaymentRequest
from projections.base import iso
from projections.feed import read_history
from projections.requests import PaymentRequestRow, list_requests
from services.app import answers
from services.app import requests as uc
from services.app.bounds import HISTORY
from services.app.date_ranges import date_range, dated_page
from services.app.inputs import PaymentRequestIn
from services.app.practices import Caller, practice_of
from services.context import Components


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


def requests_page(
    ctx: Components,
    practice_id: UUID,
    from_: date | None,
    to: date | None,
    status: Literal["requested", "completed", "cancelled"] | None,
    patient_id: UUID | None,
    limit: int,
    cursor_: str | None,
) -> answers.RequestPage:
    """Payment requests sent in a date range (default: the last 30 days), newest first."""
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


def one_request(
    ctx: Components, practice_id: UUID, request_id: UUID
) -> answers.PaymentRequestWithHistory:
    """One request with its history."""
    return request_with_history(ctx, ctx.get(PaymentRequest, request_id, practice_id))


def send(
    ctx: Components, caller: Caller, body: PaymentRequestIn, key: str | None
) -> PaymentRequest:
    return uc.send_request(
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


def cancel(ctx: Components, caller: Caller, request_id: UUID) -> PaymentRequest:
    return uc.cancel_request(
        ctx, practice_id=practice_of(caller), request_id=request_id, actor=caller.actor
    )


def send_answer(
    ctx: Components, caller: Caller, body: PaymentRequestIn, key: str | None
) -> answers.PaymentRequest:
    """Send a payment request by text or email: the request sent, as answered."""
    return request_out(ctx, send(ctx, caller, body, key))
