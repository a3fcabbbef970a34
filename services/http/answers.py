"""Response bodies: what each route answers, so the OpenAPI document states it.

The answers are built as plain dicts (services/http/representations.py and the
routes); these models declare their fields in the same order and forbid any other
field, so an answer that drifts from its declaration fails loudly instead of being
trimmed. Ids and instants are text as the API writes them (ids as UUIDs, instants
ISO 8601 UTC, dates `YYYY-MM-DD`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Card(Answer):
    brand: str
    last4: str


class Entry(Answer):
    """An entry of a payment not yet in the PMS ledger: the payment, a refund or a void."""

    kind: str
    id: str
    amount: int


class Event(Answer):
    position: int
    id: str
    type: str
    aggregate_id: str
    occurred_at: str
    actor: str
    data: dict[str, Any]


class NamedEvent(Event):
    actor_name: str | None = Field(description="the user's name, or System")


class EventPage(Answer):
    items: list[NamedEvent]
    next_cursor: str | None


# -- payments ---------------------------------------------------------------------------


class Refund(Answer):
    id: str
    amount: int
    occurred_at: str
    processor_refund_id: str | None
    batch_id: str | None
    deposit_id: str | None
    association: Literal["associated", "unassociated"]
    pms_reference: str | None
    actor: str
    failed: str | None = Field(
        default=None,
        description="set when the processor reported the refund failed after it was made "
        "(the money stayed with the practice): why; it no longer counts as refunded",
    )


class WritebackAttempt(Answer):
    id: str
    kind: str
    status: str
    attempts: int
    last_error: str | None
    pms_reference: str | None
    next_attempt_at: str | None


class PaymentDispute(Answer):
    """The cardholder's dispute of the payment (Stripe)."""

    id: str
    status: str = Field(
        description="needs_response, under_review, won, lost (warning_... for an inquiry)"
    )
    reason: str
    amount: int
    evidence_due_by: str | None
    opened_at: str
    closed_at: str | None
    association: Literal["associated", "unassociated", "not_applicable"] = Field(
        description="whether a lost dispute's negative entry is in the PMS ledger"
    )
    pms_reference: str | None


class OpenIntent(Answer):
    """A void or refund asked of the processor whose outcome is not recorded yet."""

    id: str
    effect: Literal["void", "refund"]
    amount: int
    state: Literal["pending", "unknown"] = Field(
        description="pending: the call is under way; unknown: its answer was lost, and the "
        "reconciler reads it back from the processor (see the README)"
    )
    requested_at: str
    requested_by: str
    attempts: int = Field(description="read backs that could not settle it so far")
    last_error: str | None


class RefusedIntent(Answer):
    """A void or refund the processor refused (final: no money moved)."""

    id: str
    effect: Literal["void", "refund"]
    reason: str


class Payment(Answer):
    id: str
    status: str
    amount: int
    refunded_amount: int
    method: str
    terminal_id: str | None
    card: Card
    transaction_id: str | None
    decline_reason: str | None
    capture_failure: str | None = Field(
        description="why the processor refused to capture it at the cut-off (it was voided)"
    )
    patient_id: str | None
    request_id: str | None
    occurred_at: str
    association: str
    unposted: list[Entry]
    association_source: str | None
    pms_reference: str | None
    settles_at: str | None
    batch_id: str | None
    settled_at: str | None
    deposit_id: str | None
    voided_at: str | None
    refunds: list[Refund]
    open_intents: list[OpenIntent] = Field(
        description="voids and refunds under way: their amount is held until they end"
    )
    refused_intents: list[RefusedIntent]
    dispute: PaymentDispute | None
    writeback_attempts: list[WritebackAttempt]


class PaymentWithHistory(Payment):
    history: list[NamedEvent]


class Reversal(Answer):
    kind: Literal["void", "refund"]
    amount: int
    refund_id: str | None
    payment: Payment


class ReceiptRefund(Answer):
    refund_id: str
    completed_at: str
    amount: int
    amount_display: str
    confirmation: str
    transaction_id: str | None
    card: Card
    actor: str
    actor_name: str | None


