"""The Clearent card processor: its gateway's REST API (JSON, an `api-key` header).

Held to what Clearent's contract publishes (docs/clearent.md cites each file and commit):
the transactions API's OpenAPI description (sale, refund, search, `TransactionModel`)
and Clearent's own examples for what that description lacks (AUTH, CAPTURE, VOID on
POST /rest/v2/transactions; POST /rest/v2/tokens; GET /rest/v2/settings/terminal), and
the batches of GET /rest/v2/batches as Clearent's mobile app reads them.

Each practice has its own Clearent API key (kept sealed, `ClearentKeys`): `account` is
the practice's id, and the key is looked up for it at each call.

- charge: an AUTH (the card is a Clearent token made in Clearent's own form, sent as
  `payment_method` "<token>:<MMYY>", or a saved card's token; card numbers only with
  Clearent's sandbox host or a gateway on this machine, as in tests);
- void: a VOID of the AUTH (before the practice's cut-off: nothing settles);
- capture: a CAPTURE of the AUTH at the cut-off; it goes into Clearent's open batch;
- refund: a REFUND against the AUTH's id, never beyond what was captured.

Clearent takes no idempotency key, so exactly-once is carried by the order id (every
AUTH and REFUND carries the ledger's reference as `order-id`) and by reading back before
anything is sent: a charge or a refund first searches its order id, a void or a capture
first reads the AUTH (GET /rest/v2/transactions?id=). A call whose answer is lost (a
5xx, a timeout, a dropped connection) is read back once; if the read back does not find
it, the outcome is unknown and nothing is sent again by this call (a request may still
be on its way): the reconciler reads it back after the intent's settling time. A rate
limit (429) or a connection never made is retried with backoff. The API key is never
logged nor put in an answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx

from adapters.effects import check_outside_retry
from adapters.processor.port import (
    ABSENT,
    Batch,
    BatchSettings,
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
    SavedCard,
    SettledBy,
)
from domain.deposits import fee_for
from domain.errors import InvalidCard, InvalidValue

log = logging.getLogger("payledger.clearent")

#: Clearent's gateway hosts, as its public examples name them
SANDBOX_URL = "https://gateway-sb.clearent.net"
PRODUCTION_URL = "https://gateway.clearent.net"
#: the software name Clearent's payloads take (`software-type`)
SOFTWARE_TYPE = "payledger"
#: Clearent's card types, as brands are said here
BRANDS = {
    "VISA": "visa",
    "MASTERCARD": "mastercard",
    "AMERICAN EXPRESS": "amex",
    "DISCOVER": "discover",
    "DINERS CLUB": "diners",
    "JCB": "jcb",
}
#: card types by the first digits of a number (for POST /rest/v2/tokens' `card-type`)
PREFIXES = (
    ("4", "VISA"),
    ("5", "MASTERCARD"),
    ("34", "AMERICAN EXPRESS"),
    ("37", "AMERICAN EXPRESS"),
    ("6", "DISCOVER"),
)


def cents_text(cents: int) -> str:
    """Clearent's amounts are decimal strings of dollars ("25.00", "-3.10")."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def text_cents(value: Any) -> int:
    try:
        return int((Decimal(str(value)) * 100).to_integral_value())
    except (InvalidOperation, ValueError):
        raise OutcomeUnknown(f"Clearent answered an amount that is not one: {value!r}") from None


def is_sandbox_host(base_url: str) -> bool:
    """Clearent's sandbox, or a gateway on this machine (a fake, in tests): the only
    places card numbers may be sent."""
    host = urlsplit(base_url).hostname or ""
    return host in ("gateway-sb.clearent.net", "127.0.0.1", "localhost", "::1")


class Lost(Exception):
    """The request may have reached Clearent; its answer did not come back."""


