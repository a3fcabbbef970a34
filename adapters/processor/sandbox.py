"""The sandbox card processor: test cards approve or decline, nothing is charged.

Test cards (any future expiry, any CVC): 4242424242424242 approves;
4000000000000002 declines (card declined); 4000000000009995 declines
(insufficient funds); 4000000000000341 is kept on file but its charges decline (card
declined). A terminal id behaves as if the first card was presented.
Stripe's documented test PaymentMethod ids work the same way (`pm_card_visa`
approves, `pm_card_chargeDeclined` and `pm_card_chargeDeclinedInsufficientFunds`
decline, `pm_card_chargeCustomerFail` is kept and then declines), so that one scenario
runs on the sandbox and on Stripe alike. A card taken off file (`forget_card`) cannot
be charged any more.

It behaves as a real gateway does with idempotency references: a call made again
with the same reference answers the first result again and moves no more money;
the same reference with other parameters is refused. Ids are derived from the
reference, so they are the same after a restart too. It counts the calls it
received and the movements of money it made (`calls`, `movements`, per kind), so
that tests can check that one intent moved money once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, OrderedDict
from typing import Any
from uuid import UUID

from adapters.processor.port import (
    Capability,
    Capture,
    CaptureFailed,
    CardInput,
    CardProcessor,
    ChargeResult,
    Effect,
    LookedUp,
    ProcessorRefused,
    ReferenceReused,
    SavedCard,
    SettledBy,
)
from domain.deposits import fee_for
from domain.errors import InvalidCard

APPROVE = "4242424242424242"
DECLINES = {
    "4000000000000002": "card declined",
    "4000000000009995": "insufficient funds",
    "4000000000000341": "card declined",
}
#: Stripe's test PaymentMethod ids, as the card each stands for
TEST_PAYMENT_METHODS = {
    "pm_card_visa": APPROVE,
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeCustomerFail": "4000000000000341",
}
#: how many references the sandbox remembers (the oldest are forgotten first)
REMEMBERED = 100_000


class SandboxProcessor(CardProcessor):
    name = "sandbox"
    saves_cards = True
    forgets_cards = True
    #: no payouts, readers or batches of its own: a deposit is paid on its date
    capabilities = frozenset()
    settles_by = SettledBy.CUTOFF
    instead = {
        Capability.READERS: "card readers are registered on Stripe (PAYLEDGER_PROCESSOR="
        "stripe); the sandbox takes any terminal_id as a simulated terminal",
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: OrderedDict[tuple[str, UUID], tuple[tuple[Any, ...], Any]] = OrderedDict()
        self.calls: Counter[str] = Counter()
        self.movements: Counter[str] = Counter()
        self._captured: set[str] = set()
        self._voided: set[str] = set()
        self._forgotten: set[str] = set()

    def charge(
        self,
        *,
        reference: UUID,
        amount: int,
        card: CardInput | None = None,
        terminal_id: str | None = None,
        payment_method: str | None = None,
        account: str | None = None,
        saved_card: SavedCard | None = None,
    ) -> ChargeResult:
        if saved_card is not None:
            with self._lock:
                if saved_card.token in self._forgotten:
                    raise ProcessorRefused("this card was taken off file: it cannot be charged")
            number = saved_number(saved_card)
        elif payment_method is not None:
            if payment_method not in TEST_PAYMENT_METHODS:
                raise InvalidCard(
                    "in sandbox mode only the test payment methods are accepted: "
                    + ", ".join(TEST_PAYMENT_METHODS),
                    field="payment_method",
                )
            number = TEST_PAYMENT_METHODS[payment_method]
        else:
            number = APPROVE if card is None else card.number
        brand = card_brand(number)
        reason = DECLINES.get(number)
        if reason is None and number != APPROVE:
            raise InvalidCard(
                "in sandbox mode only the test cards are accepted: 4242424242424242 approves, "
                "4000000000000002 and 4000000000009995 decline"
            )
        if reason is not None:
            result = ChargeResult(False, brand, number[-4:], decline_reason=reason)
        else:
            result = ChargeResult(
                True, brand, number[-4:], transaction_id=sandbox_id("txn", reference)
            )
        answer: ChargeResult = self._once(
            "charge", reference, (amount, number[-4:], terminal_id), result, moves=result.approved
        )
        return answer

    def save_card(
        self,
        *,
        reference: UUID,
        card: CardInput | None = None,
        payment_method: str | None = None,
        account: str | None = None,
    ) -> SavedCard:
        """Keep a test card: its token is derived from the reference (the same after a
        restart), and a charge of it behaves as its test card does."""
        if payment_method is not None:
            if payment_method not in TEST_PAYMENT_METHODS:
                raise InvalidCard(
                    "in sandbox mode only the test payment methods are accepted: "
                    + ", ".join(TEST_PAYMENT_METHODS),
                    field="payment_method",
                )
            number, exp_month, exp_year = TEST_PAYMENT_METHODS[payment_method], 12, 2034
        elif card is not None:
            number, exp_month, exp_year = card.number, card.exp_month, card.exp_year
        else:
            raise ProcessorRefused("a card to keep is needed: the card or its payment method")
        if number != APPROVE and number not in DECLINES:
            raise InvalidCard(
                "in sandbox mode only the test cards are accepted: 4242424242424242 approves, "
                "4000000000000002 and 4000000000009995 decline"
            )
        saved = SavedCard(
            token=sandbox_id("card", reference),
            brand=card_brand(number),
            last4=number[-4:],
            exp_month=exp_month,
            exp_year=exp_year,
        )
        answer: SavedCard = self._once(
            "save_card", reference, (number[-4:], exp_month, exp_year), saved, moves=False
        )
        return answer

    def forget_card(self, *, saved: SavedCard, reference: UUID, account: str | None = None) -> None:
        """Take the test card off file: a charge of its token is refused from now on."""
        saved_number(saved)
        with self._lock:
            self._forgotten.add(saved.token)
        self._once("forget_card", reference, (saved.token,), None, moves=False)

    def void(self, *, transaction_id: str, reference: UUID, account: str | None = None) -> str:
        """Cancel an authorisation; refused once it was captured (as a real gateway does)."""
        with self._lock:
            if transaction_id in self._captured and ("void", reference) not in self._answers:
                raise ProcessorRefused("the sale was captured already: it cannot be voided")
            self._voided.add(transaction_id)
        answer: str = self._once(
            "void", reference, (transaction_id,), sandbox_id("void", reference), moves=True
        )
        return answer

    def capture(
        self, *, transaction_id: str, amount: int, reference: UUID, account: str | None = None
    ) -> Capture:
        """The sandbox's sales are as good as captured: this records the call, and refuses
        to capture a voided authorisation (as a real gateway does)."""
        with self._lock:
            if transaction_id in self._voided and ("capture", reference) not in self._answers:
                raise CaptureFailed("the authorisation was cancelled")
            self._captured.add(transaction_id)
        answer: Capture = self._once(
            "capture", reference, (transaction_id, amount), Capture(transaction_id), moves=True
        )
        return answer

    def sale_fee(self, *, amount: int, fee_rate_bps: int) -> int:
        """Zero unless the practice is set to a rate (to exercise the fee path)."""
        return fee_for(amount, fee_rate_bps)

    def refund(
        self, *, transaction_id: str, amount: int, reference: UUID, account: str | None = None
    ) -> str:
        answer: str = self._once(
            "refund", reference, (transaction_id, amount), sandbox_id("re", reference), moves=True
        )
        return answer

    def look_up(
        self, *, effect: Effect, reference: UUID, transaction_id: str, account: str | None = None
    ) -> LookedUp:
        """What the sandbox did under the reference: its first answer, or nothing."""
        with self._lock:
            known = self._answers.get((effect.value, reference))
        if known is None:
            return LookedUp("absent")
        result = known[1]
        if isinstance(result, Capture):
            return LookedUp("succeeded", result.transaction_id, fee=result.fee)
        if isinstance(result, SavedCard):
            return LookedUp("succeeded", result.token)
        if isinstance(result, ChargeResult):
            if not result.approved:
                return LookedUp("refused", reason=result.decline_reason)
            return LookedUp("succeeded", result.transaction_id)
        return LookedUp("succeeded", str(result))

    def _once(
        self, kind: str, reference: UUID, parameters: tuple[Any, ...], result: Any, *, moves: bool
    ) -> Any:
        """The first answer to this reference; the money moves only the first time."""
        with self._lock:
            self.calls[kind] += 1
            known = self._answers.get((kind, reference))
            if known is not None:
                if known[0] != parameters:
                    raise ReferenceReused(
                        f"the processor refused the {kind}: its reference was already used "
                        "for another request"
                    )
                return known[1]
            self._answers[(kind, reference)] = (parameters, result)
            if len(self._answers) > REMEMBERED:
                self._answers.popitem(last=False)
            if moves:
                self.movements[kind] += 1
            return result


def saved_number(saved: SavedCard) -> str:
    """The test card a sandbox token stands for (its last four tell them apart)."""
    if not saved.token.startswith("card_sb_"):
        raise InvalidCard("this saved card is not the sandbox's: keep the card again")
    return next(
        (n for n in (APPROVE, *DECLINES) if n.endswith(saved.last4)),
        APPROVE,
    )


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
