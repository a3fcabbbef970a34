"""The Payment aggregate: a card payment from capture (or decline) to refund.

Rules (docs/design.md, "Rules" and "The ledger's rules on Stripe"):
- a void removes an unprocessed payment from its open batch, for the full amount;
- once the batch has closed (settled = processed) the payment can only be
  refunded, in part or in full, never beyond what remains, within 13 months;
- a declined payment moves no money and can be neither voided nor refunded;
- a settled payment can be disputed by the cardholder (at the processor): its
  dispute's events, state and rules are in domain/disputes.py (a base class of
  Payment); a disputed payment is not refunded unless the dispute was won.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

from domain.base import PracticeAggregate
from domain.disputes import Disputable, Dispute
from domain.errors import (
    AlreadyAssociated,
    AlreadyExists,
    AlreadySettled,
    InvalidValue,
    NothingLeftToRefund,
    PaymentNotApproved,
    RefundExceedsRemaining,
    RefundNotAllowed,
    RefundWindowClosed,
    VoidNotAllowed,
)
from domain.money import Money, check_payment_amount, format_dollars
from domain.posting import (
    Association,
    Entry,
    PostedDispute,
    PostedRefund,
    association_of,
    ledger_entries,
)
from domain.schedule import refund_deadline


class Method(StrEnum):
    TERMINAL = "terminal"
    VIRTUAL_TERMINAL = "virtual_terminal"
    PAY_LINK = "pay_link"
    #: a card the patient let the practice keep, charged from the patient's page
    CARD_ON_FILE = "card_on_file"
    #: a payment plan's scheduled charge of a kept card
    PAYMENT_PLAN = "payment_plan"


class Status(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    VOIDED = "voided"
    SETTLED = "settled"


class ReceiptStatus(StrEnum):
    """What a receipt says happened to the thing it is a receipt for."""

    APPROVED = "approved"
    DECLINED = "declined"
    VOIDED = "voided"
    REFUND_PENDING = "refund pending settlement"
    REFUNDED = "refunded"


class AssociationSource(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"
    INBOX = "inbox"


class ReversalKind(StrEnum):
    VOID = "void"
    REFUND = "refund"


@dataclass(frozen=True)
class CardSummary:
    """What may be kept of a card: its brand and last four digits."""

    brand: str
    last4: str

    def __str__(self) -> str:
        """As a person reads it: 'Visa ending in 4242'."""
        name = BRAND_NAMES.get(self.brand, self.brand.capitalize())
        return f"{name} ending in {self.last4}"


#: card brands as their networks write them
BRAND_NAMES = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "card": "Card",
}


class ReversalReason(StrEnum):
    """Why staff refunded or voided a payment (the short list the refund form offers)."""

    PATIENT_REQUEST = "patient_request"
    DUPLICATE = "duplicate"
    OVERCHARGE = "overcharge"
    TREATMENT_CHANGED = "treatment_changed"
    OTHER = "other"


#: the longest note a refund or a void may carry
REVERSAL_NOTE_LENGTH = 200


def check_reversal_reason(reason: str | None, note: str | None) -> None:
    """A reason from the list (or none, as before reasons were asked); a note of at most
    REVERSAL_NOTE_LENGTH characters, which "other" needs."""
    if reason is not None and reason not in set(ReversalReason):
        raise InvalidValue("choose a reason from the list", field="reason")
    if note is not None and len(note) > REVERSAL_NOTE_LENGTH:
        raise InvalidValue(
            f"the note is longer than {REVERSAL_NOTE_LENGTH} characters", field="note"
        )
    if reason == ReversalReason.OTHER and not (note or "").strip():
        raise InvalidValue("say why in the note when the reason is Other", field="note")


def asked_without_reason(state: dict[str, Any]) -> None:
    """The upcast of a version 1 refund or void intent: no reason or note was asked."""
    state["reason"] = None
    state["note"] = None


@dataclass(frozen=True)
class Refund:
    id: UUID
    amount: int
    processor_refund_id: str
    at: datetime
    actor: str
    batch_id: UUID | None = None
    #: set when the processor reported the refund failed after it was made (the money
    #: went back to the payment: it counts as not refunded)
    failed: str | None = None
    #: why staff refunded (ReversalReason) and their note; None before reasons were asked
    reason: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class PendingRefund:
    """A refund decided and recorded before the processor is asked: it holds its amount
    until its outcome is recorded (succeeded or refused). While the processor's answer is
    unknown (`unknown_since`), the reconciler reads it back under its id."""

    id: UUID
    amount: int
    at: datetime
    actor: str
    unknown_since: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    reason: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class PendingVoid:
    """A void decided and recorded before the processor is asked: the payment is neither
    captured nor refunded while it is open; it ends voided or refused."""

    id: UUID
    at: datetime
    actor: str
    unknown_since: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    reason: str | None = None
    note: str | None = None


Intent = TypeVar("Intent", PendingRefund, PendingVoid)


def marked_unknown(intent: Intent, at: datetime, error: str) -> Intent:
    """The intent after another answer was lost (the first loss dates it)."""
    return replace(
        intent,
        unknown_since=intent.unknown_since or at,
        attempts=intent.attempts + 1,
        last_error=error,
    )


class Payment(PracticeAggregate, Disputable):
    class Captured(PracticeAggregate.Created):
        amount: int
        method: str
        terminal_id: str | None
        card_brand: str
        card_last4: str
        transaction_id: str
        patient_id: UUID | None
        request_id: UUID | None
        batch_date: str
        settles_at: datetime

        def apply(self, payment: Payment) -> None:
            payment.start(self, Status.APPROVED)
            payment.transaction_id = self.transaction_id
            payment.batch_date = date.fromisoformat(self.batch_date)
            payment.settles_at = self.settles_at

    class Declined(PracticeAggregate.Created):
        amount: int
        method: str
        terminal_id: str | None
        card_brand: str
        card_last4: str
        reason: str
        patient_id: UUID | None
        request_id: UUID | None

        def apply(self, payment: Payment) -> None:
            payment.start(self, Status.DECLINED)
            payment.decline_reason = self.reason

    class Voided(PracticeAggregate.Event):
        processor_void_id: str
        #: the void's intent id (its reference at the processor); None in older events
        void_id: UUID | None = None
        #: set when the processor refused to capture the payment at its batch's cut-off
        #: (its authorisation expired or was cancelled there): no money moved
        capture_failure: str | None = None

        def apply(self, payment: Payment) -> None:
            if payment.pending_void is not None:
                payment.void_reason = payment.pending_void.reason
                payment.void_note = payment.pending_void.note
            payment.status = Status.VOIDED
            payment.pending_void = None
            payment.voided_at = self.at
            payment.void_id = self.void_id
            payment.capture_failure = self.capture_failure

    class VoidRequested(PracticeAggregate.Event):
        """The intent of a void, recorded before the processor is asked: from now on the
        batch close does not capture the payment, and nothing refunds it. Version 2 says
        why (`reason`, ReversalReason, and `note`); version 1 has neither."""

        class_version = 2
        void_id: UUID
        reason: str | None
        note: str | None

        upcast_v1_v2 = staticmethod(asked_without_reason)

        def apply(self, payment: Payment) -> None:
            payment.pending_void = PendingVoid(
                self.void_id, self.at, self.actor, reason=self.reason, note=self.note
            )

    class VoidOutcomeUnknown(PracticeAggregate.Event):
        """The processor's answer to the void was lost: the reconciler reads it back."""

        void_id: UUID
        error: str

        def apply(self, payment: Payment) -> None:
            if payment.pending_void is not None:
                payment.pending_void = marked_unknown(payment.pending_void, self.at, self.error)

    class VoidRefused(PracticeAggregate.Event):
        """The processor refused the void (final): the payment stays approved."""

        void_id: UUID
        reason: str

        def apply(self, payment: Payment) -> None:
            payment.pending_void = None
            payment.refused_voids[self.void_id] = self.reason

    class CaptureRequested(PracticeAggregate.Event):
        """The batch close is about to capture the payment (its intent): from now on it is
        not voided; it settles, or its capture fails."""

        reference: UUID

        def apply(self, payment: Payment) -> None:
            payment.capture_requested = True

    class Settled(PracticeAggregate.Event):
        batch_id: UUID

        def apply(self, payment: Payment) -> None:
            payment.status = Status.SETTLED
            payment.batch_id = self.batch_id
            payment.settled_at = self.at

    class RefundRequested(PracticeAggregate.Event):
        """The intent of a refund, recorded before the processor is asked. Version 2 says
        why (`reason`, ReversalReason, and `note`); version 1 has neither."""

        class_version = 2
        refund_id: UUID
        amount: int
        reason: str | None
        note: str | None

        upcast_v1_v2 = staticmethod(asked_without_reason)

        def apply(self, payment: Payment) -> None:
            payment.pending_refunds[self.refund_id] = PendingRefund(
                self.refund_id,
                self.amount,
                self.at,
                self.actor,
                reason=self.reason,
                note=self.note,
            )

    class Refunded(PracticeAggregate.Event):
        refund_id: UUID
        amount: int
        processor_refund_id: str

        def apply(self, payment: Payment) -> None:
            asked = payment.pending_refunds.pop(self.refund_id, None)
            payment.refunds.append(
                Refund(
                    self.refund_id,
                    self.amount,
                    self.processor_refund_id,
                    self.at,
                    self.actor,
                    reason=asked.reason if asked else None,
                    note=asked.note if asked else None,
                )
            )

    class RefundOutcomeUnknown(PracticeAggregate.Event):
        """The processor's answer to the refund was lost: it keeps holding its amount and
        the reconciler reads it back under its id before anything is sent again."""

        refund_id: UUID
        error: str

        def apply(self, payment: Payment) -> None:
            pending = payment.pending_refunds.get(self.refund_id)
            if pending is not None:
                payment.pending_refunds[self.refund_id] = marked_unknown(
                    pending, self.at, self.error
                )

    class RefundRefused(PracticeAggregate.Event):
        """The processor refused the refund (final): nothing moved; its amount is free."""

        refund_id: UUID
        amount: int
        reason: str

        def apply(self, payment: Payment) -> None:
            payment.pending_refunds.pop(self.refund_id, None)
            payment.refused_refunds[self.refund_id] = self.reason

    class RefundFailed(PracticeAggregate.Event):
        """The processor reported a refund failed after it was made (the card could not
        take it back): the money stays with the practice, the refund counts no more."""

        refund_id: UUID
        amount: int
        reason: str
        processor_event_id: str

        def apply(self, payment: Payment) -> None:
            payment.refunds = [
                replace(r, failed=self.reason) if r.id == self.refund_id else r
                for r in payment.refunds
            ]
            payment.processor_events.add(self.processor_event_id)

    class RefundSettled(PracticeAggregate.Event):
        refund_id: UUID
        batch_id: UUID

        def apply(self, payment: Payment) -> None:
            payment.refunds = [
                replace(r, batch_id=self.batch_id) if r.id == self.refund_id else r
                for r in payment.refunds
            ]

    class Associated(PracticeAggregate.Event):
        source: str
        pms_reference: str | None

        def apply(self, payment: Payment) -> None:
            payment.association_source = AssociationSource(self.source)
            payment.pms_reference = self.pms_reference
            payment.associated_at = self.at

    class RefundAssociated(PracticeAggregate.Event):
        refund_id: UUID
        source: str
        pms_reference: str | None

        def apply(self, payment: Payment) -> None:
            payment.associated_refunds[self.refund_id] = self.pms_reference

    class VoidAssociated(PracticeAggregate.Event):
        """The void's negative entry is in the PMS ledger (the payment had been posted)."""

        source: str
        pms_reference: str | None

        def apply(self, payment: Payment) -> None:
            payment.void_associated = True

    class ReceiptSent(PracticeAggregate.Event):
        """A copy of the receipt sent by email (`email`) or by text (`phone`, version 2)."""

        class_version = 2
        email: str | None
        refund_id: UUID | None
        phone: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["phone"] = None  # version 1 sent by email only

        def apply(self, payment: Payment) -> None:
            payment.receipts_sent += 1
            sent = payment.copies_sent
            sent[self.refund_id] = sent.get(self.refund_id, 0) + 1

    # -- state ---------------------------------------------------------------

    def start(self, created: Captured | Declined, status: Status) -> None:
        self.practice_id = created.practice_id
        self.amount = Money(created.amount)
        self.method = Method(created.method)
        self.terminal_id = created.terminal_id
        self.card = CardSummary(created.card_brand, created.card_last4)
        self.patient_id = created.patient_id
        self.request_id = created.request_id
        self.occurred_at = created.at
        self.actor = created.actor
        self.status = status
        self.transaction_id: str | None = None
        self.decline_reason: str | None = None
        self.batch_date: date | None = None
        self.settles_at: datetime | None = None
        self.batch_id: UUID | None = None
        self.settled_at: datetime | None = None
        self.voided_at: datetime | None = None
        #: why staff voided it (ReversalReason) and their note; None before reasons were asked
        self.void_reason: str | None = None
        self.void_note: str | None = None
        self.void_id: UUID | None = None
        self.capture_failure: str | None = None
        self.refunds: list[Refund] = []
        self.pending_refunds: dict[UUID, PendingRefund] = {}
        #: refunds the processor refused (final), with its reason
        self.refused_refunds: dict[UUID, str] = {}
        self.pending_void: PendingVoid | None = None
        self.refused_voids: dict[UUID, str] = {}
        self.capture_requested = False
        self.association_source: AssociationSource | None = None
        self.pms_reference: str | None = None
        self.associated_at: datetime | None = None
        self.associated_refunds: dict[UUID, str | None] = {}
        self.void_associated = False
        self.receipts_sent = 0
        #: copies sent of each receipt: the payment's (None) and each refund's (its id)
        self.copies_sent: dict[UUID | None, int] = {}
        self.dispute: Dispute | None = None
        #: the processor's events (webhooks) already recorded on this payment
        self.processor_events: set[str] = set()

    # -- creation ----------------------------------------------------------

    @classmethod
    def capture(
        cls,
        *,
        id: UUID,
        practice_id: UUID,
        amount: Money,
        method: Method,
        card: CardSummary,
        transaction_id: str,
        batch_date: date,
        settles_at: datetime,
        at: datetime,
        actor: str,
        terminal_id: str | None = None,
        patient_id: UUID | None = None,
        request_id: UUID | None = None,
    ) -> Payment:
        check_payment_amount(amount.cents)
        check_method(method, terminal_id)
        return cls._create(
            cls.Captured,
            id=id,
            practice_id=practice_id,
            amount=amount.cents,
            method=method.value,
            terminal_id=terminal_id,
            card_brand=card.brand,
            card_last4=card.last4,
            transaction_id=transaction_id,
            patient_id=patient_id,
            request_id=request_id,
            batch_date=batch_date.isoformat(),
            settles_at=settles_at,
            at=at,
            actor=actor,
        )

    @classmethod
    def decline(
        cls,
        *,
        id: UUID,
        practice_id: UUID,
        amount: Money,
        method: Method,
        card: CardSummary,
        reason: str,
        at: datetime,
        actor: str,
        terminal_id: str | None = None,
        patient_id: UUID | None = None,
        request_id: UUID | None = None,
    ) -> Payment:
        check_payment_amount(amount.cents)
        check_method(method, terminal_id)
        return cls._create(
            cls.Declined,
            id=id,
            practice_id=practice_id,
            amount=amount.cents,
            method=method.value,
            terminal_id=terminal_id,
            card_brand=card.brand,
            card_last4=card.last4,
            reason=reason,
            patient_id=patient_id,
            request_id=request_id,
            at=at,
            actor=actor,
        )

    # -- derived -------------------------------------------------------------

    @property
    def refunded(self) -> Money:
        return Money(sum(r.amount for r in self.refunds if r.failed is None))

    @property
    def open_intents(self) -> int:
        """Effects asked of the processor whose outcome is not recorded yet."""
        return len(self.pending_refunds) + (self.pending_void is not None)

    @property
    def remaining(self) -> Money:
        """What can still be refunded (refunds under way hold their amount)."""
        pending = sum(p.amount for p in self.pending_refunds.values())
        return self.amount - self.refunded - Money(pending)

    @property
    def is_associated(self) -> bool:
        return self.association_source is not None

    def is_processed(self, now: datetime) -> bool:
        """Settled, or past its batch's cut-off (the batch close may not have run yet)."""
        if self.status == Status.SETTLED:
            return True
        return self.settles_at is not None and now >= self.settles_at

    def reversal_kind(self, now: datetime) -> ReversalKind:
        """The refund action's choice: void while unprocessed, refund once processed."""
        self.check_reversible()
        return ReversalKind.REFUND if self.is_processed(now) else ReversalKind.VOID

    # -- rules -----------------------------------------------------------------

    def check_reversible(self) -> None:
        if self.status == Status.DECLINED:
            raise PaymentNotApproved("a declined payment moved no money: nothing to void or refund")
        if self.status == Status.VOIDED:
            raise VoidNotAllowed("this payment was already voided; no funds were taken")

    def check_void(self, now: datetime, amount: Money | None = None) -> None:
        self.check_reversible()
        if self.pending_void is not None:
            raise VoidNotAllowed(
                "a void of this payment is already under way; its outcome is shown on the "
                "payment once the processor confirms it"
            )
        if self.capture_requested or self.is_processed(now):
            raise VoidNotAllowed(
                "this payment's batch has closed (it is processed): refund it instead of voiding"
            )
        if amount is not None and amount != self.amount:
            raise VoidNotAllowed(
                f"this payment is not processed yet, so it can only be voided in full "
                f"({self.amount}); a partial amount is possible once it has settled",
                field="amount",
            )

    def check_refund(self, amount: Money, now: datetime) -> None:
        self.check_reversible()
        if self.pending_void is not None:
            raise RefundNotAllowed(
                "a void of this payment is under way: nothing can be refunded until the "
                "processor confirms its outcome"
            )
        if self.status == Status.SETTLED and self.remaining.cents <= 0:
            raise NothingLeftToRefund(
                f"nothing is left to refund: all {self.amount} of this payment was refunded already"
            )
        check_payment_amount(amount.cents)
        if self.status != Status.SETTLED:
            raise RefundNotAllowed(
                "this payment has not settled yet: it can only be voided (in full) until its "
                "batch closes"
            )
        if self.dispute is not None and self.refund_blocked_by_dispute:
            raise RefundNotAllowed(
                f"this payment is disputed by the cardholder (dispute {self.dispute.status}): "
                "the card network decides, it cannot be refunded"
            )
        if now > refund_deadline(self.occurred_at):
            raise RefundWindowClosed(
                "refunds are allowed for 13 months after the payment; this one was taken on "
                f"{self.occurred_at.date().isoformat()}"
            )
        if amount > self.remaining:
            raise RefundExceedsRemaining(
                f"a refund of {amount} is more than is left to refund: {self.remaining} of "
                f"this {self.amount} payment can still be refunded"
            )

    def check_settle(self) -> None:
        if self.status == Status.SETTLED:
            raise AlreadySettled("this payment has already settled")
        if self.pending_void is not None:
            raise PaymentNotApproved("a void of this payment is under way: it is not captured")
        if self.status != Status.APPROVED:
            raise PaymentNotApproved(f"a {self.status} payment does not settle")

    def check_disputable(self) -> None:
        """Only a captured payment is disputed: the processor settled it."""
        if self.status != Status.SETTLED:
            raise PaymentNotApproved(f"a {self.status} payment was not captured: no dispute")

    def check_associate(self) -> None:
        if self.status in (Status.DECLINED, Status.VOIDED):
            raise PaymentNotApproved(
                f"a {self.status} payment moved no money and is not posted to the PMS ledger"
            )
        if self.is_associated:
            raise AlreadyAssociated(
                f"this payment is already associated ({self.association_source}"
                + (f", PMS reference {self.pms_reference}" if self.pms_reference else "")
                + ")"
            )

    # -- commands ----------------------------------------------------------------

    def void(
        self, *, processor_void_id: str, at: datetime, actor: str, void_id: UUID | None = None
    ) -> None:
        self.check_void(at)
        self.record(
            self.Voided, at=at, actor=actor, processor_void_id=processor_void_id, void_id=void_id
        )

    def request_void(
        self,
        *,
        void_id: UUID,
        at: datetime,
        actor: str,
        reason: str | None = None,
        note: str | None = None,
    ) -> None:
        """Record a void's intent, and why, before the processor is asked (the cut-off is
        judged at `at`, the moment the person asked)."""
        self.check_void(at)
        check_reversal_reason(reason, note)
        self.record(
            self.VoidRequested, at=at, actor=actor, void_id=void_id, reason=reason, note=note
        )

    def complete_void(self, *, void_id: UUID, processor_void_id: str, at: datetime) -> None:
        """Record the processor's confirmation of the void under way (in the requester's
        name)."""
        pending = self.check_pending_void(void_id)
        self.record(
            self.Voided,
            at=at,
            actor=pending.actor,
            processor_void_id=processor_void_id,
            void_id=void_id,
        )

    def refuse_void(self, *, void_id: UUID, reason: str, at: datetime, actor: str) -> None:
        self.check_pending_void(void_id)
        self.record(self.VoidRefused, at=at, actor=actor, void_id=void_id, reason=reason)

    def void_unknown(self, *, void_id: UUID, error: str, at: datetime, actor: str) -> None:
        self.check_pending_void(void_id)
        self.record(self.VoidOutcomeUnknown, at=at, actor=actor, void_id=void_id, error=error)

    def check_pending_void(self, void_id: UUID) -> PendingVoid:
        if self.pending_void is None or self.pending_void.id != void_id:
            raise InvalidValue(f"this payment has no void {void_id} under way")
        return self.pending_void

    def request_capture(self, *, reference: UUID, at: datetime, actor: str) -> None:
        """Record the batch close's intent to capture (it serialises with a void)."""
        self.check_settle()
        if not self.capture_requested:
            self.record(self.CaptureRequested, at=at, actor=actor, reference=reference)

    def fail_capture(self, *, reason: str, at: datetime, actor: str) -> None:
        """The processor refused to capture it at the cut-off: it leaves the batch unpaid,
        as a void does (no money moved), with the processor's reason."""
        if self.status != Status.APPROVED:
            raise PaymentNotApproved(f"a {self.status} payment is not captured")
        self.record(
            self.Voided,
            at=at,
            actor=actor,
            processor_void_id="",
            capture_failure=reason or "the processor did not capture it",
        )

    def request_refund(
        self,
        *,
        refund_id: UUID,
        amount: Money,
        at: datetime,
        actor: str,
        reason: str | None = None,
        note: str | None = None,
    ) -> None:
        """Record a refund's intent, and why, before the processor is asked; it holds the
        amount."""
        if (
            refund_id in self.pending_refunds
            or refund_id in self.refused_refunds
            or any(r.id == refund_id for r in self.refunds)
        ):
            raise AlreadyExists(f"refund {refund_id} was already requested")
        self.check_refund(amount, at)
        check_reversal_reason(reason, note)
        self.record(
            self.RefundRequested,
            at=at,
            actor=actor,
            refund_id=refund_id,
            amount=amount.cents,
            reason=reason,
            note=note,
        )

    def complete_refund(self, *, refund_id: UUID, processor_refund_id: str, at: datetime) -> None:
        """Record the processor's answer to a requested refund (in the requester's name)."""
        pending = self.pending_refunds.get(refund_id)
        if pending is None:
            raise InvalidValue(f"this payment has no refund {refund_id} under way")
        self.record(
            self.Refunded,
            at=at,
            actor=pending.actor,
            refund_id=refund_id,
            amount=pending.amount,
            processor_refund_id=processor_refund_id,
        )

    def refuse_refund(self, *, refund_id: UUID, reason: str, at: datetime, actor: str) -> None:
        """The processor refused the refund (final): its amount is free again."""
        pending = self.check_pending_refund(refund_id)
        self.record(
            self.RefundRefused,
            at=at,
            actor=actor,
            refund_id=refund_id,
            amount=pending.amount,
            reason=reason,
        )

    def refund_unknown(self, *, refund_id: UUID, error: str, at: datetime, actor: str) -> None:
        self.check_pending_refund(refund_id)
        self.record(self.RefundOutcomeUnknown, at=at, actor=actor, refund_id=refund_id, error=error)

    def fail_refund(
        self, *, refund_id: UUID, reason: str, processor_event_id: str, at: datetime, actor: str
    ) -> bool:
        """The processor says a refund made earlier failed; False when already recorded."""
        refund = self.find_refund(refund_id)
        if refund.failed is not None or processor_event_id in self.processor_events:
            return False
        self.record(
            self.RefundFailed,
            at=at,
            actor=actor,
            refund_id=refund_id,
            amount=refund.amount,
            reason=reason,
            processor_event_id=processor_event_id,
        )
        return True

    def check_pending_refund(self, refund_id: UUID) -> PendingRefund:
        pending = self.pending_refunds.get(refund_id)
        if pending is None:
            raise InvalidValue(f"this payment has no refund {refund_id} under way")
        return pending

    def refund(
        self, *, refund_id: UUID, amount: Money, processor_refund_id: str, at: datetime, actor: str
    ) -> None:
        if any(r.id == refund_id for r in self.refunds):
            raise AlreadyExists(f"refund {refund_id} was already recorded")
        self.check_refund(amount, at)
        self.record(
            self.Refunded,
            at=at,
            actor=actor,
            refund_id=refund_id,
            amount=amount.cents,
            processor_refund_id=processor_refund_id,
        )

    def settle(self, *, batch_id: UUID, at: datetime, actor: str) -> None:
        self.check_settle()
        self.record(self.Settled, at=at, actor=actor, batch_id=batch_id)

    def settle_refund(self, *, refund_id: UUID, batch_id: UUID, at: datetime, actor: str) -> None:
        refund = self.find_refund(refund_id)
        if refund.batch_id is not None:
            raise AlreadySettled("this refund has already settled")
        self.record(self.RefundSettled, at=at, actor=actor, refund_id=refund_id, batch_id=batch_id)

    def associate(
        self, *, source: AssociationSource, pms_reference: str | None, at: datetime, actor: str
    ) -> None:
        self.check_associate()
        self.record(
            self.Associated, at=at, actor=actor, source=source.value, pms_reference=pms_reference
        )

    def check_receipt(self, refund_id: UUID | None) -> None:
        if refund_id is not None:
            self.find_refund(refund_id)
        elif self.status == Status.DECLINED:
            raise PaymentNotApproved("a declined payment has no receipt to send")

    def associate_refund(
        self,
        *,
        refund_id: UUID,
        source: AssociationSource,
        pms_reference: str | None,
        at: datetime,
        actor: str,
    ) -> None:
        """Record that a refund (a negative entry) is in the PMS ledger too."""
        self.find_refund(refund_id)
        if refund_id in self.associated_refunds:
            raise AlreadyAssociated("this refund is already associated with the PMS ledger")
        self.record(
            self.RefundAssociated,
            at=at,
            actor=actor,
            refund_id=refund_id,
            source=source.value,
            pms_reference=pms_reference,
        )

    def associate_void(
        self, *, source: AssociationSource, pms_reference: str | None, at: datetime, actor: str
    ) -> None:
        """Record that the reversal of a posted, then voided, payment is in the PMS too."""
        if self.status != Status.VOIDED:
            raise PaymentNotApproved("this payment was not voided: there is no void to post")
        if not self.is_associated:
            raise PaymentNotApproved(
                "this payment was voided before it was posted: there is nothing to take back"
            )
        if self.void_associated:
            raise AlreadyAssociated("this void is already associated with the PMS ledger")
        self.record(
            self.VoidAssociated,
            at=at,
            actor=actor,
            source=source.value,
            pms_reference=pms_reference,
        )

    def record_receipt_sent(
        self,
        *,
        email: str | None,
        refund_id: UUID | None,
        at: datetime,
        actor: str,
        phone: str | None = None,
    ) -> None:
        self.check_receipt(refund_id)
        self.record(
            self.ReceiptSent, at=at, actor=actor, email=email, refund_id=refund_id, phone=phone
        )

    def find_refund(self, refund_id: UUID) -> Refund:
        for refund in self.refunds:
            if refund.id == refund_id:
                return refund
        raise InvalidValue(f"this payment has no refund {refund_id}", field="refund_id")

    @property
    def ledger_entries(self) -> list[Entry]:
        """What this payment puts in the PMS ledger, posted or not (domain/posting.py)."""
        return ledger_entries(
            payment_id=str(self.id),
            status=self.status.value,
            amount=self.amount.cents,
            payment_posted=self.is_associated,
            refunds=[
                PostedRefund(str(r.id), r.amount, r.id in self.associated_refunds)
                for r in self.refunds
            ],
            void_posted=self.void_associated,
            lost_dispute=PostedDispute(lost.id, lost.amount, lost.posted)
            if (lost := self.lost_dispute) is not None
            else None,
        )

    @property
    def association(self) -> Association:
        return association_of(self.ledger_entries)

    def receipt_status(self, refund_id: UUID | None = None) -> ReceiptStatus:
        """The status a receipt states: of the payment, or of one of its refunds (a refund
        is pending until its batch closes)."""
        if refund_id is not None:
            refund = self.find_refund(refund_id)
            return ReceiptStatus.REFUNDED if refund.batch_id else ReceiptStatus.REFUND_PENDING
        return receipt_status_of(self.status)

    def describe(self) -> str:
        return f"{self.card.brand} ****{self.card.last4} {format_dollars(self.amount.cents)}"


def receipt_status_of(status: Status | str) -> ReceiptStatus:
    """What a payment's receipt states for its status: a settled payment's receipt, as an
    approved one's, says Approved (settling is the batch's business, not the patient's)."""
    if status == Status.DECLINED:
        return ReceiptStatus.DECLINED
    if status == Status.VOIDED:
        return ReceiptStatus.VOIDED
    return ReceiptStatus.APPROVED


def check_method(method: Method, terminal_id: str | None) -> None:
    if method == Method.TERMINAL and not terminal_id:
        raise InvalidValue(
            "a terminal payment needs the card reader it is taken on", field="terminal_id"
        )
