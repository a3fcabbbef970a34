from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from adapters.idempotency_keys import key_is_new
from adapters.processor.port import CardInput
from domain.errors import InvalidValue
from domain.payments import AssociationSource, Method, Payment
from domain.practices import Practice
from services.app import payments as uc
from services.app.bounds import Id
from services.app.inputs import AssociateIn, PaymentIn, ReceiptSendIn, RefundIn
from services.app.practices import practice_of
from services.app.writeback_status import writes_back_automatically
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
    card = (
        CardInput(body.card.number, body.card.exp_month, body.card.exp_year, body.card.cvc)
        if body.card
        else None
    )
    if body.method == "terminal" and not body.terminal_id:
        raise InvalidValue(
            "a terminal payment needs the card reader it is taken on", field="terminal_id"
        )
    payment = uc.collect_payment(
        ctx,
        practice_id=practice_of(caller),
        amount=body.amount,
        method=Method(body.method),
        card=card,
        payment_method=body.payment_method,
        terminal_id=body.terminal_id,
        patient_id=body.patient_id,
        actor=caller.actor,
        key=key,
    )
    # a payment made by this request (its key is new) has a writeback entry only where
    # the practice writes back automatically: otherwise nothing to read
    practice = ctx.get(Practice, payment.practice_id, payment.practice_id)
    none_made = key_is_new() and not writes_back_automatically(
        practice.pms.value, practice.auto_writeback
    )
    return payment_out(ctx, payment, writeback_attempts=[] if none_made else None)


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
    reversal = uc.refund_payment(
        ctx,
        practice_id=practice_of(caller),
        payment_id=payment_id,
        amount=body.amount if body else None,
        actor=caller.actor,
        key=key,
        reason=body.reason if body else None,
        note=(body.note or "").strip() or None if body else None,
    )
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
    if (body.email is None) == (body.phone is None):
        raise InvalidValue(
            "give either an email address or a phone number to send the receipt to",
            field="email",
        )
    if body.email is not None and body.confirm_email is None:
        raise InvalidValue(
            "A confirmation is required: type the email address a second time",
            field="confirm_email",
        )
    if body.phone is not None and body.confirm_phone is None:
        raise InvalidValue(
            "A confirmation is required: type the mobile number a second time",
            field="confirm_phone",
        )
    if body.phone is not None and digits(body.phone) != digits(body.confirm_phone or ""):
        raise InvalidValue(
            "the phone number and its confirmation differ: check the number",
            field="confirm_phone",
        )
    if body.email is not None and body.email.lower() != (body.confirm_email or "").lower():
        raise InvalidValue(
            "the two email addresses differ: type the same address twice", field="confirm_email"
        )
    payment = uc.send_receipt(
        ctx,
        practice_id=practice_of(caller),
        payment_id=payment_id,
        email=body.email,
        phone=body.phone,
        refund_id=body.refund_id,
        actor=caller.actor,
    )
    return {
        "sent": True,
        "channel": "sms" if body.phone is not None else "email",
        "email": body.email,
        "phone": body.phone,
        "payment_id": str(payment.id),
        "refund_id": str(body.refund_id) if body.refund_id else None,
    }


def digits(phone: str) -> str:
    return "".join(c for c in phone if c.isdigit())


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
    payment = uc.associate_payment(
        ctx,
        practice_id=practice_of(caller),
        payment_id=payment_id,
        source=AssociationSource(body.source),
        pms_reference=body.pms_reference,
        actor=caller.actor,
        refund_id=body.refund_id,
        void=body.void,
        dispute=body.dispute,
    )
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
    payment = ctx.get(Payment, payment_id, practice_of(caller))
    retried = ctx.journal.retry_failed(str(payment.practice_id), str(payment.id))
    return {"retried": retried, "payment": payment_out(ctx, payment)}
