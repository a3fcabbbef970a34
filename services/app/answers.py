"""Response bodies: what each route answers, so the OpenAPI document states it.

Each answer is defined once, here: a model, and beside it the function that builds it
from what the use case or the view returned (a payment, a view's row). The routes
return these models as they are. A model forbids any field it does not declare, so an
answer that drifts from its declaration fails loudly instead of being trimmed. Ids and
instants are text as the API writes them (ids as UUIDs, instants ISO 8601 UTC, dates
`YYYY-MM-DD`). Read-side answers, not to be confused with the views (the projections'
read models) they are made from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Literal, cast
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from domain import cards, patients, payments, plans, practices
from domain.deposits import deposit_id_for
from domain.money import format_dollars
from domain.posting import needs_posting
from domain.practices import MAX_FEE_RATE_BPS
from domain.receivables import SYNC_MINUTES_RANGE
from domain.requests import EXPIRES_AFTER, MAX_REMINDERS
from domain.schedule import local_date, zone
from projections import plans as plan_views
from projections import transactions as transaction_views
from projections.base import iso
from projections.feed import read_history
from projections.users import actor_names, with_actor_names
from services.app.bounds import (
    HISTORY,
    PAGE,
    PARTS,
    BodyText,
    Cents,
    Code,
    Count,
    Cursor,
    DayOut,
    EmailOut,
    IdOut,
    InstantOut,
    Message,
    Name,
    Note,
    Position,
    Reference,
    Total,
    Url,
    first,
    int_format,
    whole,
)
from services.app.writeback_status import writeback_of_payment
from services.context import Components

FeeRate = Annotated[int, whole(0, MAX_FEE_RATE_BPS)]
SyncMinutes = Annotated[int, whole(0, SYNC_MINUTES_RANGE[1])]
ReminderDay = Annotated[int, whole(1, EXPIRES_AFTER.days - 1)]


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def __getitem__(self, name: str) -> Any:
        """A field by its name in the JSON (`from`), for code that reads answers by key."""
        field = type(self).model_fields.get(name)
        if field is not None:
            return getattr(self, name)
        for attribute, declared in type(self).model_fields.items():
            if declared.alias == name:
                return getattr(self, attribute)
        if self.model_extra and name in self.model_extra:
            return self.model_extra[name]
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def keys(self) -> list[str]:
        """The fields' names in the JSON, so that `{**answer}` copies it by them."""
        declared = [field.alias or name for name, field in type(self).model_fields.items()]
        return declared + list(self.model_extra or ())


class Card(Answer):
    brand: Code
    last4: Code


def card_out(brand: str, last4: str) -> Card:
    return Card(brand=brand, last4=last4)


class Entry(Answer):
    """An entry of a payment not yet in the PMS ledger: the payment, a refund or a void."""

    kind: Code
    id: Name
    amount: Cents


class Event(Answer):
    position: Position
    id: IdOut
    type: Code
    aggregate_id: IdOut
    occurred_at: InstantOut
    actor: Code
    data: dict[str, Any]


class NamedEvent(Event):
    actor_name: Name | None = Field(description="the user's name, or System")


class EventPage(Answer):
    items: Annotated[list[NamedEvent], first(PAGE), Field(max_length=PAGE)]
    next_cursor: Cursor | None


# -- payments ---------------------------------------------------------------------------


ReversalReasonOut = Literal[
    "patient_request", "duplicate", "overcharge", "treatment_changed", "other"
]


class Refund(Answer):
    id: IdOut
    amount: Cents
    occurred_at: InstantOut
    processor_refund_id: Reference | None
    batch_id: IdOut | None
    deposit_id: IdOut | None
    association: Literal["associated", "unassociated"]
    pms_reference: Reference | None
    actor: Code
    failed: Message | None = Field(
        default=None,
        description="set when the processor reported the refund failed after it was made "
        "(the money stayed with the practice): why; it no longer counts as refunded",
    )
    reason: ReversalReasonOut | None = Field(
        default=None, description="why staff refunded it; null when no reason was recorded"
    )
    note: Note | None = None


class WritebackAttempt(Answer):
    id: Name
    kind: Code
    status: Code
    attempts: Count
    last_error: Message | None
    pms_reference: Reference | None
    next_attempt_at: InstantOut | None


class PaymentDispute(Answer):
    """The cardholder's dispute of the payment (Stripe)."""

    id: Reference
    status: Code = Field(
        description="needs_response, under_review, won, lost (warning_... for an inquiry)"
    )
    reason: Message
    amount: Cents
    evidence_due_by: InstantOut | None
    opened_at: InstantOut
    closed_at: InstantOut | None
    association: Literal["associated", "unassociated", "not_applicable"] = Field(
        description="whether a lost dispute's negative entry is in the PMS ledger"
    )
    pms_reference: Reference | None


def dispute_out(payment: payments.Payment) -> PaymentDispute | None:
    dispute = payment.dispute
    if dispute is None:
        return None
    association: Literal["associated", "unassociated", "not_applicable"] = "not_applicable"
    if dispute.status == "lost":
        association = "associated" if dispute.posted else "unassociated"
    return PaymentDispute(
        id=dispute.id,
        status=dispute.status,
        reason=dispute.reason,
        amount=dispute.amount,
        evidence_due_by=iso(dispute.evidence_due_by) if dispute.evidence_due_by else None,
        opened_at=iso(dispute.opened_at),
        closed_at=iso(dispute.closed_at) if dispute.closed_at else None,
        association=association,
        pms_reference=dispute.pms_reference,
    )