class ClearentProcessor(CardProcessor):
    name = "clearent"
    saves_cards = True
    keyed_by_practice = True
    #: Clearent takes no idempotency key: nothing is sent again under a reference once
    #: its answer was lost, before it is read back (an intent read back absent is refused)
    key_memory = timedelta(0)
    #: its batches, closed by Clearent at its batch time or by the ledger at the cut-off
    capabilities = frozenset({Capability.BATCHES})
    #: a deposit is paid as Clearent's batch that holds its items closes
    settles_by = SettledBy.BATCH_CLOSE
    instead = {
        Capability.READERS: "card readers are registered on Stripe (PAYLEDGER_PROCESSOR="
        "stripe); the sandbox takes any terminal_id as a simulated terminal; Clearent's "
        "readers are driven by Clearent's mobile SDK on a phone or tablet, not by this "
        "service",
    }

    def __init__(
        self,
        keys: Callable[[str], str | None],
        *,
        base_url: str = SANDBOX_URL,
        attempts: int = 3,
        backoff: float = 0.5,
        timeout: float = 20.0,
    ) -> None:
        """`keys`: the practice's API key by its id (None when it has none)."""
        self._keys = keys
        self.base_url = base_url.rstrip("/")
        self.accepts_card_numbers = is_sandbox_host(self.base_url)
        self._attempts = attempts
        self._backoff = backoff
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout)

    def __repr__(self) -> str:
        return f"ClearentProcessor({self.base_url!r})"  # never a key

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
        if terminal_id is not None:
            raise InvalidValue(
                "Clearent's card readers are driven by Clearent's mobile SDK on a phone or "
                "tablet, not by this service: take the card in Clearent's app, or enter it "
                "here without a terminal",
                field="terminal_id",
            )
        key = self._key(account)
        body: dict[str, Any] = {
            "type": "AUTH",
            "amount": cents_text(amount),
            "order-id": str(reference),
            "software-type": SOFTWARE_TYPE,
        }
        if saved_card is not None:
            body["card"] = saved_card.token
            body["exp-date"] = f"{saved_card.exp_month:02d}{saved_card.exp_year % 100:02d}"
        elif card is not None:
            if not self.accepts_card_numbers:
                raise InvalidCard(
                    "card numbers are not accepted with Clearent's production gateway: the "
                    "card is entered in Clearent's own form and its token is sent, as "
                    "payment_method",
                    field="card",
                )
            body["card"] = card.number
            body["exp-date"] = f"{card.exp_month:02d}{card.exp_year % 100:02d}"
            body["csc"] = card.cvc
        elif payment_method:
            token, _, expiry = payment_method.partition(":")
            if not token.isdigit() or len(expiry) != 4 or not expiry.isdigit():
                raise InvalidValue(
                    "with Clearent, the payment method is the card's Clearent token and its "
                    "expiry (MMYY) joined by a colon, such as 1100000000000004242:1230",
                    field="payment_method",
                )
            body["card"] = token
            body["exp-date"] = expiry
        else:
            raise InvalidValue(
                "with Clearent a payment needs a payment method (the card's Clearent token "
                "and expiry) or a saved card",
                field="payment_method",
            )
        found = self._by_order(key, reference, "AUTH", kind="check before the charge")
        if found is not None:  # sent before (its answer lost): never authorised twice
            return charge_result(found)
        answer = self._send("charge", key, "/rest/v2/transactions", body, reference, "AUTH")
        return charge_result(answer)

    def void(self, *, transaction_id: str, reference: UUID, account: str | None = None) -> str:
        key = self._key(account)
        auth = self._transaction(key, transaction_id, kind="check before the void")
        if auth is None:
            raise ProcessorRefused(f"Clearent has no transaction {transaction_id} to void")
        if flag(auth, "voided-auth") or flag(auth, "voided"):
            return transaction_id  # voided by an earlier call
        if not flag(auth, "pending"):
            raise ProcessorRefused("the sale was captured already: it cannot be voided")
        body = {"type": "VOID", "id": transaction_id}
        try:
            done = self._post("void", key, "/rest/v2/transactions", body)
        except Lost:
            again = self._transaction(key, transaction_id, lost="void")
            if again is not None and (flag(again, "voided-auth") or flag(again, "voided")):
                return transaction_id
            raise self._unknown("void") from None
        return str(done.get("id") or transaction_id)

    def capture(
        self, *, transaction_id: str, amount: int, reference: UUID, account: str | None = None
    ) -> Capture:
        """Capture the AUTH into Clearent's open batch; answers the AUTH's id (the sale's
        id in the ledger, which refunds are made against)."""
        key = self._key(account)
        auth = self._transaction(key, transaction_id, kind="check before the capture")
        if auth is None:
            raise CaptureFailed(f"Clearent has no transaction {transaction_id}")
        if flag(auth, "voided-auth") or flag(auth, "voided"):
            raise CaptureFailed("the authorisation was voided at Clearent")
        if not flag(auth, "pending"):
            return Capture(transaction_id)  # captured by an earlier run
        body = {"type": "CAPTURE", "id": transaction_id, "amount": cents_text(amount)}
        try:
            self._post("capture", key, "/rest/v2/transactions", body)
        except ProcessorRefused as error:
            raise CaptureFailed(f"Clearent did not capture it: {error.detail}") from None
        except Lost:
            again = self._transaction(key, transaction_id, lost="capture")
            if again is not None and not flag(again, "pending") and not flag(again, "voided-auth"):
                return Capture(transaction_id)
            raise self._unknown("capture") from None
        return Capture(transaction_id)

    def refund(
        self, *, transaction_id: str, amount: int, reference: UUID, account: str | None = None
    ) -> str:
        key = self._key(account)
        found = self._by_order(key, reference, "REFUND", kind="check before the refund")
        if found is not None:
            return refund_id(found)
        body = {
            "type": "REFUND",
            "id": transaction_id,
            "amount": cents_text(amount),
            "order-id": str(reference),
            "software-type": SOFTWARE_TYPE,
        }
        done = self._send("refund", key, "/rest/v2/transactions/refund", body, reference, "REFUND")
        return refund_id(done)

    def save_card(
        self,
        *,
        reference: UUID,
        card: CardInput | None = None,
        payment_method: str | None = None,
        account: str | None = None,
    ) -> SavedCard:
        """A Clearent token of the card (POST /rest/v2/tokens), described by the reference.
        No money moves: a token whose answer was lost stays unused at Clearent."""
        key = self._key(account)
        if card is None:
            raise InvalidValue(
                "with Clearent a card is kept from its number, in Clearent's sandbox only; "
                "in production keep the token Clearent's own form made",
                field="card",
            )
        if not self.accepts_card_numbers:
            raise InvalidCard(
                "card numbers are not accepted with Clearent's production gateway",
                field="card",
            )
        found = self._token_by_reference(key, reference, kind="check before keeping the card")
        if found is not None:  # kept before (its answer lost): never two tokens for it
            return saved_card_of(found, card)
        body = {
            "card": card.number,
            "card-type": card_type(card.number),
            "exp-date": f"{card.exp_month:02d}{card.exp_year % 100:02d}",
            "csc": card.cvc,
            "description": token_description(reference),
        }
        try:
            payload = self._post_payload("save_card", key, "/rest/v2/tokens", body)
        except Lost:
            found = self._token_by_reference(key, reference, lost="card's keeping")
            if found is not None:
                return saved_card_of(found, card)
            raise self._unknown("card's keeping") from None
        token = payload.get("tokenResponse") or payload.get("token") or {}
        if not isinstance(token, dict) or not token.get("token-id"):
            raise OutcomeUnknown("Clearent's answer to the token has no token-id")
        return saved_card_of(token, card)

    def sale_fee(self, *, amount: int, fee_rate_bps: int) -> int:
        """The practice's rate: Clearent's own fees come on its statement, not per sale."""
        return fee_for(amount, fee_rate_bps)

    def look_up(
        self, *, effect: Effect, reference: UUID, transaction_id: str, account: str | None = None
    ) -> LookedUp:
        """Read back: an AUTH or a REFUND by its order id (the reference), a void or a
        capture by the AUTH's own state (GET /rest/v2/transactions?id=)."""
        key = self._key(account)
        if effect in (Effect.CHARGE, Effect.REFUND):
            kind = "AUTH" if effect == Effect.CHARGE else "REFUND"
            found = self._by_order(key, reference, kind, lost=str(effect))
            if found is None:
                return ABSENT
            if approved(found):
                ident = str(found.get("id")) if effect == Effect.CHARGE else refund_id(found)
                return LookedUp("succeeded", ident)
            return LookedUp("refused", str(found.get("id")), reason=decline_reason(found))
        if effect == Effect.SAVE_CARD:
            token = self._token_by_reference(key, reference, lost=str(effect))
            return ABSENT if token is None else LookedUp("succeeded", str(token["token-id"]))
        auth = self._transaction(key, transaction_id, lost=str(effect))
        if auth is None:
            return ABSENT
        voided = flag(auth, "voided-auth") or flag(auth, "voided")
        captured = not flag(auth, "pending")
        if effect == Effect.VOID:
            if voided:
                return LookedUp("succeeded", transaction_id)
            if captured:
                return LookedUp("refused", transaction_id, reason="the payment was captured")
            return ABSENT
        if voided:
            return LookedUp("refused", reason="the authorisation was voided at Clearent")
        return LookedUp("succeeded", transaction_id) if captured else ABSENT

    # -- batches and settings ------------------------------------------------------

    def batches(
        self, account: str | None, status: str = "CLOSED", lost: str | None = None
    ) -> list[Batch]:
        """The merchant's batches of a status (OPEN or CLOSED), every page."""
        key = self._key(account)
        found: list[Batch] = []
        page = 1
        while True:
            answer = self._get(
                "batch reading",
                key,
                "/rest/v2/batches",
                {"status": status, "page": str(page)},
                lost,
            )
            payload = answer.get("payload") or {}
            for raw in (payload.get("batches") or {}).get("batch") or []:
                found.append(batch_of(raw))
            paging = answer.get("page") or {}
            if str(paging.get("last", "true")).lower() == "true" or page >= 100:
                return found
            page += 1

    def batch_settings(self, account: str | None) -> BatchSettings:
        """Whether Clearent closes the terminal's batch itself, and when."""
        key = self._key(account)
        answer = self._get("settings reading", key, "/rest/v2/settings/terminal", {})
        # the answer's shape as Clearent's mobile app reads it (TerminalSettingsResponse):
        # payload.transactions["terminal-settings"]
        payload = answer.get("payload") or {}
        settings = payload.get("transactions") if isinstance(payload, dict) else None
        terminal = settings.get("terminal-settings") if isinstance(settings, dict) else None
        if not isinstance(terminal, dict):
            raise OutcomeUnknown("Clearent's terminal settings could not be read")
        return BatchSettings(
            auto_close=str(terminal.get("enable-auto-close-batch", "false")).lower() == "true",
            batch_time_utc=terminal.get("batch-time-utc"),
            time_zone=terminal.get("time-zone"),
        )

    def close_batch(
        self, account: str | None, *, batch_id: str, total_count: int, net_amount: int
    ) -> None:
        """Close the open batch `batch_id`, Clearent checking its totals against these (its
        batch validation, PUT /rest/v2/batches/open). One call: returns once closed;
        raises ProcessorRefused when Clearent refuses it (its totals differ: the batch
        stays open), ProcessorUnavailable when Clearent was not reached (nothing sent), and
        OutcomeUnknown when the answer was lost and the batch is not read back closed
        (the request may still be on its way: nothing is sent again before a read back)."""
        check_outside_retry("Clearent's batch close")
        key = self._key(account)
        body = {"total-count": str(total_count), "net-amount": cents_text(net_amount)}
        try:
            self._post_payload("batch close", key, "/rest/v2/batches/open", body, method="PUT")
        except Lost:
            if self.batch_state(account, batch_id, lost="batch close") == "CLOSED":
                return
            raise OutcomeUnknown(
                "Clearent's answer to the batch close was lost and the batch is not read back "
                "closed: the request may still be on its way; the batch is read back before "
                "its close is asked again"
            ) from None

    def batch_state(
        self, account: str | None, batch_id: str, lost: str | None = None
    ) -> str | None:
        """A batch's status read back (OPEN or CLOSED; None: Clearent lists no such batch)."""
        for status in ("CLOSED", "OPEN"):
            if any(b.id == batch_id for b in self.batches(account, status, lost=lost)):
                return status
        return None

    def transactions_of_batch(self, account: str | None, batch: str) -> list[dict[str, Any]]:
        """The CAPTURE, SALE and REFUND transactions Clearent put in a batch: the search
        filtered client-side by `batch-string-id` (the description has no batch filter)."""
        key = self._key(account)
        found: list[dict[str, Any]] = []
        for kind in ("CAPTURE", "SALE", "REFUND"):
            page = 1
            while True:
                answer = self._get(
                    "batch reading",
                    key,
                    "/rest/v2/transactions",
                    {"type": kind, "page": str(page), "page-size": "100", "level": "merchant"},
                )
                for txn in transactions_in(answer):
                    if str(txn.get("batch-string-id")) == batch:
                        found.append(txn)
                paging = answer.get("page") or {}
                if paging.get("last", True) is True or page >= 100:
                    break
                page += 1
        return found

    def batch_items(self, account: str | None, batch_id: str) -> list[PayoutItem]:
        """A batch's transactions as payout items: a CAPTURE (or SALE) by the AUTH it
        captured, a REFUND by its order id (the ledger's refund id); no fee (Clearent's
        come on its monthly statement)."""
        items = []
        for txn in self.transactions_of_batch(account, batch_id):
            refund = txn.get("type") == "REFUND"
            amount = text_cents(txn.get("amount", "0"))
            items.append(
                PayoutItem(
                    kind="refund" if refund else "charge",
                    balance_transaction=str(txn.get("id")),
                    transaction_id=None if refund else str(txn.get("ref-id") or txn.get("id")),
                    refund_reference=str(txn.get("order-id")) if refund else None,
                    amount=-amount if refund else amount,
                    fee=0,
                )
            )
        return items

    # -- the calls ---------------------------------------------------------------

    def _key(self, account: str | None) -> str:
        key = self._keys(account) if account else None
        if not key:
            raise InvalidValue(
                "this practice has no Clearent API key: the operator sets it "
                "(PUT /v1/practices/{id}/clearent-key)",
                field="clearent_api_key",
            )
        return key

    def _headers(self, key: str) -> dict[str, str]:
        return {"api-key": key, "Accept": "application/json", "Content-Type": "application/json"}

    def _send(
        self,
        kind: str,
        key: str,
        path: str,
        body: dict[str, Any],
        reference: UUID,
        txn_type: str,
    ) -> dict[str, Any]:
        """POST an AUTH or a REFUND (carrying the reference as its order id); a lost
        answer is read back by order id once, else the outcome is unknown."""
        try:
            return self._post(kind, key, path, body)
        except Lost:
            found = self._by_order(key, reference, txn_type, lost=kind)
            if found is not None:
                return found
            raise self._unknown(kind) from None

    def _unknown(self, kind: str) -> OutcomeUnknown:
        return OutcomeUnknown(
            f"Clearent's answer to the {kind} was lost and it could not be read back: "
            "Clearent may have acted. Nothing is sent again before it is read back; retry "
            "with the same Idempotency-Key"
        )

    def _post(self, kind: str, key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The transaction Clearent answered (approved or declined). Raises Lost when the
        request may have reached Clearent and its answer did not come back."""
        payload = self._post_payload(kind, key, path, body)
        txn = payload.get("transaction")
        if not isinstance(txn, dict):
            raise Lost()
        return txn

    def _post_payload(
        self, kind: str, key: str, path: str, body: dict[str, Any], method: str = "POST"
    ) -> dict[str, Any]:
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(min(self._backoff * 2 ** (attempt - 1), 8.0))
            try:
                answer = self._client.request(method, path, json=body, headers=self._headers(key))
            except httpx.ConnectError:
                log.warning("clearent %s: not reached, retrying (attempt %s)", kind, attempt + 1)
                continue  # no connection: nothing was sent
            except httpx.HTTPError as error:
                log.warning("clearent %s: answer lost (%s)", kind, type(error).__name__)
                raise Lost() from None
            if answer.status_code == 429:
                log.warning("clearent %s: rate limited, retrying", kind)
                continue
            if answer.status_code >= 500:
                log.warning("clearent %s: answered %s", kind, answer.status_code)
                raise Lost()
            return self._payload(kind, answer)
        raise ProcessorUnavailable(
            f"Clearent could not be reached for the {kind} after {self._attempts} attempts; "
            "nothing was recorded, try again"
        )

    def _payload(self, kind: str, answer: httpx.Response) -> dict[str, Any]:
        """The payload of an answer: 200 (done) and 402 (declined) carry the transaction;
        401 and 403 refuse the key; any other 4xx refuses the request."""
        try:
            document = answer.json()
        except ValueError:
            document = {}
        payload = document.get("payload") if isinstance(document, dict) else None
        payload = payload if isinstance(payload, dict) else {}
        if answer.status_code in (401, 403):
            raise ProcessorUnavailable(
                "Clearent refused the practice's API key: the operator sets it again "
                "(PUT /v1/practices/{id}/clearent-key)"
            )
        if answer.status_code in (200, 402):
            return payload
        error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
        message = (error or {}).get("error-message") or f"status {answer.status_code}"
        if isinstance(payload.get("transaction"), dict):
            message = payload["transaction"].get("display-message") or message
        raise ProcessorRefused(f"Clearent refused the {kind}: {message}")

    def _get(
        self, kind: str, key: str, path: str, params: dict[str, str], lost: str | None = None
    ) -> dict[str, Any]:
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(min(self._backoff * 2 ** (attempt - 1), 8.0))
            try:
                answer = self._client.get(path, params=params, headers=self._headers(key))
            except httpx.HTTPError as error:
                log.warning("clearent %s: %s", kind, type(error).__name__)
                continue
            if answer.status_code == 429 or answer.status_code >= 500:
                continue
            if answer.status_code in (401, 403):
                raise ProcessorUnavailable("Clearent refused the practice's API key")
            if answer.status_code == 404:
                return {}
            if answer.status_code != 200:
                raise OutcomeUnknown(f"Clearent could not be read ({answer.status_code})")
            document = answer.json()
            return document if isinstance(document, dict) else {}
        what = f"to read back the {lost}" if lost else f"for the {kind}"
        raise OutcomeUnknown(
            f"Clearent could not be reached {what}: nothing was sent now; it is read back "
            "again later"
        )

    def _transaction(
        self, key: str, transaction_id: str, lost: str | None = None, kind: str = "reading"
    ) -> dict[str, Any] | None:
        answer = self._get(kind, key, "/rest/v2/transactions", {"id": transaction_id}, lost)
        for txn in transactions_in(answer):
            if str(txn.get("id")) == transaction_id:
                return txn
        return None

    def _by_order(
        self,
        key: str,
        reference: UUID,
        txn_type: str,
        lost: str | None = None,
        kind: str = "reading",
    ) -> dict[str, Any] | None:
        answer = self._get(
            kind,
            key,
            "/rest/v2/transactions",
            {"order-id": str(reference), "type": txn_type, "level": "merchant"},
            lost,
        )
        for txn in transactions_in(answer):
            if txn.get("order-id") == str(reference) and txn.get("type") == txn_type:
                return txn
        return None

    def _token_by_reference(
        self, key: str, reference: UUID, lost: str | None = None, kind: str = "reading"
    ) -> dict[str, Any] | None:
        """The token kept under the reference, by its description (the reference it was
        sent with), read from the merchant's tokens (GET /rest/v2/tokens, every page)."""
        wanted = token_description(reference)
        page = 1
        while True:
            answer = self._get(
                kind, key, "/rest/v2/tokens", {"page": str(page), "page-size": "100"}, lost
            )
            if not isinstance(answer.get("payload"), dict):  # no list read: never "none"
                raise OutcomeUnknown(
                    "Clearent's tokens could not be read back: nothing was sent now; the card "
                    "is kept once they are"
                )
            for token in tokens_in(answer):
                if token.get("description") == wanted and token.get("token-id"):
                    return token
            paging = answer.get("page") or {}
            if str(paging.get("last", "true")).lower() == "true" or page >= 100:
                return None
            page += 1


def token_description(reference: UUID) -> str:
    """What a token is described by at Clearent: the ledger's reference of the card."""
    return f"payledger {reference}"


def tokens_in(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The tokens of the merchant's token list (`payload.tokens.token`, or one token)."""
    payload = answer.get("payload") or {}
    many = (payload.get("tokens") or {}).get("token")
    if isinstance(many, list):
        return [t for t in many if isinstance(t, dict)]
    one = payload.get("token")
    return [one] if isinstance(one, dict) else []


def saved_card_of(token: dict[str, Any], card: CardInput) -> SavedCard:
    return SavedCard(
        token=str(token["token-id"]),
        brand=BRANDS.get(str(token.get("card-type", "")).upper(), "card"),
        last4=str(token.get("last-four-digits") or card.number[-4:]),
        exp_month=card.exp_month,
        exp_year=card.exp_year,
    )


def transactions_in(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The transactions of a search (SearchTransactionResponse) or of one transaction's
    answer (SingleTransactionResponse)."""
    payload = answer.get("payload") or {}
    many = (payload.get("transactions") or {}).get("transaction")
    if isinstance(many, list):
        return [t for t in many if isinstance(t, dict)]
    one = payload.get("transaction")
    return [one] if isinstance(one, dict) else []


def flag(txn: dict[str, Any], name: str) -> bool:
    return str(txn.get(name, "false")).lower() == "true"


def approved(txn: dict[str, Any]) -> bool:
    return str(txn.get("result", "")).upper() == "APPROVED"


def decline_reason(txn: dict[str, Any]) -> str:
    message = str(txn.get("display-message") or txn.get("result") or "declined")
    return message[:1].lower() + message[1:] if message else "declined"


def charge_result(txn: dict[str, Any]) -> ChargeResult:
    brand = BRANDS.get(str(txn.get("card-type", "")).upper(), "card")
    last4 = str(txn.get("last-four") or txn.get("card") or "")[-4:]
    if approved(txn):
        return ChargeResult(True, brand, last4, transaction_id=str(txn["id"]))
    return ChargeResult(False, brand, last4, decline_reason=decline_reason(txn))


def refund_id(txn: dict[str, Any]) -> str:
    if not approved(txn):
        raise ProcessorRefused(f"Clearent refused the refund: {decline_reason(txn)}")
    return str(txn["id"])


def card_type(number: str) -> str:
    for prefix, kind in PREFIXES:
        if number.startswith(prefix):
            return kind
    return "VISA"


def batch_of(raw: dict[str, Any]) -> Batch:
    def count(name: str) -> int:
        try:
            return int(str(raw.get(name) or "0"))
        except ValueError:
            return 0

    return Batch(
        id=str(raw.get("id")),
        status=str(raw.get("status", "")),
        sales_count=count("sales-count"),
        sales_total=text_cents(raw.get("sales-total") or "0"),
        refund_count=count("refund-count"),
        refund_total=text_cents(raw.get("refund-total") or "0"),
        net_amount=text_cents(raw.get("net-amount") or "0"),
        total_count=count("total-count"),
        date_opened=raw.get("date-opened"),
    )
