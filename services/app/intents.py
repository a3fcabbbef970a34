"""The protocol of every effect on the processor: intent, one call, an outcome always.

1. **Intent first.** The use case records the intent on the payment (`VoidRequested`,
   `RefundRequested`, `CaptureRequested`) under an id derived from the ledger's own ids,
   inside a retry on conflict that decides and saves only.
2. **One call, outside any retry.** `carry_out` makes the call once, under the intent's
   id as the processor's idempotency reference (adapters/effects.py refuses a call made
   inside a retry).
3. **An outcome always.** Succeeded (`Voided`, `Refunded`), refused (`VoidRefused`,
   `RefundRefused`: final, with the processor's reason, releasing what the intent held)
   or unknown (`VoidOutcomeUnknown`, `RefundOutcomeUnknown`: the answer was lost). An
   unknown outcome is read back (`CardProcessor.look_up`, a consistent read) before
   anything is sent again: by a retry of the same request (same key), or by the
   reconciler (services/app/reconcile.py) in the practice's due work.

A refund read back absent is never sent again by the reconciler: the person may have
refunded again with a new key meanwhile, so sending the old intent could refund twice; it
ends refused ("nothing moved") and frees its amount. A void read back absent is sent
again: cancelling an authorisation twice moves no money. Past the processor's key memory
(`key_memory`, 24 hours on Stripe) nothing is sent again under a key; an intent read back
absent then ends refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from adapters.processor.port import Effect, LookedUp, OutcomeUnknown
from domain.charges import ChargeAttempt
from domain.errors import PaymentsError
from domain.patients import Patient
from domain.payments import Payment, Status
from domain.requests import PaymentRequest
from services.app.practices import account_of
from services.context import Aggregates, Charging, Reading, Timed, retry_on_conflict

log = logging.getLogger("payledger.intents")

#: the actor of outcomes the reconciler records
RECONCILER = "system:reconciler"
#: the actor of a request reopened because its payment was voided
REOPENER = "system:reopen"
#: what a refused intent says when the processor has no record of it
NOT_MADE = "the processor has no record of it: no money moved"


class Needs(Aggregates, Reading, Timed, Charging, Protocol):
    """The parts these use cases are given (services/context.py)."""


@dataclass(frozen=True)
class IntentKind:
    """How one kind of intent is sent, found open, and ended."""

    effect: Effect
    #: the processor's call; returns the processor's id of what it did
    send: Callable[[Needs, Payment, UUID, str | None], str]
    is_open: Callable[[Payment, UUID], bool]
    succeeded: Callable[[Payment, UUID, str, datetime], None]
    refused: Callable[[Payment, UUID, str, datetime, str], None]
    unknown: Callable[[Payment, UUID, str, datetime, str], None]
    #: whether an intent read back absent is sent again by the reconciler
    resend_when_absent: bool


def _send_refund(ctx: Needs, payment: Payment, intent_id: UUID, account: str | None) -> str:
    return ctx.processor.refund(
        transaction_id=payment.transaction_id or "",
        amount=payment.pending_refunds[intent_id].amount,
        reference=intent_id,
        account=account,
    )


def _send_void(ctx: Needs, payment: Payment, intent_id: UUID, account: str | None) -> str:
    return ctx.processor.void(
        transaction_id=payment.transaction_id or "", reference=intent_id, account=account
    )


REFUND = IntentKind(
    effect=Effect.REFUND,
    send=_send_refund,
    is_open=lambda p, i: i in p.pending_refunds,
    succeeded=lambda p, i, pid, at: p.complete_refund(refund_id=i, processor_refund_id=pid, at=at),
    refused=lambda p, i, why, at, actor: p.refuse_refund(
        refund_id=i, reason=why, at=at, actor=actor
    ),
    unknown=lambda p, i, error, at, actor: p.refund_unknown(
        refund_id=i, error=error, at=at, actor=actor
    ),
    resend_when_absent=False,
)

VOID = IntentKind(
    effect=Effect.VOID,
    send=_send_void,
    is_open=lambda p, i: p.pending_void is not None and p.pending_void.id == i,
    succeeded=lambda p, i, pid, at: p.complete_void(void_id=i, processor_void_id=pid, at=at),
    refused=lambda p, i, why, at, actor: p.refuse_void(void_id=i, reason=why, at=at, actor=actor),
    unknown=lambda p, i, error, at, actor: p.void_unknown(
        void_id=i, error=error, at=at, actor=actor
    ),
    resend_when_absent=True,
)


def carry_out(
    ctx: Needs,
    kind: IntentKind,
    practice_id: UUID,
    payment_id: UUID,
    intent_id: UUID,
    *,
    actor: str,
    read_first: bool,
    resend: bool = True,
) -> Payment:
    """Make the intent's one call (after reading back first when an earlier call may
    have reached the processor) and record its outcome. Raises the processor's refusal
    after recording it, and OutcomeUnknown after recording an unknown outcome."""
    payment = ctx.get(Payment, payment_id, practice_id)
    if not kind.is_open(payment, intent_id):
        return payment
    account = account_of(ctx, practice_id)
    if read_first:
        try:
            looked = ctx.processor.look_up(
                effect=kind.effect,
                reference=intent_id,
                transaction_id=payment.transaction_id or "",
                account=account,
            )
        except PaymentsError as error:
            raise _unknown(ctx, kind, practice_id, payment_id, intent_id, actor, error) from None
        if looked.state != "absent" or not (resend and within_key_memory(ctx, payment, intent_id)):
            return _record_looked_up(ctx, kind, practice_id, payment_id, intent_id, actor, looked)
    try:
        processor_id = kind.send(ctx, payment, intent_id, account)
    except OutcomeUnknown as error:
        raise _unknown(ctx, kind, practice_id, payment_id, intent_id, actor, error) from None
    except PaymentsError as error:
        _record(ctx, kind, practice_id, payment_id, intent_id, "refused", error.detail, actor)
        raise
    except Exception as error:  # the call's fate is not known: read back before any resend
        raise _unknown(ctx, kind, practice_id, payment_id, intent_id, actor, error) from error
    return _record(ctx, kind, practice_id, payment_id, intent_id, "succeeded", processor_id, actor)


def requests_reopened(ctx: Needs, payment: Payment) -> list[PaymentRequest]:
    """A voided pay-link payment no longer pays its request: the request, reopened for
    what is owed, to be saved with the payment's `Voided` (nothing for other payments)."""
    if payment.request_id is None or payment.status != Status.VOIDED:
        return []
    request = ctx.get(PaymentRequest, payment.request_id, payment.practice_id)
    reason = (
        f"the payment was not captured ({payment.capture_failure})"
        if payment.capture_failure
        else "the payment was voided"
    )
    at = payment.voided_at or ctx.clock.now(payment.practice_id)
    latest = ctx.get(Patient, request.patient_id, payment.practice_id).latest_request_id
    changed = request.reopen(
        payment_id=payment.id, reason=reason, at=at, actor=REOPENER, superseded_by=latest
    )
    return [request] if changed else []


