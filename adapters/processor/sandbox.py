"""The sandbox card processor: test cards approve or decline, nothing is charged.

Test cards (any future expiry, any CVC): 4242424242424242 approves;
4000000000000002 declines (card declined); 4000000000009995 declines
(insufficient funds). A terminal id behaves as if the first card was presented.
Ids are derived from the caller's reference, so a retried call gives the same id.
"""

from __future__ import annotations

import hashlib
from uuid import UUID

from adapters.processor.port import CardInput, CardProcessor, ChargeResult
from domain.deposits import fee_for
from domain.errors import InvalidCard

APPROVE = "4242424242424242"
DECLINES = {
    "4000000000000002": "card declined",
    "4000000000009995": "insufficient funds",
}


class SandboxProcessor(CardProcessor):
    def charge(
        self,
        *,
        reference: UUID,
        amount: int,
        card: CardInput | None = None,
        terminal_id: str | None = None,
    ) -> ChargeResult:
        number = APPROVE if card is None else card.number
        brand = card_brand(number)
        reason = DECLINES.get(number)
        if reason is None and number != APPROVE:
            raise InvalidCard(
                "in sandbox mode only the test cards are accepted: 4242424242424242 approves, "
                "4000000000000002 and 4000000000009995 decline"
            )
        if reason is not None:
            return ChargeResult(False, brand, number[-4:], decline_reason=reason)
        return ChargeResult(True, brand, number[-4:], transaction_id=sandbox_id("txn", reference))

    def void(self, *, transaction_id: str, reference: UUID) -> str:
        return sandbox_id("void", reference)

    def sale_fee(self, *, amount: int, fee_rate_bps: int) -> int:
        """Zero unless the practice is set to a rate (to exercise the fee path)."""
        return fee_for(amount, fee_rate_bps)

    def refund(self, *, transaction_id: str, amount: int, reference: UUID) -> str:
        return sandbox_id("re", reference)


def sandbox_id(prefix: str, reference: UUID) -> str:
    return f"{prefix}_sb_{hashlib.sha256(reference.bytes).hexdigest()[:20]}"


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"34", "37"}:
        return "amex"
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4] or 0) <= 2720:
        return "mastercard"
    if number.startswith(("6011", "65")):
        return "discover"
    return "card"