class OpenIntent(Answer):
    """A void or refund asked of the processor whose outcome is not recorded yet."""

    id: IdOut
    effect: Literal["void", "refund"]
    amount: Cents
    state: Literal["pending", "unknown"] = Field(
        description="pending: the call is under way; unknown: its answer was lost, and the "
        "reconciler reads it back from the processor (see the README)"
    )
    requested_at: InstantOut
    requested_by: Name
    attempts: Count = Field(description="read backs that could not settle it so far")
    last_error: Message | None


def open_intents_out(payment: payments.Payment) -> list[OpenIntent]:
    """The payment's voids and refunds under way, from its own events."""
    pending: list[tuple[Literal["void", "refund"], UUID, int, Any]] = [
        ("refund", r.id, r.amount, r) for r in payment.pending_refunds.values()
    ]
    if payment.pending_void is not None:
        pending.append(
            ("void", payment.pending_void.id, payment.amount.cents, payment.pending_void)
        )
    return [
        OpenIntent(
            id=str(intent_id),
            effect=effect,
            amount=amount,
            state="unknown" if intent.unknown_since is not None else "pending",
            requested_at=iso(intent.at),
            requested_by=intent.actor,
            attempts=intent.attempts,
            last_error=intent.last_error,
        )
        for effect, intent_id, amount, intent in pending
    ]


class RefusedIntent(Answer):
    """A void or refund the processor refused (final: no money moved)."""

    id: IdOut
    effect: Literal["void", "refund"]
    reason: Message


class Payment(Answer):
    id: IdOut
    status: Code
    amount: Cents
    refunded_amount: Cents
    method: Code
    terminal_id: Reference | None
    card: Card
    transaction_id: Reference | None
    decline_reason: Message | None
    capture_failure: Message | None = Field(
        description="why the processor refused to capture it at the cut-off (it was voided)"
    )
    patient_id: IdOut | None
    request_id: IdOut | None
    occurred_at: InstantOut
    association: Code
    unposted: Annotated[list[Entry], first(PARTS), Field(max_length=PARTS)]
    association_source: Code | None
    pms_reference: Reference | None
    settles_at: InstantOut | None
    batch_id: IdOut | None
    settled_at: InstantOut | None
    deposit_id: IdOut | None
    voided_at: InstantOut | None
    void_reason: ReversalReasonOut | None = Field(
        default=None, description="why staff voided it; null when no reason was recorded"
    )
    void_note: Note | None = None
    refunds: Annotated[list[Refund], first(PARTS), Field(max_length=PARTS)]
    open_intents: Annotated[list[OpenIntent], first(PARTS), Field(max_length=PARTS)] = Field(
        description="voids and refunds under way: their amount is held until they end"
    )
    refused_intents: Annotated[list[RefusedIntent], first(PARTS), Field(max_length=PARTS)]
    dispute: PaymentDispute | None
    writeback_attempts: Annotated[list[WritebackAttempt], first(PARTS), Field(max_length=PARTS)]


class PaymentWithHistory(Payment):
    history: Annotated[list[NamedEvent], first(HISTORY), Field(max_length=HISTORY)]


def payment_out(
    ctx: Components,
    payment: payments.Payment,
    *,
    writeback_attempts: list[dict[str, Any]] | None = None,
) -> Payment:
    """The payment; its writeback attempts read from the journal unless the caller
    knows them (a payment just made for a practice that does not write back: none)."""
    return Payment(**_payment_fields(ctx, payment, writeback_attempts))


def payment_with_history(ctx: Components, payment: payments.Payment) -> PaymentWithHistory:
    """The payment and its events, each with the name of who caused it."""
    history = ctx.reads(read_history, payment.practice_id, payment.id, 0, HISTORY)
    return PaymentWithHistory(
        **_payment_fields(ctx, payment, None),
        history=[
            NamedEvent.model_validate(item)
            for item in ctx.reads(with_actor_names, payment.practice_id, history)
        ],
    )


