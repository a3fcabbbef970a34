"""The card processor port: charge, void, refund. A real gateway plugs in here."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from uuid import UUID

from domain.errors import Conflict


@dataclass(frozen=True)
class CardInput:
    """A card as typed or presented. Held in memory only for the charge; never stored."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str

    def __repr__(self) -> str:
        return f"CardInput(last4={self.number[-4:]!r}, exp={self.exp_month}/{self.exp_year})"

    __str__ = __repr__


@dataclass(frozen=True)
class ChargeResult:
    approved: bool
    brand: str
    last4: str
    transaction_id: str | None = None
    decline_reason: str | None = None


class ReferenceReused(Conflict):
    """The processor refused a reference already used for a call with other parameters."""

    code = "processor-reference-reused"


class CardProcessor(ABC):
    """Every call that moves money takes a `reference`, the caller's intent id: a call
    made again with the same reference answers the first result again and moves no
    more money (as a real gateway's idempotency key does)."""

    @abstractmethod
    def charge(
        self,
        *,
        reference: UUID,
        amount: int,
        card: CardInput | None = None,
        terminal_id: str | None = None,
    ) -> ChargeResult:
        """Authorise and capture at once. `reference` makes a retried charge idempotent."""

    @abstractmethod
    def void(self, *, transaction_id: str, reference: UUID) -> str:
        """Remove an unsettled sale from its open batch; returns the void's id."""

    @abstractmethod
    def sale_fee(self, *, amount: int, fee_rate_bps: int) -> int:
        """The processing fee (cents) the processor keeps from a settled sale."""

    @abstractmethod
    def refund(self, *, transaction_id: str, amount: int, reference: UUID) -> str:
        """Return money of a settled sale to the card; returns the refund's id."""
