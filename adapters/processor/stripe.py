"""The Stripe card processor, through the official `stripe` SDK, as a Connect platform.

Each practice is a connected account: every call carries its `Stripe-Account`.
- charge: a PaymentIntent with `capture_method=manual`, confirmed at once with the
  PaymentMethod id the browser got from Stripe's Payment Element (no card number
  ever reaches the service): `requires_capture` is an approval, a card error a decline;
- void: cancel the PaymentIntent (before the cut-off; no money moves, no fee);
- capture: at the batch close, capture the PaymentIntent;
- refund: a Stripe Refund of the PaymentIntent, never beyond what remains;
- keep a card (with the patient's consent): a Customer for the patient (made once: its
  id is recorded with the card and used again for the patient's next cards; metadata
  with the patient's id; its key is the patient's, so a card refused after it was made
  leaves it to the next card), then a SetupIntent for that Customer, `usage=off_session`,
  confirmed at once with the PaymentMethod id from Stripe's Payment Element: Stripe
  attaches the card's PaymentMethod to the Customer, whose id, brand, last four and
  expiry are kept (never the number);
- charge a kept card: a PaymentIntent with its `customer` and `payment_method`,
  `off_session=true`, `confirm=true` (and `capture_method=manual`, as every sale): an
  approval, or a decline (`card_declined`; `authentication_required` when the issuer
  asks for 3-D Secure, which cannot be done without the patient: the intent is then
  cancelled);
- take a kept card off: detach its PaymentMethod from the Customer.

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
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

import stripe

from adapters.processor.port import (
    ABSENT,
    Capability,
    Capture,
    CaptureFailed,
    CardInput,
    CardProcessor,
    ChargeResult,
    Effect,
    LookedUp,
    OutcomeUnknown,
    PayoutItem,
    ProcessorRefused,
    ProcessorUnavailable,
    ReferenceReused,
    SavedCard,
    SettledBy,
)
from domain.deposits import fee_for
from domain.errors import InvalidCard, InvalidValue, NotFound, PaymentsError

log = logging.getLogger("payledger.stripe")

T = TypeVar("T")

#: the API version every request asks for: the one the pinned SDK (pyproject.toml) is
#: generated from and tested against (tests/fakes/stripe_params.py); a new SDK is taken
#: with its version, after the tests pass on it
STRIPE_VERSION = "2026-10-28.endive"
#: how far back a lost create is looked for, in seconds (clocks differ a little)
CLOCK_SKEW = 300
#: the decline of a card whose issuer asks for 3-D Secure
NEEDS_AUTHENTICATION = (
    "the card needs authentication (3-D Secure), which this payment cannot complete; "
    "the payment was cancelled at Stripe: ask for another card"
)
#: the metadata key that carries the ledger's reference on Stripe's objects
REFERENCE = "payledger_reference"
#: the metadata key that carries the patient's id on their Customer
PATIENT = "payledger_patient"
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
    saves_cards = True
    forgets_cards = True
    #: Stripe keeps an idempotency key's answer for 24 hours
    key_memory = timedelta(hours=24)
    capabilities = frozenset(
        {
            Capability.PAYOUTS,
            Capability.REFUND_STATUS,
            Capability.READERS,
            Capability.PAYMENT_ELEMENT,
        }
    )
    #: a deposit is paid when Stripe's payout that carries it arrives (payout.paid)
    settles_by = SettledBy.PAYOUTS

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
            stripe_version=STRIPE_VERSION,
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
        saved_card: SavedCard | None = None,
    ) -> ChargeResult:
        if saved_card is not None:
            return self._off_session_charge(reference, amount, saved_card, account)
        if card is not None:
            raise InvalidCard(
                "card numbers are not accepted with Stripe: the card is entered in Stripe's "
                "Payment Element and only its PaymentMethod id is sent, as payment_method",
                field="card",
            )
        if terminal_id is not None:
            if payment_method is not None:
                raise InvalidValue(
                    "a terminal payment takes the card at the reader: send the reader only",
                    field="payment_method",
                )
            return self._reader_charge(reference, amount, terminal_id, account)
        if not payment_method:
            raise InvalidValue(
                "with Stripe a payment needs the card's PaymentMethod id from Stripe's Payment "
                "Element",
                field="payment_method",
            )
        since = int(time.time()) - CLOCK_SKEW
        intent = self._create_intent(
            reference,
            account,
            since,
            {
                "amount": amount,
                "currency": CURRENCY,
                "capture_method": "manual",
                "allowed_payment_method_types": ["card"],
                "payment_method": payment_method,
                "metadata": {REFERENCE: str(reference)},
                "expand": ["latest_charge"],
            },
        )
        return self._confirm(reference, account, intent)

    def _create_intent(
        self, reference: UUID, account: str | None, since: int, params: dict[str, Any]
    ) -> stripe.PaymentIntent:
        """Create the PaymentIntent unconfirmed, under the charge's key. A lost answer is
        read back with a consistent list (the account's PaymentIntents created since just
        before the call, matched on the reference in their metadata), never with Search,
        which Stripe documents as eventually consistent."""
        options = self._options(account, f"payledger-charge-{reference}")

        def create() -> stripe.PaymentIntent:
            return self._client.v1.payment_intents.create(params, options)  # type: ignore[arg-type]

        return self._call("charge", create, lambda: self._intent_of(reference, account, since))

    def _intent_of(
        self, reference: UUID, account: str | None, since: int
    ) -> stripe.PaymentIntent | None:
        """The account's PaymentIntent made under `reference` since `since` (a consistent
        list, every page), or None."""
        scope = {"stripe_account": self._options(account, "")["stripe_account"]}
        listed = self._client.v1.payment_intents.list(
            {"created": {"gte": since}, "limit": 100, "expand": ["data.latest_charge"]},
            scope,  # type: ignore[arg-type]
        )
        for intent in listed.auto_paging_iter():
            meta = intent.metadata.to_dict() if intent.metadata is not None else {}
            if meta.get(REFERENCE) == str(reference):
                return intent
        return None

    def _confirm(
        self, reference: UUID, account: str | None, intent: stripe.PaymentIntent
    ) -> ChargeResult:
        """Confirm the PaymentIntent with its PaymentMethod. `error_on_requires_action`:
        a card that needs 3-D Secure is refused at once (the service has no customer to
        show the challenge to) and its intent cancelled, a decline saying why. A lost
        answer is read back by retrieving the intent by its id."""
        intent_id = str(intent.id)
        settled = confirmed(intent)
        if settled is not None:  # confirmed by an earlier attempt
            return self._finish(reference, account, intent_id, settled)
        scope = {"stripe_account": self._options(account, "")["stripe_account"]}
        params = {"error_on_requires_action": True, "expand": ["latest_charge"]}
        keys = iter(range(self._attempts))

        def confirm() -> ChargeResult:
            # A PaymentIntent authorises at most once, so once a read back showed it still
            # unconfirmed, a new key is safe (Stripe replays a saved 500 for the old one).
            attempt = next(keys, 0)
            key = f"payledger-confirm-{reference}" + (f"-{attempt}" if attempt else "")
            try:
                done = self._client.v1.payment_intents.confirm(
                    intent_id,
                    params,  # type: ignore[arg-type]
                    {**scope, "idempotency_key": key},  # type: ignore[arg-type]
                )
            except stripe.CardError as error:
                if (error.code or "") == "authentication_required":
                    return needs_authentication(*card_of_error(error))
                return declined(error)
            except stripe.InvalidRequestError as error:
                # An earlier attempt whose answer was lost (and could not be read back)
                # confirmed it already: its outcome is the intent's, not a refusal.
                if error.code == "payment_intent_unexpected_state":
                    settled = confirmed(self._retrieve(intent_id, scope))
                    if settled is not None:
                        return settled
                raise
            return confirmed(done) or charge_result(done)

        def read_back() -> ChargeResult | None:
            return confirmed(self._retrieve(intent_id, scope))

        return self._finish(reference, account, intent_id, self._call("charge", confirm, read_back))

    def _finish(
        self, reference: UUID, account: str | None, intent_id: str, result: ChargeResult
    ) -> ChargeResult:
        """A decline for want of authentication cancels the intent at Stripe, so nothing
        stays open there; the decline is recorded once Stripe confirms the cancel."""
        if result.approved or result.decline_reason != NEEDS_AUTHENTICATION:
            return result
        options = self._options(account, f"payledger-abandon-{reference}")

        def cancel() -> str:
            try:
                self._client.v1.payment_intents.cancel(
                    intent_id,
                    {"cancellation_reason": "abandoned"},
                    options,  # type: ignore[arg-type]
                )
            except stripe.InvalidRequestError:
                if self._retrieve(intent_id, options).status != "canceled":
                    raise
            return intent_id

        def read_back() -> str | None:
            status = self._retrieve(intent_id, options).status
            return intent_id if status == "canceled" else None

        self._call("cancel", cancel, read_back)
        return result

    def _off_session_charge(
        self, reference: UUID, amount: int, saved: SavedCard, account: str | None
    ) -> ChargeResult:
        """A kept card charged without the patient: one PaymentIntent created confirmed,
        `off_session`, under the charge's key. A decline answers 402 (replayed as such
        under the key); a lost answer is read back with the consistent list of the
        account's PaymentIntents, matched on the reference."""
        if not saved.customer or not saved.token.startswith("pm_"):
            raise ProcessorRefused(
                "this card was not kept at Stripe: keep the patient's card again with Stripe"
            )
        options = self._options(account, f"payledger-charge-{reference}")
        params: dict[str, Any] = {
            "amount": amount,
            "currency": CURRENCY,
            "capture_method": "manual",
            "customer": saved.customer,
            "payment_method": saved.token,
            "off_session": True,
            "confirm": True,
            "metadata": {REFERENCE: str(reference)},
            "expand": ["latest_charge"],
        }
        since = int(time.time()) - CLOCK_SKEW
        intent_id = ""

        def create() -> ChargeResult:
            nonlocal intent_id
            try:
                intent = self._client.v1.payment_intents.create(params, options)  # type: ignore[arg-type]
            except stripe.CardError as error:
                detail = error.error
                made = detail.payment_intent if detail is not None else None
                intent_id = str(made.id) if made is not None else ""
                if (error.code or "") == "authentication_required":
                    return needs_authentication(*card_of_error(error))
                return declined(error)
            intent_id = str(intent.id)
            return confirmed(intent) or charge_result(intent)

        def read_back() -> ChargeResult | None:
            nonlocal intent_id
            found = self._intent_of(reference, account, since)
            if found is None:
                return None
            intent_id = str(found.id)
            return confirmed(found)

        result = self._call("charge", create, read_back)
        if not intent_id:
            return result
        return self._finish(reference, account, intent_id, result)

    # -- cards on file -----------------------------------------------------------------

    def save_card(
        self,
        *,
        reference: UUID,
        card: CardInput | None = None,
        payment_method: str | None = None,
        account: str | None = None,
    ) -> SavedCard:
        """A card kept for a patient the ledger does not name: its own Customer."""
        return self.keep_card(
            reference=reference,
            patient_id=None,
            card=card,
            payment_method=payment_method,
            account=account,
        )

    def keep_card(
        self,
        *,
        reference: UUID,
        patient_id: UUID | None,
        customer: str | None = None,
        card: CardInput | None = None,
        payment_method: str | None = None,
        account: str | None = None,
    ) -> SavedCard:
        """The patient's Customer (`customer`, or a new one), then a SetupIntent confirmed
        with the PaymentMethod for off-session use: the kept PaymentMethod's id, brand,
        last four and expiry. A card whose issuer asks for 3-D Secure to be kept is
        refused (the service cannot show the challenge); a declined card is refused."""
        if card is not None:
            raise InvalidCard(
                "card numbers are not accepted with Stripe: the card is entered in Stripe's "
                "Payment Element and only its PaymentMethod id is sent, as payment_method",
                field="card",
            )
        if not payment_method:
            raise InvalidValue(
                "with Stripe a card is kept from its PaymentMethod id, from Stripe's Payment "
                "Element",
                field="payment_method",
            )
        since = int(time.time()) - CLOCK_SKEW
        if customer is None:
            customer = self._customer(reference, patient_id, account, since)
        known = customer is not None
        if customer is None:
            customer = self._customer(reference, patient_id, account, since)
        try:
            made = self._setup(reference, customer, payment_method, account, since, "")
        except CustomerGone:
            if not known:
                raise
            # the patient's Customer was deleted at Stripe: a new one for this card
            customer = self._customer(reference, patient_id, account, since, again=True)
            made = self._setup(reference, customer, payment_method, account, since, "-again")
        return kept_card(made, customer)

    def _setup(
        self,
        reference: UUID,
        customer: str,
        payment_method: str,
        account: str | None,
        since: int,
        suffix: str,
    ) -> stripe.SetupIntent:
        """The SetupIntent confirmed at once for the Customer; a lost answer is read back
        with the consistent list of the Customer's SetupIntents made since just before."""
        options = self._options(account, f"payledger-setup-{reference}{suffix}")
        scope = {"stripe_account": options["stripe_account"]}
        params: dict[str, Any] = {
            "customer": customer,
            "payment_method": payment_method,
            "usage": "off_session",
            "confirm": True,
            "allowed_payment_method_types": ["card"],
            "metadata": {REFERENCE: str(reference)},
            "expand": ["payment_method"],
        }

        def setup() -> stripe.SetupIntent:
            try:
                return self._client.v1.setup_intents.create(params, options)  # type: ignore[arg-type]
            except stripe.CardError as error:
                detail = error.error
                code = (detail.decline_code or detail.code) if detail is not None else None
                raise ProcessorRefused(
                    f"Stripe did not keep the card: {in_words(code or 'card_declined')}",
                    field="payment_method",
                ) from None
            except stripe.InvalidRequestError as error:
                if error.code == "resource_missing" and error.param == "customer":
                    raise CustomerGone(
                        "Stripe no longer has the patient's customer: keep the card again"
                    ) from None
                raise

        def read_back() -> stripe.SetupIntent | None:
            listed = self._client.v1.setup_intents.list(
                {"customer": customer, "created": {"gte": since}, "limit": 100},
                scope,  # type: ignore[arg-type]
            )
            for made in listed.auto_paging_iter():
                meta = made.metadata.to_dict() if made.metadata is not None else {}
                if meta.get(REFERENCE) == str(reference) and made.status != "processing":
                    return self._client.v1.setup_intents.retrieve(
                        str(made.id),
                        {"expand": ["payment_method"]},
                        scope,  # type: ignore[arg-type]
                    )
            return None

        return self._call("card's keeping", setup, read_back)

    def _customer(
        self,
        reference: UUID,
        patient_id: UUID | None,
        account: str | None,
        since: int,
        *,
        again: bool = False,
    ) -> str:
        """A new Customer for the patient, under a key of the patient (so a card refused
        after its Customer was made leaves the Customer to the patient's next card, within
        Stripe's key memory; `again`: the patient's was deleted, a key of this card); a lost
        answer is read back with the consistent list of the account's Customers made since
        just before, matched on the patient's id."""
        owner = str(patient_id or reference)
        key = f"payledger-customer-{owner}" + (f"-{reference}" if again else "")
        options = self._options(account, key)
        scope = {"stripe_account": options["stripe_account"]}
        name = PATIENT if patient_id is not None else REFERENCE
        metadata = {name: owner}

        def create() -> str:
            made = self._client.v1.customers.create({"metadata": metadata}, options)  # type: ignore[arg-type]
            return str(made.id)

        def read_back() -> str | None:
            listed = self._client.v1.customers.list(
                {"created": {"gte": since}, "limit": 100},
                scope,  # type: ignore[arg-type]
            )
            for made in listed.auto_paging_iter():
                meta = made.metadata.to_dict() if made.metadata is not None else {}
                if meta.get(name) == owner:
                    return str(made.id)
            return None

        return self._call("patient's customer", create, read_back)

    def forget_card(self, *, saved: SavedCard, reference: UUID, account: str | None = None) -> None:
        """Detach the PaymentMethod from its Customer: it cannot be charged again. One
        that is detached already (by an earlier attempt, or at Stripe) is taken off."""
        options = self._options(account, f"payledger-detach-{reference}")
        scope = {"stripe_account": options["stripe_account"]}
        if not saved.token.startswith("pm_"):
            raise ProcessorRefused("this card was not kept at Stripe: nothing to take off there")

        def off() -> bool | None:
            try:
                method = self._client.v1.payment_methods.retrieve(saved.token, {}, scope)  # type: ignore[arg-type]
            except stripe.InvalidRequestError as error:
                if error.code == "resource_missing":
                    return True  # Stripe holds no such PaymentMethod any more
                raise
            return True if method.customer is None else None

        def detach() -> bool:
            try:
                self._client.v1.payment_methods.detach(saved.token, {}, options)  # type: ignore[arg-type]
            except stripe.InvalidRequestError as error:
                if off():
                    return True
                raise refused("card's taking off", error) from None
            return True

        self._call("card's taking off", detach, off)

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
            "allowed_payment_method_types": ["card_present"],
            "metadata": {REFERENCE: str(reference)},
        }
        since = int(time.time()) - CLOCK_SKEW
        intent_id = str(self._create_intent(reference, account, since, params).id)
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
        """Read back with consistent reads only, never Search: the PaymentIntent by its id
        (a void, a capture, a charge whose intent is known), the account's PaymentIntents
        listed by `created` over Stripe's key memory and matched on the reference (a charge
        whose create answer was lost), the payment's Refunds listed by PaymentIntent and
        matched on the reference (a refund)."""
        scope = {"stripe_account": self._options(account, "")["stripe_account"]}
        try:
            if effect == Effect.REFUND:
                return self._refund_looked_up(reference, transaction_id, scope)
            if effect == Effect.CHARGE and not transaction_id:
                since = int(time.time()) - int(self.key_memory.total_seconds()) - CLOCK_SKEW
                found = self._intent_of(reference, account, since)
                if found is None:
                    return ABSENT
                intent = found
            else:
                expand = {"expand": ["latest_charge.balance_transaction"]}
                intent = self._client.v1.payment_intents.retrieve(transaction_id, expand, scope)  # type: ignore[arg-type]
        except stripe.InvalidRequestError as error:
            if error.code == "resource_missing":
                return ABSENT
            raise OutcomeUnknown(f"Stripe could not be read back: {error}") from None
        except stripe.StripeError as error:
            raise OutcomeUnknown(
                f"Stripe could not be read back ({type(error).__name__}); tried again later"
            ) from None
        status = str(intent.status)
        if effect == Effect.VOID:
            if status == "canceled":
                return LookedUp("succeeded", str(intent.id))
            if status == "succeeded":
                return LookedUp("refused", str(intent.id), reason="the payment was captured")
            return ABSENT
        if effect == Effect.CAPTURE:
            if status == "succeeded":
                return LookedUp("succeeded", str(intent.id), fee=captured(intent).fee)
            if status == "canceled":
                return LookedUp("refused", reason=f"the authorisation was {status}")
            return ABSENT
        return charge_looked_up(intent)

    def _refund_looked_up(
        self, reference: UUID, transaction_id: str, scope: dict[str, Any]
    ) -> LookedUp:
        listed = self._client.v1.refunds.list(
            {"payment_intent": transaction_id, "limit": 100},
            scope,  # type: ignore[arg-type]
        )
        for made in listed.auto_paging_iter():
            meta = made.metadata.to_dict() if made.metadata is not None else {}
            if meta.get(REFERENCE) == str(reference):
                if made.status in ("failed", "canceled"):
                    if getattr(made, "failure_balance_transaction", None):
                        # Made, then refused by the card's bank: its balance transaction
                        # took the money and a `refund_failure` one gave it back.
                        return LookedUp(
                            "succeeded", str(made.id), failed_after=refund_failure(made)
                        )
                    return LookedUp("refused", str(made.id), reason=refund_failure(made))
                return LookedUp("succeeded", str(made.id))
        return ABSENT

    def payout(self, account: str | None, payout_id: str) -> dict[str, Any]:
        """The payout as Stripe holds it now (a webhook's copy may be older)."""
        scope = {"stripe_account": self._options(account, "")["stripe_account"]}
        found = self._call(
            "payout reading",
            lambda: self._client.v1.payouts.retrieve(payout_id, {}, scope),  # type: ignore[arg-type]
            lambda: None,
        )
        return dict(found.to_dict())

    def refund_now(self, account: str | None, refund_id: str) -> dict[str, Any]:
        """The refund as Stripe holds it now (a webhook's copy may be older)."""
        scope = {"stripe_account": self._options(account, "")["stripe_account"]}
        found = self._call(
            "refund reading",
            lambda: self._client.v1.refunds.retrieve(refund_id, {}, scope),  # type: ignore[arg-type]
            lambda: None,
        )
        return dict(found.to_dict())

    def sale_fee(self, *, amount: int, fee_rate_bps: int) -> int:
        """The practice's rate: Stripe's own fee per item is reconciled with its payout."""
        return fee_for(amount, fee_rate_bps)

    # -- the calls ---------------------------------------------------------------

    def _options(self, account: str | None, key: str) -> dict[str, Any]:
        if not account:
            raise InvalidValue(
                "this practice has no Stripe account connected: the service's operator "
                "connects it (its acct_... id) in the practice's settings",
                field="stripe_account",
            )
        return {"stripe_account": account, "idempotency_key": key}

    def _retrieve(self, intent_id: str, options: dict[str, Any]) -> stripe.PaymentIntent:
        return self._client.v1.payment_intents.retrieve(
            intent_id,
            {"expand": ["latest_charge"]},
            {"stripe_account": options["stripe_account"]},
        )

    def _call(self, kind: str, action: Callable[[], T], read_back: Callable[[], T | None]) -> T:
        """Run `action` under its Idempotency-Key, mapping every Stripe error: a rate limit
        is retried (Stripe did not act); a failure that may have reached Stripe (a 5xx, a
        timeout, a dropped connection) is read back first (a consistent read), then
        retried. Raises ProcessorRefused (422) for an invalid request, ReferenceReused
        (409) for a key used with other parameters, ProcessorUnavailable (502) when Stripe
        surely did not act (a rate limit to the end, a refused key or account), and
        OutcomeUnknown (502) when the last failure may have reached it."""
        maybe_acted = False
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
                # Stripe did not act on this attempt; an earlier one may have (its answer
                # lost), so the outcome stays unknown if it did
                log.warning("stripe %s: rate limited, retrying (attempt %s)", kind, attempt + 1)
                continue
            except stripe.AuthenticationError:
                raise ProcessorUnavailable(
                    "Stripe refused the platform's secret key: check PAYLEDGER_STRIPE_SECRET_KEY"
                ) from None
            except stripe.PermissionError:
                raise ProcessorUnavailable(
                    "Stripe refused access to the practice's connected account: ask the "
                    "service's operator to check the Stripe account in the practice's settings"
                ) from None
            except stripe.InvalidRequestError as error:
                if maybe_acted:  # an earlier attempt may have acted: that decides
                    return self._after_a_lost_answer(kind, read_back, error)
                raise refused(kind, error) from None
            except stripe.CardError as error:
                if maybe_acted:
                    return self._after_a_lost_answer(kind, read_back, error)
                raise ProcessorRefused(
                    f"Stripe refused the {kind}: {error.user_message or error}",
                    field=FIELDS.get(error.param or ""),
                ) from None
            except (stripe.APIConnectionError, stripe.APIError) as error:
                log.warning(
                    "stripe %s: outcome unknown (%s), reading it back", kind, type(error).__name__
                )
                maybe_acted = True
            except stripe.StripeError as error:  # any other class: by its status
                status = error.http_status or 500
                if 400 <= status < 500 and status != 429:
                    if maybe_acted:
                        return self._after_a_lost_answer(kind, read_back, error)
                    raise ProcessorRefused(
                        f"Stripe refused the {kind}: {error.user_message or error}"
                    ) from None
                log.warning("stripe %s: outcome unknown (%s)", kind, type(error).__name__)
                maybe_acted = status != 429
            try:
                known = read_back()
            except stripe.StripeError as error:
                log.warning("stripe %s: reading back failed (%s)", kind, type(error).__name__)
                known = None
            if known is not None:
                return known
        if maybe_acted:
            raise OutcomeUnknown(
                f"Stripe's answer to the {kind} was lost after {self._attempts} attempts and "
                "it could not be read back: Stripe may have acted. Nothing is sent again "
                "before it is read back; retry with the same Idempotency-Key"
            )
        raise ProcessorUnavailable(
            f"Stripe could not be reached for the {kind} after {self._attempts} attempts; "
            "nothing was recorded, try again"
        )

    def _after_a_lost_answer(
        self, kind: str, read_back: Callable[[], T | None], error: stripe.StripeError
    ) -> T:
        """A refusal that follows an attempt whose answer was lost: the lost attempt may
        have acted (a confirm retried after it is refused because the PaymentIntent is
        held already), so what Stripe holds decides: read back, and when that cannot be
        read, the outcome stays unknown; never a refusal."""
        try:
            known = read_back()
        except stripe.StripeError as failed:
            log.warning("stripe %s: reading back failed (%s)", kind, type(failed).__name__)
            known = None
        if known is not None:
            return known
        raise OutcomeUnknown(
            f"Stripe refused the {kind} ({error.user_message or error}) after an earlier "
            "attempt's answer was lost, and what that attempt did could not be read back: "
            "Stripe may have acted. Nothing is sent again before it is read back; retry "
            "with the same Idempotency-Key"
        )