def within_key_memory(ctx: Needs, payment: Payment, intent_id: UUID) -> bool:
    """Whether the processor still remembers the intent's key (so a call sent again under
    it cannot act twice)."""
    memory = ctx.processor.key_memory
    if memory is None:
        return True
    asked = requested_at(payment, intent_id)
    return asked is None or ctx.clock.now(payment.practice_id) - asked < memory


def requested_at(payment: Payment, intent_id: UUID) -> datetime | None:
    pending = payment.pending_refunds.get(intent_id)
    if pending is not None:
        return pending.at
    if payment.pending_void is not None and payment.pending_void.id == intent_id:
        return payment.pending_void.at
    return None


def _record_looked_up(
    ctx: Needs,
    kind: IntentKind,
    practice_id: UUID,
    payment_id: UUID,
    intent_id: UUID,
    actor: str,
    looked: LookedUp,
) -> Payment:
    if looked.state == "succeeded" and looked.failed_after and kind.effect == Effect.REFUND:
        return _record_failed_after(
            ctx, practice_id, payment_id, intent_id, actor, looked.processor_id or "", looked
        )
    if looked.state == "succeeded":
        return _record(
            ctx,
            kind,
            practice_id,
            payment_id,
            intent_id,
            "succeeded",
            looked.processor_id or "",
            actor,
        )
    reason = looked.reason or NOT_MADE
    return _record(ctx, kind, practice_id, payment_id, intent_id, "refused", reason, actor)