class Receipt(Answer):
    payment_id: str
    actor: str
    actor_name: str | None
    practice_name: str
    completed_at: str
    completed_local: str
    amount: int
    amount_display: str
    status: str
    confirmation: str
    voided_at: str | None
    transaction_id: str | None
    card: Card
    refunds: list[ReceiptRefund]
    copies_sent: int


class ReceiptSent(Answer):
    sent: bool
    email: str
    payment_id: str
    refund_id: str | None


class PmsPatient(Answer):
    id: str
    pms_patient_id: str
    name: str


class LedgerEntryRefund(Answer):
    refund_id: str
    date: str
    amount: int
    amount_display: str
    note: str


class LedgerEntry(Answer):
    """Exactly what staff type into the PMS's Enter Payment window."""

    payment_id: str
    date: str
    payment_type: str
    amount: int
    amount_display: str
    payment_number: str | None
    bank_branch: str | None
    provider: str | None
    patient: PmsPatient | None
    post_to: PmsPatient | None
    split_method: Literal["patient", "family"]
    note: str
    status: str
    association: str
    refunds: list[LedgerEntryRefund]


class WritebackRetried(Answer):
    retried: int
    payment: Payment


# -- lists ------------------------------------------------------------------------------


class TransactionRow(Answer):
    id: str
    occurred_at: str
    date: str
    amount: int
    refunded_amount: int
    status: str
    method: str
    terminal_id: str | None
    card: Card
    transaction_id: str | None
    decline_reason: str | None
    patient_id: str | None
    patient_name: str | None
    association: str
    unposted: list[Entry]
    pms_reference: str | None
    batch_id: str | None
    deposit_id: str | None
    dispute_status: str | None = Field(description="the status of its dispute, if disputed")


NEXT = "pass as `cursor` for the next page; null on the last page"
FROM = Field(alias="from", description="the first date of the range (practice-local)")
TO = Field(description="the last date of the range, inclusive")


class TransactionPage(Answer):
    items: list[TransactionRow]
    next_cursor: str | None = Field(description=NEXT)
    from_: str = FROM
    to: str = TO


class UnassociatedCount(Answer):
    count: int
    transactions: int
    oldest_date: str | None


class Payout(Answer):
    """The processor's payout that carried the deposit (Stripe), as reconciled."""

    id: str
    status: str
    arrival_date: str | None
    failure: str | None
    fees_amount: int | None
    differences: list[dict[str, Any]] = Field(
        description="each with `kind` (payout_missing_item, payout_fee_mismatch, "
        "payout_amount_mismatch, payout_unknown_item), the item and `detail`"
    )


class DepositRow(Answer):
    id: str
    deposit_date: str
    status: str
    kind: Literal["deposit", "withdrawal"]
    gross_amount: int
    refunds_amount: int
    fees_amount: int
    disputes_amount: int = Field(
        description="the disputes' amounts its payout carried: withdrawals negative, "
        "reinstatements positive (their fees are in fees_amount)"
    )
    net_amount: int
    account: str
    batch_id: str
    batch_date: str
    sales_count: int
    refunds_count: int
    paid_at: str | None
    payout: Payout | None = Field(description="the payout that carried it, once it arrived")


class DepositItem(Answer):
    line: int
    kind: str
    payment_id: str
    refund_id: str | None
    occurred_at: str
    patient_id: str | None
    patient_name: str | None
    card: Card
    transaction_id: str | None
    amount: int
    fee_amount: int
    net_amount: int
    dispute_id: str | None = Field(
        description="the dispute of a `dispute`, `dispute_fee` or `dispute_reversal` line"
    )


class Deposit(DepositRow):
    items: list[DepositItem]


class DepositPage(Answer):
    items: list[DepositRow]
    next_cursor: str | None = Field(description=NEXT)
    from_: str = FROM
    to: str = TO