#: Stripe's parameters that are the ledger's own request fields
FIELDS = {
    "payment_method": "payment_method",
    "amount": "amount",
    "registration_code": "registration_code",
}


def refused(kind: str, error: stripe.InvalidRequestError) -> PaymentsError:
    """Stripe's 400/404: a request field Stripe refused (an unknown PaymentMethod: 422
    naming payment_method), something Stripe will not do (422 with its message), or a
    parameter this service sent that Stripe's API version does not take (502: the
    service and Stripe's version differ, nothing the caller can fix)."""
    message = error.user_message or str(error) or "invalid request"
    param = error.param or ""
    if (error.code or "").startswith("parameter_") and param not in FIELDS:
        log.error("stripe %s: Stripe refused a parameter it was sent: %s", kind, message)
        return ProcessorUnavailable(
            f"Stripe refused the {kind}: its API version {STRIPE_VERSION} does not take what "
            f"this service sent ({message}); nothing was recorded"
        )
    if error.code == "resource_missing" and param in FIELDS:
        return ProcessorRefused(
            f"Stripe does not know this {param.replace('_', ' ')}: {message}",
            field=FIELDS[param],
        )
    return ProcessorRefused(f"Stripe refused the {kind}: {message}", field=FIELDS.get(param))


class CustomerGone(ProcessorRefused):
    """Stripe no longer has the Customer a card was to be kept for (deleted there)."""


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


