"""A strict fake of the documented subset of Stripe's API that the ledger uses.

Served as an ASGI app on a free loopback port (`Served`), for the official `stripe`
SDK pointed at it through its API base address. It follows Stripe's API reference:

- `Authorization: Bearer <secret key>` (401 otherwise), form-encoded bodies with
  bracketed keys (`metadata[k]=v`, `expand[0]=x`), error objects
  `{"error": {type, code, message, param, ...}}`;
- every request's parameters are checked against the pinned SDK's own parameter types
  for its API version (`stripe.params`, tests/fakes/stripe_params.py): a parameter the
  version does not know is 400 `parameter_unknown` (so is one the fake does not model),
  a missing required one `parameter_missing`; a `Stripe-Version` other than the pinned
  one is refused (the fake answers that version only);
- `Stripe-Account` selects a connected account: objects of one account are invisible
  (404 `resource_missing`) to another; an unknown account is refused (403);
- `Idempotency-Key` on POST: the same key with the same parameters replays the first
  answer (header `Idempotent-Replayed: true`), with other parameters or another
  endpoint is an `idempotency_error` (400). Only requests that began executing are
  saved (a validation error or a 429 is not; a 402 decline or a 500 is);
- PaymentIntents: create (confirmed at once with confirm=true, or later), confirm
  (`error_on_requires_action`), retrieve, list (by `created` range, newest first, a
  consistent read), cancel (only before capture), capture (`amount_to_capture` up to
  `amount_capturable`), search by metadata (eventually consistent: an object is found
  only a minute after it was made); the test PaymentMethods `pm_card_visa`,
  `pm_card_mastercard`, `pm_card_chargeDeclined`,
  `pm_card_chargeDeclinedInsufficientFunds` (402 `card_error`, `card_declined`, with
  the decline code), `pm_card_authenticationRequired` (3-D Secure: `requires_action`,
  or with `error_on_requires_action` a 402 `authentication_required`); any other
  PaymentMethod is 400 `resource_missing` (param `payment_method`);
- cards kept for later charges: Customers (create, list by `created`: a consistent
  read), SetupIntents (create, confirmed at once with `confirm=true`; list by customer,
  retrieve), PaymentMethods (retrieve, attach to a Customer, detach); `delete_customer`
  is the practice deleting a Customer in Stripe's dashboard. A SetupIntent or
  an attach of a test PaymentMethod (`pm_card_visa`, ...) makes a new PaymentMethod
  (`pm_...`) attached to the Customer, as Stripe does; a declining test card
  (`pm_card_chargeDeclined`, `..InsufficientFunds`) is refused (402 `card_declined`),
  a 3-D Secure one leaves the SetupIntent `requires_action`; `pm_card_chargeCustomerFail`
  is kept, and its charges decline. A PaymentIntent of a kept PaymentMethod names its
  `customer` (a PaymentMethod of another Customer, or detached, is refused, 400) and is
  confirmed `off_session`: a decline is 402 `card_declined`, and a card whose issuer asks
  for authentication (`ask_authentication`, as an issuer may for any off-session
  payment) is 402 `authentication_required`, the intent back to
  `requires_payment_method`;
- Refunds: create (by payment_intent, never beyond what remains: `amount_too_large`,
  `charge_already_refunded`), retrieve, list by payment_intent; `fail_refund` is the
  bank refusing a refund later (status `failed`, a `refund_failure` balance
  transaction returning the amount, sent with `refund.failed`);
- a capture makes a balance transaction with Stripe's fee (2.9% + 30 cents);
- disputes (`open_dispute`, `submit_evidence`, `close_dispute`): the dispute object, its
  withdrawal (an `adjustment` balance transaction whose source is the dispute: the
  amount out and the $15.00 dispute fee) and, when won, its reinstatement (another
  `adjustment`, reporting category `dispute_reversal`); payouts carry them, and any
  other balance transaction (`add_balance_transaction`, e.g. a Climate `contribution`);
- payouts: retrieve; `fail_payout` is the bank returning a paid payout (`failed`, a
  `payout_failure` balance transaction, its `failure_balance_transaction`, putting its
  amount back in the balance, which a later payout carries).

Faults to inject (a queue, each taken by the next request of its method, POST unless
said, whose path starts with the given prefix): "429" (refused before executing, not
saved), "500-after-apply" (executed, then a 500 is answered and saved under the
idempotency key, as Stripe does), "500-before-apply", "refuse" (a 400 the endpoint
answers once it began executing, saved under the key; nothing done), "drop-before-apply"
and "drop-after-apply" (a timeout or a dropped connection: the connection is closed
unanswered, before the request reached Stripe, or after Stripe executed it and saved its
answer under the key), "late" (the connection is closed unanswered and the request
reaches Stripe only later, at `deliver_late()`, executed then as any request is: a key
used meanwhile replays its first answer). A GET takes "429", "500-before-apply" and
"drop-before-apply".
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import stripe.params
import stripe.params.terminal
import stripe.params.test_helpers.terminal
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.opendental import DROP, dropping
from tests.fakes.stripe_params import ParameterError, check

TEST_PAYMENT_METHODS: dict[str, dict[str, Any]] = {
    "pm_card_visa": {"brand": "visa", "last4": "4242"},
    "pm_card_mastercard": {"brand": "mastercard", "last4": "4444"},
    "pm_card_chargeDeclined": {"brand": "visa", "last4": "0002", "decline": "generic_decline"},
    "pm_card_chargeDeclinedInsufficientFunds": {
        "brand": "visa",
        "last4": "9995",
        "decline": "insufficient_funds",
    },
    #: a card whose issuer asks for 3-D Secure on every payment
    "pm_card_authenticationRequired": {"brand": "visa", "last4": "3184", "three_d_secure": True},
    #: attaching it to a Customer succeeds, but charging it fails
    "pm_card_chargeCustomerFail": {
        "brand": "visa",
        "last4": "0341",
        "decline": "generic_decline",
        "attaches": True,
    },
}
#: the expiry of the test PaymentMethods
TEST_EXPIRY = {"exp_month": 12, "exp_year": 2034}
#: the API version the fake answers (the pinned SDK's): requests of another are refused
API_VERSION = stripe.api_version
#: how long a new object takes to reach Stripe's search index ("under normal operating
#: conditions, data is searchable in less than a minute")
SEARCH_LAG = 60.0
#: Stripe's registration code of a simulated reader, and the device it registers
SIMULATED_READER_CODES = {
    "simulated-wpe": "simulated_wisepos_e",
    "simulated-s700": "simulated_stripe_s700",
}
CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)
NOW = 1_700_000_000
#: Stripe's fee of a dispute in the United States, in cents
DISPUTE_FEE = 1500
#: the faults a POST can meet, and a GET (see the module's docstring)
FAULTS = (
    "429",
    "500-before-apply",
    "500-after-apply",
    "refuse",
    "drop-before-apply",
    "drop-after-apply",
    "late",
)
READ_FAULTS = ("429", "500-before-apply", "drop-before-apply")


class StripeError(Exception):
    def __init__(self, status: int, error: dict[str, Any], *, saved: bool = True) -> None:
        super().__init__(error.get("message"))
        self.status, self.error, self.saved = status, error, saved


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
    error: dict[str, Any] = {"type": "invalid_request_error", "message": message}
    if param:
        error["param"] = param
    if code:
        error["code"] = code
    return StripeError(400, error)


def unknown_parameter(name: str) -> StripeError:
    error = invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")
    error.saved = False
    return error


def missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(
        404,
        {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": f"No such {kind}: '{object_id}'",
            "param": param,
        },
    )


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header: `t=<unix time>,v1=<HMAC-SHA256 of "t.payload">`."""
    at = int(time.time()) if timestamp is None else timestamp
    signed = f"{at}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding: `a[b]=1`, `a[0]=x`, `a[]=x`, nested."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        if not parts:
            continue
        node: Any = result
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            following = parts[index + 1] if not last else None
            child: Any = [] if following == "[]" or (following or "").isdigit() else {}
            if isinstance(node, list):
                if last:
                    node.append(value)
                    break
                if part == "[]" or int(part) >= len(node):
                    node.append(child)
                node = node[-1] if part == "[]" else node[int(part)]
                continue
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, child)
    return result


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