class RequestRow(Answer):
    id: str
    patient_id: str
    patient_name: str | None
    date: str
    sent_at: str
    amount: int
    paid_amount: int | None
    status: str
    cancel_reason: str | None
    channel: str
    expires_at: str
    payment_id: str | None
    reminders_sent: int
    delivery_status: str | None


class RequestPage(Answer):
    items: list[RequestRow]
    next_cursor: str | None = Field(description=NEXT)
    from_: str = FROM
    to: str = TO


class AsOfReport(Answer):
    view: Literal["transactions", "deposits", "payment-requests", "accounts-receivable"]
    as_of: str
    events_applied: int
    from_: str = FROM
    to: str = TO
    day: str = Field(description="the practice-local date at `as_of` (AR ages count from it)")
    items: list[TransactionRow] | list[DepositRow] | list[RequestRow] | list[ArRow]


class CloseDeposit(Answer):
    id: str
    deposit_date: str
    status: str
    net_amount: int


class CloseBatch(Answer):
    batch_ids: list[str]
    sales_count: int
    gross_amount: int
    refunds_count: int
    refunds_amount: int
    fees_amount: int
    disputes_amount: int
    net_amount: int
    deposits: list[CloseDeposit]


class CloseLedger(Answer):
    payments_count: int
    payments_amount: int
    voided_count: int
    voided_amount: int
    declined_count: int
    refunds_count: int
    refunds_amount: int


class ClosePms(Answer):
    associated_count: int
    associated_amount: int
    refunds_written_count: int
    refunds_written_amount: int


class DailyClose(Answer):
    practice_id: str
    practice_name: str
    date: str
    batch: CloseBatch
    ledger: CloseLedger
    pms: ClosePms
    disputes: list[dict[str, Any]] = Field(
        description="the dispute lines of the day's deposits (withdrawals, fees, "
        "reinstatements): kind, deposit_id, payout_id, payment_id, dispute_id, amount, "
        "fee_amount, net_amount"
    )
    differences: list[dict[str, Any]] = Field(
        description="each with `kind`, the payment, refund or deposit, `amount` and `detail`"
    )
    open_intents: list[dict[str, Any]] = Field(
        description="voids and refunds asked of the processor on or before the day whose "
        "outcome is not recorded yet: id, effect, payment_id, amount, requested_at, "
        "state (pending or unknown), attempts, last_error; each unknown one is also a "
        "difference (`intent_unknown`)"
    )
    balanced: bool


class QueuePatient(Answer):
    id: str
    name: str
    pms_patient_id: str


class EnterPayment(Answer):
    date: str
    payment_type: str
    amount: int
    amount_display: str
    payment_number: str | None
    provider: str | None
    patient: QueuePatient | None
    note: str


class MarkAssociated(Answer):
    method: Literal["POST"]
    path: str
    body: dict[str, Any]


class QueueItem(Answer):
    id: str
    kind: str
    payment_id: str
    refund_id: str | None
    reason: str | None
    queued_at: str
    enter_payment: EnterPayment
    mark_associated: MarkAssociated


class QueuePage(Answer):
    items: list[QueueItem]
    next_cursor: str | None = Field(description=NEXT)


# -- practices, patients, users -----------------------------------------------------------


class DepositAccount(Answer):
    kind: str
    last4: str
    masked: str


class Practice(Answer):
    id: str
    name: str
    timezone: str
    pms: str
    auto_writeback: bool
    deposit_account: DepositAccount
    batch_cutoff: str
    pms_payment_type: str | None
    fee_rate_bps: int
    reminder_days: list[int]
    pms_sync_minutes: int
    stripe_account: str | None = Field(description="the practice's Stripe connected account")
    require_2fa_for_admins: bool = Field(
        description="admins without two-step sign-in must turn it on at their next sign-in"
    )