def kept_card(setup: stripe.SetupIntent, customer: str) -> SavedCard:
    """What a confirmed SetupIntent kept: its PaymentMethod, attached to the Customer."""
    status = str(setup.status)
    if status == "requires_action":
        raise ProcessorRefused(
            "the card needs authentication (3-D Secure) to be kept, which this form cannot "
            "complete: ask for another card",
            field="payment_method",
        )
    if status != "succeeded":
        error = setup.last_setup_error
        code = (error.decline_code or error.code) if error is not None else None
        raise ProcessorRefused(
            f"Stripe did not keep the card: {in_words(code or status)}", field="payment_method"
        )
    method = setup.payment_method
    if not isinstance(method, stripe.PaymentMethod) or method.card is None:
        raise OutcomeUnknown("Stripe's SetupIntent came back without its card")
    card = method.card
    return SavedCard(
        token=str(method.id),
        brand=str(card.brand),
        last4=str(card.last4),
        exp_month=int(card.exp_month),
        exp_year=int(card.exp_year),
        customer=customer,
    )


def captured(intent: stripe.PaymentIntent) -> Capture:
    charge = intent.latest_charge
    txn = charge.balance_transaction if isinstance(charge, stripe.Charge) else None
    fee = int(txn.fee) if isinstance(txn, stripe.BalanceTransaction) else None
    return Capture(str(intent.id), fee)


