"""A payment's dispute: the cardholder disputed it at the processor.

Rules (docs/design.md, "The ledger's rules on Stripe"): only a settled payment is
disputed, once; the dispute is recorded on the payment (reason, amount, evidence due
date, status) as the processor reports it, until it is won or lost; events may arrive
out of order; a disputed payment is not refunded unless the dispute was won; a lost
dispute is a negative entry in the PMS ledger.

`Disputable` is a base class of `Payment` (domain/payments.py): its events are the
payment's. The library redefines them on `Payment`, so they are stored under the
payment's topics (`domain.payments:Payment.DisputeOpened`, the topics they have always
had) and published under the payment's names (`PaymentDisputeOpened`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.base import PracticeAggregate
from domain.errors import AlreadyAssociated, InvalidValue, PaymentNotApproved
from domain.money import check_payment_amount

if TYPE_CHECKING:
    from domain.payments import AssociationSource

#: a dispute's statuses once the card network decided (or the inquiry closed)
DISPUTE_CLOSED = ("won", "lost", "warning_closed")


@dataclass(frozen=True)
class Dispute:
    """The cardholder's dispute of the payment, as the processor reports it."""

    id: str
    reason: str
    amount: int
    evidence_due_by: datetime | None
    status: str
    opened_at: datetime
    closed_at: datetime | None = None
    posted: bool = False
    pms_reference: str | None = None

    @property
    def closed(self) -> bool:
        return self.status in DISPUTE_CLOSED


#: dispute statuses after which a payment may be refunded again
REFUNDABLE_AFTER = ("won", "warning_closed")


class Disputable:
    """The dispute part of a payment: its events, its state (`dispute`) and commands."""

    if TYPE_CHECKING:
        dispute: Dispute | None
        #: the processor's events (webhooks) already recorded on the payment
        processor_events: set[str]

        def record(
            self,
            event_class: type[PracticeAggregate.Event],
            *,
            at: datetime,
            actor: str,
            **data: Any,
        ) -> None: ...

        def check_disputable(self) -> None: ...

    class DisputeOpened(PracticeAggregate.Event):
        """The cardholder disputed the payment: the processor took `amount` back for now."""

        dispute_id: str
        reason: str
        amount: int
        evidence_due_by: datetime | None
        status: str
        processor_event_id: str

        def apply(self, payment: Disputable) -> None:
            payment.dispute = Dispute(
                self.dispute_id,
                self.reason,
                self.amount,
                self.evidence_due_by,
                self.status,
                self.at,
            )
            payment.processor_events.add(self.processor_event_id)

    class DisputeUpdated(PracticeAggregate.Event):
        """The dispute moved on (evidence submitted: `under_review`), or its due date did."""

        dispute_id: str
        status: str
        evidence_due_by: datetime | None
        processor_event_id: str

        def apply(self, payment: Disputable) -> None:
            assert payment.dispute is not None
            payment.dispute = replace(
                payment.dispute, status=self.status, evidence_due_by=self.evidence_due_by
            )
            payment.processor_events.add(self.processor_event_id)

    class DisputeClosed(PracticeAggregate.Event):
        """The card network decided: `won` (the money comes back) or `lost` (it stays
        taken: a negative entry in the PMS ledger); `warning_closed` for an inquiry."""

        dispute_id: str
        status: str
        #: the disputed amount (taken back for good when lost)
        amount: int
        processor_event_id: str

        def apply(self, payment: Disputable) -> None:
            assert payment.dispute is not None
            payment.dispute = replace(
                payment.dispute, status=self.status, amount=self.amount, closed_at=self.at
            )
            payment.processor_events.add(self.processor_event_id)

    class DisputeAssociated(PracticeAggregate.Event):
        """The lost dispute's negative entry is in the PMS ledger."""

        dispute_id: str
        source: str
        pms_reference: str | None

        def apply(self, payment: Disputable) -> None:
            assert payment.dispute is not None
            payment.dispute = replace(
                payment.dispute, posted=True, pms_reference=self.pms_reference
            )

    # -- derived ------------------------------------------------------------------

    @property
    def refund_blocked_by_dispute(self) -> bool:
        """Disputed, and not won (nor an inquiry closed): the card network decides."""
        return self.dispute is not None and self.dispute.status not in REFUNDABLE_AFTER

    @property
    def lost_dispute(self) -> Dispute | None:
        return self.dispute if self.dispute is not None and self.dispute.status == "lost" else None

    # -- commands -----------------------------------------------------------------

    def record_dispute(
        self,
        *,
        dispute_id: str,
        reason: str,
        amount: int,
        evidence_due_by: datetime | None,
        status: str,
        processor_event_id: str,
        at: datetime,
        actor: str,
    ) -> bool:
        """Record what the processor says of a dispute of this payment; False when it
        changes nothing (an event already recorded, a closed dispute, no news). Events
        may arrive out of order: a dispute first heard of closed is opened, then closed."""
        if processor_event_id in self.processor_events:
            return False
        self.check_disputable()
        if self.dispute is not None and self.dispute.id != dispute_id:
            raise InvalidValue(
                f"this payment is already disputed ({self.dispute.id}); a charge is disputed once"
            )
        check_payment_amount(amount)
        event = {"dispute_id": dispute_id, "processor_event_id": processor_event_id}
        if self.dispute is None:
            opened = status
            if status in DISPUTE_CLOSED:
                opened = (
                    "warning_needs_response" if status == "warning_closed" else "needs_response"
                )
            self.record(
                self.DisputeOpened,
                at=at,
                actor=actor,
                reason=reason,
                amount=amount,
                evidence_due_by=evidence_due_by,
                status=opened,
                **event,
            )
            if status not in DISPUTE_CLOSED:
                return True
            event["processor_event_id"] += ":closed"
        assert self.dispute is not None
        if self.dispute.closed:
            return False
        if status in DISPUTE_CLOSED:
            self.record(
                self.DisputeClosed, at=at, actor=actor, status=status, amount=amount, **event
            )
            return True
        if (status, evidence_due_by) == (self.dispute.status, self.dispute.evidence_due_by):
            return False
        self.record(
            self.DisputeUpdated,
            at=at,
            actor=actor,
            status=status,
            evidence_due_by=evidence_due_by,
            **event,
        )
        return True

    def associate_dispute(
        self, *, source: AssociationSource, pms_reference: str | None, at: datetime, actor: str
    ) -> None:
        """Record that the lost dispute's negative entry is in the PMS ledger."""
        if self.dispute is None or self.dispute.status != "lost":
            raise PaymentNotApproved(
                "this payment has no lost dispute: there is no dispute entry to post"
            )
        if self.dispute.posted:
            raise AlreadyAssociated("this dispute is already associated with the PMS ledger")
        self.record(
            self.DisputeAssociated,
            at=at,
            actor=actor,
            dispute_id=self.dispute.id,
            source=source.value,
            pms_reference=pms_reference,
        )