def _record_failed_after(
    ctx: Needs,
    practice_id: UUID,
    payment_id: UUID,
    intent_id: UUID,
    actor: str,
    processor_id: str,
    looked: LookedUp,
) -> Payment:
    """A refund read back as made and failed since (the card's bank refused it): it is
    recorded as made, then as failed, in one save. Its money left the balance and came
    back (a `refund` and a `refund_failure` balance transaction), so it joins its batch
    and deposit like any refund that failed after it was made; recorded as refused, the
    payout's refund would be in no deposit. The processor's `refund.failed` may have come
    before the refund was recorded as made: nothing else records the failure."""

    def save() -> Payment:
        payment = ctx.get(Payment, payment_id, practice_id)
        if not REFUND.is_open(payment, intent_id):
            return payment
        at = ctx.clock.now(practice_id)
        REFUND.succeeded(payment, intent_id, processor_id, at)
        payment.fail_refund(
            refund_id=intent_id,
            reason=looked.failed_after or "",
            processor_event_id=f"read-back:{processor_id}",
            at=at,
            actor=actor,
        )
        ctx.save(payment)
        return payment

    return retry_on_conflict(save)


def _unknown(
    ctx: Needs,
    kind: IntentKind,
    practice_id: UUID,
    payment_id: UUID,
    intent_id: UUID,
    actor: str,
    error: BaseException,
) -> OutcomeUnknown:
    detail = error.detail if isinstance(error, PaymentsError) else f"{type(error).__name__}"
    log.warning(
        "%s %s of payment %s: outcome unknown (%s)", kind.effect, intent_id, payment_id, detail
    )
    _record(ctx, kind, practice_id, payment_id, intent_id, "unknown", detail, actor)
    return OutcomeUnknown(
        f"the processor's answer to this {kind.effect} was lost ({detail}); the {kind.effect} "
        "is recorded as under way: the ledger reads it back from the processor and records "
        "how it ended (shown on the payment). Do not ask again with a new key; the same "
        "request with the same Idempotency-Key is safe."
    )


def _record(
    ctx: Needs,
    kind: IntentKind,
    practice_id: UUID,
    payment_id: UUID,
    intent_id: UUID,
    outcome: str,
    value: str,
    actor: str,
) -> Payment:
    """Save the outcome (a retry that only saves); nothing when another recorded it first."""

    def save() -> Payment:
        payment = ctx.get(Payment, payment_id, practice_id)
        if not kind.is_open(payment, intent_id):
            return payment
        at = ctx.clock.now(practice_id)
        if outcome == "succeeded":
            kind.succeeded(payment, intent_id, value, at)
        elif outcome == "refused":
            kind.refused(payment, intent_id, value, at, actor)
        else:
            kind.unknown(payment, intent_id, value, at, actor)
        ctx.save(payment, *requests_reopened(ctx, payment))
        return payment

    return retry_on_conflict(save)


def record_charge(
    ctx: Needs, practice_id: UUID, attempt_id: UUID, actor: str, outcome: str, detail: str
) -> bool:
    """Record how an authorisation's attempt went (refused, unknown; read back: absent,
    releasing, released); False when it stays unknown, or when the attempt had ended or
    its payment was recorded meanwhile (nothing then is recorded)."""

    def decide(attempt: ChargeAttempt) -> bool:
        if not attempt.is_open or ctx.find(Payment, attempt.payment_id) is not None:
            return False
        at = ctx.clock.now(practice_id)
        if outcome == "absent":
            attempt.not_made(at=at, actor=actor)
        elif outcome == "refused":
            attempt.refuse(reason=detail or "declined", at=at, actor=actor)
        elif outcome == "releasing":
            attempt.request_release(transaction_id=detail, at=at, actor=actor)
        elif outcome == "released":
            attempt.release(processor_void_id=detail, at=at, actor=actor)
        else:
            attempt.unknown(error=detail, at=at, actor=actor)
        return True

    return ctx.change(ChargeAttempt, attempt_id, practice_id, decide, show=False) and (
        outcome != "unknown"
    )
