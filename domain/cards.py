"""Cards on file: a card the patient let the practice keep at the processor, for later
charges and payment plans. Only the processor's token and what may be shown (brand, last
four, expiry) are kept; never the number.

Keeping a card is an effect on the processor, so it follows the protocol of every
effect (services/app/intents.py): the request is recorded first with the patient's
consent (`SaveRequested`: its wording as shown and when it was given), then the processor
is asked once, and the outcome is recorded (`Saved`, `SaveRefused`, or
`SaveOutcomeUnknown`, which the same request again finishes: the processor answers the
same reference with the same card).

Removing a card takes it off file in the ledger at once (`Removed`: it is never charged
again, its plans end with it). Where the processor also keeps something per card
(Stripe: a PaymentMethod attached to the patient's Customer), taking it off there is an
effect too: `ForgetRequested` is recorded with `Removed`, the processor is asked once,
and the outcome is recorded (`Forgotten`, `ForgetRefused`, or `ForgetOutcomeUnknown`,
which the same removal request again finishes).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import PracticeAggregate
from domain.errors import Conflict, InvalidValue

#: the consent the patient gives, as the checkbox says it ({practice}: the practice's name)
CONSENT_WORDING = (
    "I authorise {practice} to keep this card on file and to charge it for my care when I "
    "agree to a payment, including the payments of a plan I agree to. I can ask the "
    "practice to remove it at any time."
)
#: how long a consent's wording may be
CONSENT_MAX = 1000


def consent_for(practice_name: str) -> str:
    return CONSENT_WORDING.format(practice=practice_name)


class CardNotUsable(Conflict):
    code = "card-not-usable"


class Card(PracticeAggregate):
    if TYPE_CHECKING:
        patient_id: UUID
        consent: str
        consented_at: datetime
        source: str
        state: str
        token: str | None
        brand: str | None
        last4: str | None
        exp_month: int | None
        exp_year: int | None
        customer: str | None
        reason: str | None
        saved_at: datetime | None
        removed_at: datetime | None
        removed_by: str | None
        forgetting: str | None
        unknown_at: datetime | None

    class SaveRequested(PracticeAggregate.Created):
        """The patient consented (the wording they saw, and when); the processor is asked."""

        patient_id: UUID
        consent: str
        consented_at: datetime
        source: str  # virtual_terminal, pay_link or api

        def apply(self, card: Card) -> None:
            card.practice_id = self.practice_id
            card.patient_id = self.patient_id
            card.consent = self.consent
            card.consented_at = self.consented_at
            card.source = self.source
            card.state = "saving"
            card.token = card.brand = card.last4 = card.customer = card.reason = None
            card.exp_month = card.exp_year = None
            card.saved_at = card.removed_at = None
            card.removed_by = None
            card.forgetting = None
            card.unknown_at = None

    class Saved(PracticeAggregate.Event):
        token: str
        brand: str
        last4: str
        exp_month: int
        exp_year: int
        customer: str | None

        def apply(self, card: Card) -> None:
            card.state = "saved"
            card.token, card.brand, card.last4 = self.token, self.brand, self.last4
            card.exp_month, card.exp_year = self.exp_month, self.exp_year
            card.customer = self.customer
            card.saved_at = self.at

    class SaveRefused(PracticeAggregate.Event):
        reason: str

        def apply(self, card: Card) -> None:
            card.state = "refused"
            card.reason = self.reason

    class SaveOutcomeUnknown(PracticeAggregate.Event):
        error: str

        def apply(self, card: Card) -> None:
            card.state = "unknown"
            card.reason = self.error
            card.unknown_at = self.at

    class Removed(PracticeAggregate.Event):
        def apply(self, card: Card) -> None:
            card.state = "removed"
            card.removed_at = self.at
            card.removed_by = self.actor

    class ForgetRequested(PracticeAggregate.Event):
        """The processor is asked to take the card off (with `Removed`)."""

        def apply(self, card: Card) -> None:
            card.forgetting = "asked"

    class Forgotten(PracticeAggregate.Event):
        def apply(self, card: Card) -> None:
            card.forgetting = "done"

    class ForgetRefused(PracticeAggregate.Event):
        reason: str

        def apply(self, card: Card) -> None:
            card.forgetting = "refused"
            card.reason = self.reason

    class ForgetOutcomeUnknown(PracticeAggregate.Event):
        error: str

        def apply(self, card: Card) -> None:
            card.forgetting = "unknown"
            card.reason = self.error

    @classmethod
    def request(
        cls,
        *,
        id: UUID,
        practice_id: UUID,
        patient_id: UUID,
        consent: str,
        source: str,
        at: datetime,
        actor: str,
    ) -> Card:
        if not consent.strip():
            raise InvalidValue(
                "a card is kept only with the patient's consent: tick the consent box",
                field="consent",
            )
        if len(consent) > CONSENT_MAX:
            raise InvalidValue("the consent's wording is too long", field="consent")
        return cls._create(
            cls.SaveRequested,
            id=id,
            practice_id=practice_id,
            patient_id=patient_id,
            consent=consent.strip(),
            consented_at=at,
            source=source,
            at=at,
            actor=actor,
        )

    @property
    def is_open(self) -> bool:
        return self.state in ("saving", "unknown")

    def saved(
        self,
        *,
        token: str,
        brand: str,
        last4: str,
        exp_month: int,
        exp_year: int,
        customer: str | None,
        at: datetime,
        actor: str,
    ) -> None:
        if not self.is_open:
            return
        self.record(
            self.Saved,
            at=at,
            actor=actor,
            token=token,
            brand=brand,
            last4=last4,
            exp_month=exp_month,
            exp_year=exp_year,
            customer=customer,
        )

    def refuse(self, *, reason: str, at: datetime, actor: str) -> None:
        if self.is_open:
            self.record(self.SaveRefused, at=at, actor=actor, reason=reason)

    def unknown(self, *, error: str, at: datetime, actor: str) -> None:
        if self.is_open:
            self.record(self.SaveOutcomeUnknown, at=at, actor=actor, error=error)

    def check_usable(self) -> None:
        if self.state != "saved":
            raise CardNotUsable(f"this card is not on file ({self.describe_state()})")

    def remove(self, *, at: datetime, actor: str) -> None:
        if self.state == "removed":
            raise Conflict("this card was removed already")
        if self.is_open:
            raise Conflict("this card is still being saved at the processor; try again shortly")
        if self.state == "refused":
            raise Conflict("this card was never kept: the processor refused it")
        self.record(self.Removed, at=at, actor=actor)

    def ask_to_forget(self, *, at: datetime, actor: str) -> None:
        """With `remove`, where the processor takes cards off too."""
        if self.state == "removed" and getattr(self, "forgetting", None) is None:
            self.record(self.ForgetRequested, at=at, actor=actor)

    @property
    def is_forgetting(self) -> bool:
        """Removed here, and its taking off at the processor not finished."""
        return getattr(self, "forgetting", None) in ("asked", "unknown")

    def forgotten(self, *, at: datetime, actor: str) -> None:
        if self.is_forgetting:
            self.record(self.Forgotten, at=at, actor=actor)

    def forget_refused(self, *, reason: str, at: datetime, actor: str) -> None:
        if self.is_forgetting:
            self.record(self.ForgetRefused, at=at, actor=actor, reason=reason)

    def forget_unknown(self, *, error: str, at: datetime, actor: str) -> None:
        if self.is_forgetting:
            self.record(self.ForgetOutcomeUnknown, at=at, actor=actor, error=error)

    def describe_state(self) -> str:
        return {
            "saving": "being saved",
            "unknown": "its saving is not confirmed yet",
            "refused": f"the processor refused to keep it: {self.reason}",
            "removed": "removed",
        }.get(self.state, self.state)

    @property
    def label(self) -> str:
        return f"{(self.brand or 'card').title()} •••• {self.last4 or '????'}"
