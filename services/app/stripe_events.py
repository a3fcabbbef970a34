"""Stripe's webhooks: verified, recorded once by event id, then applied apart from the request.

`receive_event` checks the `Stripe-Signature` header against the webhook secret
(`stripe.Webhook.construct_event`, 5 minutes of tolerance) and records the event in
`stripe_events` unless its id is there already (a replayed webhook changes nothing).
`apply_pending_events` applies what was recorded: it runs after the answer has gone
and at each scheduler tick, so the webhook is answered at once and an event left by a
crash is applied later. Unknown event types are recorded, logged and ignored.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

import stripe

from adapters.processor.port import Capability
from domain.errors import InvalidValue, NotFound
from domain.payments import Payment, Status
from projections.base import iso
from projections.transactions import payment_of_processor
from services.app import payouts
from services.app.intents import requests_reopened
from services.app.practices import account_of
from services.context import (
    Aggregates,
    Configured,
    Reading,
    StripeEventsKept,
    Timed,
    retry_on_conflict,
)


class Needs(payouts.Needs, Aggregates, Reading, Timed, Configured, StripeEventsKept, Protocol):
    """The parts these use cases are given (services/context.py)."""


log = logging.getLogger("payledger.stripe.events")

#: how old a signed webhook may be, in seconds (Stripe's documented default)
TOLERANCE = 300
ACTOR = "processor:stripe"
REFERENCE = "payledger_reference"

#: events that confirm what the ledger itself asked of Stripe: nothing to change
CONFIRMATIONS = {
    "payment_intent.created",
    "payment_intent.amount_capturable_updated",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.succeeded",
    "charge.captured",
    "charge.refunded",
    "charge.failed",
}
#: events recorded for the reader handling (the reader's result is polled), not acted on;
#: a dispute's funds events repeat what its created and closed events say
RECORDED = {
    "terminal.reader.action_succeeded",
    "terminal.reader.action_failed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
}
#: a dispute's life: each records what it says on the disputed payment
DISPUTE_EVENTS = {"charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"}
#: a refund's changes after it was made: a failed one counts no more
REFUND_EVENTS = {"refund.failed", "refund.updated", "charge.refund.updated"}
#: who records a dispute on a payment
DISPUTE_ACTOR = "system:stripe"


class WebhookRefused(InvalidValue):
    code = "webhook-signature-invalid"


class WebhooksOff(NotFound):
    code = "webhooks-off"


def receive_event(ctx: Needs, payload: bytes, signature: str | None) -> tuple[str, bool]:
    """Verify and record one webhook; (event id, whether it was new)."""
    secret = ctx.settings.stripe_webhook_secret
    if ctx.settings.processor != "stripe" or not secret:
        raise WebhooksOff("Stripe webhooks are not configured on this service")
    try:
        event = stripe.Webhook.construct_event(payload, signature or "", secret, TOLERANCE)
    except stripe.SignatureVerificationError:
        raise WebhookRefused(
            "the Stripe-Signature header does not match the payload, or is older than 5 "
            "minutes: nothing was recorded",
            field="Stripe-Signature",
        ) from None
    except ValueError:
        raise WebhookRefused("the payload is not a Stripe event (JSON)", field="body") from None
    event_id, kind = str(event.id), str(event.type)
    new = ctx.stripe_events.record(
        event_id,
        kind,
        getattr(event, "account", None),
        int(event.created or 0),
        iso(ctx.clock.now()),
        payload.decode("utf-8"),
    )
    return event_id, new


def apply_pending_events(ctx: Needs, limit: int = 100) -> int:
    """Apply the recorded events not applied yet, oldest first; returns how many."""
    received = ctx.stripe_events.pending(limit)
    for event in received:
        try:
            outcome = apply_event(ctx, event.type, event.account, json.loads(event.payload))
        except payouts.AccountHeldTwice as error:
            log.error("stripe event %s (%s) not applied: %s", event.id, event.type, error)
            continue  # left pending until the account belongs to one practice
        except Exception as error:
            log.exception("stripe event %s (%s) could not be applied", event.id, event.type)
            outcome = f"failed: {type(error).__name__}"
            if not isinstance(error, NotFound | InvalidValue):
                continue  # tried again at the next tick
        ctx.stripe_events.applied(event.id, iso(ctx.clock.now()), outcome)
    return len(received)


def apply_event(ctx: Needs, kind: str, account: str | None, event: dict[str, Any]) -> str:
    if kind == "payment_intent.canceled":
        return intent_canceled(ctx, account, event["data"]["object"])
    if kind == "payout.paid":
        return payouts.reconcile_payout(ctx, account, event["data"]["object"])
    if kind == "payout.failed":
        return payouts.payout_failed(ctx, account, event["data"]["object"])
    if kind in REFUND_EVENTS:
        return refund_event(ctx, account, str(event["id"]), event["data"]["object"])
    if kind in DISPUTE_EVENTS:
        return dispute_event(ctx, account, str(event["id"]), event["data"]["object"])
    if kind in CONFIRMATIONS:
        return "confirmation"
    if kind in RECORDED:
        return "recorded"
    log.info("stripe event type %s is not used; ignored", kind)
    return "ignored"


def intent_canceled(ctx: Needs, account: str | None, intent: dict[str, Any]) -> str:
    """An authorisation cancelled at Stripe (from its dashboard, or expired) before the
    batch closed: the payment will not be captured, so it leaves the batch, as a refused
    capture does. A void made here is already recorded: nothing changes."""
    reference = (intent.get("metadata") or {}).get(REFERENCE)
    if not reference:
        return "not a ledger payment"
    payment = ctx.find(Payment, UUID(reference))
    if payment is None or account_of(ctx, payment.practice_id) != account:
        return "no such payment of this account"
    reason = intent.get("cancellation_reason") or "canceled"

    def attempt() -> str:
        current = ctx.get(Payment, payment.id, payment.practice_id)
        if current.status != Status.APPROVED:
            return f"already {current.status.value}"
        current.fail_capture(
            reason=f"the authorisation was cancelled at Stripe ({reason})",
            at=ctx.clock.now(current.practice_id),
            actor=ACTOR,
        )
        ctx.save(current, *requests_reopened(ctx, current))  # no money moved: owed again
        return "payment left the batch"

    return retry_on_conflict(attempt)


def refund_event(ctx: Needs, account: str | None, event_id: str, refund: dict[str, Any]) -> str:
    """A refund that failed after it was made (the card's bank refused it): the payment
    records it (`RefundFailed`), so the refund counts no more and says why. The refund is
    read as Stripe holds it now, since webhooks arrive in any order."""
    reference = (refund.get("metadata") or {}).get(REFERENCE)
    practice = payouts.practice_of_account(ctx, account)
    if not reference or practice is None or not ctx.processor.can(Capability.REFUND_STATUS):
        return "not a ledger refund"
    current = ctx.processor.refund_now(account, str(refund["id"]))
    if current.get("status") != "failed":
        return f"refund {current.get('status')}"
    payment_id = ctx.reads(
        payment_of_processor, practice.id, str(current.get("payment_intent") or "")
    )
    if payment_id is None:
        return "no such payment of this account"
    reason = str(current.get("failure_reason") or "failed").replace("_", " ")
    refund_id = UUID(reference)

    def decide(payment: Payment) -> str:
        if all(r.id != refund_id for r in payment.refunds):
            # not recorded as made: its intent's outcome is read back by the reconciler
            return "refund not recorded yet"
        changed = payment.fail_refund(
            refund_id=refund_id,
            reason=f"the refund failed at Stripe: {reason}",
            processor_event_id=event_id,
            at=ctx.clock.now(practice.id),
            actor=ACTOR,
        )
        return "refund failed" if changed else "recorded already"

    return ctx.change(Payment, payment_id, practice.id, decide)


def dispute_event(ctx: Needs, account: str | None, event_id: str, dispute: dict[str, Any]) -> str:
    """A dispute of a ledger payment (found by its PaymentIntent in the practice of the
    account), recorded on the payment once per Stripe event id."""
    practice = payouts.practice_of_account(ctx, account)
    if practice is None:
        return "no practice with this account"
    payment_id = ctx.reads(
        payment_of_processor, practice.id, str(dispute.get("payment_intent") or "")
    )
    if payment_id is None:
        return "no such payment of this account"
    due = (dispute.get("evidence_details") or {}).get("due_by")

    def decide(payment: Payment) -> str:
        changed = payment.record_dispute(
            dispute_id=str(dispute["id"]),
            reason=str(dispute.get("reason") or "general"),
            amount=int(dispute["amount"]),
            evidence_due_by=datetime.fromtimestamp(int(due), UTC) if due else None,
            status=str(dispute["status"]),
            processor_event_id=event_id,
            at=ctx.clock.now(practice.id),
            actor=DISPUTE_ACTOR,
        )
        return f"dispute {dispute['status']}" if changed else "dispute unchanged"

    return ctx.change(Payment, payment_id, practice.id, decide)
