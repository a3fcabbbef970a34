"""Which practice holds an account at the card processor (a Stripe connected account).

An account belongs to one practice at most. Everything a practice does at the processor
(charges, voids, refunds, card readers) is done on its account, and the processor's
events (disputes, payouts) are routed to the practice that holds it: a second practice
on the same account would take, move and read the first one's money, and the first
would never hear of its disputes.

The claim is an aggregate of its own, keyed by the account (`claim_id`), in the scope
of no practice (`PLATFORM`): two practices connecting one account at the same moment
both write to this one aggregate, so the event store lets one of them win and the
other, on its retry, finds the account held.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import PracticeAggregate
from domain.errors import Conflict
from domain.users import PLATFORM


class AccountHeld(Conflict):
    code = "processor-account-held"
    field = "stripe_account"


def claim_id(processor: str, account: str) -> UUID:
    """The id of the claim on an account: the same for everyone who names the account."""
    return uuid5(NAMESPACE_URL, f"payledger:processor-account:{processor}:{account}")


def held_elsewhere(account: str) -> AccountHeld:
    return AccountHeld(
        f"the Stripe account {account} is connected to another practice, and an account "
        "belongs to one practice only: disconnect it there first (stripe_account: null), "
        "or onboard this practice as a connected account of its own"
    )


class ProcessorAccount(PracticeAggregate):
    class Created(PracticeAggregate.Created):
        processor: str
        account: str
        holder: UUID

        def apply(self, claim: ProcessorAccount) -> None:
            claim.practice_id = self.practice_id
            claim.processor = self.processor
            claim.account = self.account
            claim.holder = self.holder

    class Claimed(PracticeAggregate.Event):
        holder: UUID

        def apply(self, claim: ProcessorAccount) -> None:
            claim.holder = self.holder

    class Released(PracticeAggregate.Event):
        holder: UUID

        def apply(self, claim: ProcessorAccount) -> None:
            claim.holder = None

    if TYPE_CHECKING:
        processor: str
        account: str
        #: the practice that holds the account now; None when none does
        holder: UUID | None

    @classmethod
    def claim_new(
        cls, *, processor: str, account: str, holder: UUID, at: datetime, actor: str
    ) -> ProcessorAccount:
        """The first claim on an account nobody has claimed yet."""
        return cls._create(
            cls.Created,
            id=claim_id(processor, account),
            practice_id=PLATFORM,
            processor=processor,
            account=account,
            holder=holder,
            at=at,
            actor=actor,
        )

    def claim(self, holder: UUID, *, at: datetime, actor: str) -> bool:
        """The account for `holder`; AccountHeld when another practice holds it. False
        when `holder` holds it already."""
        if self.holder == holder:
            return False
        if self.holder is not None:
            raise held_elsewhere(self.account)
        self.record(self.Claimed, at=at, actor=actor, holder=holder)
        return True

    def release(self, holder: UUID, *, at: datetime, actor: str) -> bool:
        """Free the account when `holder` lets it go; False when it did not hold it."""
        if self.holder != holder:
            return False
        self.record(self.Released, at=at, actor=actor, holder=holder)
        return True
