"""Bad input: a clear 4xx problem that says what to change, never a 500, and nothing recorded."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api, PinnedClock
from tests.e2e.support import (
    CARD,
    DECLINED,
    assert_problem,
    new_patient,
    paid,
)

SALE = {"method": "virtual_terminal", "amount": 1000, "card": CARD}

# (case, change to a good virtual-terminal sale, status, field, words the detail holds)
BAD_SALES: list[tuple[str, dict[str, Any], int, str, str]] = [
    ("negative amount", {"amount": -500}, 422, "amount", "at least 1 cent"),
    ("zero amount", {"amount": 0}, 422, "amount", "at least 1 cent"),
    ("float amount", {"amount": 12.5}, 422, "amount", "integer"),
    ("whole float amount", {"amount": 100.0}, 422, "amount", "integer"),
    ("string amount", {"amount": "100"}, 422, "amount", "integer"),
    ("boolean amount", {"amount": True}, 422, "amount", "integer"),
    ("null amount", {"amount": None}, 422, "amount", "integer"),
    ("huge amount", {"amount": 10**12}, 422, "amount", "at most 99999999 cents"),
    ("enormous amount", {"amount": 10**30}, 422, "amount", "at most"),
    ("just over the cap", {"amount": 100_000_000}, 422, "amount", "at most"),
    (
        "bad check digit",
        {"card": {**CARD, "number": "4242424242424241"}},
        422,
        "card.number",
        "check digit",
    ),
    ("short card", {"card": {**CARD, "number": "4242"}}, 422, "card.number", "12 to 19 digits"),
    ("long card", {"card": {**CARD, "number": "4" * 20}}, 422, "card.number", "12 to 19 digits"),
    (
        "letters in card",
        {"card": {**CARD, "number": "4242abcd42424242"}},
        422,
        "card.number",
        "digits",
    ),
    ("empty card number", {"card": {**CARD, "number": ""}}, 422, "card.number", "character"),
    (
        "expired card",
        {"card": {**CARD, "exp_month": 2, "exp_year": 2026}},
        422,
        "card.exp_year",
        "expired",
    ),
    (
        "expired last year",
        {"card": {**CARD, "exp_month": 12, "exp_year": 2025}},
        422,
        "card.exp_year",
        "expired",
    ),
    ("month 13", {"card": {**CARD, "exp_month": 13}}, 422, "card.exp_month", "1 to 12"),
    ("month 0", {"card": {**CARD, "exp_month": 0}}, 422, "card.exp_month", "1 to 12"),
    ("month as text", {"card": {**CARD, "exp_month": "12"}}, 422, "card.exp_month", "integer"),
    ("year 3000", {"card": {**CARD, "exp_year": 3000}}, 422, "card.exp_year", "year"),
    ("cvc with a letter", {"card": {**CARD, "cvc": "12a"}}, 422, "card.cvc", "3 or 4 digits"),
    ("cvc too short", {"card": {**CARD, "cvc": "12"}}, 422, "card.cvc", "3 or 4 digits"),
    ("cvc too long", {"card": {**CARD, "cvc": "12345"}}, 422, "card.cvc", "4 characters"),
    ("card missing", {"card": None}, 422, "card", "needs the card"),
    (
        "card fields missing",
        {"card": {"number": CARD["number"]}},
        422,
        "card.exp_month",
        "required",
    ),
    ("unknown field", {"tip": 100}, 422, "tip", "not permitted"),
    ("unknown card field", {"card": {**CARD, "zip": "02139"}}, 422, "card.zip", "not permitted"),
    ("unknown method", {"method": "cash"}, 422, "method", "terminal"),
    ("bad patient id", {"patient_id": "nope"}, 422, "patient_id", "uuid"),
    ("unknown patient", {"patient_id": str(uuid.uuid4())}, 422, "patient_id", "not a patient"),
    (
        "not a sandbox test card",
        {"card": {**CARD, "number": "5555555555554444"}},
        422,
        "card",
        "4242424242424242",
    ),
]


@pytest.mark.parametrize(
    ("case", "change", "status", "field", "says"), BAD_SALES, ids=[c[0] for c in BAD_SALES]
)
def test_a_bad_payment_is_explained_and_not_recorded(
    api: Api, case: str, change: dict[str, Any], status: int, field: str, says: str
) -> None:
    body = {**SALE, **change}
    answer = api.post("/v1/payments", body)
    assert_problem(answer, status, field=field, says=says)
    sent = (body.get("card") or {}).get("number")
    if sent and len(sent) >= 12:
        assert sent not in answer.text, "a card number is never echoed"
    assert api.get("/v1/transactions").json()["items"] == []
    assert api.get("/v1/transactions/unassociated-count").json()["count"] == 0


def test_the_largest_amount_is_accepted(api: Api) -> None:
    answer = api.pay(99_999_999)
    assert answer.status_code == 201, answer.text
    assert answer.json()["amount"] == 99_999_999


def test_the_expiry_month_of_the_pinned_clock_is_still_good(api: Api) -> None:
    # The pinned clock is 2026-03-04: a card that expires at the end of 03/2026 is good.
    answer = api.post("/v1/payments", {**SALE, "card": {**CARD, "exp_month": 3, "exp_year": 2026}})
    assert answer.status_code == 201, answer.text


def test_missing_fields_are_each_named(api: Api) -> None:
    problem = assert_problem(api.post("/v1/payments", {}), 422, field="method", says="required")
    assert {e["field"] for e in problem["errors"]} == {"method", "amount"}
    assert "and 1 more" in problem["detail"]
    no_amount = api.post("/v1/payments", {"method": "virtual_terminal", "card": CARD})
    assert_problem(no_amount, 422, field="amount", says="required")


@pytest.mark.parametrize(
    "content",
    ['{"amount":', "{'amount': 1}", "amount=100", '{"amount": 100,}', "\x00"],
    ids=["truncated", "single quotes", "form", "trailing comma", "nul"],
)
def test_malformed_json_is_a_400(api: Api, content: str) -> None:
    answer = api.client.post(
        "/v1/payments",
        content=content,
        headers={**api.admin, "Content-Type": "application/json"},
    )
    problem = assert_problem(answer, 400, says="not valid JSON")
    assert problem["type"] == "/problems/malformed-json"
    assert api.get("/v1/transactions").json()["items"] == []


def test_malformed_json_on_a_refund_is_a_400(api: Api) -> None:
    payment = paid(api, 1000)
    answer = api.client.post(
        f"/v1/payments/{payment['id']}/refund",
        content='{"amount":',
        headers={**api.admin, "Content-Type": "application/json"},
    )
    assert_problem(answer, 400, says="not valid JSON")
    assert api.get(f"/v1/payments/{payment['id']}").json()["status"] == "approved"


@pytest.mark.parametrize("content", ["[1, 2]", "null", "42", '"text"'])
def test_a_body_that_is_not_an_object_is_explained(api: Api, content: str) -> None:
    answer = api.client.post(
        "/v1/payments",
        content=content,
        headers={**api.admin, "Content-Type": "application/json"},
    )
    assert_problem(answer, 422, says="JSON object")


def test_text_with_a_nul_character_is_refused_everywhere(api: Api) -> None:
    patient = api.post(
        "/v1/patients", {"pms_patient_id": "1\x00", "first_name": "Ann", "last_name": "Lee"}
    )
    assert_problem(patient, 422, says="control character")
    named = api.post(
        "/v1/patients", {"pms_patient_id": "1", "first_name": "A\x00nn", "last_name": "Lee"}
    )
    assert_problem(named, 422, says="first_name")
    terminal = api.post(
        "/v1/payments", {"method": "terminal", "terminal_id": "T\x001", "amount": 100}
    )
    assert_problem(terminal, 422, says="terminal_id")
    # Nothing was recorded, and the service still works.
    assert api.get("/v1/patients").json()["items"] == []
    assert new_patient(api, "1")["pms_patient_id"] == "1"
    assert paid(api, 100)["amount"] == 100
    assert len(api.get("/v1/transactions").json()["items"]) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/v1/payments/not-a-uuid",
        "/v1/payments/12345/receipt",
        "/v1/payments/xyz/ledger-entry",
        "/v1/patients/ann",
        "/v1/history/payment-1",
    ],
)
def test_a_bad_uuid_in_the_path_is_explained(api: Api, path: str) -> None:
    assert_problem(api.get(path), 422, says="uuid")


@pytest.mark.parametrize(
    "path",
    ["/v1/payments/nope/refund", "/v1/payments/nope/associate", "/v1/payments/nope/receipt/send"],
)
def test_a_bad_uuid_in_the_path_of_a_change_is_explained(api: Api, path: str) -> None:
    body = {"source": "manual"} if path.endswith("associate") else None
    if path.endswith("send"):
        body = {"email": "a@example.com", "confirm_email": "a@example.com"}
    assert_problem(api.post(path, body), 422, says="uuid")


def test_an_unknown_payment_is_404(api: Api) -> None:
    missing = str(uuid.uuid4())
    for path in (
        f"/v1/payments/{missing}",
        f"/v1/payments/{missing}/receipt",
        f"/v1/payments/{missing}/ledger-entry",
        f"/v1/history/{missing}",
    ):
        assert_problem(api.get(path), 404, says=missing)
    assert_problem(api.post(f"/v1/payments/{missing}/refund"), 404, says=missing)
    assert_problem(api.post(f"/v1/payments/{missing}/associate", {"source": "manual"}), 404)
    assert_problem(api.get("/v1/no-such-thing"), 404, says="/v1/no-such-thing")


def crafted(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"from": "2026-13-01"}, "from", "date"),
        ({"to": "2026-02-30"}, "to", "date"),
        ({"from": "yesterday"}, "from", "date"),
        ({"from": "03/01/2026"}, "from", "date"),
        ({"from": "2026-03-10", "to": "2026-03-01"}, "from", "after"),
        ({"limit": 0}, "limit", "greater than or equal to 1"),
        ({"limit": 101}, "limit", "less than or equal to 100"),
        ({"limit": -1}, "limit", "greater than or equal to 1"),
        ({"limit": "ten"}, "limit", "integer"),
        ({"association": "maybe"}, "association", "associated"),
        ({"patient_id": "ann"}, "patient_id", "uuid"),
    ],
)
def test_bad_list_parameters_are_explained(
    api: Api, params: dict[str, Any], field: str, says: str
) -> None:
    assert_problem(api.get("/v1/transactions", params=params), 422, field=field, says=says)


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "bm90IGpzb24",  # "not json"
        crafted([1]),
        crafted({"a": 1}),
        crafted([1, 2]),
        crafted([True, "x"]),
        crafted([{"a": 1}, [2]]),
        crafted([10**30, "x"]),
        crafted(["2026-03-04T15:00:00.000000Z", 7]),
    ],
)
@pytest.mark.parametrize("path", ["/v1/transactions", "/v1/patients"])
def test_a_bad_cursor_is_a_400(api: Api, path: str, cursor: str) -> None:
    paid(api, 100)
    new_patient(api, "1")
    assert_problem(api.get(path, params={"cursor": cursor}), 400, field="cursor", says="cursor")


@pytest.mark.parametrize(
    ("sort", "cursor"),
    [
        ("-total", crafted(["500", "x"])),
        ("-total", crafted([10**30, "x"])),
        ("-total", crafted([None, "x"])),
        ("last_name", crafted([5, "x"])),
        ("last_name", crafted(["Lee\u0000", "x"])),
        ("last_payment_date", crafted([True, "x"])),
        ("last_payment_date", crafted(["2026-01-01", None])),
    ],
)
def test_a_bad_ar_cursor_is_a_400(api: Api, sort: str, cursor: str) -> None:
    answer = api.get("/v1/ar/patients", params={"sort": sort, "cursor": cursor})
    assert_problem(answer, 400, field="cursor")


def test_ar_filters_with_a_nul_character_are_refused(api: Api) -> None:
    answer = api.get("/v1/ar/patients", params={"q": "Lee\x00"})
    assert_problem(answer, 422, field="q", says="control characters")
    saved = api.post("/v1/ar/filters", {"name": "Big\x00", "filter": {"min_total": 1}})
    assert_problem(saved, 422, field="name")
    assert api.get("/v1/ar/filters").json()["items"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": -1}, "after"),
        ({"after": "one"}, "after"),
        ({"after": 10**20}, "after"),
        ({"after": 2**63}, "after"),
        ({"cursor": "abc"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
    ],
)
def test_bad_feed_parameters_are_explained(api: Api, params: dict[str, Any], field: str) -> None:
    assert_problem(api.get("/v1/events", params=params), 422, field=field)


def test_a_terminal_payment_needs_a_terminal_and_no_card(api: Api) -> None:
    no_terminal = api.post("/v1/payments", {"method": "terminal", "amount": 100})
    assert_problem(no_terminal, 422, field="terminal_id", says="needs the card reader")
    empty = api.post("/v1/payments", {"method": "terminal", "terminal_id": "", "amount": 100})
    assert_problem(empty, 422, field="terminal_id")
    with_card = api.post(
        "/v1/payments", {"method": "terminal", "terminal_id": "T-1", "amount": 100, "card": CARD}
    )
    assert_problem(with_card, 422, field="card", says="send the reader, not a card")
    assert CARD["number"] not in with_card.text
    assert api.get("/v1/transactions").json()["items"] == []


def test_a_refund_greater_than_what_remains_is_422(api: Api) -> None:
    payment = paid(api, 1000)
    api.advance(86400)
    path = f"/v1/payments/{payment['id']}/refund"
    too_much = api.post(path, {"amount": 1001})
    assert_problem(too_much, 422, field="amount", says="more than is left to refund")
    assert api.post(path, {"amount": 600}).status_code == 200
    over_rest = api.post(path, {"amount": 401})
    problem = assert_problem(over_rest, 422, field="amount", says="more than is left to refund")
    assert "$4.00" in problem["detail"]
    for bad in (0, -1):
        assert_problem(api.post(path, {"amount": bad}), 422, field="amount")
    assert_problem(api.post(path, {"amount": 1.5}), 422, field="amount", says="integer")
    assert_problem(api.post(path, {"amount": "100"}), 422, field="amount", says="integer")
    assert_problem(api.post(path, {"cents": 100}), 422, field="cents")
    assert api.get(f"/v1/payments/{payment['id']}").json()["refunded_amount"] == 600


def test_a_partial_void_is_409(api: Api) -> None:
    payment = paid(api, 1000)
    answer = api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 500})
    assert_problem(answer, 409, says="voided in full")
    assert api.get(f"/v1/payments/{payment['id']}").json()["status"] == "approved"


def test_a_declined_payment_cannot_be_refunded(api: Api) -> None:
    declined = api.pay(1000, card=DECLINED).json()
    assert declined["status"] == "declined"
    answer = api.post(f"/v1/payments/{declined['id']}/refund")
    assert_problem(answer, 409, says="declined")
    api.advance(86400)
    assert_problem(api.post(f"/v1/payments/{declined['id']}/refund", {"amount": 100}), 409)
    associate = api.post(f"/v1/payments/{declined['id']}/associate", {"source": "manual"})
    assert_problem(associate, 409, says="declined")


def test_a_receipt_needs_a_confirmed_address(api: Api) -> None:
    payment = paid(api, 1000)
    path = f"/v1/payments/{payment['id']}/receipt/send"
    mismatch = api.post(path, {"email": "ann@example.com", "confirm_email": "an@example.com"})
    assert_problem(mismatch, 422, field="confirm_email", says="differ")
    bad = api.post(path, {"email": "ann", "confirm_email": "ann"})
    assert_problem(bad, 422, field="email", says="email address")
    missing = api.post(path, {"email": "ann@example.com"})
    assert_problem(missing, 422, field="confirm_email", says="required")
    unknown_refund = api.post(
        path,
        {
            "email": "ann@example.com",
            "confirm_email": "ann@example.com",
            "refund_id": str(uuid.uuid4()),
        },
    )
    assert_problem(unknown_refund, 422, field="refund_id", says="no refund")
    assert api.get("/v1/sandbox/mailbox").json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"seconds": -5}, "seconds"),
        ({"seconds": 0}, "seconds"),
        ({"seconds": 1.5}, "seconds"),
        ({"seconds": "60"}, "seconds"),
        ({"seconds": 10**30}, "seconds"),
        ({}, "seconds"),
        ({"seconds": 5, "to": "2030-01-01T00:00:00Z"}, "seconds"),
        ({"to": "2020-01-01T00:00:00Z"}, "to"),
        ({"to": "next tuesday"}, "to"),
    ],
)
def test_the_clock_only_moves_forward(api: Api, body: dict[str, Any], field: str) -> None:
    assert_problem(api.post("/v1/sandbox/clock/advance", body), 422, field=field)
    assert api.get("/v1/sandbox/clock").json()["offset_seconds"] == 0


def test_the_sandbox_clock_is_404_when_sandbox_is_off(
    api_for: Callable[..., Api], clock: PinnedClock
) -> None:
    live = api_for("sqlite", clock, sandbox=False).setup()
    assert_problem(
        live.post("/v1/sandbox/clock/advance", {"seconds": 60}), 404, says="sandbox mode is off"
    )
    assert_problem(live.get("/v1/sandbox/clock"), 404, says="sandbox")
    assert live.client.get("/healthz").json()["sandbox"] is False


def test_practice_settings_are_checked(api: Api) -> None:
    path = f"/v1/practices/{api.practice_id}/settings"
    for body, field, says in (
        ({"batch_cutoff": "25:00"}, "batch_cutoff", "HH:MM"),
        ({"batch_cutoff": "6pm"}, "batch_cutoff", "HH:MM"),
        ({"auto_writeback": "yes"}, "auto_writeback", "boolean"),
        ({"pms": "softdent"}, "pms", "opendental"),
        ({"pms_payment_type": "x" * 51}, "pms_payment_type", "50"),
        ({"colour": "blue"}, "colour", "not permitted"),
    ):
        answer = api.client.patch(path, json=body, headers=api.admin)
        assert_problem(answer, 422, field=field, says=says)
    assert api.get(f"/v1/practices/{api.practice_id}").json()["batch_cutoff"] == "23:59"


def test_a_duplicate_patient_is_409(api: Api) -> None:
    first = new_patient(api, "77")
    again = api.post("/v1/patients", {"pms_patient_id": "77", "first_name": "B", "last_name": "C"})
    assert_problem(again, 409, field="pms_patient_id", says=first["id"])
    for body, field in (
        ({"pms_patient_id": "", "first_name": "A", "last_name": "B"}, "pms_patient_id"),
        ({"pms_patient_id": "   ", "first_name": "A", "last_name": "B"}, "pms_patient_id"),
        ({"pms_patient_id": "9", "first_name": "", "last_name": "B"}, "first_name"),
        ({"pms_patient_id": "9", "first_name": "A", "last_name": "B", "email": "x"}, "email"),
        ({"pms_patient_id": "9", "first_name": "A", "last_name": "B", "phone": "call me"}, "phone"),
    ):
        assert_problem(api.post("/v1/patients", body), 422, field=field)


@pytest.mark.parametrize(
    "key",
    ["x" * 256, " leading-space", "trailing-space ", "caf\u00e9", "tab\there"],
    ids=["256 characters", "leading space", "trailing space", "not ASCII", "a tab"],
)
def test_a_bad_idempotency_key_is_a_400_and_nothing_is_recorded(api: Api, key: str) -> None:
    before = api.get("/v1/transactions").json()["items"]
    answer = api.client.post(
        "/v1/payments",
        json=SALE,
        headers={**api.admin, "Idempotency-Key": key.encode("latin-1")},
    )
    assert_problem(answer, 400, says="printable ASCII")
    assert api.get("/v1/transactions").json()["items"] == before


def test_the_longest_printable_idempotency_key_is_taken(api: Api) -> None:
    key = "k-" + "~" * 252 + "z"
    headers = {**api.admin, "Idempotency-Key": key}
    first = api.client.post("/v1/payments", json=SALE, headers=headers)
    again = api.client.post("/v1/payments", json=SALE, headers=headers)
    assert first.status_code == 201, first.text
    assert again.json()["id"] == first.json()["id"]
