"""The card processor port: authorise, void, capture, refund. A real gateway plugs in here.

A payment is authorised when it is collected (`charge`), voided before its batch's
cut-off (`void`), captured when the batch closes (`capture`) and refunded after that
(`refund`). `account` is the practice's account at the processor (a Stripe connected
account), None where the processor has no such notion.

Beyond these, a processor declares what else it does (`capabilities`, `settles_by`) and
the use cases ask it, never which processor it is: payouts of its own and their items
(`Capability.PAYOUTS`), a refund read as it is now (`REFUND_STATUS`), card readers
(`READERS`), batches it closes and lists (`BATCHES`), its own card form in the browser
(`PAYMENT_ELEMENT`). A capability's methods on a processor that lacks it raise
`Unsupported`, whose words say what the processor does instead."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import wraps
from typing import Any, ClassVar, Literal
from uuid import UUID

from adapters.effects import check_outside_retry
from domain.errors import Conflict, InvalidValue, PaymentsError


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


@dataclass(frozen=True)
class SavedCard:
    """A card the processor keeps for the practice, with the patient's consent: its token
    at the processor (Stripe: a PaymentMethod id attached to `customer`; Clearent: the
    token of POST /rest/v2/tokens; the sandbox: its own token) and what may be shown."""

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    customer: str | None = None  # the processor's customer id, where it has one (Stripe)


@dataclass(frozen=True)
class Capture:
    """A captured sale: the processor's id, and its fee when the processor tells it at
    capture (Stripe does; None = the fee follows the practice's rate)."""

    transaction_id: str
    fee: int | None = None


class ReferenceReused(Conflict):
    """The processor refused a reference already used for a call with other parameters."""

    code = "processor-reference-reused"


class ProcessorUnavailable(PaymentsError):
    """The processor could not be reached, or kept failing, after the retries: nothing
    is known to have happened; the same request can be sent again."""

    code = "processor-unavailable"


class OutcomeUnknown(ProcessorUnavailable):
    """The request left for the processor and its answer was lost (a 5xx, a timeout, a
    dropped connection): the processor may or may not have acted. The caller records the
    intent's outcome as unknown; the reconciler reads it back (`look_up`) before anything
    is sent again."""

    code = "processor-outcome-unknown"


class ProcessorRefused(InvalidValue):
    """The processor refused the request as invalid (its message says what to fix)."""

    code = "processor-refused"


class CaptureFailed(Exception):
    """The processor refused to capture an authorised payment (its authorisation expired
    or was cancelled at the processor): no money moves for it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unsupported(Conflict):
    """The processor lacks the capability a call needs (`CardProcessor.capabilities`); the
    detail says, in words, what the processor does instead. The use case turns it into
    its own answer (a 409 of its kind, or nothing to do)."""

    code = "processor-capability-missing"

    def __init__(self, capability: Capability, detail: str) -> None:
        super().__init__(detail)
        self.capability = capability


class Capability(StrEnum):
    """What a processor does beyond authorise, void, capture and refund."""

    #: it pays deposits out in payouts of its own, which it tells of by events: `payout`
    #: (one as it is now) and `payout_items` (what one carries, with its fee per item)
    PAYOUTS = "payouts"
    #: a refund can fail after it was made, and it tells so by an event: `refund_now`
    #: reads the refund as the processor holds it now
    REFUND_STATUS = "refund status"
    #: card readers registered at the processor, on the practice's account: `readers`,
    #: `register_reader`, `label_reader`
    READERS = "card readers"
    #: batches of its own that it lists, and closes when asked: `batch_settings`,
    #: `batches`, `close_batch`, `batch_items`
    BATCHES = "batches"
    #: its own card form collects the card in the payer's browser (Stripe's Payment
    #: Element): the pay page shows it instead of card fields
    PAYMENT_ELEMENT = "payment element"


#: the port's calls of each capability (a processor that declares one answers them all)
CAPABILITY_CALLS: dict[Capability, tuple[str, ...]] = {
    Capability.PAYOUTS: ("payout", "payout_items"),
    Capability.REFUND_STATUS: ("refund_now",),
    Capability.READERS: ("readers", "register_reader", "label_reader"),
    Capability.BATCHES: ("batch_settings", "batches", "close_batch", "batch_items"),
    Capability.PAYMENT_ELEMENT: (),
}


class SettledBy(StrEnum):
    """What pays a deposit (the ledger's batch, closed at the practice's cut-off)."""

    #: the deposit is paid on its date: the ledger's cut-off capture is the settlement
    CUTOFF = "cutoff"
    #: the processor's payout that carries the deposit's items pays it (`PAYOUTS`)
    PAYOUTS = "payouts"
    #: the processor's batch close pays it: each closed batch is matched with the
    #: deposits that hold its items (`BATCHES`)
    BATCH_CLOSE = "batch close"


@dataclass(frozen=True)
class PayoutItem:
    """One item a payout (or a processor's closed batch) carries: a charge
    (`transaction_id` = the processor's id of the sale), a refund (and the ledger's refund
    id), a dispute's adjustment (its dispute and the disputed sale), or something else
    (`kind` as the processor names it)."""

    kind: str
    balance_transaction: str
    transaction_id: str | None
    refund_reference: str | None
    amount: int
    fee: int
    #: the dispute (`dp_...`) of an `adjustment` that a dispute made (its withdrawal,
    #: or its reinstatement when won); None otherwise
    dispute_id: str | None = None


@dataclass(frozen=True)
class Batch:
    """One of the processor's batches (Clearent: GET /rest/v2/batches), amounts in cents."""

    id: str
    status: str
    sales_count: int
    sales_total: int
    refund_count: int
    refund_total: int
    net_amount: int
    total_count: int
    date_opened: str | None


@dataclass(frozen=True)
class BatchSettings:
    """Who closes the processor's batch (Clearent: GET /rest/v2/settings/terminal):
    `auto_close` when the processor closes it itself, at `batch_time_utc`."""

    auto_close: bool
    batch_time_utc: str | None
    time_zone: str | None


#: the port's calls that act on money
EFFECTS = ("charge", "void", "capture", "refund", "save_card", "keep_card", "forget_card")


def guarded(name: str, method: Any) -> Any:
    @wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        check_outside_retry(f"the processor's {name}")
        return method(self, *args, **kwargs)

    call._guarded = True  # type: ignore[attr-defined]
    return call


class Effect(StrEnum):
    """What a call asks the processor to do to money."""

    CHARGE = "charge"
    VOID = "void"
    CAPTURE = "capture"
    REFUND = "refund"
    SAVE_CARD = "save_card"


@dataclass(frozen=True)
class LookedUp:
    """What the processor holds under an intent's reference, read back with a consistent
    read (never an eventually consistent search): `succeeded` (with the processor's id of
    it, and the fee of a capture when known), `refused` (it exists and failed or was
    cancelled: final, with the reason) or `absent` (the processor has nothing under it).
    A refund the processor made that failed afterwards (the card's bank refused it, the
    money came back to the balance) is `succeeded` with `failed_after` saying why: it was
    made, and counts no more."""

    state: Literal["succeeded", "refused", "absent"]
    processor_id: str | None = None
    reason: str | None = None
    fee: int | None = None
    failed_after: str | None = None


ABSENT = LookedUp("absent")


class CardProcessor(ABC):
    """Every call that moves money takes a `reference`, the caller's intent id: a call
    made again with the same reference answers the first result again and moves no
    more money (as a real gateway's idempotency key does).

    Every adapter's `charge`, `void`, `capture` and `refund` refuse to run inside a retry
    on conflict (adapters/effects.py): the subclass's methods are wrapped here."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in EFFECTS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_guarded", False):
                setattr(cls, name, guarded(name, method))

    #: False when card numbers must never reach the service (the card is entered in the
    #: processor's own form and only a payment method id is sent)
    accepts_card_numbers: bool = True
    #: the processor's name, as settings and answers say it
    name: str = "processor"
    #: how long the processor remembers an idempotency key (None: for ever). After it,
    #: a call is never sent again under its key without reading back first, and an
    #: intent read back absent is refused (nothing moved)
    key_memory: timedelta | None = None
    #: True when the processor can keep a card for later charges
    saves_cards: bool = False
    #: True when a card taken off file is also taken off at the processor (`forget_card`:
    #: Stripe detaches its PaymentMethod from the patient's Customer); False when the
    #: processor's token simply stays unused
    forgets_cards: bool = False
    #: True when `account` is the practice's own id: the processor keeps each practice's
    #: credentials itself (Clearent's API key per practice), rather than one platform key
    #: and an account id per practice (Stripe Connect)
    keyed_by_practice: bool = False
    #: what the processor does beyond authorise, void, capture and refund
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: what pays a deposit
    settles_by: ClassVar[SettledBy] = SettledBy.CUTOFF
    #: in words, what the processor does instead of a capability it lacks (read by
    #: `without`; a capability not listed is said generically)
    instead: ClassVar[dict[Capability, str]] = {}

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def without(self, capability: Capability) -> str:
        """Why this processor cannot do what `capability` names, in words."""
        return self.instead.get(capability) or f"{self.name} has no {capability.value}"

    def unsupported(self, capability: Capability) -> Unsupported:
        return Unsupported(capability, self.without(capability))

    @abstractmethod
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
        """Authorise. `reference` makes a retried charge idempotent. `saved_card`: charge
        the stored card off-session (no card, terminal or payment_method given)."""

    def save_card(
        self,
        *,
        reference: UUID,
        card: CardInput | None = None,
        payment_method: str | None = None,
        account: str | None = None,
    ) -> SavedCard:
        """Keep a card at the processor for later charges (the patient consented). Same
        reference -> same SavedCard, nothing saved twice. Raises ProcessorRefused (final)
        or OutcomeUnknown (answer lost; read back before sending again). Default: raises
        ProcessorRefused("<name> cannot keep cards")."""
        raise ProcessorRefused(f"{self.name} cannot keep cards")

    def keep_card(
        self,
        *,
        reference: UUID,
        patient_id: UUID,
        customer: str | None = None,
        card: CardInput | None = None,
        payment_method: str | None = None,
        account: str | None = None,
    ) -> SavedCard:
        """Keep a card for the patient `patient_id`: where the processor has customers
        (Stripe), under `customer` (the patient's customer there, known from a card kept
        before) or a new one for the patient. Otherwise the card is kept as `save_card`
        keeps it (the patient is the ledger's business only)."""
        return self.save_card(
            reference=reference, card=card, payment_method=payment_method, account=account
        )

    def forget_card(self, *, saved: SavedCard, reference: UUID, account: str | None = None) -> None:
        """Take a kept card off at the processor (its patient's consent ended). Done again
        with the same reference, or once it is off, it changes nothing. Raises
        ProcessorRefused (final) or OutcomeUnknown (answer lost; the same request again
        finishes it). Only called where `forgets_cards` is True."""
        raise ProcessorRefused(f"{self.name} keeps no card to take off")

    @abstractmethod
    def void(self, *, transaction_id: str, reference: UUID, account: str | None = None) -> str:
        """Remove an unsettled sale from its open batch; returns the void's id. Raises
        ProcessorRefused when the processor refuses (final) and OutcomeUnknown when its
        answer was lost."""

    @abstractmethod
    def capture(
        self, *, transaction_id: str, amount: int, reference: UUID, account: str | None = None
    ) -> Capture:
        """Capture an authorised sale as its batch closes; raises CaptureFailed when the
        processor refuses. Made again with the same reference it captures nothing more."""

    @abstractmethod
    def sale_fee(self, *, amount: int, fee_rate_bps: int) -> int:
        """The processing fee (cents) the processor keeps from a settled sale."""

    @abstractmethod
    def refund(
        self, *, transaction_id: str, amount: int, reference: UUID, account: str | None = None
    ) -> str:
        """Return money of a settled sale to the card; returns the refund's id. Raises
        ProcessorRefused when the processor refuses (final: nothing moved) and
        OutcomeUnknown when its answer was lost."""

    @abstractmethod
    def look_up(
        self, *, effect: Effect, reference: UUID, transaction_id: str, account: str | None = None
    ) -> LookedUp:
        """Read back what the processor did under `reference` (a void, capture or refund of
        the sale `transaction_id`). Raises OutcomeUnknown when the processor cannot be read
        now (the reconciler tries again later)."""

    # -- capabilities: a processor that lacks one raises Unsupported -----------------

    def payout(self, account: str | None, payout_id: str) -> dict[str, Any]:
        """PAYOUTS: the payout as the processor holds it now (an event's copy may be
        older): its `status` ("paid", "failed", ...), `arrival_date` (a Unix time),
        `failure_code` and `failure_message`."""
        raise self.unsupported(Capability.PAYOUTS)

    def payout_items(self, account: str | None, payout_id: str) -> list[PayoutItem]:
        """PAYOUTS: every item the payout carries, with the processor's fee of each."""
        raise self.unsupported(Capability.PAYOUTS)

    def refund_now(self, account: str | None, refund_id: str) -> dict[str, Any]:
        """REFUND_STATUS: the refund as the processor holds it now: its `status`
        ("failed" when it failed after it was made), `failure_reason` and the
        `payment_intent` it refunds."""
        raise self.unsupported(Capability.REFUND_STATUS)

    def readers(self, account: str | None) -> list[dict[str, Any]]:
        """READERS: the practice's card readers."""
        raise self.unsupported(Capability.READERS)

    def register_reader(
        self, account: str | None, *, code: str, label: str | None, key: str
    ) -> dict[str, Any]:
        """READERS: register a reader by the code it shows (`key` makes it idempotent)."""
        raise self.unsupported(Capability.READERS)

    def label_reader(self, account: str | None, reader_id: str, label: str) -> dict[str, Any]:
        """READERS: change a reader's label."""
        raise self.unsupported(Capability.READERS)

    def batch_settings(self, account: str | None) -> BatchSettings:
        """BATCHES: whether the processor closes the batch itself, and when."""
        raise self.unsupported(Capability.BATCHES)

    def batches(self, account: str | None, status: str = "CLOSED") -> list[Batch]:
        """BATCHES: the practice's batches of a status (OPEN or CLOSED)."""
        raise self.unsupported(Capability.BATCHES)

    def close_batch(
        self, account: str | None, *, batch_id: str, total_count: int, net_amount: int
    ) -> None:
        """BATCHES: close the open batch `batch_id` if it holds these totals: returns once
        closed; ProcessorRefused when the processor refuses it (the batch stays open),
        ProcessorUnavailable when it was not reached, OutcomeUnknown when the answer was
        lost."""
        raise self.unsupported(Capability.BATCHES)

    def batch_items(self, account: str | None, batch_id: str) -> list[PayoutItem]:
        """BATCHES: the sales and refunds a batch holds, as payout items (a sale by the
        processor's id of its authorisation, a refund by the ledger's refund id)."""
        raise self.unsupported(Capability.BATCHES)
