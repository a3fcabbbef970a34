"""The Stripe card processor, through the official `stripe` SDK, as a Connect platform.

Each practice is a connected account: every call carries its `Stripe-Account`.
- charge: a PaymentIntent with `capture_method=manual`, confirmed at once with the
  PaymentMethod id the browser got from Stripe's Payment Element (no card number
  ever reaches the service): `requires_capture` is an approval, a card error a decline;
- void: cancel the PaymentIntent (before the cut-off; no money moves, no fee);
- capture: at the batch close, capture the PaymentIntent;
- refund: a Stripe Refund of the PaymentIntent, never beyond what remains.

Every call that changes something sends an Idempotency-Key derived from the ledger's
reference (the intent id), so a retry, a restart or a batch close run again replays the
first answer and moves no more money. A rate limit (429), a 5xx or a lost connection
is retried with backoff under the same key; an outcome that stays unknown is read back
(the PaymentIntent's status, the Refund by its metadata) before trying again. The
secret key is never logged nor put in an answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

import stripe

from adapters.processor.port import (
    ABSENT,
    Capture,
    CaptureFailed,
    CardInput,
    CardProcessor,
    ChargeResult,
    Effect,
    LookedUp,
    OutcomeUnknown,
    ProcessorRefused,
    ProcessorUnavailable,
    ReferenceReused,
)
from domain.deposits import fee_for
from domain.errors import InvalidCard, InvalidValue, NotFound

log = logging.getLogger("payledger.stripe")

T = TypeVar("T")

#: the metadata key that carries the ledger's reference on Stripe's objects
REFERENCE = "payledger_reference"
CURRENCY = "usd"
#: a decline code in words
DECLINE_WORDS = {
    "generic_decline": "card declined",
    "insufficient_funds": "insufficient funds",
    "lost_card": "card reported lost",
    "stolen_card": "card reported stolen",
    "expired_card": "card expired",
    "incorrect_cvc": "incorrect CVC",
    "processing_error": "processing error at the card network",
    "do_not_honor": "card declined by the bank (do not honor)",
}


class StripeProcessor(CardProcessor):
    accepts_card_numbers = False
    name = "stripe"
    #: Stripe keeps an idempotency key's answer for 24 hours
    key_memory = timedelta(hours=24)

    def __init__(
        self,
        secret_key: str,
        *,
        api_base: str | None = None,
        attempts: int = 4,
        backoff: float = 0.5,
        reader_timeout: float = 90.0,
        reader_poll: float = 0.5,
    ) -> None:
        if not secret_key:
            raise ValueError("PAYLEDGER_STRIPE_SECRET_KEY is not set")
        addresses: dict[str, str] = {"api": api_base} if api_base else {}
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses=addresses,  # type: ignore[arg-type]
            max_network_retries=0,  # retried here, with read-back of unknown outcomes
        )
        self._attempts = attempts
        self._backoff = backoff
        self._reader_timeout = reader_timeout
        self._reader_poll = reader_poll

    def __repr__(self) -> str:
        return "StripeProcessor()"  # never the key

    # -- the port ----------------------------------------------------------------

    def charge(
        self,
        *,
        reference: UUID,
        amount: int,
        card: CardInput | None = None,
        terminal_id: str | None = None,
        payment_method: str | None = None,
        account: str | None = None,
    ) -> ChargeResult:
        if card is not None:
            raise InvalidCard(
                "card numbers are not accepted with Stripe: the card is entered in Stripe's "
                "Payment Element and only its PaymentMethod id is sent, as payment_method",
                field="card",
            )
        if terminal_id is not None:
            if payment_method is not None:
                raise InvalidValue(
                    "a terminal payment takes the card at the reader: send terminal_id only",
                    field="payment_method",
                )
            return self._reader_charge(reference, amount, terminal_id, account)
        if not payment_method:
            raise InvalidValue(
                "with Stripe a payment needs payment_method (the PaymentMethod id from Stripe's "
                "Payment Element)",
                field="payment_method",
            )
        options = self._options(account, f"payledger-charge-{reference}")
        params: dict[str, Any] = {
            "amount": amount,
            "currency": CURRENCY,
            "capture_method": "manual",
            "confirm": True,
            "payment_method": payment_method,
            "payment_method_types": ["card"],
            "metadata": {REFERENCE: str(reference)},
            "expand": ["latest_charge"],
        }

        def create() -> ChargeResult:
            try:
                intent = self._client.v1.payment_intents.create(params, options)  # type: ignore[arg-type]
            except stripe.CardError as error:
                return declined(error)
            return charge_result(intent)

        def read_back() -> ChargeResult | None:
            found = self._client.v1.payment_intents.search(
                {
                    "query": f"metadata['{REFERENCE}']:'{reference}'",
                    "expand": ["data.latest_charge"],
                },
                {"stripe_account": options["stripe_account"]},
            )
            for intent in found.data:
                return charge_result(intent)
            return None

        return self._call("charge", create, read_back)

    def _reader_charge(
        self, reference: UUID, amount: int, reader_id: str, account: str | None
    ) -> ChargeResult:
        """Stripe Terminal's server-driven flow: a card_present PaymentIntent handed to the
        reader (`process_payment_intent`), then the reader's result, polled for a bounded
        time; a card not presented in time cancels the reader's action and the intent."""
        options = self._options(account, f"payledger-charge-{reference}")
        scope = {"stripe_account": options["stripe_account"]}
        params: dict[str, Any] = {
            "amount": amount,
            "currency": CURRENCY,
            "capture_method": "manual",
            "payment_method_types": ["card_present"],
            "metadata": {REFERENCE: str(reference)},
        }

        def create() -> str:
            intent = self._client.v1.payment_intents.create(params, options)  # type: ignore[arg-type]
            return str(intent.id)

        def find() -> str | None:
            query = f"metadata['{REFERENCE}']:'{reference}'"
            found = self._client.v1.payment_intents.search({"query": query}, scope)  # type: ignore[arg-type]
            return next((str(i.id) for i in found.data), None)

        intent_id = self._call("charge", create, find)
        intent = self._retrieve(intent_id, options)
        if intent.status in ("requires_payment_method", "requires_confirmation") and (
            intent.last_payment_error is None
        ):

            def hand_off() -> str:
                try:
                    self._client.v1.terminal.readers.process_payment_intent(
                        reader_id,
                        {"payment_intent": intent_id},
                        {**scope, "idempotency_key": f"payledger-reader-{reference}"},  # type: ignore[arg-type]
                    )
                except stripe.InvalidRequestError as error:
                    raise InvalidValue(
                        f"the reader {reader_id} cannot take the payment: "
                        f"{error.user_message or error}",
                        field="terminal_id",
                    ) from None
                return reader_id

            self._call("reader", hand_off, lambda: None)
        deadline = time.monotonic() + self._reader_timeout
        while True:
            intent = self._client.v1.payment_intents.retrieve(
                intent_id,
                {"expand": ["latest_charge"]},
                scope,  # type: ignore[arg-type]
            )
            if intent.status == "requires_capture" or intent.last_payment_error is not None:
                return charge_result(intent)
            reader = self._client.v1.terminal.readers.retrieve(reader_id, {}, scope)  # type: ignore[arg-type]
            action = reader.action
            if action is not None and action.status == "failed":
                return ChargeResult(
                    False, "card", "", decline_reason=in_words(action.failure_code or "failed")
                )
            if time.monotonic() >= deadline:
                return self._reader_timed_out(reader_id, intent_id, scope)
            time.sleep(self._reader_poll)

    def _reader_timed_out(
        self, reader_id: str, intent_id: str, scope: dict[str, Any]
    ) -> ChargeResult:
        try:
            self._client.v1.terminal.readers.cancel_action(reader_id, {}, scope)  # type: ignore[arg-type]
            self._client.v1.payment_intents.cancel(intent_id, {}, scope)  # type: ignore[arg-type]
        except stripe.InvalidRequestError:
            intent = self._client.v1.payment_intents.retrieve(
                intent_id,
                {"expand": ["latest_charge"]},
                scope,  # type: ignore[arg-type]
            )
            if intent.status == "requires_capture":  # presented at the last moment
                return charge_result(intent)
        return ChargeResult(
            False, "card", "", decline_reason="no card was presented at the reader in time"
        )

    # -- payouts -----------------------------------------------------------------------

    def payout_items(self, account: str | None, payout_id: str) -> list[PayoutItem]:
        """The charges and refunds a payout carries, with Stripe's fee of each
        (`balance_transactions?payout=`, every page)."""
        scope = {"stripe_account": self._options(account, "")["stripe_account"]}
        items: list[PayoutItem] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {
                "payout": payout_id,
                "limit": 100,
                "expand": ["data.source"],
            }
            if after:
                params["starting_after"] = after
            page = self._call(
                "payout reading",
                lambda p=params: self._client.v1.balance_transactions.list(p, scope),  # type: ignore[misc, arg-type]
                lambda: None,
            )
            for txn in page.data:
                items.append(payout_item(txn))
            if not page.has_more or not page.data:
                return items
            after = str(page.data[-1].id)

    # -- readers (Stripe Terminal) -----------------------------------------------------

    def readers(self, account: str | None) -> list[dict[str, Any]]:
        scope = {"stripe_account": self._options(account, "")["stripe_account"]}
        listed = self._client.v1.terminal.readers.list({"limit": 100}, scope)  # type: ignore[arg-type]
        return [reader_out(r) for r in listed.data]

    def register_reader(
        self, account: str | None, *, code: str, label: str | None, key: str
    ) -> dict[str, Any]:
        options = self._options(account, f"payledger-reader-register-{key}")
        params: dict[str, Any] = {"registration_code": code}
        if label:
            params["label"] = label

        def register() -> dict[str, Any]:
            try:
                made = self._client.v1.terminal.readers.create(params, options)  # type: ignore[arg-type]
            except stripe.InvalidRequestError as error:
                raise ProcessorRefused(
                    f"Stripe did not register the reader: {error.user_message or error}",
                    field="registration_code",
                ) from None
            return reader_out(made)

        return self._call("reader registration", register, lambda: None)

    def label_reader(self, account: str | None, reader_id: str, label: str) -> dict[str, Any]:
        scope = {"stripe_account": self._options(account, "")["stripe_account"]}

        def label_it() -> dict[str, Any]:
            try:
                made = self._client.v1.terminal.readers.update(reader_id, {"label": label}, scope)  # type: ignore[arg-type]
            except stripe.InvalidRequestError as error:
                if error.http_status == 404:
                    raise NotFound(f"no reader {reader_id} in this practice") from None
                raise ProcessorRefused(
                    f"Stripe did not change the label: {error.user_message or error}"
                ) from None
            return reader_out(made)

        return self._call("reader label", label_it, lambda: None)

    def void(self, *, transaction_id: str, reference: UUID, account: str | None = None) -> str:
        options = self._options(account, f"payledger-void-{reference}")

        def cancel() -> str:
            try:
                intent = self._client.v1.payment_intents.cancel(transaction_id, {}, options)  # type: ignore[arg-type]
            except stripe.InvalidRequestError as error:
                intent = self._retrieve(transaction_id, options)
                if intent.status != "canceled":
                    raise ProcessorRefused(
                        f"Stripe refused to cancel the payment: {error.user_message or error}"
                    ) from None
            return str(intent.id)

        def read_back() -> str | None:
            intent = self._retrieve(transaction_id, options)
            return str(intent.id) if intent.status == "canceled" else None

        return self._call("void", cancel, read_back)

    def capture(
        self, *, transaction_id: str, amount: int, reference: UUID, account: str | None = None
    ) -> Capture:
        """Capture, with Stripe's fee of it (from the charge's balance transaction)."""
        options = self._options(account, f"payledger-capture-{reference}")
        expand = {"expand": ["latest_charge.balance_transaction"]}
        scope = {"stripe_account": options["stripe_account"]}

        def capture() -> Capture:
            try:
                intent = self._client.v1.payment_intents.capture(
                    transaction_id,
                    {"amount_to_capture": amount, **expand},  # type: ignore[typeddict-item, arg-type]
                    options,  # type: ignore[arg-type]
                )
            except (stripe.InvalidRequestError, stripe.CardError) as error:
                intent = self._client.v1.payment_intents.retrieve(transaction_id, expand, scope)  # type: ignore[arg-type]
                if intent.status == "succeeded":  # captured by an earlier run
                    return captured(intent)
                raise CaptureFailed(
                    f"Stripe did not capture it ({intent.status}): {error.user_message or error}"
                ) from None
            return captured(intent)

        def read_back() -> Capture | None:
            intent = self._client.v1.payment_intents.retrieve(transaction_id, expand, scope)  # type: ignore[arg-type]
            return captured(intent) if intent.status == "succeeded" else None

        return self._call("capture", capture, read_back)

    def refund(
        self, *, transaction_id: str, amount: int, reference: UUID, account: str | None = None
    ) -> str:
        options = self._options(account, f"payledger-refund-{reference}")

        def refund() -> str:
            try:
                made = self._client.v1.refunds.create(
                    {
                        "payment_intent": transaction_id,
                        "amount": amount,
                        "metadata": {REFERENCE: str(reference)},
                    },
                    options,  # type: ignore[arg-type]
                )
            except stripe.InvalidRequestError as error:
                raise ProcessorRefused(
                    f"Stripe refused the refund: {error.user_message or error}"
                ) from None
            return str(made.id)

        def read_back() -> str | None:
            listed = self._client.v1.refunds.list(
                {"payment_intent": transaction_id, "limit": 100},
                {"stripe_account": options["stripe_account"]},
            )
            for made in listed.data:
                if made.metadata is not None and made.metadata.to_dict().get(REFERENCE) == str(
                    reference
                ):
                    return str(made.id)
            return None

        return self._call("refund", refund, read_back)

    def look_up(
        self, *, effect: Effect, reference: UUID, transaction_id: str, account: str | None = None
    ) -> LookedUp:
        """Read back with consistent reads only: the PaymentIntent by its id (a void, a
        capture), the payment's Refunds listed by PaymentIntent (a refund, by its metadata)."""
        scope = {"stripe_account": self._options(account, "")["stripe_account"]}
        try:
            if effect == Effect.REFUND:
                listed = self._client.v1.refunds.list(
                    {"payment_intent": transaction_id, "limit": 100},
                    scope,  # type: ignore[arg-type]
                )
                for made in listed.auto_paging_iter():
                    meta = made.metadata.to_dict() if made.metadata is not None else {}
                    if meta.get(REFERENCE) == str(reference):
                        if made.status in ("failed", "canceled"):
                            return LookedUp("refused", str(made.id), reason=refund_failure(made))
                        return LookedUp("succeeded", str(made.id))
                return LookedUp("absent")
            expand = {"expand": ["latest_charge.balance_transaction"]}
            intent = self._client.v1.payment_intents.retrieve(transaction_id, expand, scope)  # type: ignore[arg-type]
        except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as error:
            raise OutcomeUnknown(
                f"Stripe could not be read back ({type(error).__name__}); tried again later"
            ) from None
        if effect == Effect.VOID:
            return LookedUp("succeeded", str(intent.id)) if intent.status == "canceled" else ABSENT
        if effect == Effect.CAPTURE:
            if intent.status == "succeeded":
                return LookedUp("succeeded", str(intent.id), fee=captured(intent).fee)
            if intent.status == "canceled":
                return LookedUp("refused", reason=f"the authorisation was {intent.status}")
            return ABSENT
        return charge_looked_up(intent)

    def sale_fee(self, *, amount: int, fee_rate_bps: int) -> int:
        """The practice's rate: Stripe's own fee per item is reconciled with its payout."""
        return fee_for(amount, fee_rate_bps)

    # -- the calls ---------------------------------------------------------------

    def _options(self, account: str | None, key: str) -> dict[str, Any]:
        if not account:
            raise InvalidValue(
                "this practice has no Stripe account connected: set stripe_account (its "
                "acct_... id) in the practice's settings",
                field="stripe_account",
            )
        return {"stripe_account": account, "idempotency_key": key}

    def _retrieve(self, intent_id: str, options: dict[str, Any]) -> stripe.PaymentIntent:
        return self._client.v1.payment_intents.retrieve(
            intent_id, {}, {"stripe_account": options["stripe_account"]}
        )

    def _call(self, kind: str, action: Callable[[], T], read_back: Callable[[], T | None]) -> T:
        """Run `action`; a rate limit is retried under the same key, an unknown outcome (a 5xx,
        a lost connection) is read back first, then retried under the same key."""
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(min(self._backoff * 2 ** (attempt - 1), 8.0))
            try:
                return action()
            except stripe.IdempotencyError:
                raise ReferenceReused(
                    f"Stripe refused the {kind}: its idempotency key was already used for "
                    "another request"
                ) from None
            except stripe.RateLimitError:
                log.warning("stripe %s: rate limited, retrying (attempt %s)", kind, attempt + 1)
                continue
            except stripe.AuthenticationError:
                raise ProcessorUnavailable(
                    "Stripe refused the platform's secret key: check PAYLEDGER_STRIPE_SECRET_KEY"
                ) from None
            except stripe.PermissionError:
                raise ProcessorUnavailable(
                    "Stripe refused access to the practice's connected account: check "
                    "stripe_account in the practice's settings"
                ) from None
            except (stripe.APIConnectionError, stripe.APIError) as error:
                log.warning(
                    "stripe %s: outcome unknown (%s), reading it back", kind, type(error).__name__
                )
            try:
                known = read_back()
            except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError):
                known = None
            if known is not None:
                return known
        raise ProcessorUnavailable(
            f"Stripe could not be reached for the {kind} after {self._attempts} attempts; "
            "nothing was recorded, try again"
        )


