"""The PaymentRequest aggregate: a pay link sent by text or email.

Rules (docs/design.md, "Rules"):
- a request asks for a positive amount; the patient may pay less, never more, never zero;
  a payment of less leaves it open for what is still owed (`PartlyPaid`), the payment of
  what is owed completes it;
- a payment that counted towards a request and is voided afterwards no longer counts:
  the request is reopened (`Reopened`, with the reason), payable again for what is owed;
- it expires (cancels itself) 14 days after it was sent; an expired, cancelled or
  paid request takes no payment;
- up to two reminders before expiry, at offsets the practice sets;
- a patient has at most one outstanding request (the Patient aggregate holds the
  slot: opening a new request supersedes the old one in the same transaction);
- each message (the request, each reminder) is delivered at least once: a
  delivery is claimed before it is attempted, so two schedulers never send it
  twice, and failures are recorded and retried with backoff.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import PracticeAggregate
from domain.errors import Conflict, InvalidAmount, InvalidValue
from domain.money import Money, check_payment_amount

EXPIRES_AFTER = timedelta(days=14)
MAX_REMINDERS = 2
MAX_DELIVERY_ATTEMPTS = 6
CLAIM_FOR = timedelta(minutes=2)


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class RequestStatus(StrEnum):
    REQUESTED = "requested"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class CancelReason(StrEnum):
    SUPERSEDED = "superseded"
    EXPIRED = "expired"
    STAFF = "staff"


class RequestClosed(Conflict):
    """The request takes no payment; `why` says which way it closed: paid, expired,
    superseded, staff (cancelled by the office)."""

    code = "request-closed"

    def __init__(self, detail: str, *, why: str = "closed") -> None:
        super().__init__(detail)
        self.why = why


@dataclass(frozen=True)
class Message:
    """One message of a request: the request itself (number 0) or a reminder (1, 2)."""

    number: int
    status: str = "pending"  # pending, sent, failed (given up)
    attempts: int = 0
    claimed_until: datetime | None = None
    retry_at: datetime | None = None
    last_error: str | None = None


def retry_delay(attempt: int) -> timedelta:
    """1, 2, 4, 8, 16 minutes between attempts."""
    return timedelta(minutes=2 ** (attempt - 1))


class PaymentRequest(PracticeAggregate):
    class Sent(PracticeAggregate.Created):
        """The request, sent. `claimed_until` (class version 2): when the request's first
        message was claimed with it (its first attempt, the outbox entry of a bulk
        request: one event, not a `DeliveryClaimed` of its own), until when; None when it
        was not (claimed afterwards by `DeliveryClaimed`), as in every version 1 event."""

        class_version = 2
        patient_id: UUID
        amount: int
        channel: str
        destination: str
        token_nonce: str
        token_hash: str
        expires_at: datetime
        reminder_days: list[int]
        commlog_mode: str
        commlog_note: str
        claimed_until: datetime | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["claimed_until"] = None

        def apply(self, request: PaymentRequest) -> None:
            request.practice_id = self.practice_id
            request.patient_id = self.patient_id
            request.amount = Money(self.amount)
            request.channel = Channel(self.channel)
            request.destination = self.destination
            request.token_nonce = self.token_nonce
            request.token_hash = self.token_hash
            request.sent_at = self.at
            request.sender = self.actor
            request.expires_at = self.expires_at
            request.reminder_days = list(self.reminder_days)
            request.status = RequestStatus.REQUESTED
            request.paid_amount = None
            request.payment_id = None
            request.cancel_reason = None
            request.cancelled_by = None
            request.closed_at = None
            request.superseded_by = None
            request.messages = {
                0: Message(0)
                if self.claimed_until is None
                else Message(0, attempts=1, claimed_until=self.claimed_until)
            }
            request.paid_by = {}
            request.reopened_at = None
            request.reopen_reason = None

    class Reminded(PracticeAggregate.Event):
        number: int

        def apply(self, request: PaymentRequest) -> None:
            request.messages[self.number] = Message(self.number)

    class DeliveryClaimed(PracticeAggregate.Event):
        number: int
        attempt: int
        until: datetime

        def apply(self, request: PaymentRequest) -> None:
            message = request.messages[self.number]
            request.messages[self.number] = replace(
                message, attempts=self.attempt, claimed_until=self.until
            )

    class Delivered(PracticeAggregate.Event):
        number: int
        message_id: str

        def apply(self, request: PaymentRequest) -> None:
            message = request.messages[self.number]
            request.messages[self.number] = replace(
                message, status="sent", claimed_until=None, retry_at=None, last_error=None
            )

    class DeliveryFailed(PracticeAggregate.Event):
        number: int
        attempt: int
        error: str
        retry_at: datetime | None

        def apply(self, request: PaymentRequest) -> None:
            message = request.messages[self.number]
            request.messages[self.number] = replace(
                message,
                status="pending" if self.retry_at else "failed",
                claimed_until=None,
                retry_at=self.retry_at,
                last_error=self.error,
            )

    class PartlyPaid(PracticeAggregate.Event):
        """A payment of less than what was owed: the request stays open for the rest."""

        payment_id: UUID
        paid_amount: int  # this payment's amount

        def apply(self, request: PaymentRequest) -> None:
            request.count_payment(self.payment_id, self.paid_amount)

    class Completed(PracticeAggregate.Event):
        payment_id: UUID
        paid_amount: int  # this payment's amount (what was still owed)

        def apply(self, request: PaymentRequest) -> None:
            request.count_payment(self.payment_id, self.paid_amount)
            request.status = RequestStatus.COMPLETED
            request.payment_id = self.payment_id
            request.closed_at = self.at

    class Reopened(PracticeAggregate.Event):
        """A payment that counted towards the request was voided: it no longer counts,
        and a request it completed is open again for what is owed."""

        payment_id: UUID
        amount: int  # what no longer counts (the voided payment's amount)
        reason: str

        def apply(self, request: PaymentRequest) -> None:
            request.paid_by.pop(self.payment_id, None)
            total = sum(request.paid_by.values())
            request.paid_amount = Money(total) if total else None
            if request.status == RequestStatus.COMPLETED:
                request.status = RequestStatus.REQUESTED
                request.payment_id = None
                request.closed_at = None
            request.reopened_at = self.at
            request.reopen_reason = self.reason

    class Cancelled(PracticeAggregate.Event):
        reason: str
        superseded_by: UUID | None

        def apply(self, request: PaymentRequest) -> None:
            request.status = RequestStatus.CANCELLED
            request.cancel_reason = CancelReason(self.reason)
            request.cancelled_by = self.actor
            request.superseded_by = self.superseded_by
            request.closed_at = self.at

    if TYPE_CHECKING:
        patient_id: UUID
        amount: Money
        channel: Channel
        destination: str
        token_nonce: str
        token_hash: str
        sent_at: datetime
        sender: str
        expires_at: datetime
        reminder_days: list[int]
        status: RequestStatus
        paid_amount: Money | None
        payment_id: UUID | None
        cancel_reason: CancelReason | None
        cancelled_by: str | None
        closed_at: datetime | None
        superseded_by: UUID | None
        messages: dict[int, Message]
        #: the payments that count towards the request, and their amounts in cents
        paid_by: dict[UUID, int]
        reopened_at: datetime | None
        reopen_reason: str | None

    @classmethod
    def send(
        cls,
        *,
        id: UUID,
        practice_id: UUID,
        patient_id: UUID,
        amount: Money,
        channel: Channel,
        destination: str,
        token_nonce: str,
        token_hash: str,
        reminder_days: list[int],
        practice_name: str,
        at: datetime,
        actor: str,
        claim: bool = False,
    ) -> PaymentRequest:
        """A new request; with `claim`, its first message claimed with it (attempt 1,
        for CLAIM_FOR: the caller sends it and records the outcome)."""
        check_payment_amount(amount.cents)
        if not destination.strip():
            raise InvalidValue(f"the patient has no {channel.value} contact", field="channel")
        check_reminder_days(reminder_days)
        expires_at = at + EXPIRES_AFTER
        mode = "Text" if channel == Channel.SMS else "Email"
        note = (
            f"Payment request for {amount} sent by {mode.lower()} to {destination} "
            f"from {practice_name}; link expires {expires_at.date().isoformat()}."
        )
        return cls._create(
            cls.Sent,
            id=id,
            practice_id=practice_id,
            patient_id=patient_id,
            amount=amount.cents,
            channel=channel.value,
            destination=destination.strip(),
            token_nonce=token_nonce,
            token_hash=token_hash,
            expires_at=expires_at,
            reminder_days=list(reminder_days),
            commlog_mode=mode,
            commlog_note=note,
            claimed_until=at + CLAIM_FOR if claim else None,
            at=at,
            actor=actor,
        )

    # -- derived -----------------------------------------------------------------

    def count_payment(self, payment_id: UUID, cents: int) -> None:
        self.paid_by[payment_id] = cents
        self.paid_amount = Money(sum(self.paid_by.values()))

    @property
    def owed(self) -> Money:
        """What is still to pay: the amount less the payments that count."""
        return Money(self.amount.cents - sum(self.paid_by.values()))

    @property
    def partly_paid(self) -> bool:
        return self.status == RequestStatus.REQUESTED and bool(self.paid_by)

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def is_outstanding(self, now: datetime) -> bool:
        return self.status == RequestStatus.REQUESTED and not self.is_expired(now)

    def due_reminder(self, now: datetime) -> int | None:
        """The number of the reminder that is due now, if any."""
        if not self.is_outstanding(now):
            return None
        for number, days in enumerate(self.reminder_days[:MAX_REMINDERS], start=1):
            if number not in self.messages and now >= self.sent_at + timedelta(days=days):
                return number
        return None

    def due_deliveries(self, now: datetime) -> list[int]:
        """Messages to (re)attempt now: pending, not claimed by a live attempt, retry time come."""
        if self.status != RequestStatus.REQUESTED or self.is_expired(now):
            return []
        return [
            m.number
            for m in self.messages.values()
            if m.status == "pending"
            and (m.claimed_until is None or m.claimed_until <= now)
            and (m.retry_at is None or m.retry_at <= now)
        ]

    # -- rules -----------------------------------------------------------------------

    def check_open(self, now: datetime) -> None:
        if self.status == RequestStatus.COMPLETED:
            raise RequestClosed("this request has already been paid", why="paid")
        if self.status == RequestStatus.CANCELLED:
            assert self.cancel_reason is not None
            raise RequestClosed(
                f"this request was cancelled ({self.cancel_reason.value})",
                why=self.cancel_reason.value,
            )
        if self.is_expired(now):
            raise RequestClosed(
                f"this request expired on {self.expires_at.date().isoformat()} "
                "(two weeks after it was sent)",
                why=CancelReason.EXPIRED.value,
            )

    def check_payable(self, amount: Money, now: datetime) -> None:
        self.check_open(now)
        check_payment_amount(amount.cents)
        if amount > self.owed:
            if self.paid_by:
                raise InvalidAmount(
                    f"the amount may be at most the {self.owed} still owed "
                    f"({self.paid_amount} of {self.amount} is paid), not {amount}"
                )
            raise InvalidAmount(
                f"the amount may be at most the {self.amount} requested, not {amount}"
            )

    # -- commands ---------------------------------------------------------------------

    def complete(self, *, payment_id: UUID, paid: Money, at: datetime, actor: str) -> None:
        """Count an approved payment: what is owed completes the request; less leaves it
        open for the rest (PartlyPaid)."""
        self.check_payable(paid, at)
        event = self.Completed if paid == self.owed else self.PartlyPaid
        self.record(event, at=at, actor=actor, payment_id=payment_id, paid_amount=paid.cents)

    def reopen(
        self,
        *,
        payment_id: UUID,
        reason: str,
        at: datetime,
        actor: str,
        superseded_by: UUID | None = None,
    ) -> bool:
        """The payment `payment_id` was voided: if it counted towards this request (it
        completed it, or paid part of it), record that it no longer does; a completed
        request is open again for what is owed, until its expiry as before. Changes
        nothing (and returns False) for any other payment, or one already taken back.

        `superseded_by`: the patient's latest request when it is another one. A patient
        has one outstanding request, so a request reopened behind a newer one is
        cancelled at once as superseded by it (unpaid, with the reason on record)."""
        if payment_id not in self.paid_by:
            return False
        was_completed = self.status == RequestStatus.COMPLETED
        reason = reason.strip()[:200] or "the payment was voided"
        self.record(
            self.Reopened,
            at=at,
            actor=actor,
            payment_id=payment_id,
            amount=self.paid_by[payment_id],
            reason=reason,
        )
        if was_completed and superseded_by is not None and superseded_by != self.id:
            self.record(
                self.Cancelled,
                at=at,
                actor=actor,
                reason=CancelReason.SUPERSEDED.value,
                superseded_by=superseded_by,
            )
        return True

    def cancel(
        self, *, reason: CancelReason, at: datetime, actor: str, superseded_by: UUID | None = None
    ) -> None:
        if reason == CancelReason.EXPIRED:
            if self.status != RequestStatus.REQUESTED:
                raise RequestClosed("only an open request expires")
            if not self.is_expired(at):
                raise Conflict("this request is not due to expire yet")
            # the instant it expired; a request reopened after that expires on reopening
            at = max(self.expires_at, self.reopened_at or self.expires_at)
        else:
            self.check_open(at)
        self.record(
            self.Cancelled, at=at, actor=actor, reason=reason.value, superseded_by=superseded_by
        )

    def remind(self, number: int, *, at: datetime, actor: str) -> None:
        if self.due_reminder(at) != number:
            raise Conflict(f"reminder {number} is not due")
        self.record(self.Reminded, at=at, actor=actor, number=number)

    def claim_delivery(self, number: int, *, at: datetime, actor: str) -> int:
        """Claim the next attempt at a message; returns the attempt number."""
        if number not in self.due_deliveries(at):
            raise Conflict(f"message {number} is not due for delivery")
        attempt = self.messages[number].attempts + 1
        self.record(
            self.DeliveryClaimed,
            at=at,
            actor=actor,
            number=number,
            attempt=attempt,
            until=at + CLAIM_FOR,
        )
        return attempt

    def delivered(self, number: int, message_id: str, *, at: datetime, actor: str) -> None:
        self.record(self.Delivered, at=at, actor=actor, number=number, message_id=message_id)

    def delivery_failed(self, number: int, error: str, *, at: datetime, actor: str) -> None:
        attempt = self.messages[number].attempts
        retry_at = at + retry_delay(attempt) if attempt < MAX_DELIVERY_ATTEMPTS else None
        self.record(
            self.DeliveryFailed,
            at=at,
            actor=actor,
            number=number,
            attempt=attempt,
            error=error[:500],
            retry_at=retry_at,
        )


def check_reminder_days(days: list[int]) -> list[int]:
    if len(days) > MAX_REMINDERS:
        raise InvalidValue(f"at most {MAX_REMINDERS} reminders", field="reminder_days")
    for day in days:
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day < EXPIRES_AFTER.days:
            raise InvalidValue(
                f"reminder days are whole days after sending, 1 to {EXPIRES_AFTER.days - 1}",
                field="reminder_days",
            )
    if days != sorted(set(days)):
        raise InvalidValue("reminder days must be increasing, e.g. [3, 10]", field="reminder_days")
    return days
