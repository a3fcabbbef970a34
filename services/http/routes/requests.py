from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from services.app import answers
from services.app import request_views as views
from services.app.bounds import Id
from services.app.inputs import PaymentRequestIn
from services.app.practices import practice_of
from services.http.deps import AdminDep, ComponentsDep, KeyDep
from services.http.openapi import problems
from services.http.ranges import CursorQ, FromQ, LimitQ, ToQ

router = APIRouter(prefix="/v1/payment-requests", tags=["payment requests"])


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
    return views.send_answer(ctx, caller, body, key)


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
    return views.requests_page(
        ctx, practice_of(caller), from_, to, status, patient_id, limit, cursor_
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
    return views.one_request(ctx, practice_of(caller), request_id)


@router.post(
    "/{request_id}/cancel",
    response_model=answers.PaymentRequest,
    responses=problems(404, 409),
    summary="Cancel a request by hand",
)
def cancel(
    request_id: Id, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.PaymentRequest:
    return views.request_out(ctx, views.cancel(ctx, caller, request_id))
