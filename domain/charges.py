"""The intent of an authorisation: recorded before the processor is asked to authorise.

A payment is recorded (approved or declined) only once the processor answers; the
attempt is what the ledger knows before that. Its id is derived from the payment's id
(itself derived from the request's idempotency key, or from the pay page's attempt), and
the processor gets the payment's id as its reference. The attempt is open from the ask
until the payment is recorded, or until it ends otherwise:
- `Refused`: the processor refused the request (nothing authorised); the same request
  may ask again (`Asked`), e.g. with a corrected card;
- `OutcomeUnknown`: the answer was lost; the same request again asks again under the
  same reference (the processor answers it once), and the reconciler reads it back;
- read back by the reconciler: an authorisation the ledger never recorded is released
  (`ReleaseRequested` then `Released`: voided at the processor, nothing is ever captured
  of it, and the person is told to take the payment again); nothing there ends it as
  `NotMade`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import PracticeAggregate
from domain.errors import Conflict


class AuthorisationReleased(Conflict):
    code = "authorisation-released"


def attempt_id_of(payment_id: UUID) -> UUID:
    return uuid5(NAMESPACE_URL, f"payledger:{payment_id}:charge-attempt")


def release_reference(payment_id: UUID) -> UUID:
    """The reference of the void that releases an authorisation never recorded."""
    return uuid5(NAMESPACE_URL, f"payledger:{payment_id}:release")


class ChargeAttempt(PracticeAggregate):
    if TYPE_CHECKING:  # set by the events (the library takes class annotations as fields)
        payment_id: UUID
        amount: int
        state: str
        asked_at: datetime
        actor: str
        reason: str | None
        unknown_since: datetime | None
        attempts: int
        transaction_id: str | None
        released_id: str | None

    class Requested(PracticeAggregate.Created):
        payment_id: UUID
        amount: int
        method: str

        def apply(self, attempt: ChargeAttempt) -> None:
            attempt.practice_id = self.practice_id
            attempt.payment_id = self.payment_id
            attempt.amount = self.amount
            attempt.state = "asked"
            attempt.asked_at = self.at
            attempt.actor = self.actor
            attempt.reason = None
            attempt.unknown_since = None
            attempt.attempts = 0
            attempt.transaction_id = None
            attempt.released_id = None

    class Asked(PracticeAggregate.Event):
        """The same request asked again (after a refusal or a lost answer)."""

        payment_id: UUID
        amount: int

        def apply(self, attempt: ChargeAttempt) -> None:
            attempt.state = "asked"
            attempt.asked_at = self.at

    class Refused(PracticeAggregate.Event):
        reason: str

        def apply(self, attempt: ChargeAttempt) -> None:
            attempt.state = "refused"
            attempt.reason = self.reason

    class OutcomeUnknown(PracticeAggregate.Event):
        error: str

        def apply(self, attempt: ChargeAttempt) -> None:
            attempt.state = "unknown"
            attempt.unknown_since = attempt.unknown_since or self.at
            attempt.attempts += 1
            attempt.reason = self.error

    class NotMade(PracticeAggregate.Event):
        """Read back: the processor has no authorisation under the reference."""

        def apply(self, attempt: ChargeAttempt) -> None:
            attempt.state = "not_made"

    class ReleaseRequested(PracticeAggregate.Event):
        """Read back: the processor authorised it, the ledger never recorded it; the
        authorisation is about to be voided (its intent)."""

        transaction_id: str

        def apply(self, attempt: ChargeAttempt) -> None:
            attempt.state = "releasing"
            attempt.transaction_id = self.transaction_id

    class Released(PracticeAggregate.Event):
        processor_void_id: str

        def apply(self, attempt: ChargeAttempt) -> None:
            attempt.state = "released"
            attempt.released_id = self.processor_void_id

    @classmethod
    def request(
        cls,
        *,
        practice_id: UUID,
        payment_id: UUID,
        amount: int,
        method: str,
        at: datetime,
        actor: str,
    ) -> ChargeAttempt:
        return cls._create(
            cls.Requested,
            id=attempt_id_of(payment_id),
            practice_id=practice_id,
            payment_id=payment_id,
            amount=amount,
            method=method,
            at=at,
            actor=actor,
        )

    @property
    def is_open(self) -> bool:
        return self.state in ("asked", "unknown", "releasing")

    def check_askable(self) -> None:
        if self.state in ("releasing", "released"):
            raise AuthorisationReleased(
                "this payment's authorisation was released: its answer was lost and it was "
                "never recorded, so the hold on the card was cancelled and nothing was "
                "charged; take the payment again (with a new Idempotency-Key)"
            )

    def ask_again(self, *, at: datetime, actor: str) -> None:
        self.check_askable()
        self.record(self.Asked, at=at, actor=actor, payment_id=self.payment_id, amount=self.amount)

    def refuse(self, *, reason: str, at: datetime, actor: str) -> None:
        self.record(self.Refused, at=at, actor=actor, reason=reason)

    def unknown(self, *, error: str, at: datetime, actor: str) -> None:
        self.record(self.OutcomeUnknown, at=at, actor=actor, error=error)

    def not_made(self, *, at: datetime, actor: str) -> None:
        self.record(self.NotMade, at=at, actor=actor)

    def request_release(self, *, transaction_id: str, at: datetime, actor: str) -> None:
        self.record(self.ReleaseRequested, at=at, actor=actor, transaction_id=transaction_id)

    def release(self, *, processor_void_id: str, at: datetime, actor: str) -> None:
        self.record(self.Released, at=at, actor=actor, processor_void_id=processor_void_id)