def _payment_fields(
    ctx: Components, payment: payments.Payment, writeback_attempts: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """The fields of a Payment answer, shared by the answers that extend it."""
    return {
        "id": str(payment.id),
        "status": payment.status.value,
        "amount": payment.amount.cents,
        "refunded_amount": payment.refunded.cents,
        "method": payment.method.value,
        "terminal_id": payment.terminal_id,
        "card": card_out(payment.card.brand, payment.card.last4),
        "transaction_id": payment.transaction_id,
        "decline_reason": payment.decline_reason,
        "capture_failure": payment.capture_failure,
        "patient_id": str(payment.patient_id) if payment.patient_id else None,
        "request_id": str(payment.request_id) if payment.request_id else None,
        "occurred_at": iso(payment.occurred_at),
        "association": payment.association.value,
        "unposted": [e.as_dict() for e in needs_posting(payment.ledger_entries)],
        "association_source": payment.association_source.value
        if payment.association_source
        else None,
        "pms_reference": payment.pms_reference,
        "settles_at": iso(payment.settles_at) if payment.settles_at else None,
        "batch_id": str(payment.batch_id) if payment.batch_id else None,
        "settled_at": iso(payment.settled_at) if payment.settled_at else None,
        "deposit_id": str(deposit_id_for(payment.batch_id)) if payment.batch_id else None,
        "voided_at": iso(payment.voided_at) if payment.voided_at else None,
        "void_reason": payment.void_reason,
        "void_note": payment.void_note,
        "refunds": [
            Refund(
                id=str(r.id),
                amount=r.amount,
                occurred_at=iso(r.at),
                processor_refund_id=r.processor_refund_id,
                batch_id=str(r.batch_id) if r.batch_id else None,
                deposit_id=str(deposit_id_for(r.batch_id)) if r.batch_id else None,
                association="associated" if r.id in payment.associated_refunds else "unassociated",
                pms_reference=payment.associated_refunds.get(r.id),
                actor=r.actor,
                failed=r.failed,
                reason=cast(ReversalReasonOut | None, r.reason),
                note=r.note,
            )
            for r in payment.refunds
        ],
        "open_intents": open_intents_out(payment),
        "refused_intents": [
            RefusedIntent(id=str(i), effect="refund", reason=why)
            for i, why in payment.refused_refunds.items()
        ]
        + [
            RefusedIntent(id=str(i), effect="void", reason=why)
            for i, why in payment.refused_voids.items()
        ],
        "dispute": dispute_out(payment),
        "writeback_attempts": writeback_of_payment(ctx.journal, payment.id)
        if writeback_attempts is None
        else writeback_attempts,
    }


class Reversal(Answer):
    kind: Literal["void", "refund"]
    amount: Cents
    refund_id: IdOut | None
    payment: Payment


class ReceiptRefund(Answer):
    refund_id: IdOut
    completed_at: InstantOut
    amount: Cents
    amount_display: Code
    confirmation: Code
    transaction_id: Reference | None
    card: Card
    actor: Code
    actor_name: Name | None
    copies_sent: Count = Field(description="copies of this refund's receipt sent")
    reason: ReversalReasonOut | None = None
    note: Note | None = None


class Receipt(Answer):
    payment_id: IdOut
    actor: Code
    actor_name: Name | None
    practice_name: Name
    completed_at: InstantOut
    completed_local: Name
    amount: Cents
    amount_display: Code
    status: Code
    confirmation: Code
    voided_at: InstantOut | None
    void_reason: ReversalReasonOut | None = None
    void_note: Note | None = None
    decline_reason: Message | None = None
    transaction_id: Reference | None
    card: Card
    refunds: Annotated[list[ReceiptRefund], first(PARTS), Field(max_length=PARTS)]
    copies_sent: Count = Field(
        description="copies of the payment's receipt sent (a refund's: its own)"
    )


def receipt_out(ctx: Components, payment: payments.Payment) -> Receipt:
    practice = ctx.get(practices.Practice, payment.practice_id, payment.practice_id)
    tz = zone(practice.timezone)
    card = card_out(payment.card.brand, payment.card.last4)
    names = ctx.reads(
        actor_names, payment.practice_id, [payment.actor, *(r.actor for r in payment.refunds)]
    )
    return Receipt(
        payment_id=str(payment.id),
        actor=payment.actor,
        actor_name=names[payment.actor],
        practice_name=practice.name,
        completed_at=iso(payment.occurred_at),
        completed_local=payment.occurred_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        amount=payment.amount.cents,
        amount_display=format_dollars(payment.amount.cents),
        status=payment.status.value,
        confirmation=payment.receipt_status().value,
        voided_at=iso(payment.voided_at) if payment.voided_at else None,
        void_reason=cast(ReversalReasonOut | None, payment.void_reason),
        void_note=payment.void_note,
        decline_reason=payment.decline_reason,
        transaction_id=payment.transaction_id,
        card=card,
        refunds=[
            ReceiptRefund(
                refund_id=str(r.id),
                completed_at=iso(r.at),
                amount=r.amount,
                amount_display=format_dollars(r.amount),
                confirmation=payment.receipt_status(r.id).value,
                transaction_id=r.processor_refund_id,
                card=card,
                actor=r.actor,
                actor_name=names[r.actor],
                copies_sent=payment.copies_sent.get(r.id, 0),
                reason=cast(ReversalReasonOut | None, r.reason),
                note=r.note,
            )
            for r in payment.refunds
        ],
        copies_sent=payment.copies_sent.get(None, 0),
    )


class ReceiptSent(Answer):
    sent: bool
    channel: Literal["email", "sms"]
    email: EmailOut | None
    phone: Code | None
    payment_id: IdOut
    refund_id: IdOut | None


class PmsPatient(Answer):
    id: IdOut
    pms_patient_id: Reference
    name: Name


class LedgerEntryRefund(Answer):
    refund_id: IdOut
    date: DayOut
    amount: Cents
    amount_display: Code
    note: Note


class LedgerEntry(Answer):
    """Exactly what staff type into the PMS's Enter Payment window."""

    payment_id: IdOut
    date: DayOut
    payment_type: Code
    amount: Cents
    amount_display: Code
    payment_number: Name | None
    bank_branch: Name | None
    provider: Name | None
    patient: PmsPatient | None
    post_to: PmsPatient | None
    split_method: Literal["patient", "family"]
    note: Note
    status: Code
    association: Code
    refunds: Annotated[list[LedgerEntryRefund], first(PARTS), Field(max_length=PARTS)]


def pms_patient(patient: patients.Patient | None) -> PmsPatient | None:
    if patient is None:
        return None
    return PmsPatient(id=str(patient.id), pms_patient_id=patient.pms_patient_id, name=patient.name)


def ledger_entry_out(ctx: Components, payment: payments.Payment) -> LedgerEntry:
    """Exactly what staff type into the PMS's Enter Payment window."""
    practice = ctx.get(practices.Practice, payment.practice_id, payment.practice_id)
    patient = (
        ctx.get(patients.Patient, payment.patient_id, payment.practice_id)
        if payment.patient_id
        else None
    )
    guarantor = (
        ctx.get(patients.Patient, patient.guarantor_id, payment.practice_id)
        if patient and patient.guarantor_id
        else patient
    )
    return LedgerEntry(
        payment_id=str(payment.id),
        date=local_date(payment.occurred_at, practice.timezone).isoformat(),
        payment_type=practice.pms_payment_type or "Credit Card",
        amount=payment.amount.cents,
        amount_display=payment.amount.dollars(),
        payment_number=payment.transaction_id,
        bank_branch=None,
        provider=None,
        patient=pms_patient(patient),
        post_to=pms_patient(guarantor),
        split_method="patient" if patient else "family",
        note=f"{payment.card.brand} ****{payment.card.last4} card payment [ref:{payment.id}]",
        status=payment.status.value,
        association=payment.association.value,
        refunds=[
            LedgerEntryRefund(
                refund_id=str(r.id),
                date=local_date(r.at, practice.timezone).isoformat(),
                amount=-r.amount,
                amount_display=f"-{format_dollars(r.amount)[1:]}",
                note=f"refund of [ref:{payment.id}] [ref:{r.id}]",
            )
            for r in payment.refunds
        ],
    )


class WritebackRetried(Answer):
    retried: Count
    payment: Payment


# -- lists ------------------------------------------------------------------------------


class TransactionRow(Answer):
    id: IdOut
    occurred_at: InstantOut
    date: DayOut
    amount: Cents
    refunded_amount: Cents
    status: Code
    method: Code
    terminal_id: Reference | None
    card: Card
    transaction_id: Reference | None
    decline_reason: Message | None
    patient_id: IdOut | None
    patient_name: Name | None
    association: Code
    unposted: Annotated[list[Entry], first(PARTS), Field(max_length=PARTS)]
    pms_reference: Reference | None
    batch_id: IdOut | None
    deposit_id: IdOut | None
    dispute_status: Name | None = Field(description="the status of its dispute, if disputed")


def transaction_row(row: transaction_views.TransactionRow) -> TransactionRow:
    return TransactionRow(
        id=row["id"],
        occurred_at=row["occurred_at"],
        date=row["local_date"],
        amount=int(row["amount"]),
        refunded_amount=int(row["refunded_amount"]),
        status=row["status"],
        method=row["method"],
        terminal_id=row["terminal_id"],
        card=card_out(row["card_brand"], row["card_last4"]),
        transaction_id=row["transaction_id"],
        decline_reason=row["decline_reason"],
        patient_id=row["patient_id"],
        patient_name=row["patient_name"],
        association=row["association"],
        unposted=json.loads(row["unposted"]),
        pms_reference=row["pms_reference"],
        batch_id=row["batch_id"],
        deposit_id=row["deposit_id"],
        dispute_status=row.get("dispute_status"),
    )


NEXT = "pass as `cursor` for the next page; null on the last page"
FROM = Field(alias="from", description="the first date of the range (practice-local)")
TO = Field(description="the last date of the range, inclusive")


class TransactionPage(Answer):
    items: Annotated[list[TransactionRow], first(PAGE), Field(max_length=PAGE)]
    next_cursor: Cursor | None = Field(description=NEXT)
    from_: DayOut = FROM
    to: DayOut = TO


class TransactionTotals(Answer):
    count: Count
    collected_amount: Total
    refunded_amount: Total
    net_amount: Total
    from_: DayOut = FROM
    to: DayOut = TO


class UnassociatedCount(Answer):
    count: Count
    transactions: Count
    oldest_date: DayOut | None


def unassociated_badge(ctx: Components, practice_id: UUID) -> UnassociatedCount:
    """The dashboard's alert badge: `count`, the entries not yet in the PMS ledger over all
    time (payments, refunds, voids of posted payments: domain/posting.py), the same entries
    as the `association=unassociated` list holds (`unposted` on its rows) and, for a practice
    that posts by hand, as the Post to Ledger queue; `transactions`, how many rows that list
    has; `oldest_date`, its first date (open the list from there to see them all)."""
    summary = ctx.reads(transaction_views.unassociated_summary, practice_id)
    return UnassociatedCount(
        count=summary["count"],
        transactions=summary["transactions"],
        oldest_date=summary["oldest_date"],
    )


class Payout(Answer):
    """The processor's payout that carried the deposit (Stripe), as reconciled."""

    id: Reference
    status: Code
    arrival_date: Name | None
    failure: Message | None
    fees_amount: Total | None
    differences: Annotated[list[dict[str, Any]], first(PARTS), Field(max_length=PARTS)] = Field(
        description="each with `kind` (payout_missing_item, payout_fee_mismatch, "
        "payout_amount_mismatch, payout_unknown_item), the item and `detail`"
    )


class DepositRow(Answer):
    id: IdOut
    deposit_date: DayOut
    status: Code
    kind: Literal["deposit", "withdrawal"]
    gross_amount: Total
    refunds_amount: Total
    fees_amount: Total
    disputes_amount: Total = Field(
        description="the disputes' amounts its payout carried: withdrawals negative, "
        "reinstatements positive (their fees are in fees_amount)"
    )
    net_amount: Total
    account: Name
    batch_id: IdOut
    batch_date: DayOut
    sales_count: Count
    refunds_count: Count
    paid_at: InstantOut | None
    payout: Payout | None = Field(description="the payout that carried it, once it arrived")


class DepositItem(Answer):
    line: Count
    kind: Code
    payment_id: IdOut
    refund_id: IdOut | None
    occurred_at: InstantOut
    patient_id: IdOut | None
    patient_name: Name | None
    card: Card
    transaction_id: Reference | None
    amount: Total
    fee_amount: Total
    net_amount: Total
    dispute_id: Reference | None = Field(
        description="the dispute of a `dispute`, `dispute_fee` or `dispute_reversal` line"
    )


class Deposit(DepositRow):
    items: Annotated[list[DepositItem], first(PARTS), Field(max_length=PARTS)]


class DepositPage(Answer):
    items: Annotated[list[DepositRow], first(PAGE), Field(max_length=PAGE)]
    next_cursor: Cursor | None = Field(description=NEXT)
    from_: DayOut = FROM
    to: DayOut = TO


class RequestRow(Answer):
    id: IdOut
    patient_id: IdOut
    patient_name: Name | None
    date: DayOut
    sent_at: InstantOut
    amount: Cents
    paid_amount: Cents | None
    status: Code
    cancel_reason: Code | None
    channel: Code
    expires_at: InstantOut
    payment_id: IdOut | None
    reminders_sent: Count
    delivery_status: Code | None


class RequestPage(Answer):
    items: Annotated[list[RequestRow], first(PAGE), Field(max_length=PAGE)]
    next_cursor: Cursor | None = Field(description=NEXT)
    from_: DayOut = FROM
    to: DayOut = TO


class AsOfReport(Answer):
    view: Literal["transactions", "deposits", "payment-requests", "accounts-receivable"]
    as_of: InstantOut
    events_applied: Position
    from_: DayOut = FROM
    to: DayOut = TO
    day: DayOut = Field(description="the practice-local date at `as_of` (AR ages count from it)")
    items: (
        Annotated[list[TransactionRow], Field(max_length=PAGE)]
        | Annotated[list[DepositRow], Field(max_length=PAGE)]
        | Annotated[list[RequestRow], Field(max_length=PAGE)]
        | Annotated[list[ArRow], Field(max_length=PAGE)]
    )


class CloseDeposit(Answer):
    id: IdOut
    deposit_date: DayOut
    status: Code
    net_amount: Total


class CloseBatch(Answer):
    batch_ids: Annotated[list[IdOut], first(PARTS), Field(max_length=PARTS)]
    sales_count: Count
    gross_amount: Total
    refunds_count: Count
    refunds_amount: Total
    fees_amount: Total
    disputes_amount: Total
    net_amount: Total
    deposits: Annotated[list[CloseDeposit], first(PARTS), Field(max_length=PARTS)]


class CloseLedger(Answer):
    payments_count: Count
    payments_amount: Total
    voided_count: Count
    voided_amount: Total
    declined_count: Count
    refunds_count: Count
    refunds_amount: Total


class ClosePms(Answer):
    associated_count: Count
    associated_amount: Total
    refunds_written_count: Count
    refunds_written_amount: Total


class BatchCloseRule(Answer):
    by: Literal["clearent", "practice_cutoff", "unknown"] = Field(
        description="who closes Clearent's batch: Clearent itself (the merchant's gateway "
        "settings) or the ledger at the practice's cut-off"
    )
    batch_time_utc: Code | None = Field(None, description="Clearent's batch time, UTC")
    cutoff: Code | None = Field(None, description="the practice's cut-off")
    detail: Message


class DailyClose(Answer):
    practice_id: IdOut
    practice_name: Name
    date: DayOut
    batch: CloseBatch
    ledger: CloseLedger
    pms: ClosePms
    disputes: Annotated[list[dict[str, Any]], first(PARTS), Field(max_length=PARTS)] = Field(
        description="the dispute lines of the day's deposits (withdrawals, fees, "
        "reinstatements): kind, deposit_id, payout_id, payment_id, dispute_id, amount, "
        "fee_amount, net_amount"
    )
    differences: Annotated[list[dict[str, Any]], first(PARTS), Field(max_length=PARTS)] = Field(
        description="each with `kind`, the payment, refund or deposit, `amount` and `detail`"
    )
    open_intents: Annotated[list[dict[str, Any]], first(PARTS), Field(max_length=PARTS)] = Field(
        description="voids and refunds asked of the processor on or before the day whose "
        "outcome is not recorded yet: id, effect, payment_id, amount, requested_at, "
        "state (pending or unknown), attempts, last_error; each unknown one is also a "
        "difference (`intent_unknown`)"
    )
    balanced: bool
    batch_close: BatchCloseRule | None = Field(
        None, description="with Clearent: which batch close rules the deposits (else null)"
    )


class QueuePatient(Answer):
    id: IdOut
    name: Name
    pms_patient_id: Reference


class EnterPayment(Answer):
    date: DayOut
    payment_type: Code
    amount: Cents
    amount_display: Code
    payment_number: Name | None
    provider: Name | None
    patient: QueuePatient | None
    note: Note


class MarkAssociated(Answer):
    method: Literal["POST"]
    path: Url
    body: dict[str, Any]


class QueueItem(Answer):
    id: Name
    kind: Code
    payment_id: IdOut
    refund_id: IdOut | None
    reason: Message | None
    queued_at: InstantOut
    enter_payment: EnterPayment
    mark_associated: MarkAssociated


class QueuePage(Answer):
    items: Annotated[list[QueueItem], first(PAGE), Field(max_length=PAGE)]
    next_cursor: Cursor | None = Field(description=NEXT)


# -- practices, patients, users -----------------------------------------------------------


class DepositAccount(Answer):
    kind: Code
    last4: Code
    masked: Name


class Practice(Answer):
    id: IdOut
    name: Name
    timezone: Name
    pms: Code
    auto_writeback: bool
    deposit_account: DepositAccount
    batch_cutoff: Name
    pms_payment_type: Name | None
    fee_rate_bps: FeeRate
    reminder_days: Annotated[
        list[ReminderDay], first(MAX_REMINDERS), Field(max_length=MAX_REMINDERS)
    ]
    pms_sync_minutes: SyncMinutes
    stripe_account: Reference | None = Field(description="the practice's Stripe connected account")
    require_2fa_for_admins: bool = Field(
        description="admins without two-step sign-in must turn it on at their next sign-in"
    )


def practice_fields(practice: practices.Practice) -> dict[str, Any]:
    """The fields of a Practice answer, shared by the answers that extend it."""
    return {
        "id": str(practice.id),
        "name": practice.name,
        "timezone": practice.timezone,
        "pms": practice.pms.value,
        "auto_writeback": practice.auto_writeback,
        "deposit_account": DepositAccount(
            kind=practice.deposit_account.kind,
            last4=practice.deposit_account.last4,
            masked=practice.deposit_account.masked,
        ),
        "batch_cutoff": practice.batch_cutoff.strftime("%H:%M"),
        "pms_payment_type": practice.pms_payment_type,
        "fee_rate_bps": practice.fee_rate_bps,
        "reminder_days": practice.reminder_days,
        "pms_sync_minutes": practice.pms_sync_minutes,
        "stripe_account": practice.stripe_account,
        "require_2fa_for_admins": practice.require_2fa_for_admins,
    }


def practice_out(practice: practices.Practice) -> Practice:
    return Practice(**practice_fields(practice))


class WritebackStatus(Answer):
    """Writeback health; beside these, the number of journal rows by status."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "failing"]
    failing_since: InstantOut | None
    last_error: Message | None
    last_error_at: InstantOut | None
    last_success_at: InstantOut | None


class SyncProgress(Answer):
    """How far the last sync came: counted while it runs in the process that runs it
    (elsewhere, and after a restart, only its times and, once it ended, its patients)."""

    started_at: InstantOut | None
    finished_at: InstantOut | None
    guarantors_done: Count | None
    guarantors_total: Count | None
    patients_done: Count | None
    patients_total: Count | None
    error: Message | None


class SyncStatus(Answer):
    interval_minutes: SyncMinutes
    scheduled: bool
    last_started_at: InstantOut | None
    last_finished_at: InstantOut | None
    outcome: Code | None
    error: Message | None
    last_ok_at: InstantOut | None
    patients_seen: Count | None
    balances_recorded: Count | None
    next_due_at: InstantOut | None
    progress: SyncProgress


class DueWorkStatus(Answer):
    status: Literal["ok", "failing"]
    failures: Count
    last_error: Message | None
    failed_at: InstantOut | None


class OpenIntentTotals(Answer):
    """The practice's voids and refunds under way at the processor."""

    open: Count
    unknown: Count = Field(description="of which the processor's answer was lost")
    oldest: InstantOut | None = Field(description="when the oldest was asked")


class ClearentConnection(Answer):
    practice_id: Reference = Field(description="the practice")
    processor: Literal["clearent"] = Field(description="the processor the key is for")
    connected: bool = Field(description="whether the practice has a Clearent API key kept")


class PracticeWithStatus(Practice):
    connection: dict[str, dict[str, Name]] = Field(
        description="PMS connection settings: URLs in full, keys and tokens as their last 4"
    )
    writeback: WritebackStatus
    pms_sync: SyncStatus
    due_work: DueWorkStatus
    open_intents: OpenIntentTotals


class Patient(Answer):
    id: IdOut
    pms_patient_id: Reference
    first_name: Name
    last_name: Name
    email: EmailOut | None
    phone: Name | None
    guarantor_id: IdOut | None


def patient_fields(patient: patients.Patient) -> dict[str, Any]:
    """The fields of a Patient answer, shared by the answers that extend it."""
    return {
        "id": str(patient.id),
        "pms_patient_id": patient.pms_patient_id,
        "first_name": patient.first_name,
        "last_name": patient.last_name,
        "email": patient.email,
        "phone": patient.phone,
        "guarantor_id": str(patient.guarantor_id) if patient.guarantor_id else None,
    }


def patient_out(patient: patients.Patient) -> Patient:
    return Patient(**patient_fields(patient))


def patient_row(row: Mapping[str, Any]) -> Patient:
    return Patient(
        id=row["id"],
        pms_patient_id=row["pms_patient_id"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        email=row["email"],
        phone=row["phone"],
        guarantor_id=row["guarantor_id"],
    )


class PatientPage(Answer):
    items: Annotated[list[Patient], first(PAGE), Field(max_length=PAGE)]
    next_cursor: Cursor | None = Field(description=NEXT)


class BalanceOut(Answer):
    total: Total
    bal_0_30: Total
    bal_31_60: Total
    bal_61_90: Total
    bal_over_90: Total
    insurance_estimate: Total
    patient_portion: Total
    on_payment_plan: bool
    is_guarantor: bool
    last_payment_date: DayOut | None


class PatientBalance(Patient):
    balance: BalanceOut


class Snooze(Answer):
    until: DayOut
    reason: Message
    note: Note | None


class PatientSnooze(Patient):
    snooze: Snooze | None


class TwoFactor(Answer):
    enabled: bool = Field(description="whether sign-in asks for a code after the password")
    since: InstantOut | None = Field(description="when it was turned on; null while it is off")


UserRole = Literal["admin", "staff", "auditor", "platform-auditor"]


class User(Answer):
    id: IdOut
    name: Name
    email: EmailOut | None
    role: UserRole
    status: Code
    created_at: InstantOut
    two_factor: TwoFactor


class UserList(Answer):
    items: Annotated[list[User], first(PARTS), Field(max_length=PARTS)]


class SecurityLogEntry(Answer):
    id: IdOut
    at: InstantOut = Field(description="when (UTC)")
    kind: Code = Field(description="what happened, e.g. sign-in, role-changed")
    actor: Reference = Field(description="who did it: user:<id>, operator, or anonymous")
    actor_name: Name | None
    user_id: IdOut | None = Field(description="the person it is about")
    user_name: Name | None
    client_address: Code | None = Field(description="the address the request came from")
    detail: Message = Field(description="more words about it; never a secret")


class SecurityLogPage(Answer):
    items: Annotated[list[SecurityLogEntry], first(PAGE), Field(max_length=PAGE)]
    next_cursor: Cursor | None = Field(description=NEXT)


class InvitedUser(Answer):
    id: IdOut
    name: Name
    role: UserRole
    email: EmailOut | None
    token: Name = Field(description="the user's API token, shown only in this answer")


# -- accounts receivable ----------------------------------------------------------------


class LastRequest(Answer):
    id: IdOut
    date: DayOut | None
    amount: Cents | None
    status: Code | None


class ArRow(Answer):
    id: Name
    pms_patient_id: Reference
    first_name: Name
    last_name: Name
    total: Total
    bal_0_30: Total
    bal_31_60: Total
    bal_61_90: Total
    bal_over_90: Total
    insurance_estimate: Total
    patient_portion: Total
    on_payment_plan: bool
    is_guarantor: bool
    last_payment_date: DayOut | None
    last_request: LastRequest | None
    snoozed: bool
    snooze: Snooze | None
    email: EmailOut | None
    phone: Name | None
    has_email: bool
    has_phone: bool
    balance_as_of: InstantOut | None
    balance_at_snapshot: Total | None
    collected_since: Total
    balance: Total


class ArPage(Answer):
    items: Annotated[list[ArRow], first(PAGE), Field(max_length=PAGE)]
    next_cursor: Cursor | None = Field(description=NEXT)
    filters: dict[str, Any] = Field(description="the filters applied, in canonical form")
    sort: Code
    pms_sync: SyncStatus


class SavedFilter(Answer):
    id: IdOut
    name: Name
    filter: dict[str, Any]
    saved_at: InstantOut


class FilterPage(Answer):
    items: Annotated[list[SavedFilter], first(PAGE), Field(max_length=PAGE)]
    next_cursor: Cursor | None = Field(description="always null: the library is one page")


class PmsSync(Answer):
    """A sync started in the background (`started`), or the one already running
    (`started` false); its status and progress: GET /v1/pms/sync."""

    started: bool
    pms_sync: SyncStatus


class BulkResult(Answer):
    patient_id: IdOut
    outcome: Literal["sent", "skipped"]
    reason: Message | None
    request_id: IdOut | None
    amount: Total | None
    channel: Code | None


class BulkSent(Answer):
    results: Annotated[list[BulkResult], first(PARTS), Field(max_length=PARTS)]
    sent: Count
    skipped: Count


# -- payment requests ---------------------------------------------------------------------


class RequestMessage(Answer):
    number: Count
    kind: Literal["request", "reminder"]
    status: Code
    attempts: Count
    last_error: Message | None
    retry_at: InstantOut | None


class PaymentRequest(Answer):
    id: IdOut
    patient_id: IdOut
    amount: Cents
    paid_amount: Cents | None
    status: Code
    cancel_reason: Code | None
    cancelled_by: Code | None
    channel: Code
    destination: EmailOut
    sent_at: InstantOut
    sender: Code
    expires_at: InstantOut
    payment_id: IdOut | None
    superseded_by: IdOut | None
    pay_url: Url | None
    messages: Annotated[list[RequestMessage], first(PARTS), Field(max_length=PARTS)]


class PaymentRequestWithHistory(PaymentRequest):
    history: Annotated[list[Event], first(HISTORY), Field(max_length=HISTORY)]


# -- sandbox ----------------------------------------------------------------------------


class Clock(Answer):
    now: InstantOut
    offset_seconds: float


class ClockAdvanced(Answer):
    now: InstantOut
    batches_closed: Count
    deposits_paid: Count
    requests_expired: Count
    reminders_sent: Count
    messages_retried: Count
    snoozes_ended: Count
    pms_syncs: Count
    intents_reconciled: Count = Field(
        description="open voids and refunds whose outcome the reconciler read back and recorded"
    )
    plan_charges: Count = Field(
        0, description="payment plans' scheduled charges made (approved or declined)"
    )
    due_work_error: Message | None = Field(
        description="set when the clock moved but what fell due did not all run"
    )


class SandboxMailboxMessage(Answer):
    id: Name
    channel: Code
    recipient: EmailOut
    subject: Name | None
    body: BodyText
    sent_at: InstantOut


class SandboxMailbox(Answer):
    items: Annotated[list[SandboxMailboxMessage], first(PARTS), Field(max_length=PARTS)]
    next_cursor: Cursor | None = Field(description=NEXT)


# -- auditing and card readers ----------------------------------------------------------


class ViewChecksum(Answer):
    checksum: Code = Field(description="SHA-256 over the view's rows in canonical order")
    rows: Position
    position: Position = Field(description="the last event of the log the view has applied")


class Checksums(Answer):
    practice_id: IdOut
    log_position: Position = Field(description="the last event recorded")
    views: dict[str, ViewChecksum]


class Reader(Answer):
    id: Reference
    label: Name | None
    device_type: Name | None
    serial_number: Name | None
    status: Code | None


class ReaderList(Answer):
    items: Annotated[list[Reader], first(PARTS), Field(max_length=PARTS)]


class WebhookReceived(Answer):
    received: bool
    id: Reference = Field(description="Stripe's event id")
    replayed: bool = Field(description="true when this event id was received before")


class ViewsLag(Answer):
    lag: Position = Field(description="events recorded that the slowest view has not applied yet")
    behind: dict[str, Position] = Field(description="each view's lag, by name")


class RunnerHealth(Answer):
    name: Name
    role: Literal["view", "work", "intake"] = Field(
        description="view (a list to show), work (what due work is chosen from) or intake "
        "(the writeback intake)"
    )
    position: Position
    lag: Position
    error: Message | None = Field(description="the last failure, while the runner is failing")
    failures: Count


class Health(Answer):
    status: Literal["ok"]
    database: Literal["postgresql", "sqlite"]
    sandbox: bool
    position: Position = Field(description="the log's last position")
    views: ViewsLag
    projections: Annotated[list[RunnerHealth], first(PARTS), Field(max_length=PARTS)]


class HealthFailing(Answer):
    status: Literal["failing"]
    database: Literal["unreachable"]
    reason: Message


# --- cards on file and payment plans ---


CardState = Literal["saving", "unknown", "saved", "refused", "removed"]
ChargeStatus = Literal["paid", "failed", "retrying", "scheduled", "not_charged"]


class SavedCardOut(Answer):
    id: IdOut
    patient_id: IdOut
    state: CardState
    brand: Code | None
    last4: Annotated[str, Field(max_length=4)] | None
    exp_month: Annotated[int, Field(ge=0, le=12, json_schema_extra=int_format(0, 12))] | None
    exp_year: Annotated[int, Field(ge=0, le=9999, json_schema_extra=int_format(0, 9999))] | None
    consent: Note
    consented_at: InstantOut
    source: Code
    saved_at: InstantOut | None
    removed_at: InstantOut | None
    removed_by: Reference | None
    reason: Message | None


def saved_card_out(card: cards.Card) -> SavedCardOut:
    return SavedCardOut(
        id=str(card.id),
        patient_id=str(card.patient_id),
        state=cast(CardState, card.state),
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        consent=card.consent,
        consented_at=iso(card.consented_at),
        source=card.source,
        saved_at=iso(card.saved_at) if card.saved_at else None,
        removed_at=iso(card.removed_at) if card.removed_at else None,
        removed_by=card.removed_by,
        reason=card.reason,
    )


def saved_card_row(row: plan_views.CardRow) -> SavedCardOut:
    return SavedCardOut.model_validate(row)


class SavedCardList(Answer):
    items: Annotated[list[SavedCardOut], first(PAGE), Field(max_length=PAGE)]


class PlanChargeOut(Answer):
    number: Count
    due_on: DayOut
    amount: Cents
    status: ChargeStatus
    payment_id: IdOut | None


class PlanFailureOut(Answer):
    number: Count
    payment_id: IdOut | None
    reason: Message
    at: InstantOut
    retry_on: DayOut | None


class PlanOut(Answer):
    id: IdOut
    patient_id: IdOut
    card_id: IdOut
    amount: Cents
    total: Cents
    every: Count
    unit: Literal["weeks", "months"]
    start: DayOut
    note: Note | None
    state: Literal["active", "past_due", "cancelled", "completed"]
    paid: Cents
    remaining: Cents
    next_charge_on: DayOut | None
    schedule: Annotated[list[PlanChargeOut], first(PARTS), Field(max_length=PARTS)]
    failures: Annotated[list[PlanFailureOut], first(PARTS), Field(max_length=PARTS)]
    created_at: InstantOut
    created_by: Reference
    ended_at: InstantOut | None
    ended_by: Reference | None
    end_reason: Message | None


def plan_out(plan: plans.PaymentPlan) -> PlanOut:
    return PlanOut(
        id=str(plan.id),
        patient_id=str(plan.patient_id),
        card_id=str(plan.card_id),
        amount=plan.schedule.amount,
        total=plan.schedule.total,
        every=plan.schedule.every,
        unit=plan.schedule.unit.value,
        start=plan.schedule.start.isoformat(),
        note=plan.note,
        state=plan.state.value,
        paid=plan.paid,
        remaining=plan.schedule.total - plan.paid,
        next_charge_on=_day(plan.next_due_on()),
        schedule=[
            PlanChargeOut(
                number=line.number,
                due_on=line.due_on.isoformat(),
                amount=line.amount,
                status=cast(ChargeStatus, line.status),
                payment_id=str(line.payment_id) if line.payment_id else None,
            )
            for line in plans.plan_lines(plan)
        ],
        failures=[
            PlanFailureOut(
                number=f.installment,
                payment_id=str(f.payment_id) if f.payment_id else None,
                reason=f.reason,
                at=iso(f.at),
                retry_on=_day(f.retry_on),
            )
            for f in plan.failures
        ],
        created_at=iso(plan.created_at),
        created_by=plan.created_by,
        ended_at=iso(plan.ended_at) if plan.ended_at else None,
        ended_by=plan.ended_by,
        end_reason=plan.end_reason,
    )


def _day(day: date | None) -> str | None:
    return day.isoformat() if day else None


class PlanList(Answer):
    items: Annotated[list[PlanOut], first(PAGE), Field(max_length=PAGE)]
