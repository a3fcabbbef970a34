"""A strict fake of Clearent's gateway, as its published contract describes it.

Served as an ASGI app on a free loopback port (`Served`). What it follows (docs/clearent.md
cites each file and commit):

- the transactions API's OpenAPI description, vendored unchanged in
  tests/fakes/clearent/transactions.yaml: every request body of an operation it
  describes (POST /rest/v2/transactions/refund, /sale) is validated against its schema
  (`additionalProperties: false` as published: an unknown field is refused), every query
  of GET /rest/v2/transactions may name only the declared parameters, and every answer
  the fake gives to them is validated against the published response schema
  (SingleTransactionResponse, SearchTransactionResponse) before it is sent;
- Clearent's examples (clearent/API-Examples) for the operations the description lacks:
  AUTH (the fields of a SALE, `type` AUTH), CAPTURE (`type`, `id`, `amount`) and VOID
  (`type`, `id`) on POST /rest/v2/transactions; POST /rest/v2/tokens (card, card-type,
  exp-date, csc, avs-address, avs-zip, description, customer-key); PUT
  /rest/v2/batches/open (total-count, net-amount: Clearent's batch validation); GET
  /rest/v2/settings/terminal (terminal-name, time-zone, batch-time-utc,
  enable-auto-close-batch) - each closed to other fields;
- GET /rest/v2/batches?status= and GET /rest/v2/settings/terminal answered as
  Clearent's mobile app reads them (OpenBatchResponse, TerminalSettingsResponse).
- GET /rest/v2/tokens (page, page-size): the merchant's tokens, each as POST
  /rest/v2/tokens answers it, under `payload.tokens.token` and paged as the search is.
  Assumed (docs/clearent.md): the published material shows a token's create, update and
  delete, not its read; the adapter reads a token whose answer was lost back by it.

The `api-key` header selects a merchant (401 without a known one): one merchant never
sees another's transactions. State: an AUTH is `pending` until captured (CAPTURE up to
the authorised amount, into the open batch) or voided (`voided-auth`); REFUNDs against a
captured transaction never beyond what remains; batches open until `close_batches`.
A decline is a 402 whose payload is the DECLINED transaction; an invalid request is a
400 with Clearent's error payload (`payload.error.error-message`).

Test cards: 4111111111111111 and 4242424242424242 (Visa) and 5454545454545454
(Mastercard) approve; 4000000000000002 declines ("Card declined"), 4000000000009995
("Insufficient funds"). Tokens: the three TEST_TOKENS, and any made by POST
/rest/v2/tokens.

Faults (a queue, each taken by the next request of its method whose path starts with
the prefix): "429", "500-before-apply", "500-after-apply", "refuse" (a 400, nothing
done), "drop-before-apply", "drop-after-apply" (the connection closed unanswered
before or after the request acted), "late" (closed unanswered; the request acts only at
`deliver_late()`), "slow" (acts, then answers after `slow_seconds`). A GET takes "429",
"500-before-apply", "drop-before-apply".
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.opendental import DROP, dropping

DESCRIPTION_PATH = Path(__file__).parent / "clearent" / "transactions.yaml"
DESCRIPTION: dict[str, Any] = yaml.safe_load(DESCRIPTION_PATH.read_text())
COMPONENTS = DESCRIPTION["components"]

FAULTS = (
    "429",
    "500-before-apply",
    "500-after-apply",
    "refuse",
    "drop-before-apply",
    "drop-after-apply",
    "late",
    "slow",
)
READ_FAULTS = ("429", "500-before-apply", "drop-before-apply")

CARDS: dict[str, tuple[str, str | None]] = {
    "4111111111111111": ("VISA", None),
    "4242424242424242": ("VISA", None),
    "5454545454545454": ("MASTERCARD", None),
    "4000000000000002": ("VISA", "Card declined"),
    "4000000000009995": ("VISA", "Insufficient funds"),
}
#: tokens every merchant of the fake knows, as the card each stands for
TEST_TOKENS = {
    "1100000000000004242": "4242424242424242",
    "1100000000000000002": "4000000000000002",
    "1100000000000009995": "4000000000009995",
}


def schema_of(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}", "components": COMPONENTS}


def validator(schema: dict[str, Any]) -> Any:
    return jsonschema_rs.validator_for(schema)


def closed(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    """A request schema from an example's fields: these only, these required."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    }