class WritebackStatus(BaseModel):
    """Writeback health; beside these, the number of journal rows by status."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "failing"]
    failing_since: str | None
    last_error: str | None
    last_error_at: str | None
    last_success_at: str | None


class SyncProgress(Answer):
    """How far the last sync came: counted while it runs in the process that runs it
    (elsewhere, and after a restart, only its times and, once it ended, its patients)."""

    started_at: str | None
    finished_at: str | None
    guarantors_done: int | None
    guarantors_total: int | None
    patients_done: int | None
    patients_total: int | None
    error: str | None


class SyncStatus(Answer):
    interval_minutes: int
    scheduled: bool
    last_started_at: str | None
    last_finished_at: str | None
    outcome: str | None
    error: str | None
    last_ok_at: str | None
    patients_seen: int | None
    balances_recorded: int | None
    next_due_at: str | None
    progress: SyncProgress


class DueWorkStatus(Answer):
    status: Literal["ok", "failing"]
    failures: int
    last_error: str | None
    failed_at: str | None


class OpenIntentTotals(Answer):
    """The practice's voids and refunds under way at the processor."""

    open: int
    unknown: int = Field(description="of which the processor's answer was lost")
    oldest: str | None = Field(description="when the oldest was asked")


class PracticeWithStatus(Practice):
    connection: dict[str, dict[str, str]] = Field(
        description="PMS connection settings: URLs in full, keys and tokens as their last 4"
    )
    writeback: WritebackStatus
    pms_sync: SyncStatus
    due_work: DueWorkStatus
    open_intents: OpenIntentTotals


class Patient(Answer):
    id: str
    pms_patient_id: str
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    guarantor_id: str | None


class PatientPage(Answer):
    items: list[Patient]
    next_cursor: str | None = Field(description=NEXT)


class BalanceOut(Answer):
    total: int
    bal_0_30: int
    bal_31_60: int
    bal_61_90: int
    bal_over_90: int
    insurance_estimate: int
    patient_portion: int
    on_payment_plan: bool
    is_guarantor: bool
    last_payment_date: str | None


class PatientBalance(Patient):
    balance: BalanceOut


class Snooze(Answer):
    until: str
    reason: str
    note: str | None


class PatientSnooze(Patient):
    snooze: Snooze | None


class TwoFactor(Answer):
    enabled: bool = Field(description="whether sign-in asks for a code after the password")
    since: str | None = Field(description="when it was turned on; null while it is off")


class User(Answer):
    id: str
    name: str
    email: str | None
    role: Literal["admin", "staff", "auditor", "platform-auditor"]
    status: str
    created_at: str
    two_factor: TwoFactor


class UserList(Answer):
    items: list[User]


class SecurityLogEntry(Answer):
    id: str
    at: str = Field(description="when (UTC)")
    kind: str = Field(description="what happened, e.g. sign-in, role-changed")
    actor: str = Field(description="who did it: user:<id>, operator, or anonymous")
    actor_name: str | None
    user_id: str | None = Field(description="the person it is about")
    user_name: str | None
    client_address: str | None = Field(description="the address the request came from")
    detail: str = Field(description="more words about it; never a secret")


class SecurityLogPage(Answer):
    items: list[SecurityLogEntry]
    next_cursor: str | None = Field(description=NEXT)


class InvitedUser(Answer):
    id: str
    name: str
    role: Literal["admin", "staff", "auditor", "platform-auditor"]
    email: str | None
    token: str = Field(description="the user's API token, shown only in this answer")


# -- accounts receivable ----------------------------------------------------------------


class LastRequest(Answer):
    id: str
    date: str | None
    amount: int | None
    status: str | None


class ArRow(Answer):
    id: str
    pms_patient_id: str
    first_name: str
    last_name: str
    total: int
    bal_0_30: int
    bal_31_60: int
    bal_61_90: int
    bal_over_90: int
    insurance_estimate: int
    patient_portion: int
    on_payment_plan: bool
    is_guarantor: bool
    last_payment_date: str | None
    last_request: LastRequest | None
    snoozed: bool
    snooze: Snooze | None
    email: str | None
    phone: str | None
    has_email: bool
    has_phone: bool
    balance_as_of: str | None
    balance_at_snapshot: int | None
    collected_since: int
    balance: int


