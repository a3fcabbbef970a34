"""A practice with something of every kind: the objects the tenancy and secrets tests use.

`populate` runs a full working day and the next through the API and the pay page:
patients and family balances, payments (virtual terminal and terminal), a void, a
settled batch and its deposit, a refund, a payment request paid on the pay page, an
outstanding one, a snooze, a saved filter, a user invited with a password, and the
PMS connection with its keys. It answers every id it made and every secret it used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import Api

DAY = 86400
#: secrets that must never be kept or shown again once handed over
CARD_NUMBERS = ("4242424242424242", "4000000000000002", "4000000000009995")
CVC = "9071"
OD_DEVELOPER_KEY = "odDevKey-7f3a9c1e55b2"
OD_CUSTOMER_KEY = "odCustKey-0c8d4e6a91f7"
PASSWORD = "a-long-enough-password-41"


@dataclass
class Made:
    """What `populate` made in one practice: ids by kind, and the secrets it used."""

    practice_id: str
    ids: dict[str, list[str]] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)  # bearer tokens
    pay_tokens: list[str] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)  # every HTTP answer seen

    def add(self, kind: str, value: str) -> str:
        self.ids.setdefault(kind, []).append(value)
        return value

    def first(self, kind: str) -> str:
        return self.ids[kind][0]

    def all_ids(self) -> set[str]:
        return {value for values in self.ids.values() for value in values}


def card(number: str = CARD_NUMBERS[0]) -> dict[str, Any]:
    return {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": CVC}


def ok(made: Made, answer: Any, status: int = 200) -> Any:
    made.answers.append(answer)
    assert answer.status_code == status, (answer.request.url, answer.status_code, answer.text)
    if status == 204 or "json" not in answer.headers.get("content-type", ""):
        return None
    return answer.json()


def pay_token(request: dict[str, Any]) -> str:
    return str(request["pay_url"]).rsplit("/pay/", 1)[1]


def pay_on_page(api: Api, made: Made, token: str, amount: str | None = None) -> Any:
    page = api.client.get(f"/pay/{token}")
    made.answers.append(page)
    attempt = re.search(r'name="attempt" value="([^"]+)"', page.text)
    assert attempt is not None, page.text
    fields = {
        "card_number": CARD_NUMBERS[0],
        "exp_month": "12",
        "exp_year": "2030",
        "cvc": CVC,
        "attempt": attempt.group(1),
    }
    if amount is not None:
        fields["amount"] = amount
    answer = api.client.post(f"/pay/{token}", data=fields)
    made.answers.append(answer)
    assert answer.status_code == 200, answer.text
    return answer


def populate(api: Api, pms_number: str = "1") -> Made:
    """Something of every kind in `api`'s practice (its clock moves on by a day)."""
    made = Made(api.practice_id)
    made.add("practice", api.practice_id)
    post = api.post

    # People of the practice: an invited user who signs in.
    user = ok(
        made,
        post(
            f"/v1/practices/{api.practice_id}/users",
            {
                "name": "Invited Person",
                "role": "staff",
                "email": f"invited-{api.practice_id[:8]}@example.com",
                "password": PASSWORD,
            },
        ),
        201,
    )
    made.add("user", user["id"])
    made.tokens.append(user["token"])
    for users in ok(made, api.get(f"/v1/practices/{api.practice_id}/users"))["items"]:
        if users["id"] not in made.ids["user"]:
            made.add("user", users["id"])

    # The PMS connection, with its keys.
    ok(
        made,
        api.client.patch(
            f"/v1/practices/{api.practice_id}/settings",
            json={
                "opendental": {
                    "base_url": "http://127.0.0.1:9/api/v1",
                    "developer_key": OD_DEVELOPER_KEY,
                    "customer_key": OD_CUSTOMER_KEY,
                }
            },
            headers=api.admin,
        ),
    )

    # Patients and family balances.
    guarantor = ok(
        made,
        post(
            "/v1/patients",
            {
                "pms_patient_id": pms_number,
                "first_name": "Gail",
                "last_name": "Ward",
                "email": "gail@example.com",
                "phone": "+16175550111",
            },
        ),
        201,
    )
    made.add("patient", guarantor["id"])
    other = ok(
        made,
        post(
            "/v1/patients",
            {
                "pms_patient_id": pms_number + "0",
                "first_name": "Hal",
                "last_name": "Ward",
                "email": "hal@example.com",
                "phone": "+16175550112",
            },
        ),
        201,
    )
    made.add("patient", other["id"])
    for patient in (guarantor, other):
        ok(
            made,
            api.client.put(
                f"/v1/patients/{patient['id']}/balance",
                json={"total": 40000, "bal_0_30": 40000},
                headers=api.admin,
            ),
        )

    # Payments: approved, declined, terminal; one voided the same day.
    first = ok(
        made,
        post(
            "/v1/payments",
            {
                "method": "virtual_terminal",
                "amount": 12500,
                "card": card(),
                "patient_id": guarantor["id"],
            },
        ),
        201,
    )
    made.add("payment", first["id"])
    declined = ok(
        made,
        post(
            "/v1/payments",
            {"method": "virtual_terminal", "amount": 3000, "card": card(CARD_NUMBERS[1])},
        ),
        201,
    )
    made.add("payment", declined["id"])
    short = ok(
        made,
        post(
            "/v1/payments",
            {"method": "virtual_terminal", "amount": 3100, "card": card(CARD_NUMBERS[2])},
        ),
        201,
    )
    made.add("payment", short["id"])
    voided = ok(
        made,
        post("/v1/payments", {"method": "terminal", "terminal_id": "T-1", "amount": 2000}),
        201,
    )
    made.add("payment", voided["id"])
    ok(made, post(f"/v1/payments/{voided['id']}/refund"))
    ok(
        made,
        post(
            f"/v1/payments/{first['id']}/receipt/send",
            {"email": "gail@example.com", "confirm_email": "gail@example.com"},
        ),
    )

    # Payment requests: one paid on the pay page, one outstanding.
    request = ok(
        made,
        post(
            "/v1/payment-requests",
            {"patient_id": guarantor["id"], "amount": 5000, "channel": "email"},
        ),
        201,
    )
    made.add("request", request["id"])
    made.pay_tokens.append(pay_token(request))
    pay_on_page(api, made, pay_token(request), "50.00")
    paid_request = ok(made, api.get(f"/v1/payment-requests/{request['id']}"))
    assert paid_request["status"] == "completed", paid_request
    made.add("payment", paid_request["payment_id"])
    outstanding = ok(
        made,
        post(
            "/v1/payment-requests",
            {"patient_id": other["id"], "amount": 7000, "channel": "sms"},
        ),
        201,
    )
    made.add("request", outstanding["id"])
    made.pay_tokens.append(pay_token(outstanding))
    ok(made, api.get(f"/pay/{pay_token(outstanding)}"))

    # AR: a snooze and a saved filter.
    ok(
        made,
        post(
            f"/v1/patients/{other['id']}/snooze",
            {"until": "2026-04-01", "reason": "other", "note": "waiting on EOB"},
        ),
    )
    saved = ok(
        made, post("/v1/ar/filters", {"name": "Over $100", "filter": {"min_total": 10001}}), 201
    )
    made.add("filter", saved["id"])

    # A card on file with the patient's consent, and a payment plan charged to it.
    kept = ok(
        made,
        post(
            f"/v1/patients/{guarantor['id']}/cards",
            {"card": card(), "consent": "Gail agreed to keep this card on file."},
        ),
        201,
    )
    made.add("card", kept["id"])
    plan = ok(
        made,
        post(
            "/v1/payment-plans",
            {
                "patient_id": guarantor["id"],
                "card_id": kept["id"],
                "amount": 10000,
                "total": 30000,
                "every": 1,
                "unit": "months",
                "start": "2026-03-04",
            },
        ),
        201,
    )
    made.add("plan", plan["id"])

    # The next day: the batch closed, a deposit, a refund of a settled payment.
    api.advance(DAY)
    refund = ok(made, post(f"/v1/payments/{first['id']}/refund", {"amount": 2500}))
    assert refund["refund_id"], refund
    made.add("refund", refund["refund_id"])
    ok(made, post(f"/v1/payments/{first['id']}/associate", {"source": "manual"}))
    deposits = ok(made, api.get("/v1/deposits", params={"from": "2026-01-01", "to": "2026-12-31"}))
    for deposit in deposits["items"]:
        made.add("deposit", deposit["id"])
    assert made.ids.get("deposit"), deposits

    # Every aggregate the practice's feed names (batches, deposits, ...), and every row id
    # its transactions view lists.
    after = 0
    while True:
        page = ok(made, api.get("/v1/events", params={"after": after, "limit": 100}))
        for event in page["items"]:
            if event["aggregate_id"] not in made.all_ids():
                made.add("aggregate", event["aggregate_id"])
        if not page["next_cursor"]:
            break
        after = int(page["next_cursor"])
    rows = ok(made, api.get("/v1/transactions", params={"from": "2026-01-01", "to": "2026-12-31"}))
    for row in rows["items"]:
        if row["id"] not in made.all_ids():
            made.add("row", row["id"])
    return made