def _auth_schema() -> dict[str, Any]:
    """An AUTH: the published SALE payload's fields (Clearent's Auth example carries the
    same ones), its type AUTH."""
    sale = copy.deepcopy(COMPONENTS["schemas"]["SaleTransactionPayload"])
    sale["properties"]["type"] = {"type": "string", "enum": ["AUTH"]}
    return {**sale, "components": COMPONENTS}


TEXT = {"type": "string"}
REQUESTS: dict[str, Any] = {
    "SALE": validator(schema_of("SaleTransactionPayload")),
    "REFUND": validator(schema_of("RefundTransactionPayload")),
    "AUTH": validator(_auth_schema()),
    "CAPTURE": validator(
        closed(["type", "id", "amount"], type={"enum": ["CAPTURE"]}, id=TEXT, amount=TEXT)
    ),
    "VOID": validator(closed(["type", "id"], type={"enum": ["VOID"]}, id=TEXT)),
    "BATCH": validator(
        closed(["total-count", "net-amount"], **{"total-count": TEXT, "net-amount": TEXT})
    ),
    "TOKEN": validator(
        closed(
            ["card", "exp-date"],
            **{
                name: TEXT
                for name in (
                    "card",
                    "card-type",
                    "exp-date",
                    "csc",
                    "avs-address",
                    "avs-zip",
                    "description",
                    "customer-key",
                )
            },
        )
    ),
}
ANSWERS = {
    "single": validator(schema_of("SingleTransactionResponse")),
    "search": validator(schema_of("SearchTransactionResponse")),
}
#: the query parameters the description declares for the search
SEARCH_PARAMETERS = {p["name"] for p in COMPONENTS["parameters"].values() if p.get("in") == "query"}
BATCH_PARAMETERS = {"status", "page", "page-size"}
#: the token list's paging (assumed: the published examples show no token read)
TOKEN_LIST_PARAMETERS = {"page", "page-size"}


def cents(text: str) -> int:
    return int((Decimal(text) * 100).to_integral_value())


def dollars(amount: int) -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}.{abs(amount) % 100:02d}"


