from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response

from domain.errors import NotFound
from domain.payments import Payment
from domain.practices import Practice
from services.app import answers
from services.app import payment_commands as commands
from services.app import payment_views as views
from services.app.bounds import Id
from services.app.inputs import AssociateIn, PaymentIn, ReceiptSendIn, RefundIn
from services.app.practices import practice_of
from services.http.deps import AdminDep, ComponentsDep, KeyDep
from services.http.openapi import problems
from services.receipt_pdf import payment_receipt_pdf, pdf_headers

router = APIRouter(prefix="/v1/payments", tags=["payments"])


@router.post(
    "",
    response_model=answers.Payment,
    status_code=201,
    summary="Collect a payment (terminal or virtual terminal); approved or declined",
)
def collect(body: PaymentIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep) -> answers.Payment:
    return views.collect(ctx, caller, body, key)


@router.get(
    "/{payment_id}",
    response_model=answers.PaymentWithHistory,
    responses=problems(404),
    summary="One payment with its refunds, settlement and history",
)
def get_payment(payment_id: Id, caller: AdminDep, ctx: ComponentsDep) -> answers.PaymentWithHistory:
    return views.one_payment(ctx, practice_of(caller), payment_id)


@router.post(
    "/{payment_id}/refund",
    response_model=answers.Reversal,
    responses=problems(404, 409),
    summary="Void if not yet processed, refund (full or amount) if processed",
)
def refund(
    payment_id: Id,
    caller: AdminDep,
    ctx: ComponentsDep,
    key: KeyDep,
    body: RefundIn | None = Body(None),
) -> answers.Reversal:
    reversal = commands.refund(ctx, caller, payment_id, body, key)
    return answers.Reversal(
        kind=reversal.kind.value,
        amount=reversal.amount,
        refund_id=str(reversal.refund_id) if reversal.refund_id else None,
        payment=answers.payment_out(ctx, reversal.payment),
    )


@router.get(
    "/{payment_id}/receipt",
    response_model=answers.Receipt,
    responses=problems(404),
    summary="The payment's receipt, with its refunds",
)
def receipt(payment_id: Id, caller: AdminDep, ctx: ComponentsDep) -> answers.Receipt:
    return answers.receipt_out(ctx, ctx.get(Payment, payment_id, practice_of(caller)))


PDF_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The receipt as a one-page PDF (Letter), a download",
        "content": {
            "application/pdf": {
                # one uncompressed page of text: a few kilobytes, never a megabyte
                "schema": {"type": "string", "format": "binary", "maxLength": 1_048_576}
            }
        },
    }
}


@router.get(
    "/{payment_id}/receipt.pdf",
    response_class=Response,
    responses={**PDF_ANSWER, **problems(404)},
    summary="The payment's receipt (or one refund's) as a PDF to keep or print",
)
def receipt_pdf(
    payment_id: Id,
    caller: AdminDep,
    ctx: ComponentsDep,
    refund_id: Annotated[
        Id | None, Query(description="a refund of the payment: its refund receipt")
    ] = None,
) -> Response:
    payment = ctx.get(Payment, payment_id, practice_of(caller))
    practice = ctx.get(Practice, payment.practice_id, payment.practice_id)
    made = payment_receipt_pdf(
        answers.receipt_out(ctx, payment).model_dump(mode="json", by_alias=True),
        str(refund_id) if refund_id else None,
        practice.timezone,
    )
    if made is None:
        raise NotFound(f"this payment has no refund {refund_id}")
    pdf, name = made
    return Response(pdf, media_type="application/pdf", headers=pdf_headers(name))


@router.post(
    "/{payment_id}/receipt/send",
    response_model=answers.ReceiptSent,
    responses=problems(404, 502),
    summary="Email or text a copy of the payment's (or one refund's) receipt",
)
def send_receipt(
    payment_id: Id, body: ReceiptSendIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.ReceiptSent:
    payment = commands.send_receipt(ctx, caller, payment_id, body)
    return answers.ReceiptSent(
        sent=True,
        channel="sms" if body.phone is not None else "email",
        email=body.email,
        phone=body.phone,
        payment_id=str(payment.id),
        refund_id=str(body.refund_id) if body.refund_id else None,
    )


@router.get(
    "/{payment_id}/ledger-entry",
    response_model=answers.LedgerEntry,
    responses=problems(404),
    summary="What to type into the PMS (Post to Ledger)",
)
def ledger_entry(payment_id: Id, caller: AdminDep, ctx: ComponentsDep) -> answers.LedgerEntry:
    return views.ledger_entry(ctx, practice_of(caller), payment_id)


@router.post(
    "/{payment_id}/associate",
    response_model=answers.Payment,
    responses=problems(404, 409),
    summary="Mark as associated (recorded in the PMS)",
)
def associate(
    payment_id: Id, body: AssociateIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.Payment:
    payment = commands.associate(ctx, caller, payment_id, body)
    return answers.payment_out(ctx, payment)


@router.post(
    "/{payment_id}/writeback/retry",
    response_model=answers.WritebackRetried,
    responses=problems(404),
    summary="Try a failed PMS writeback of this payment (and its refunds) again",
)
def retry_writeback(
    payment_id: Id, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.WritebackRetried:
    payment, retried = commands.retry_writeback(ctx, caller, payment_id)
    return answers.WritebackRetried(retried=retried, payment=answers.payment_out(ctx, payment))
