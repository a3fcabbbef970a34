"""Response bodies: what each route answers, so the OpenAPI document states it.

The answers are built as plain dicts (services/http/representations.py and the
routes); these models declare their fields in the same order and forbid any other
field, so an answer that drifts from its declaration fails loudly instead of being
trimmed. Ids and instants are text as the API writes them (ids as UUIDs, instants
ISO 8601 UTC, dates `YYYY-MM-DD`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.practices import MAX_FEE_RATE_BPS
from domain.receivables import SYNC_MINUTES_RANGE
from domain.requests import EXPIRES_AFTER, MAX_REMINDERS
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

FeeRate = Annotated[int, whole(0, MAX_FEE_RATE_BPS)]
SyncMinutes = Annotated[int, whole(0, SYNC_MINUTES_RANGE[1])]
ReminderDay = Annotated[int, whole(1, EXPIRES_AFTER.days - 1)]


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Card(Answer):
    brand: Code
    last4: Code


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


class WritebackStatus(BaseModel):
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


class User(Answer):
    id: IdOut
    name: Name
    email: EmailOut | None
    role: Literal["admin", "staff", "auditor", "platform-auditor"]
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
    role: Literal["admin", "staff", "auditor", "platform-auditor"]
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


class SavedCardOut(Answer):
    id: IdOut
    patient_id: IdOut
    state: Literal["saving", "unknown", "saved", "refused", "removed"]
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


class SavedCardList(Answer):
    items: Annotated[list[SavedCardOut], first(PAGE), Field(max_length=PAGE)]


class PlanChargeOut(Answer):
    number: Count
    due_on: DayOut
    amount: Cents
    status: Literal["paid", "failed", "retrying", "scheduled", "not_charged"]
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


class PlanList(Answer):
    items: Annotated[list[PlanOut], first(PAGE), Field(max_length=PAGE)]