class Refused(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class FakeClearent:
    def __init__(self) -> None:
        self.base_url = ""
        self.lock = threading.Lock()
        #: api key -> the merchant's terminal settings (as GET /rest/v2/settings/terminal)
        self.merchants: dict[str, dict[str, Any]] = {}
        #: transaction id -> its TransactionModel, with "_key" (the merchant's api key)
        self.transactions: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        #: api key -> batches, oldest first: {"id", "status", "date-opened", "items"}
        self.batches: dict[str, list[dict[str, Any]]] = {}
        self.faults: list[tuple[str, str, str]] = []
        self.late: list[tuple[str, str, dict[str, Any]]] = []
        self.slow_seconds = 1.0
        #: every request: (method, path, body or query)
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        #: requests refused as invalid against the contract (a test expects none)
        self.invalid: list[str] = []
        #: per AUTH: how many times it was captured, voided
        self.captures: Counter[str] = Counter()
        self.voids: Counter[str] = Counter()
        self._ids = itertools.count(115139811)
        self.app = dropping(
            Starlette(
                routes=[Route("/rest/v2/{path:path}", self.handle, methods=["GET", "POST", "PUT"])]
            )
        )

    # -- test controls --------------------------------------------------------------

    def add_merchant(self, *, auto_close: bool = False, batch_time_utc: str = "23:00") -> str:
        """A merchant's terminal; its API key."""
        key = f"{next(self._ids):x}{'0' * 24}"[:32]
        self.merchants[key] = {
            "terminal-name": "Front desk",
            "time-zone": "US/Eastern",
            "batch-time-utc": batch_time_utc,
            "enable-auto-close-batch": "true" if auto_close else "false",
            "_merchant": f"9463780{len(self.merchants) + 78669}",
        }
        self.batches[key] = []
        return key

    def fail_next(self, path_prefix: str, fault: str, method: str = "POST") -> None:
        assert fault in (READ_FAULTS if method == "GET" else FAULTS), (method, fault)
        self.faults.append((method, path_prefix, fault))

    def deliver_late(self) -> int:
        with self.lock:
            late, self.late = self.late, []
            for key, path, body in late:
                if path == "/rest/v2/batches/open":
                    self.close_validated(key, path, body)
                else:
                    self.execute(key, path, body)
            return len(late)

    def close_batches(self, key: str | None = None) -> list[dict[str, Any]]:
        """Clearent closes the open batches (of one merchant, or all): they settle."""
        closed_now = []
        with self.lock:
            for merchant in [key] if key else list(self.batches):
                for batch in self.batches[merchant]:
                    if batch["status"] == "OPEN":
                        batch["status"] = "CLOSED"
                        for txn_id in batch["items"]:
                            self.transactions[txn_id]["settled"] = "true"
                        closed_now.append(batch)
        return closed_now

    def of(self, key: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            public(t)
            for t in self.transactions.values()
            if t["_key"] == key and (kind is None or t["type"] == kind)
        ]

    def refunded(self, auth_id: str) -> list[int]:
        return [
            cents(t["amount"])
            for t in self.transactions.values()
            if t["type"] == "REFUND" and t.get("ref-id") == auth_id and t["result"] == "APPROVED"
        ]

    def batch_answers(self, key: str, status: str) -> list[dict[str, Any]]:
        return [self.batch_out(key, b) for b in self.batches[key] if b["status"] == status]

    # -- the server --------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        path = "/rest/v2/" + request.path_params["path"]
        key = request.headers.get("api-key", "")
        method = request.method
        raw = await request.body()
        if method == "GET":
            given: dict[str, Any] = dict(request.query_params)
        else:
            try:
                given = json.loads(raw or b"{}")
            except ValueError:
                return self.error(400, "The request body is not JSON")
        with self.lock:
            self.requests.append((method, path, given))
            if key not in self.merchants:
                return JSONResponse({"code": "401", "status": "fail"}, status_code=401)
            fault = None
            for index, (fault_method, prefix, kind) in enumerate(self.faults):
                if fault_method == method and path.startswith(prefix):
                    fault = kind
                    del self.faults[index]
                    break
            if fault == "429":
                return JSONResponse({"code": "429", "status": "fail"}, status_code=429)
            if fault == "500-before-apply":
                return JSONResponse({"code": "500", "status": "fail"}, status_code=500)
            if fault == "drop-before-apply" or fault == "late":
                if fault == "late":
                    self.late.append((key, path, given))
                request.scope[DROP] = True
                return Response(status_code=200)
            if fault == "refuse":
                return self.error(400, "The gateway refused the request")
            if method == "GET":
                answered = self.read(key, path, given)
            elif method == "PUT":
                answered = self.close_validated(key, path, given)
            else:
                answered = self.execute(key, path, given)
        if fault == "500-after-apply":
            return JSONResponse({"code": "500", "status": "fail"}, status_code=500)
        if fault == "drop-after-apply":
            request.scope[DROP] = True
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        return answered

    def error(self, status: int, message: str) -> JSONResponse:
        return JSONResponse(
            {
                "code": str(status),
                "status": "fail",
                "exchange-id": self.exchange_id(),
                "payload": {"payloadType": "error", "error": {"error-message": message}},
            },
            status_code=status,
        )

    def exchange_id(self) -> str:
        return f"ID-clearent-fake-{next(self._ids)}"

    def invalid_request(self, what: str, errors: list[str]) -> JSONResponse:
        message = f"{what}: " + "; ".join(errors)
        self.invalid.append(message)
        return self.error(400, message)

    def execute(self, key: str, path: str, body: dict[str, Any]) -> Response:
        if path == "/rest/v2/tokens":
            kind = "TOKEN"
        elif path == "/rest/v2/transactions/refund":
            kind = "REFUND"
        elif path == "/rest/v2/transactions/sale":
            kind = "SALE"
        elif path == "/rest/v2/transactions":
            kind = str(body.get("type", ""))
            if kind not in ("AUTH", "CAPTURE", "VOID"):
                return self.invalid_request(path, [f"type {kind!r} is not modelled here"])
        else:
            return self.error(404, f"No operation at {path}")
        errors = [str(e) for e in REQUESTS[kind].iter_errors(body)]
        if errors:
            return self.invalid_request(f"{kind} {path}", errors)
        try:
            if kind == "TOKEN":
                return self.make_token(key, body)
            made: Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]] = {
                "AUTH": self.auth,
                "SALE": self.auth,
                "CAPTURE": self.capture,
                "VOID": self.void,
                "REFUND": self.refund,
            }[kind]
            status, txn = made(key, body)
        except Refused as refused:
            return self.error(refused.status, refused.message)
        return self.single(txn, status)

    def single(self, txn: dict[str, Any], status: int = 200) -> JSONResponse:
        answer = {
            "code": str(status),
            "status": "success" if status == 200 else "fail",
            "exchange-id": self.exchange_id(),
            "links": [{"rel": "self", "href": f"{self.base_url}/rest/v2/transactions/{txn['id']}"}],
            "payload": {"payloadType": "transaction", "transaction": public(txn)},
        }
        errors = [str(e) for e in ANSWERS["single"].iter_errors(answer)]
        assert not errors, errors  # the fake answers in the published shape
        return JSONResponse(answer, status_code=status)

    def new_transaction(self, key: str, kind: str, amount: int, **fields: Any) -> dict[str, Any]:
        txn_id = str(next(self._ids))
        txn = {
            "_key": key,
            "id": txn_id,
            "type": kind,
            "amount": dollars(amount),
            "created": time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime()),
            "merchant-id": self.merchants[key]["_merchant"],
            "terminal-id": "10011111",
            "result": "APPROVED",
            "result-code": "000",
            "display-message": "Transaction approved",
            "status": "APPROVED",
            "pending": "false",
            "settled": "false",
            "voided": "false",
            **fields,
        }
        self.transactions[txn_id] = txn
        return txn

    def card_of(self, key: str, card: str) -> str:
        if card in TEST_TOKENS:
            return TEST_TOKENS[card]
        token = self.tokens.get(card)
        if token is not None:
            if token["_key"] != key:
                raise Refused("Invalid token")
            return str(token["_number"])
        if card not in CARDS:
            raise Refused("Invalid card number")
        return card

    def auth(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        number = self.card_of(key, body["card"])
        card_type, decline = CARDS[number]
        amount = cents(body["amount"])
        if amount <= 0:
            raise Refused("Invalid amount")
        common = {
            "card": number[-4:],
            "last-four": number[-4:],
            "card-type": card_type,
            "exp-date": body["exp-date"],
            **({"order-id": body["order-id"]} if "order-id" in body else {}),
            **({"software-type": body["software-type"]} if "software-type" in body else {}),
        }
        if decline is not None:
            txn = self.new_transaction(
                key,
                body["type"],
                amount,
                result="DECLINED",
                **{"result-code": "051", "display-message": decline, "status": "DECLINED"},
                **common,
            )
            return 402, txn
        if body["type"] == "AUTH":
            txn = self.new_transaction(
                key,
                "AUTH",
                amount,
                pending="true",
                **{"voided-auth": "false", "authorization-code": "TAS274"},
                **common,
            )
            return 200, txn
        txn = self.new_transaction(key, "SALE", amount, **common)
        self.into_batch(key, txn)
        return 200, txn

    def mine(self, key: str, txn_id: str) -> dict[str, Any]:
        txn = self.transactions.get(txn_id)
        if txn is None or txn["_key"] != key:
            raise Refused(f"Transaction {txn_id} not found")
        return txn

    def capture(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        auth = self.mine(key, body["id"])
        amount = cents(body["amount"])
        if auth["type"] != "AUTH" or auth["pending"] != "true":
            raise Refused("Only a pending authorization can be captured")
        if auth.get("voided-auth") == "true":
            raise Refused("The authorization was voided")
        if not 0 < amount <= cents(auth["amount"]):
            raise Refused("The capture amount exceeds the authorized amount")
        auth["pending"] = "false"
        self.captures[auth["id"]] += 1
        txn = self.new_transaction(
            key,
            "CAPTURE",
            amount,
            **{
                "ref-id": auth["id"],
                "card": auth["card"],
                "last-four": auth["last-four"],
                "card-type": auth["card-type"],
                "original-amount": auth["amount"],
            },
        )
        self.into_batch(key, txn)
        auth["batch-string-id"] = txn["batch-string-id"]
        return 200, txn

    def void(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        target = self.mine(key, body["id"])
        if target.get("voided-auth") == "true" or target["voided"] == "true":
            raise Refused("The transaction was voided already")
        if target["type"] == "AUTH" and target["pending"] == "true":
            target["voided-auth"] = "true"
            self.voids[target["id"]] += 1
        elif target.get("batch-string-id") and self.batch_open(key, target["batch-string-id"]):
            target["voided"] = "true"
            self.remove_from_batch(key, target)
        else:
            raise Refused("The transaction's batch is closed: refund it instead")
        txn = self.new_transaction(key, "VOID", cents(target["amount"]), **{"ref-id": target["id"]})
        return 200, txn

    def refund(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        original = self.mine(key, body["id"])
        amount = cents(body["amount"])
        captured = [
            t
            for t in self.transactions.values()
            if t["_key"] == key and t["type"] == "CAPTURE" and t.get("ref-id") == original["id"]
        ]
        if original["type"] == "SALE":
            captured = [original]
        total = sum(cents(t["amount"]) for t in captured if t["voided"] != "true")
        if total == 0:
            raise Refused("Only a captured transaction can be refunded")
        if not 0 < amount <= total - sum(self.refunded(original["id"])):
            raise Refused("The refund amount exceeds the amount available to refund")
        txn = self.new_transaction(
            key,
            "REFUND",
            amount,
            **{
                "ref-id": original["id"],
                "card": original.get("card", ""),
                "last-four": original.get("last-four", ""),
                "card-type": original.get("card-type", "VISA"),
                **({"order-id": body["order-id"]} if "order-id" in body else {}),
            },
        )
        self.into_batch(key, txn)
        return 200, txn

    def make_token(self, key: str, body: dict[str, Any]) -> Response:
        number = body["card"]
        if number not in CARDS:
            return self.error(400, "Invalid card number")
        token_id = f"11{next(self._ids):017d}"
        self.tokens[token_id] = {
            "_key": key,
            "_number": number,
            "token-id": token_id,
            "status": "Active",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "times-used": "0",
            "card-type": CARDS[number][0],
            "last-four-digits": number[-4:],
            "exp-date": body["exp-date"],
            "description": body.get("description", ""),
        }
        answer = {
            "code": "200",
            "status": "success",
            "exchange-id": self.exchange_id(),
            "payload": {
                "payloadType": "tokenResponse",
                "tokenResponse": public(self.tokens[token_id]),
            },
        }
        return JSONResponse(answer)

    def token_list(self, key: str, query: dict[str, Any]) -> Response:
        """GET /rest/v2/tokens: the merchant's tokens, newest first, a page at a time."""
        unknown = sorted(set(query) - TOKEN_LIST_PARAMETERS)
        if unknown:
            return self.invalid_request("/rest/v2/tokens", [f"unknown parameters {unknown}"])
        found = [public(t) for t in reversed(self.tokens.values()) if t["_key"] == key]
        size = int(query.get("page-size", "25"))
        page = int(query.get("page", "1"))
        shown = found[(page - 1) * size : page * size]
        return JSONResponse(
            {
                "code": "200",
                "status": "success",
                "exchange-id": self.exchange_id(),
                "page": paging(page, size, len(shown), len(found)),
                "payload": {"payloadType": "tokens", "tokens": {"token": shown}},
            }
        )

    # -- batches -------------------------------------------------------------------

    def close_validated(self, key: str, path: str, body: dict[str, Any]) -> Response:
        """PUT /rest/v2/batches/open: the open batch closes when its totals are the ones
        given (Clearent's batch validation example)."""
        if path != "/rest/v2/batches/open":
            return self.error(404, f"No operation at {path}")
        errors = [str(e) for e in REQUESTS["BATCH"].iter_errors(body)]
        if errors:
            return self.invalid_request(f"BATCH {path}", errors)
        open_now = [b for b in self.batches[key] if b["status"] == "OPEN"]
        if not open_now:
            return self.error(400, "There is no open batch")
        batch = open_now[0]
        shown = self.batch_out(key, batch)
        if (shown["total-count"], shown["net-amount"]) != (body["total-count"], body["net-amount"]):
            return self.error(400, "The batch totals do not match")
        batch["status"] = "CLOSED"
        for txn_id in batch["items"]:
            self.transactions[txn_id]["settled"] = "true"
        return JSONResponse(
            {
                "code": "200",
                "status": "success",
                "exchange-id": self.exchange_id(),
                "payload": {"payloadType": "batch", "batch": self.batch_out(key, batch)},
            }
        )

    def open_batch(self, key: str) -> dict[str, Any]:
        for batch in self.batches[key]:
            if batch["status"] == "OPEN":
                return batch
        batch = {
            "id": f"{len(self.batches[key]) + 1:06d}",
            "status": "OPEN",
            "date-opened": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "items": [],
        }
        self.batches[key].append(batch)
        return batch

    def batch_open(self, key: str, batch_id: str) -> bool:
        return any(b["id"] == batch_id and b["status"] == "OPEN" for b in self.batches[key])

    def into_batch(self, key: str, txn: dict[str, Any]) -> None:
        batch = self.open_batch(key)
        batch["items"].append(txn["id"])
        txn["batch-string-id"] = batch["id"]

    def remove_from_batch(self, key: str, txn: dict[str, Any]) -> None:
        for batch in self.batches[key]:
            if txn["id"] in batch["items"]:
                batch["items"].remove(txn["id"])

    def batch_out(self, key: str, batch: dict[str, Any]) -> dict[str, Any]:
        items = [self.transactions[i] for i in batch["items"]]
        sales = [cents(t["amount"]) for t in items if t["type"] in ("CAPTURE", "SALE")]
        refunds = [cents(t["amount"]) for t in items if t["type"] == "REFUND"]
        merchant = self.merchants[key]
        return {
            "id": batch["id"],
            "refund-count": str(len(refunds)),
            "refund-total": dollars(sum(refunds)),
            "sales-count": str(len(sales)),
            "sales-total": dollars(sum(sales)),
            "net-amount": dollars(sum(sales) - sum(refunds)),
            "status": batch["status"],
            "total-count": str(len(items)),
            "merchant-id": merchant["_merchant"],
            "terminal-id": "10011111",
            "terminal-name": merchant["terminal-name"],
            "date-opened": batch["date-opened"],
        }

    # -- reads ---------------------------------------------------------------------

    def read(self, key: str, path: str, query: dict[str, Any]) -> Response:
        if path == "/rest/v2/transactions":
            unknown = sorted(set(query) - SEARCH_PARAMETERS)
            if unknown:
                return self.invalid_request(path, [f"unknown parameters {unknown}"])
            return self.search(key, query)
        if path == "/rest/v2/tokens":
            return self.token_list(key, query)
        if path == "/rest/v2/batches":
            unknown = sorted(set(query) - BATCH_PARAMETERS)
            if unknown:
                return self.invalid_request(path, [f"unknown parameters {unknown}"])
            status = str(query.get("status", "OPEN")).upper()
            batches = self.batch_answers(key, status)
            return JSONResponse(
                {
                    "code": "200",
                    "status": "success",
                    "exchange-id": self.exchange_id(),
                    "links": [],
                    "page": paging(1, len(batches), len(batches), len(batches)),
                    "payload": {"payloadType": "batches", "batches": {"batch": batches}},
                }
            )
        if path == "/rest/v2/settings/terminal":
            if query:
                return self.invalid_request(path, ["takes no parameters"])
            terminal = {k: v for k, v in self.merchants[key].items() if not k.startswith("_")}
            return JSONResponse(
                {
                    "code": "200",
                    "status": "success",
                    "exchange-id": self.exchange_id(),
                    "payload": {"transactions": {"terminal-settings": terminal}},
                }
            )
        return self.error(404, f"No operation at {path}")

    def search(self, key: str, query: dict[str, Any]) -> Response:
        found = [
            t
            for t in sorted(self.transactions.values(), key=lambda t: int(t["id"]), reverse=True)
            if t["_key"] == key
            and all(
                str(t.get(name, "")) == str(query[name])
                for name in ("id", "order-id", "type", "amount", "invoice", "last-four")
                if name in query
            )
        ]
        size = int(query.get("page-size", "25"))
        page = int(query.get("page", "1"))
        shown = found[(page - 1) * size : page * size]
        answer = {
            "code": "200",
            "status": "success",
            "exchange-id": self.exchange_id(),
            "links": [{"rel": "self", "href": f"{self.base_url}/rest/v2/transactions"}],
            "page": paging(page, size, len(shown), len(found)),
            "payload": {
                "payloadType": "transactions",
                "transactions": {"transaction": [public(t) for t in shown]},
            },
        }
        errors = [str(e) for e in ANSWERS["search"].iter_errors(answer)]
        assert not errors, errors
        return JSONResponse(answer)


def paging(number: int, size: int, shown: int, total: int) -> dict[str, Any]:
    pages = max(1, -(-total // max(size, 1)))
    return {
        "first": number == 1,
        "last": number >= pages,
        "number": number,
        "number-of-elements": shown,
        "size": size,
        "sort": {"field": {"created": "DESC"}},
        "total-elements": total,
        "total-pages": pages,
    }


def public(txn: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in txn.items() if not k.startswith("_")}