@dataclass(frozen=True)
class PayoutItem:
    """One balance transaction of a payout: a charge (`transaction_id` = its PaymentIntent),
    a refund (and the ledger's refund id from its metadata), a dispute's adjustment (its
    dispute and the disputed PaymentIntent), or something else."""

    kind: str
    balance_transaction: str
    transaction_id: str | None
    refund_reference: str | None
    amount: int
    fee: int
    #: the dispute (`dp_...`) of an `adjustment` that a dispute made (its withdrawal,
    #: or its reinstatement when won); None otherwise
    dispute_id: str | None = None


def payout_item(txn: Any) -> PayoutItem:
    source = txn.source
    intent = getattr(source, "payment_intent", None) if not isinstance(source, str) else None
    reference = None
    if txn.type == "refund" and not isinstance(source, str) and source.metadata is not None:
        reference = source.metadata.to_dict().get(REFERENCE)
    dispute_id = None
    if not isinstance(source, str) and getattr(source, "object", None) == "dispute":
        dispute_id = str(source.id)
    return PayoutItem(
        kind=str(txn.type),
        balance_transaction=str(txn.id),
        transaction_id=str(intent) if intent else None,
        refund_reference=reference,
        amount=int(txn.amount),
        fee=int(txn.fee),
        dispute_id=dispute_id,
    )