def charge_looked_up(intent: stripe.PaymentIntent) -> LookedUp:
    """A charge's intent: authorised (succeeded), declined or cancelled (refused), not
    confirmed yet (absent: nothing was authorised); still processing is unknown."""
    result = confirmed(intent)
    if result is None:
        if intent.status == "processing":
            raise OutcomeUnknown("Stripe is still processing the payment; read back later")
        return ABSENT
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


def confirmed(intent: stripe.PaymentIntent) -> ChargeResult | None:
    """What a confirmed PaymentIntent says: approved (`requires_capture`), declined (its
    last payment error, or cancelled), needing authentication (3-D Secure); None while it
    is not confirmed (or still processing)."""
    status = str(intent.status)
    if status in ("requires_capture", "succeeded"):
        return charge_result(intent)
    brand, last4 = card_of(intent)
    if status == "requires_action":
        return needs_authentication(brand, last4)
    error = intent.last_payment_error
    if status == "requires_payment_method" and error is not None:
        if (error.code or "") == "authentication_required":
            return needs_authentication(brand, last4)
        return charge_result(intent)
    if status == "canceled":
        reason = str(intent.cancellation_reason or "canceled")
        return ChargeResult(
            False,
            brand,
            last4,
            decline_reason=f"the payment was cancelled at Stripe ({in_words(reason)})",
        )
    return None


def needs_authentication(brand: str, last4: str) -> ChargeResult:
    return ChargeResult(False, brand, last4, decline_reason=NEEDS_AUTHENTICATION)


def card_of_error(error: stripe.CardError) -> tuple[str, str]:
    detail = error.error
    method = detail.payment_method if detail is not None else None
    card = method.card if method is not None else None
    if card is None:
        return "card", ""
    return str(card.brand), str(card.last4)


def declined(error: stripe.CardError) -> ChargeResult:
    detail = error.error
    code = (detail.decline_code or detail.code) if detail is not None else None
    brand, last4 = card_of_error(error)
    return ChargeResult(False, brand, last4, decline_reason=in_words(code or "card_declined"))


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