class FakeStripe:
    def __init__(self, secret_key: str = "sk_test_payledger_fake") -> None:
        self.secret_key = secret_key
        #: where it is served (set by whoever serves it)
        self.base_url = ""
        self.lock = threading.Lock()
        self.accounts: set[str] = set()
        self.objects: dict[str, dict[str, Any]] = {}  # id -> object (with "_account")
        self.idempotent: dict[tuple[str, str], tuple[str, dict[str, Any], int, Any]] = {}
        #: faults to inject: (method, path prefix, fault)
        self.faults: list[tuple[str, str, str]] = []
        #: requests that reach Stripe only later (`deliver_late`): (path, params, scope, key)
        self.late: list[tuple[str, dict[str, Any], str, str | None]] = []
        #: per PaymentIntent: how many times it was captured (money moved)
        self.captures: Counter[str] = Counter()
        self.cancels: Counter[str] = Counter()
        #: every request: (method, path, Stripe-Account, Idempotency-Key)
        self.requests: list[tuple[str, str, str | None, str | None]] = []
        self._ids = itertools.count(1)
        self.app = dropping(
            Starlette(
                routes=[Route("/v1/{path:path}", self.handle, methods=["GET", "POST", "DELETE"])]
            )
        )

    # -- test controls --------------------------------------------------------------

    def add_account(self) -> str:
        account = self.new_id("acct")
        self.accounts.add(account)
        return account

    def fail_next(self, path_prefix: str, fault: str, method: str = "POST") -> None:
        if method == "GET":
            assert fault in READ_FAULTS, fault
        else:
            assert method == "POST" and fault in FAULTS, (method, fault)
        self.faults.append((method, path_prefix, fault))

    def deliver_late(self) -> int:
        """The requests that were late ("late" fault) reach Stripe now, in the order sent;
        how many."""
        with self.lock:
            late, self.late = self.late, []
            for path, params, scope, key in late:
                self.execute("POST", path, params, scope, key)
            return len(late)

    def expire_authorization(self, intent_id: str) -> None:
        """What Stripe does when an uncaptured authorisation expires (after 7 days)."""
        with self.lock:
            intent = self.objects[intent_id]
            intent["status"] = "canceled"
            intent["cancellation_reason"] = "automatic"
            intent["amount_capturable"] = 0

    def intents(self, account: str) -> list[dict[str, Any]]:
        return [
            public(o)
            for o in self.objects.values()
            if o["object"] == "payment_intent" and o["_account"] == account
        ]

    def refunds_of(self, intent_id: str) -> list[dict[str, Any]]:
        return [
            public(o)
            for o in self.objects.values()
            if o["object"] == "refund" and o["payment_intent"] == intent_id
        ]

    def event(self, kind: str, obj: dict[str, Any], account: str) -> dict[str, Any]:
        """A webhook event as Stripe sends it for a connected account."""
        return {
            "id": self.new_id("evt"),
            "object": "event",
            "api_version": "2024-06-20",
            "type": kind,
            "account": account,
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": obj},
        }

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):08d}"

    # -- HTTP -------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        body = (await request.body()).decode()
        with self.lock:
            return self.answer(request, body)

    def answer(self, request: Request, body: str) -> Response:
        method, path = request.method, "/v1/" + request.path_params["path"]
        account = request.headers.get("stripe-account")
        key = request.headers.get("idempotency-key")
        self.requests.append((method, path, account, key))
        if request.headers.get("authorization") != f"Bearer {self.secret_key}":
            given = (request.headers.get("authorization") or "").removeprefix("Bearer ")
            return error_response(
                401,
                {
                    "type": "invalid_request_error",
                    "message": f"Invalid API Key provided: {given[:8]}****{given[-4:]}",
                },
            )
        if account is not None and account not in self.accounts:
            return error_response(
                403,
                {
                    "type": "invalid_request_error",
                    "code": "account_invalid",
                    "message": "The provided key does not have access to account "
                    f"'{account}' (or that account does not exist). Application access may "
                    "have been revoked.",
                },
            )
        version = request.headers.get("stripe-version")
        if version != API_VERSION:
            return error_response(
                400,
                {
                    "type": "invalid_request_error",
                    "message": f"This fake answers API version {API_VERSION} only; the request "
                    f"asked for {version}.",
                },
            )
        scope = account or "platform"
        if method == "GET":
            params = decode_form(parse_qsl(request.url.query, keep_blank_values=True))
        else:
            if body and "application/x-www-form-urlencoded" not in request.headers.get(
                "content-type", ""
            ):
                return error_response(
                    400,
                    {
                        "type": "invalid_request_error",
                        "message": "Invalid request: the body must be form-encoded",
                    },
                )
            params = decode_form(parse_qsl(body, keep_blank_values=True))
        fault = None
        for index, (fault_method, prefix, _kind) in enumerate(self.faults):
            if fault_method == method and path.startswith(prefix):
                fault = self.faults.pop(index)[2]
                break
        if fault in ("drop-before-apply", "late"):
            if fault == "late":
                self.late.append((path, params, scope, key))
            request.scope[DROP] = True
            return Response(status_code=200)
        answered = self.execute(method, path, params, scope, key, fault)
        if fault == "drop-after-apply":
            request.scope[DROP] = True
        return answered

    def execute(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        scope: str,
        key: str | None,
        fault: str | None = None,
    ) -> Response:
        """A request that reached Stripe: its key's first answer replayed, or executed (and
        its answer saved under its key when it began executing)."""
        if method == "POST" and key is not None:
            known = self.idempotent.get((scope, key))
            if known is not None:
                first_path, first_params, status, content = known
                if (first_path, first_params) != (path, params):
                    return error_response(
                        400,
                        {
                            "type": "idempotency_error",
                            "message": "Keys for idempotent requests can only be used with the "
                            "same parameters they were first used with. Try using a key other "
                            f"than '{key}' if you meant to execute a different request.",
                        },
                    )
                return JSONResponse(
                    content, status_code=status, headers={"Idempotent-Replayed": "true"}
                )
        if fault == "429":
            return error_response(
                429,
                {
                    "type": "invalid_request_error",
                    "code": "rate_limit",
                    "message": "Too many requests hit the API too quickly.",
                },
            )
        if fault == "500-before-apply":
            return error_response(500, {"type": "api_error", "message": "An error occurred."})
        try:
            if fault == "refuse":
                raise invalid("The request was refused (an injected refusal).")
            status, content = 200, self.route(method, path, params, scope)
        except StripeError as error:
            status, content = error.status, {"error": error.error}
            if not error.saved:
                return JSONResponse(content, status_code=status)
        if fault == "500-after-apply":
            status, content = 500, {"error": {"type": "api_error", "message": "An error occurred."}}
        if method == "POST" and key is not None:
            self.idempotent[(scope, key)] = (path, params, status, content)
        return JSONResponse(content, status_code=status)

    def route(self, method: str, path: str, params: dict[str, Any], scope: str) -> Any:
        p, terminal = stripe.params, stripe.params.terminal
        helpers = stripe.params.test_helpers.terminal
        routes: list[tuple[str, str, Callable[..., Any], type]] = [
            ("POST", r"/v1/payment_intents", self.create_intent, p.PaymentIntentCreateParams),
            ("GET", r"/v1/payment_intents", self.list_intents, p.PaymentIntentListParams),
            (
                "GET",
                r"/v1/payment_intents/search",
                self.search_intents,
                p.PaymentIntentSearchParams,
            ),
            (
                "GET",
                r"/v1/payment_intents/(pi_\w+)",
                self.retrieve_intent,
                p.PaymentIntentRetrieveParams,
            ),
            (
                "POST",
                r"/v1/payment_intents/(pi_\w+)/confirm",
                self.confirm_intent,
                p.PaymentIntentConfirmParams,
            ),
            (
                "POST",
                r"/v1/payment_intents/(pi_\w+)/cancel",
                self.cancel_intent,
                p.PaymentIntentCancelParams,
            ),
            (
                "POST",
                r"/v1/payment_intents/(pi_\w+)/capture",
                self.capture_intent,
                p.PaymentIntentCaptureParams,
            ),
            ("POST", r"/v1/customers", self.create_customer, p.CustomerCreateParams),
            ("GET", r"/v1/customers", self.list_customers, p.CustomerListParams),
            ("POST", r"/v1/setup_intents", self.create_setup, p.SetupIntentCreateParams),
            ("GET", r"/v1/setup_intents", self.list_setups, p.SetupIntentListParams),
            (
                "GET",
                r"/v1/setup_intents/(seti_\w+)",
                self.retrieve_setup,
                p.SetupIntentRetrieveParams,
            ),
            (
                "GET",
                r"/v1/payment_methods/(pm_\w+)",
                self.retrieve_method,
                p.PaymentMethodRetrieveParams,
            ),
            (
                "POST",
                r"/v1/payment_methods/(pm_\w+)/attach",
                self.attach_method,
                p.PaymentMethodAttachParams,
            ),
            (
                "POST",
                r"/v1/payment_methods/(pm_\w+)/detach",
                self.detach_method,
                p.PaymentMethodDetachParams,
            ),
            ("POST", r"/v1/refunds", self.create_refund, p.RefundCreateParams),
            ("GET", r"/v1/refunds", self.list_refunds, p.RefundListParams),
            ("GET", r"/v1/refunds/(re_\w+)", self.retrieve_refund, p.RefundRetrieveParams),
            (
                "GET",
                r"/v1/balance_transactions",
                self.list_balance_transactions,
                p.BalanceTransactionListParams,
            ),
            ("GET", r"/v1/payouts/(po_\w+)", self.retrieve_payout, p.PayoutRetrieveParams),
            ("POST", r"/v1/terminal/readers", self.create_reader, terminal.ReaderCreateParams),
            ("GET", r"/v1/terminal/readers", self.list_readers, terminal.ReaderListParams),
            (
                "GET",
                r"/v1/terminal/readers/(tmr_\w+)",
                self.retrieve_reader,
                terminal.ReaderRetrieveParams,
            ),
            (
                "POST",
                r"/v1/terminal/readers/(tmr_\w+)",
                self.update_reader,
                terminal.ReaderUpdateParams,
            ),
            (
                "POST",
                r"/v1/terminal/readers/(tmr_\w+)/process_payment_intent",
                self.process_intent,
                terminal.ReaderProcessPaymentIntentParams,
            ),
            (
                "POST",
                r"/v1/terminal/readers/(tmr_\w+)/cancel_action",
                self.cancel_action,
                terminal.ReaderCancelActionParams,
            ),
            (
                "POST",
                r"/v1/test_helpers/terminal/readers/(tmr_\w+)/present_payment_method",
                self.present_payment_method,
                helpers.ReaderPresentPaymentMethodParams,
            ),
        ]
        for route_method, pattern, handler, typed in routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                try:
                    check(params, typed)
                except ParameterError as error:
                    raise not_saved(
                        invalid(error.message, param=error.param, code=error.code)
                    ) from None
                return handler(params, scope, *match.groups())
        raise StripeError(
            404,
            {
                "type": "invalid_request_error",
                "message": f"Unrecognized request URL ({method}: {path}).",
            },
            saved=False,
        )

    # -- PaymentIntents ---------------------------------------------------------------

    def create_intent(self, params: dict[str, Any], scope: str) -> dict[str, Any]:
        allowed(
            params,
            "amount currency capture_method confirm payment_method allowed_payment_method_types "
            "error_on_requires_action metadata expand description customer off_session",
        )
        amount = integer(params, "amount", required=True)
        if params.get("currency") != "usd":
            raise not_saved(invalid("Invalid currency", param="currency"))
        if amount < 50:
            raise not_saved(
                invalid(
                    "Amount must be at least $0.50 usd", param="amount", code="amount_too_small"
                )
            )
        capture_method = params.get("capture_method", "automatic_async")
        if capture_method not in ("automatic", "automatic_async", "manual"):
            raise not_saved(invalid("Invalid capture_method", param="capture_method"))
        method_id = params.get("payment_method")
        customer = params.get("customer")
        if customer is not None:
            self.customer_of(customer, scope)
        if method_id is not None:
            self.usable_method(method_id, scope, customer)
        confirm = boolean(params, "confirm")
        off_session = boolean(params, "off_session")
        if off_session and not confirm:
            raise not_saved(
                invalid(
                    "off_session can only be used when confirm is set to true.",
                    param="off_session",
                )
            )
        if "error_on_requires_action" in params and not confirm:
            raise not_saved(
                invalid(
                    "error_on_requires_action can only be used with confirm=true.",
                    param="error_on_requires_action",
                )
            )
        intent: dict[str, Any] = {
            "id": self.new_id("pi"),
            "object": "payment_intent",
            "_account": scope,
            "_indexed_at": time.monotonic() + SEARCH_LAG,
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "currency": "usd",
            "capture_method": capture_method,
            "status": "requires_payment_method" if method_id is None else "requires_confirmation",
            "payment_method": method_id,
            "customer": customer,
            "_off_session": off_session,
            "payment_method_types": params.get("allowed_payment_method_types", ["card"]),
            "metadata": params.get("metadata", {}),
            "latest_charge": None,
            "last_payment_error": None,
            "next_action": None,
            "cancellation_reason": None,
            "canceled_at": None,
            "created": int(time.time()),
            "livemode": False,
        }
        self.objects[intent["id"]] = intent
        if confirm:
            self.confirm(intent, params)
        return self.render(intent, params)

    def confirm_intent(self, params: dict[str, Any], scope: str, intent_id: str) -> Any:
        allowed(params, "payment_method error_on_requires_action expand")
        intent = self.intent_of(intent_id, scope)
        method_id = params.get("payment_method")
        if method_id is not None:
            self.usable_method(method_id, scope, intent["customer"])
        if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
            raise invalid(
                "This PaymentIntent's status is "
                f"{intent['status']}, so it cannot be confirmed: only a PaymentIntent that "
                "requires a payment method or confirmation can be.",
                code="payment_intent_unexpected_state",
            )
        if method_id is not None:
            intent["payment_method"] = method_id
        self.confirm(intent, params)
        return self.render(intent, params)

    def confirm(self, intent: dict[str, Any], params: dict[str, Any]) -> None:
        """Confirm with the intent's PaymentMethod: an authorisation, a decline (402), or
        3-D Secure (`requires_action`; with `error_on_requires_action` a 402
        `authentication_required` and the intent back to `requires_payment_method`)."""
        method_id = intent["payment_method"]
        if method_id is None:
            raise invalid(
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                code="payment_intent_unexpected_state",
            )
        card = self.card_of(method_id)
        if card.get("three_d_secure") or (
            card.get("asks_authentication") and intent["_off_session"]
        ):
            if boolean(params, "error_on_requires_action") or intent["_off_session"]:
                error = {
                    "type": "card_error",
                    "code": "authentication_required",
                    "decline_code": "authentication_required",
                    "message": "Your card was declined. This transaction requires authentication.",
                    "payment_method": self.method_object(method_id),
                }
                intent.update(
                    status="requires_payment_method", last_payment_error=error, payment_method=None
                )
                raise StripeError(402, {**error, "payment_intent": self.render(intent, params)})
            intent.update(
                status="requires_action",
                next_action={
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {"type": "three_d_secure_redirect"},
                },
            )
            return
        charge = self.new_charge(intent, card)
        if "decline" in card:
            error = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": card["decline"],
                "message": "Your card was declined."
                if card["decline"] == "generic_decline"
                else "Your card has insufficient funds.",
                "charge": charge["id"],
                "payment_method": self.method_object(method_id),
            }
            intent.update(
                status="requires_payment_method", last_payment_error=error, payment_method=None
            )
            charge.update(status="failed", failure_code="card_declined")
            raise StripeError(402, {**error, "payment_intent": self.render(intent, params)})
        manual = intent["capture_method"] == "manual"
        amount = intent["amount"]
        intent.update(
            status="requires_capture" if manual else "succeeded",
            amount_capturable=amount if manual else 0,
            amount_received=0 if manual else amount,
        )
        charge.update(captured=not manual, amount_captured=0 if manual else amount)

    def list_intents(self, params: dict[str, Any], scope: str) -> Any:
        """A consistent list of the account's PaymentIntents, newest first, by `created`."""
        allowed(params, "created limit starting_after ending_before expand customer")
        created = params.get("created")
        bounds = created if isinstance(created, dict) else {"eq": created} if created else {}
        tests = {
            "gt": lambda c, v: c > v,
            "gte": lambda c, v: c >= v,
            "lt": lambda c, v: c < v,
            "lte": lambda c, v: c <= v,
            "eq": lambda c, v: c == v,
        }
        limits = {k: integer(bounds, k) for k in bounds}
        found = [
            o
            for o in self.objects.values()
            if o["object"] == "payment_intent"
            and o["_account"] == scope
            and all(tests[k](o["created"], v) for k, v in limits.items())
        ][::-1]
        return self.page_of(found, params, "/v1/payment_intents", self.render)

    def page_of(
        self,
        found: list[dict[str, Any]],
        params: dict[str, Any],
        url: str,
        show: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
    ) -> dict[str, Any]:
        """One page of a list, newest first: `limit` (1 to 100, 10 by default) after
        `starting_after`; `expand` of `data.x` expands x in each item."""
        limit = integer(params, "limit") if "limit" in params else 10
        if not 1 <= limit <= 100:
            raise not_saved(invalid("Limit must be between 1 and 100", param="limit"))
        after = params.get("starting_after")
        if after is not None:
            ids = [o["id"] for o in found]
            if after not in ids:
                raise not_saved(missing("object", after, "starting_after"))
            found = found[ids.index(after) + 1 :]
        inner = {"expand": [e.removeprefix("data.") for e in params.get("expand", [])]}
        return {
            "object": "list",
            "url": url,
            "has_more": len(found) > limit,
            "data": [show(o, inner) for o in found[:limit]],
        }

    def new_charge(self, intent: dict[str, Any], card: dict[str, Any]) -> dict[str, Any]:
        charge = {
            "id": self.new_id("ch"),
            "object": "charge",
            "_account": intent["_account"],
            "amount": intent["amount"],
            "amount_captured": 0,
            "amount_refunded": 0,
            "captured": False,
            "refunded": False,
            "status": "succeeded",
            "payment_intent": intent["id"],
            "balance_transaction": None,
            "payment_method_details": {
                "type": "card",
                "card": {"brand": card["brand"], "last4": card["last4"]},
            },
            "created": NOW,
        }
        self.objects[charge["id"]] = charge
        intent["latest_charge"] = charge["id"]
        return charge

    def intent_of(self, intent_id: str, scope: str) -> dict[str, Any]:
        intent = self.objects.get(intent_id)
        if intent is None or intent["_account"] != scope or intent["object"] != "payment_intent":
            raise not_saved(missing("payment_intent", intent_id))
        return intent

    def retrieve_intent(self, params: dict[str, Any], scope: str, intent_id: str) -> Any:
        allowed(params, "expand client_secret")
        return self.render(self.intent_of(intent_id, scope), params)

    def search_intents(self, params: dict[str, Any], scope: str) -> Any:
        allowed(params, "query limit page expand")
        match = re.fullmatch(r"metadata\['(\w+)'\]:'([^']*)'", params.get("query", ""))
        if match is None:
            raise not_saved(invalid("Invalid search query", param="query"))
        name, value = match.groups()
        found = [
            o
            for o in self.objects.values()
            if o["object"] == "payment_intent"
            and o["_account"] == scope
            and o["metadata"].get(name) == value
            and o["_indexed_at"] <= time.monotonic()
        ]
        inner = {"expand": [e.removeprefix("data.") for e in params.get("expand", [])]}
        return {
            "object": "search_result",
            "url": "/v1/payment_intents/search",
            "has_more": False,
            "next_page": None,
            "data": [self.render(o, inner) for o in found],
        }

    def cancel_intent(self, params: dict[str, Any], scope: str, intent_id: str) -> Any:
        allowed(params, "cancellation_reason expand")
        intent = self.intent_of(intent_id, scope)
        if intent["status"] not in CANCELABLE:
            raise invalid(
                "You cannot cancel this PaymentIntent because it has a status of "
                f"{intent['status']}. Only a PaymentIntent with one of the following statuses "
                f"may be canceled: {', '.join(CANCELABLE)}.",
                code="payment_intent_unexpected_state",
            )
        intent.update(
            status="canceled",
            amount_capturable=0,
            canceled_at=NOW,
            cancellation_reason=params.get("cancellation_reason", "requested_by_customer"),
        )
        self.cancels[intent_id] += 1
        return self.render(intent, params)

    def capture_intent(self, params: dict[str, Any], scope: str, intent_id: str) -> Any:
        allowed(params, "amount_to_capture expand metadata")
        intent = self.intent_of(intent_id, scope)
        if intent["status"] != "requires_capture":
            raise invalid(
                "This PaymentIntent could not be captured because it has a status of "
                f"{intent['status']}. Only a PaymentIntent with one of the following statuses "
                "may be captured: requires_capture.",
                code="payment_intent_unexpected_state",
            )
        amount = (
            integer(params, "amount_to_capture")
            if "amount_to_capture" in params
            else intent["amount_capturable"]
        )
        if not 0 < amount <= intent["amount_capturable"]:
            raise invalid(
                "The amount_to_capture must be less than or equal to the amount_capturable "
                f"({intent['amount_capturable']}).",
                param="amount_to_capture",
                code="amount_too_large",
            )
        charge = self.objects[intent["latest_charge"]]
        fee = round(amount * 29 / 1000) + 30
        txn = self.balance_transaction(scope, "charge", charge["id"], amount, fee)
        charge.update(captured=True, amount_captured=amount, balance_transaction=txn["id"])
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        self.captures[intent_id] += 1
        return self.render(intent, params)

    def balance_transaction(
        self,
        scope: str,
        kind: str,
        source: str,
        amount: int,
        fee: int,
        *,
        category: str | None = None,
        description: str | None = None,
        fee_description: str = "Stripe processing fees",
    ) -> dict[str, Any]:
        txn = {
            "id": self.new_id("txn"),
            "object": "balance_transaction",
            "_account": scope,
            "type": kind,
            "reporting_category": category or kind,
            "description": description,
            "source": source,
            "amount": amount,
            "fee": fee,
            "fee_details": [
                {
                    "amount": fee,
                    "application": None,
                    "currency": "usd",
                    "description": fee_description,
                    "type": "stripe_fee",
                }
            ]
            if fee
            else [],
            "net": amount - fee,
            "currency": "usd",
            "status": "pending",
            "created": NOW,
        }
        self.objects[txn["id"]] = txn
        return txn

    # -- Refunds ------------------------------------------------------------------------

    # -- Customers, SetupIntents, PaymentMethods ---------------------------------------

    def ask_authentication(self, method_id: str) -> None:
        """The card's issuer asks for authentication (3-D Secure) of its off-session
        payments from now on (an issuer may, for any payment)."""
        with self.lock:
            self.objects[method_id]["_asks_authentication"] = True

    def methods_of(self, customer: str) -> list[dict[str, Any]]:
        """The PaymentMethods attached to the Customer now."""
        return [
            public(o)
            for o in self.objects.values()
            if o["object"] == "payment_method" and o["customer"] == customer
        ]

    def delete_customer(self, customer_id: str) -> None:
        """The practice deletes the Customer in Stripe's dashboard: it is gone from lists and
        from requests (`No such customer`), and its PaymentMethods are detached."""
        with self.lock:
            self.objects[customer_id]["_deleted"] = True
            for method in self.objects.values():
                if method["object"] == "payment_method" and method["customer"] == customer_id:
                    method.update(customer=None, _detached=True)

    def customers(self, account: str) -> list[dict[str, Any]]:
        return [
            public(o)
            for o in self.objects.values()
            if o["object"] == "customer" and o["_account"] == account and not o.get("_deleted")
        ]

    def create_customer(self, params: dict[str, Any], scope: str) -> Any:
        allowed(params, "metadata description email name expand")
        customer = {
            "id": self.new_id("cus"),
            "object": "customer",
            "_account": scope,
            "description": params.get("description"),
            "email": params.get("email"),
            "name": params.get("name"),
            "metadata": params.get("metadata", {}),
            "invoice_settings": {"default_payment_method": None},
            "created": int(time.time()),
            "livemode": False,
        }
        self.objects[customer["id"]] = customer
        return public(customer)

    def list_customers(self, params: dict[str, Any], scope: str) -> Any:
        allowed(params, "created limit starting_after ending_before expand email")
        found = [
            o
            for o in self.objects.values()
            if o["object"] == "customer"
            and o["_account"] == scope
            and not o.get("_deleted")
            and created_in(o, params)
        ][::-1]
        return self.page_of(found, params, "/v1/customers", lambda o, _p: public(o))

    def customer_of(self, customer_id: str, scope: str) -> dict[str, Any]:
        found = self.objects.get(customer_id)
        if (
            found is None
            or found["object"] != "customer"
            or found["_account"] != scope
            or found.get("_deleted")
        ):
            raise not_saved(missing("customer", customer_id, "customer"))
        return found

    def method_of(self, method_id: str, scope: str) -> dict[str, Any]:
        found = self.objects.get(method_id)
        if found is None or found["object"] != "payment_method" or found["_account"] != scope:
            raise not_saved(missing("PaymentMethod", method_id, "payment_method"))
        return found

    def usable_method(self, method_id: str, scope: str, customer: str | None) -> None:
        """A test PaymentMethod, or a kept one used with its own Customer."""
        if method_id in TEST_PAYMENT_METHODS:
            return
        method = self.method_of(method_id, scope)
        if method["_detached"]:
            raise not_saved(
                invalid(
                    "This PaymentMethod was previously used without being attached to a "
                    "Customer or was detached from a Customer, and may not be used again.",
                    param="payment_method",
                )
            )
        if method["customer"] is not None and method["customer"] != customer:
            raise not_saved(
                invalid(
                    f"The provided PaymentMethod belongs to a Customer ({method['customer']}); "
                    "provide that Customer as customer to use it.",
                    param="payment_method",
                )
            )

    def card_of(self, method_id: str) -> dict[str, Any]:
        """How the PaymentMethod's card answers a charge."""
        if method_id in TEST_PAYMENT_METHODS:
            return TEST_PAYMENT_METHODS[method_id]
        method = self.objects[method_id]
        card = dict(TEST_PAYMENT_METHODS[method["_test"]])
        if method.get("_asks_authentication"):
            card["asks_authentication"] = True
        return card

    def method_object(self, method_id: str) -> dict[str, Any]:
        if method_id in TEST_PAYMENT_METHODS:
            return payment_method_object(method_id)
        return public(self.objects[method_id])

    def kept_method(self, test_id: str, customer: str, scope: str) -> dict[str, Any]:
        """A test PaymentMethod attached to a Customer: a new PaymentMethod of its card (a
        declining card is refused, as its issuer refuses it)."""
        card = TEST_PAYMENT_METHODS[test_id]
        if "decline" in card and not card.get("attaches"):
            raise StripeError(
                402,
                {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": card["decline"],
                    "message": "Your card was declined.",
                    "param": "payment_method",
                },
            )
        method = {
            "id": self.new_id("pm"),
            "object": "payment_method",
            "_account": scope,
            "_test": test_id,
            "_detached": False,
            "type": "card",
            "customer": customer,
            "card": {"brand": card["brand"], "last4": card["last4"], **TEST_EXPIRY},
            "metadata": {},
            "created": int(time.time()),
            "livemode": False,
        }
        self.objects[method["id"]] = method
        return method

    def create_setup(self, params: dict[str, Any], scope: str) -> Any:
        allowed(
            params,
            "customer payment_method usage confirm allowed_payment_method_types metadata "
            "expand description",
        )
        customer = params.get("customer")
        if customer is not None:
            self.customer_of(customer, scope)
        method_id = params.get("payment_method")
        if method_id is not None:
            self.usable_method(method_id, scope, customer)
        usage = params.get("usage", "off_session")
        if usage not in ("on_session", "off_session"):
            raise not_saved(invalid("Invalid usage", param="usage"))
        confirm = boolean(params, "confirm")
        setup: dict[str, Any] = {
            "id": self.new_id("seti"),
            "object": "setup_intent",
            "_account": scope,
            "customer": customer,
            "payment_method": method_id,
            "payment_method_types": params.get("allowed_payment_method_types", ["card"]),
            "usage": usage,
            "status": "requires_payment_method" if method_id is None else "requires_confirmation",
            "last_setup_error": None,
            "next_action": None,
            "metadata": params.get("metadata", {}),
            "created": int(time.time()),
            "livemode": False,
        }
        self.objects[setup["id"]] = setup
        if confirm:
            if method_id is None:
                raise invalid(
                    "You cannot confirm this SetupIntent because it's missing a payment method.",
                    code="setup_intent_unexpected_state",
                )
            self.confirm_setup(setup, method_id, scope)
        return self.render_setup(setup, params)

    def confirm_setup(self, setup: dict[str, Any], method_id: str, scope: str) -> None:
        if method_id not in TEST_PAYMENT_METHODS:  # a kept one: attached already
            method = self.objects[method_id]
            if setup["customer"] is not None and method["customer"] is None:
                method["customer"] = setup["customer"]
            setup.update(status="succeeded")
            return
        card = TEST_PAYMENT_METHODS[method_id]
        if card.get("three_d_secure"):
            setup.update(
                status="requires_action",
                next_action={
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {"type": "three_d_secure_redirect"},
                },
            )
            return
        if setup["customer"] is None:
            raise invalid(
                "A SetupIntent for later charges needs a customer to attach the PaymentMethod to.",
                param="customer",
            )
        try:
            method = self.kept_method(method_id, setup["customer"], scope)
        except StripeError as error:
            error.error["setup_intent"] = self.render_setup(
                {**setup, "status": "requires_payment_method", "payment_method": None}, {}
            )
            setup.update(
                status="requires_payment_method",
                payment_method=None,
                last_setup_error={
                    k: v for k, v in error.error.items() if k not in ("setup_intent", "param")
                },
            )
            raise
        setup.update(status="succeeded", payment_method=method["id"])

    def render_setup(self, setup: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        shown = public(setup)
        if "payment_method" in params.get("expand", []) and setup["payment_method"]:
            shown["payment_method"] = self.method_object(setup["payment_method"])
        return shown

    def list_setups(self, params: dict[str, Any], scope: str) -> Any:
        allowed(params, "customer created limit starting_after ending_before expand")
        customer = params.get("customer")
        found = [
            o
            for o in self.objects.values()
            if o["object"] == "setup_intent"
            and o["_account"] == scope
            and (customer is None or o["customer"] == customer)
            and created_in(o, params)
        ][::-1]
        return self.page_of(found, params, "/v1/setup_intents", self.render_setup)

    def retrieve_setup(self, params: dict[str, Any], scope: str, setup_id: str) -> Any:
        allowed(params, "expand client_secret")
        found = self.objects.get(setup_id)
        if found is None or found["object"] != "setup_intent" or found["_account"] != scope:
            raise not_saved(missing("setup_intent", setup_id, "intent"))
        return self.render_setup(found, params)

    def retrieve_method(self, params: dict[str, Any], scope: str, method_id: str) -> Any:
        allowed(params, "expand")
        if method_id in TEST_PAYMENT_METHODS:
            return payment_method_object(method_id)
        return public(self.method_of(method_id, scope))

    def attach_method(self, params: dict[str, Any], scope: str, method_id: str) -> Any:
        allowed(params, "customer expand")
        customer = params.get("customer")
        if customer is None:
            raise not_saved(
                invalid(
                    "Missing required param: customer.", param="customer", code="parameter_missing"
                )
            )
        self.customer_of(customer, scope)
        if method_id in TEST_PAYMENT_METHODS:
            return public(self.kept_method(method_id, customer, scope))
        method = self.method_of(method_id, scope)
        self.usable_method(method_id, scope, customer)
        method["customer"] = customer
        return public(method)

    def detach_method(self, params: dict[str, Any], scope: str, method_id: str) -> Any:
        allowed(params, "expand")
        if method_id in TEST_PAYMENT_METHODS:
            raise invalid(
                "The payment method you provided is not attached to a customer so detachment "
                "is impossible."
            )
        method = self.method_of(method_id, scope)
        if method["customer"] is None:
            raise invalid(
                "The payment method you provided is not attached to a customer so detachment "
                "is impossible."
            )
        method.update(customer=None, _detached=True)
        return public(method)

    # -- Refunds ------------------------------------------------------------------------

    def create_refund(self, params: dict[str, Any], scope: str) -> Any:
        allowed(params, "payment_intent charge amount metadata reason expand")
        if "payment_intent" in params:
            intent = self.intent_of(params["payment_intent"], scope)
            charge = self.objects.get(intent["latest_charge"] or "")
        elif "charge" in params:
            charge = self.objects.get(params["charge"])
            if charge is None or charge["_account"] != scope:
                raise not_saved(missing("charge", params["charge"], "charge"))
        else:
            raise not_saved(
                invalid(
                    "One of the following params should be provided for this request: "
                    "payment_intent or charge."
                )
            )
        if charge is None or not charge["captured"]:
            raise invalid(
                "This PaymentIntent does not have a successful charge to refund.",
                param="payment_intent",
            )
        left = charge["amount_captured"] - charge["amount_refunded"]
        if left <= 0:
            raise invalid(
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = integer(params, "amount") if "amount" in params else left
        if amount <= 0:
            raise not_saved(invalid("Invalid positive integer", param="amount"))
        if amount > left:
            raise invalid(
                f"Refund amount ({money(amount)}) is greater than unrefunded amount on charge "
                f"({money(left)})",
                param="amount",
                code="amount_too_large",
            )
        refund = {
            "id": self.new_id("re"),
            "object": "refund",
            "_account": scope,
            "amount": amount,
            "charge": charge["id"],
            "payment_intent": charge["payment_intent"],
            "currency": "usd",
            "metadata": params.get("metadata", {}),
            "reason": params.get("reason"),
            "status": "succeeded",
            "failure_reason": None,
            "created": NOW,
        }
        txn = self.balance_transaction(scope, "refund", refund["id"], -amount, 0)
        refund["balance_transaction"] = txn["id"]
        self.objects[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        return public(refund)

    def list_refunds(self, params: dict[str, Any], scope: str) -> Any:
        allowed(params, "payment_intent charge limit starting_after ending_before expand")
        found = [
            o
            for o in self.objects.values()
            if o["object"] == "refund"
            and o["_account"] == scope
            and params.get("payment_intent", o["payment_intent"]) == o["payment_intent"]
            and params.get("charge", o["charge"]) == o["charge"]
        ][::-1]
        return self.page_of(found, params, "/v1/refunds", lambda o, _: public(o))

    def retrieve_refund(self, params: dict[str, Any], scope: str, refund_id: str) -> Any:
        allowed(params, "expand")
        refund = self.objects.get(refund_id)
        if refund is None or refund["_account"] != scope or refund["object"] != "refund":
            raise not_saved(missing("refund", refund_id))
        return public(refund)

    def fail_refund(self, refund_id: str, reason: str = "expired_or_canceled_card") -> Any:
        """The card's bank refused a refund after it was made: the refund is `failed` with
        its `failure_reason`, and a `refund_failure` balance transaction returns its amount
        to the balance. The refund object, as sent with `refund.failed`."""
        with self.lock:
            refund = self.objects[refund_id]
            assert refund["status"] in ("pending", "succeeded"), "only a made refund fails"
            txn = self.balance_transaction(
                refund["_account"], "refund_failure", refund_id, refund["amount"], 0
            )
            refund.update(
                status="failed", failure_reason=reason, failure_balance_transaction=txn["id"]
            )
            charge = self.objects[refund["charge"]]
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = False
            return public(refund)

    # -- Disputes -----------------------------------------------------------------------

    def open_dispute(
        self, intent_id: str, *, reason: str = "fraudulent", due_in_days: int = 7
    ) -> dict[str, Any]:
        """What Stripe does when the cardholder disputes a captured charge: a dispute
        (`needs_response`) and its withdrawal, a balance transaction of type `adjustment`
        (reporting category `dispute`) whose source is the dispute: the disputed amount
        out, and the dispute fee ($15.00). The dispute object, as sent with
        `charge.dispute.created`."""
        with self.lock:
            intent = self.objects[intent_id]
            charge = self.objects[intent["latest_charge"]]
            assert charge["captured"], "only a captured charge can be disputed"
            assert not charge.get("disputed"), "a charge is disputed at most once"
            dispute_id = self.new_id("dp")
            amount = charge["amount_captured"] - charge["amount_refunded"]
            txn = self.balance_transaction(
                intent["_account"],
                "adjustment",
                dispute_id,
                -amount,
                DISPUTE_FEE,
                category="dispute",
                description=f"Chargeback withdrawal for {charge['id']}",
                fee_description="Dispute fee",
            )
            created = int(time.time())
            dispute = {
                "id": dispute_id,
                "object": "dispute",
                "_account": intent["_account"],
                "amount": amount,
                "balance_transactions": [txn["id"]],
                "charge": charge["id"],
                "created": created,
                "currency": "usd",
                "evidence_details": {
                    "due_by": created + due_in_days * 86400,
                    "has_evidence": False,
                    "past_due": False,
                    "submission_count": 0,
                },
                "is_charge_refundable": False,
                "livemode": False,
                "metadata": {},
                "payment_intent": intent_id,
                "reason": reason,
                "status": "needs_response",
            }
            self.objects[dispute_id] = dispute
            charge["disputed"] = True
            return self.dispute_out(dispute)

    def submit_evidence(self, dispute_id: str) -> dict[str, Any]:
        """Evidence submitted: the dispute is `under_review` (`charge.dispute.updated`)."""
        with self.lock:
            dispute = self.objects[dispute_id]
            dispute["status"] = "under_review"
            dispute["evidence_details"].update(has_evidence=True, submission_count=1)
            return self.dispute_out(dispute)

    def close_dispute(self, dispute_id: str, *, won: bool) -> dict[str, Any]:
        """The card network's decision (`charge.dispute.closed`): `lost` keeps the money
        withdrawn; `won` reinstates the disputed amount (a second `adjustment`, reporting
        category `dispute_reversal`). The dispute fee is not returned."""
        with self.lock:
            dispute = self.objects[dispute_id]
            dispute["status"] = "won" if won else "lost"
            if won:
                txn = self.balance_transaction(
                    dispute["_account"],
                    "adjustment",
                    dispute_id,
                    dispute["amount"],
                    0,
                    category="dispute_reversal",
                    description=f"Chargeback reversal for {dispute['charge']}",
                )
                dispute["balance_transactions"].append(txn["id"])
            return self.dispute_out(dispute)

    def dispute_out(self, dispute: dict[str, Any]) -> dict[str, Any]:
        """A dispute as Stripe shows it: its balance transactions in full."""
        shown = public(dispute)
        shown["balance_transactions"] = [
            public(self.objects[t]) for t in dispute["balance_transactions"]
        ]
        return shown

    # -- Payouts ------------------------------------------------------------------------

    def pay_out(
        self,
        account: str,
        arrival_date: int,
        *,
        only: set[str] | None = None,
        status: str = "paid",
        failure_code: str | None = None,
    ) -> dict[str, Any]:
        """Stripe paying out the account's available balance (or only the balance
        transactions of the given charges and refunds): the payout object, as sent with
        `payout.paid` (or `payout.failed`, with its failure code)."""
        with self.lock:
            payout_id = self.new_id("po")
            included = [
                o
                for o in self.objects.values()
                if o["object"] == "balance_transaction"
                and o["_account"] == account
                and o.get("_payout") is None
                and o["type"] != "payout"
                and (only is None or o["source"] in only)
            ]
            for txn in included:
                txn["_payout"] = payout_id
                txn["status"] = "available"
            amount = sum(t["net"] for t in included)
            payout = {
                "id": payout_id,
                "object": "payout",
                "_account": account,
                "amount": amount,
                "arrival_date": arrival_date,
                "currency": "usd",
                "status": status,
                "failure_code": failure_code,
                "failure_message": "The bank account has been closed."
                if failure_code == "account_closed"
                else None,
                "automatic": True,
                "created": NOW,
            }
            self.objects[payout_id] = payout
            own = self.balance_transaction(account, "payout", payout_id, -amount, 0)
            own["_payout"] = payout_id
            payout["balance_transaction"] = own["id"]
            payout["failure_balance_transaction"] = None
            if status == "failed":
                self.return_payout(payout)
            return public(payout)

    def return_payout(self, payout: dict[str, Any]) -> None:
        """Stripe's reversal of a failed payout: a `payout_failure` balance transaction
        (the payout's `failure_balance_transaction`) puts its amount back in the balance,
        to be paid out again."""
        txn = self.balance_transaction(
            payout["_account"], "payout_failure", payout["id"], payout["amount"], 0
        )
        payout["failure_balance_transaction"] = txn["id"]

    def fail_payout(self, payout_id: str, failure_code: str = "account_closed") -> Any:
        """The bank returned a payout (even one Stripe had marked paid): it is `failed`,
        final. The payout object, as sent with `payout.failed`."""
        with self.lock:
            payout = self.objects[payout_id]
            if payout["status"] != "failed":
                self.return_payout(payout)
            payout.update(
                status="failed",
                failure_code=failure_code,
                failure_message="The bank account has been closed."
                if failure_code == "account_closed"
                else "The payout failed.",
            )
            return public(payout)

    def add_balance_transaction(
        self, account: str, kind: str, amount: int, fee: int = 0, description: str = ""
    ) -> dict[str, Any]:
        """A balance transaction of any other type (a Climate `contribution`, a
        `stripe_fee`, a `tax_fee`, ...): payouts carry it like the others."""
        with self.lock:
            source = self.new_id("src")
            return public(
                self.balance_transaction(
                    account, kind, source, amount, fee, description=description or kind
                )
            )

    def retrieve_payout(self, params: dict[str, Any], scope: str, payout_id: str) -> Any:
        allowed(params, "expand")
        payout = self.objects.get(payout_id)
        if payout is None or payout["_account"] != scope:
            raise not_saved(missing("payout", payout_id))
        return public(payout)

    def list_balance_transactions(self, params: dict[str, Any], scope: str) -> Any:
        allowed(params, "payout type source currency limit starting_after ending_before expand")
        found = [
            o
            for o in self.objects.values()
            if o["object"] == "balance_transaction"
            and o["_account"] == scope
            and (params.get("payout") is None or o.get("_payout") == params["payout"])
            and (params.get("type") is None or o["type"] == params["type"])
        ][::-1]  # the newest first, as Stripe lists
        limit = integer(params, "limit") if "limit" in params else 10
        if not 1 <= limit <= 100:
            raise not_saved(invalid("Limit must be between 1 and 100", param="limit"))
        after = params.get("starting_after")
        if after is not None:
            ids = [o["id"] for o in found]
            found = found[ids.index(after) + 1 :] if after in ids else []
        page = found[:limit]
        expand = "data.source" in params.get("expand", [])
        data = []
        for txn in page:
            shown = public(txn)
            if expand and txn["source"] in self.objects:
                source = self.objects[txn["source"]]
                shown["source"] = (
                    self.dispute_out(source) if source["object"] == "dispute" else public(source)
                )
            data.append(shown)
        return {
            "object": "list",
            "url": "/v1/balance_transactions",
            "has_more": len(found) > limit,
            "data": data,
        }

    # -- Terminal readers ------------------------------------------------------------

    def create_reader(self, params: dict[str, Any], scope: str) -> Any:
        allowed(params, "registration_code label location metadata expand")
        code = params.get("registration_code")
        if not code:
            raise not_saved(
                invalid(
                    "Missing required param: registration_code.",
                    param="registration_code",
                    code="parameter_missing",
                )
            )
        if code not in SIMULATED_READER_CODES:
            raise invalid(
                "The registration code is invalid or has expired; generate a new one on the "
                "reader.",
                param="registration_code",
            )
        reader = {
            "id": self.new_id("tmr"),
            "object": "terminal.reader",
            "_account": scope,
            "label": params.get("label") or code,
            "device_type": SIMULATED_READER_CODES[code],
            "serial_number": self.new_id("sn"),
            "status": "online",
            "location": params.get("location"),
            "metadata": params.get("metadata", {}),
            "action": None,
            "livemode": False,
        }
        self.objects[reader["id"]] = reader
        return public(reader)

    def reader_of(self, reader_id: str, scope: str) -> dict[str, Any]:
        reader = self.objects.get(reader_id)
        if reader is None or reader["_account"] != scope:
            raise not_saved(missing("terminal.reader", reader_id))
        return reader

    def list_readers(self, params: dict[str, Any], scope: str) -> Any:
        allowed(params, "limit starting_after ending_before location status device_type expand")
        found = [
            public(o)
            for o in self.objects.values()
            if o["object"] == "terminal.reader" and o["_account"] == scope
        ]
        return {"object": "list", "url": "/v1/terminal/readers", "has_more": False, "data": found}

    def retrieve_reader(self, params: dict[str, Any], scope: str, reader_id: str) -> Any:
        allowed(params, "expand")
        return public(self.reader_of(reader_id, scope))

    def update_reader(self, params: dict[str, Any], scope: str, reader_id: str) -> Any:
        allowed(params, "label metadata expand")
        reader = self.reader_of(reader_id, scope)
        if "label" in params:
            reader["label"] = params["label"]
        return public(reader)

    def process_intent(self, params: dict[str, Any], scope: str, reader_id: str) -> Any:
        allowed(params, "payment_intent process_config expand")
        reader = self.reader_of(reader_id, scope)
        intent = self.intent_of(params.get("payment_intent", ""), scope)
        if reader["status"] != "online":
            raise invalid(
                "Reader is currently offline, please ensure the reader is powered on and "
                "connected to the internet before retrying your request.",
                code="terminal_reader_offline",
            )
        if (reader["action"] or {}).get("status") == "in_progress":
            raise invalid(
                "Reader is currently busy processing another request. Please reference the "
                "integration guide for more details.",
                code="terminal_reader_busy",
            )
        if "card_present" not in intent["payment_method_types"] or intent["status"] not in (
            "requires_payment_method",
            "requires_confirmation",
        ):
            raise invalid(
                "This PaymentIntent cannot be processed by a reader: it must accept card_present "
                f"and wait for a payment method (its status is {intent['status']}).",
                param="payment_intent",
                code="payment_intent_unexpected_state",
            )
        reader["action"] = {
            "type": "process_payment_intent",
            "status": "in_progress",
            "failure_code": None,
            "failure_message": None,
            "process_payment_intent": {"payment_intent": intent["id"]},
        }
        return public(reader)

    def cancel_action(self, params: dict[str, Any], scope: str, reader_id: str) -> Any:
        allowed(params, "expand")
        reader = self.reader_of(reader_id, scope)
        if (reader["action"] or {}).get("status") != "in_progress":
            raise invalid(
                "This reader has no action in progress to cancel.",
                code="terminal_reader_action_not_in_progress",
            )
        reader["action"].update(
            status="failed", failure_code="canceled", failure_message="The action was canceled"
        )
        return public(reader)

    def present_payment_method(self, params: dict[str, Any], scope: str, reader_id: str) -> Any:
        allowed(params, "type card_present interac_present amount_tip expand")
        reader = self.reader_of(reader_id, scope)
        action = reader["action"] or {}
        if action.get("status") != "in_progress":
            raise invalid("This reader has no action in progress.", code="terminal_reader_timeout")
        intent = self.objects[action["process_payment_intent"]["payment_intent"]]
        number = (params.get("card_present") or {}).get("number", "4242424242424242")
        card = {"brand": "visa" if number.startswith("4") else "mastercard", "last4": number[-4:]}
        charge = self.new_charge(intent, card)
        charge["payment_method_details"] = {"type": "card_present", "card_present": card}
        decline = {"4000000000000002": "generic_decline", "4000000000009995": "insufficient_funds"}
        if number in decline:
            charge.update(status="failed", failure_code="card_declined")
            intent.update(
                status="requires_payment_method",
                last_payment_error={
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": decline[number],
                    "message": "Your card was declined.",
                },
            )
            action.update(
                status="failed",
                failure_code="card_declined",
                failure_message="Your card was declined.",
            )
        else:
            manual = intent["capture_method"] == "manual"
            intent.update(
                status="requires_capture" if manual else "succeeded",
                amount_capturable=intent["amount"] if manual else 0,
                amount_received=0 if manual else intent["amount"],
                payment_method=self.new_id("pm"),
            )
            action.update(status="succeeded")
        return public(reader)

    # -- rendering -----------------------------------------------------------------------

    def render(self, intent: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        shown = public(intent)
        expand = params.get("expand", [])
        deep = "latest_charge.balance_transaction" in expand
        if ("latest_charge" in expand or deep) and intent["latest_charge"]:
            charge = public(self.objects[intent["latest_charge"]])
            if deep and charge["balance_transaction"]:
                charge["balance_transaction"] = public(self.objects[charge["balance_transaction"]])
            shown["latest_charge"] = charge
        return shown


def public(obj: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps({k: v for k, v in obj.items() if not k.startswith("_")}))


def payment_method_object(method_id: str) -> dict[str, Any]:
    card = TEST_PAYMENT_METHODS[method_id]
    return {
        "id": method_id,
        "object": "payment_method",
        "type": "card",
        "customer": None,
        "card": {"brand": card["brand"], "last4": card["last4"], **TEST_EXPIRY},
    }


def created_in(obj: dict[str, Any], params: dict[str, Any]) -> bool:
    """Whether the object's `created` is in the list's `created` range (a timestamp, or
    `gt`, `gte`, `lt`, `lte`)."""
    created = params.get("created")
    bounds = created if isinstance(created, dict) else {"eq": created} if created else {}
    tests = {
        "gt": lambda c, v: c > v,
        "gte": lambda c, v: c >= v,
        "lt": lambda c, v: c < v,
        "lte": lambda c, v: c <= v,
        "eq": lambda c, v: c == v,
    }
    return all(tests[k](obj["created"], integer(bounds, k)) for k in bounds)


def allowed(params: dict[str, Any], names: str) -> None:
    for name in params:
        if name not in names.split():
            raise unknown_parameter(name)


def not_saved(error: StripeError) -> StripeError:
    error.saved = False
    return error


def integer(params: dict[str, Any], name: str, *, required: bool = False) -> int:
    value = params.get(name)
    if value is None:
        if required:
            raise not_saved(
                invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")
            )
        return 0
    if not re.fullmatch(r"-?\d+", str(value)):
        raise not_saved(invalid("Invalid integer: " + str(value), param=name))
    return int(value)


def boolean(params: dict[str, Any], name: str) -> bool:
    value = params.get(name, "false")
    if value not in ("true", "false"):
        raise not_saved(invalid(f"Invalid boolean: {value}", param=name))
    return value == "true"


def error_response(status: int, error: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status)