def dashboard_paths(api: Api, made: Made) -> list[tuple[str, str]]:
    """Every GET page of the dashboard (not in the OpenAPI document), with ids filled in."""
    found: list[tuple[str, str]] = []
    for route in api.client.app.router.routes:  # type: ignore[attr-defined]
        for context in getattr(route, "effective_route_contexts", list)():
            path = getattr(context, "path", "")
            methods = getattr(context, "methods", set()) or set()
            if "GET" not in methods or getattr(context, "include_in_schema", True):
                continue
            if path.startswith(("/docs", "/redoc", "/favicon", "/openapi", "/static")):
                continue
            params = re.findall(r"\{(\w+)\}", path)
            fills: dict[str, list[str]] = {
                "kind": ["terminal", "virtual"],
                "view": ["transactions", "deposits", "payment-requests"],
            }
            for name in params:
                if name.endswith("_id"):
                    fills[name] = made.ids.get(name[: -len("_id")], [])
            combos: list[dict[str, str]] = [{}]
            for name in params:
                assert name in fills, f"no way to fill {name!r} of {path}"
                combos = [{**c, name: v} for c in combos for v in fills[name]]
            for values in combos:
                url = path
                for name, value in values.items():
                    url = url.replace("{" + name + "}", value)
                found.append((f"GET {path}", url))
    assert len(found) > 15, found
    return found
