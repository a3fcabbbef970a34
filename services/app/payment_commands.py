"""The payment use cases as the API and the pages are asked for them: a request's model in
(services/app/inputs.py), checked and turned into the use case's arguments, the use case's
result out. The API answers the result as JSON, a page as HTML."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from adapters.idempotency_keys import key_is_new
from adapters.processor.port import CardInput
from domain.errors import InvalidValue
from domain.payments import AssociationSource, Method, Payment
from domain.practices import Practice
from services.app import payments as uc
from services.app.inputs import AssociateIn, PaymentIn, ReceiptSendIn, RefundIn
from services.app.practices import Caller, practice_of
from services.app.writeback_status import writes_back_automatically
from services.context import Components


@dataclass(frozen=True)
class Collected:
    """A payment taken, and whether it was made with no writeback entry (made by this
    request, for a practice that does not write back automatically)."""

    payment: Payment
    no_writeback: bool


def collect(ctx: Components, caller: Caller, body: PaymentIn, key: str | None) -> Collected:
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
    return Collected(payment, none_made)


def refund(
    ctx: Components, caller: Caller, payment_id: UUID, body: RefundIn | None, key: str | None
) -> uc.Reversal:
    return uc.refund_payment(
        ctx,
        practice_id=practice_of(caller),
        payment_id=payment_id,
        amount=body.amount if body else None,
        actor=caller.actor,
        key=key,
        reason=body.reason if body else None,
        note=(body.note or "").strip() or None if body else None,
    )


def send_receipt(ctx: Components, caller: Caller, payment_id: UUID, body: ReceiptSendIn) -> Payment:
    """Email or text a copy of the receipt, to an address or number typed twice."""
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
    return uc.send_receipt(
        ctx,
        practice_id=practice_of(caller),
        payment_id=payment_id,
        email=body.email,
        phone=body.phone,
        refund_id=body.refund_id,
        actor=caller.actor,
    )


def digits(phone: str) -> str:
    return "".join(c for c in phone if c.isdigit())


def associate(ctx: Components, caller: Caller, payment_id: UUID, body: AssociateIn) -> Payment:
    return uc.associate_payment(
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


def retry_writeback(ctx: Components, caller: Caller, payment_id: UUID) -> tuple[Payment, int]:
    """Try a failed PMS writeback of the payment (and its refunds) again: the payment, and
    how many entries were retried."""
    payment = ctx.get(Payment, payment_id, practice_of(caller))
    return payment, ctx.journal.retry_failed(str(payment.practice_id), str(payment.id))