class ArPage(Answer):
    items: list[ArRow]
    next_cursor: str | None = Field(description=NEXT)
    filters: dict[str, Any] = Field(description="the filters applied, in canonical form")
    sort: str
    pms_sync: SyncStatus


class SavedFilter(Answer):
    id: str
    name: str
    filter: dict[str, Any]
    saved_at: str


class FilterPage(Answer):
    items: list[SavedFilter]
    next_cursor: str | None = Field(description="always null: the library is one page")


class PmsSync(Answer):
    """A sync started in the background (`started`), or the one already running
    (`started` false); its status and progress: GET /v1/pms/sync."""

    started: bool
    pms_sync: SyncStatus


class BulkResult(Answer):
    patient_id: str
    outcome: Literal["sent", "skipped"]
    reason: str | None
    request_id: str | None
    amount: int | None
    channel: str | None


class BulkSent(Answer):
    results: list[BulkResult]
    sent: int
    skipped: int


# -- payment requests ---------------------------------------------------------------------


class RequestMessage(Answer):
    number: int
    kind: Literal["request", "reminder"]
    status: str
    attempts: int
    last_error: str | None
    retry_at: str | None


class PaymentRequest(Answer):
    id: str
    patient_id: str
    amount: int
    paid_amount: int | None
    status: str
    cancel_reason: str | None
    cancelled_by: str | None
    channel: str
    destination: str
    sent_at: str
    sender: str
    expires_at: str
    payment_id: str | None
    superseded_by: str | None
    pay_url: str | None
    messages: list[RequestMessage]


class PaymentRequestWithHistory(PaymentRequest):
    history: list[Event]


# -- sandbox ----------------------------------------------------------------------------


class Clock(Answer):
    now: str
    offset_seconds: float


class ClockAdvanced(Answer):
    now: str
    batches_closed: int
    deposits_paid: int
    requests_expired: int
    reminders_sent: int
    messages_retried: int
    snoozes_ended: int
    pms_syncs: int
    intents_reconciled: int = Field(
        description="open voids and refunds whose outcome the reconciler read back and recorded"
    )
    due_work_error: str | None = Field(
        description="set when the clock moved but what fell due did not all run"
    )


class SandboxMailboxMessage(Answer):
    id: str
    channel: str
    recipient: str
    subject: str | None
    body: str
    sent_at: str


class SandboxMailbox(Answer):
    items: list[SandboxMailboxMessage]


# -- auditing and card readers ----------------------------------------------------------


class ViewChecksum(Answer):
    checksum: str = Field(description="SHA-256 over the view's rows in canonical order")
    rows: int
    position: int = Field(description="the last event of the log the view has applied")


class Checksums(Answer):
    practice_id: str
    log_position: int = Field(description="the last event recorded")
    views: dict[str, ViewChecksum]


class Reader(Answer):
    id: str
    label: str | None
    device_type: str | None
    serial_number: str | None
    status: str | None


class ReaderList(Answer):
    items: list[Reader]


class WebhookReceived(Answer):
    received: bool
    id: str = Field(description="Stripe's event id")
    replayed: bool = Field(description="true when this event id was received before")


class ViewsLag(Answer):
    lag: int = Field(description="events recorded that the slowest view has not applied yet")
    behind: dict[str, int] = Field(description="each view's lag, by name")


class RunnerHealth(Answer):
    name: str
    role: Literal["view", "work", "intake"] = Field(
        description="view (a list to show), work (what due work is chosen from) or intake "
        "(the writeback intake)"
    )
    position: int
    lag: int
    error: str | None = Field(description="the last failure, while the runner is failing")
    failures: int


class Health(Answer):
    status: Literal["ok"]
    database: Literal["postgresql", "sqlite"]
    sandbox: bool
    position: int = Field(description="the log's last position")
    views: ViewsLag
    projections: list[RunnerHealth]


class HealthFailing(Answer):
    status: Literal["failing"]
    database: Literal["unreachable"]
    reason: str
