from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from domain.payments import Payment
from services.app import payment_commands as commands
from services.app.bounds import Id
from services.app.inputs import AssociateIn, PaymentIn, ReceiptSendIn, RefundIn
from services.app.practices import practice_of
from services.http import answers
from services.http.deps import AdminDep, ComponentsDep, KeyDep
from services.http.openapi import problems
from services.http.representations import ledger_entry_out, payment_out, receipt_out

router = APIRouter(prefix="/v1/payments", tags=["payments"])


@router.post(
    "",
    response_model=answers.Payment,
    status_code=201,
    summary="Collect a payment (terminal or virtual terminal); approved or declined",
)
def collect(body: PaymentIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep) -> dict[str, Any]:
    made = commands.collect(ctx, caller, body, key)
    return payment_out(ctx, made.payment, writeback_attempts=[] if made.no_writeback else None)


@router.get(
    "/{payment_id}",
    response_model=answers.PaymentWithHistory,
    responses=problems(404),
    summary="One payment with its refunds, settlement and history",
)
def get_payment(payment_id: Id, caller: AdminDep, ctx: ComponentsDep) -> dict[str, Any]:
    payment = ctx.get(Payment, payment_id, practice_of(caller))
    return payment_out(ctx, payment, with_history=True)


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
) -> dict[str, Any]:
    reversal = commands.refund(ctx, caller, payment_id, body, key)
    return {
        "kind": reversal.kind.value,
        "amount": reversal.amount,
        "refund_id": str(reversal.refund_id) if reversal.refund_id else None,
        "payment": payment_out(ctx, reversal.payment),
    }


@router.get(
    "/{payment_id}/receipt",
    response_model=answers.Receipt,
    responses=problems(404),
    summary="The payment's receipt, with its refunds",
)
def receipt(payment_id: Id, caller: AdminDep, ctx: ComponentsDep) -> dict[str, Any]:
    return receipt_out(ctx, ctx.get(Payment, payment_id, practice_of(caller)))


@router.post(
    "/{payment_id}/receipt/send",
    response_model=answers.ReceiptSent,
    responses=problems(404, 502),
    summary="Email or text a copy of the payment's (or one refund's) receipt",
)
def send_receipt(
    payment_id: Id, body: ReceiptSendIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> dict[str, Any]:
    payment = commands.send_receipt(ctx, caller, payment_id, body)
    return {
        "sent": True,
        "channel": "sms" if body.phone is not None else "email",
        "email": body.email,
        "phone": body.phone,
        "payment_id": str(payment.id),
        "refund_id": str(body.refund_id) if body.refund_id else None,
    }


@router.get(
    "/{payment_id}/ledger-entry",
    response_model=answers.LedgerEntry,
    responses=problems(404),
    summary="What to type into the PMS (Post to Ledger)",
)
def ledger_entry(payment_id: Id, caller: AdminDep, ctx: ComponentsDep) -> dict[str, Any]:
    return ledger_entry_out(ctx, ctx.get(Payment, payment_id, practice_of(caller)))


@router.post(
    "/{payment_id}/associate",
    response_model=answers.Payment,
    responses=problems(404, 409),
    summary="Mark as associated (recorded in the PMS)",
)
def associate(
    payment_id: Id, body: AssociateIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> dict[str, Any]:
    payment = commands.associate(ctx, caller, payment_id, body)
    return payment_out(ctx, payment)


@router.post(
    "/{payment_id}/writeback/retry",
    response_model=answers.WritebackRetried,
    responses=problems(404),
    summary="Try a failed PMS writeback of this payment (and its refunds) again",
)
def retry_writeback(
    payment_id: Id, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> dict[str, Any]:
    payment, retried = commands.retry_writeback(ctx, caller, payment_id)
    return {"retried": retried, "payment": payment_out(ctx, payment)}