def captured(intent: stripe.PaymentIntent) -> Capture:
    charge = intent.latest_charge
    txn = charge.balance_transaction if isinstance(charge, stripe.Charge) else None
    fee = int(txn.fee) if isinstance(txn, stripe.BalanceTransaction) else None
    return Capture(str(intent.id), fee)


def charge_looked_up(intent: stripe.PaymentIntent) -> LookedUp:
    result = charge_result(intent)
    if result.approved:
        return LookedUp("succeeded", result.transaction_id)
    return LookedUp("refused", str(intent.id), reason=result.decline_reason)


def refund_failure(refund: Any) -> str:
    reason = getattr(refund, "failure_reason", None) or refund.status
    return f"Stripe's refund {refund.status}: {str(reason).replace('_', ' ')}"


def charge_result(intent: stripe.PaymentIntent) -> ChargeResult:
    brand, last4 = card_of(intent)
    if intent.status == "requires_capture":
        return ChargeResult(True, brand, last4, transaction_id=str(intent.id))
    error = intent.last_payment_error
    code = (error.decline_code or error.code) if error is not None else None
    return ChargeResult(False, brand, last4, decline_reason=in_words(code or intent.status))


def declined(error: stripe.CardError) -> ChargeResult:
    detail = error.error
    method = detail.payment_method if detail is not None else None
    card = method.card if method is not None else None
    code = (detail.decline_code or detail.code) if detail is not None else None
    return ChargeResult(
        False,
        str(card.brand) if card is not None else "card",
        str(card.last4) if card is not None else "",
        decline_reason=in_words(code or "card_declined"),
    )


def card_of(intent: stripe.PaymentIntent) -> tuple[str, str]:
    charge = intent.latest_charge
    if isinstance(charge, stripe.Charge) and charge.payment_method_details is not None:
        details = charge.payment_method_details
        card = details.card if details.type == "card" else details.card_present
        if card is not None:
            return str(card.brand), str(card.last4)
    return "card", ""


def reader_out(reader: Any) -> dict[str, Any]:
    return {
        "id": str(reader.id),
        "label": reader.label,
        "device_type": reader.device_type,
        "serial_number": reader.serial_number,
        "status": reader.status,
    }


def in_words(code: str) -> str:
    return DECLINE_WORDS.get(code, code.replace("_", " "))
