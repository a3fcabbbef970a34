"""The HTTP contract: roles, tenancy, idempotency and bad input, over every endpoint."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import BACKENDS, Api, PinnedClock

PROBLEM = "application/problem+json"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


@pytest.fixture
def two(api_for: Callable[..., Api], clock: PinnedClock) -> tuple[Api, Api]:
    """Two practices on one service: Elm Dental and Oak Dental."""
    first = api_for("sqlite", clock).setup()
    second = Api(first.client)
    second.practice_id = second.new_practice(name="Oak Dental")["id"]
    second.admin = second.new_user(second.practice_id, "admin")
    second.staff = second.new_user(second.practice_id, "staff")
    return first, second


def objects(api: Api) -> dict[str, str]:
    """One of everything, made by the practice's admin."""
    patient = api.post(
        "/v1/patients",
        {
            "pms_patient_id": "1",
            "first_name": "Ann",
            "last_name": "Lee",
            "email": "ann@example.com",
            "phone": "+16175550100",
        },
    ).json()
    payment = api.pay(5000, patient_id=patient["id"]).json()
    request = api.post(
        "/v1/payment-requests", {"patient_id": patient["id"], "amount": 900, "channel": "email"}
    ).json()
    saved = api.post("/v1/ar/filters", {"name": "Big", "filter": {"min_total": 1}}).json()
    return {
        "patient": patient["id"],
        "payment": payment["id"],
        "request": request["id"],
        "filter": saved["id"],
    }


def endpoints(ids: dict[str, str], practice_id: str) -> list[tuple[str, str, Any]]:
    p, pay, req = ids["patient"], ids["payment"], ids["request"]
    return [
        ("GET", "/v1/patients", None),
        ("GET", f"/v1/patients/{p}", None),
        ("POST", "/v1/patients", {"pms_patient_id": "x", "first_name": "A", "last_name": "B"}),
        ("PUT", f"/v1/patients/{p}/balance", {"total": 100}),
        (
            "POST",
            f"/v1/patients/{p}/snooze",
            {"until": "2026-05-01", "reason": "other", "note": "n"},
        ),
        ("DELETE", f"/v1/patients/{p}/snooze", None),
        ("POST", "/v1/payments", {"method": "terminal", "terminal_id": "t", "amount": 100}),
        ("GET", f"/v1/payments/{pay}", None),
        ("POST", f"/v1/payments/{pay}/refund", None),
        ("GET", f"/v1/payments/{pay}/receipt", None),
        (
            "POST",
            f"/v1/payments/{pay}/receipt/send",
            {"email": "a@example.com", "confirm_email": "a@example.com"},
        ),
        ("GET", f"/v1/payments/{pay}/ledger-entry", None),
        ("POST", f"/v1/payments/{pay}/associate", {"source": "manual"}),
        ("POST", f"/v1/payments/{pay}/writeback/retry", None),
        ("GET", "/v1/transactions", None),
        ("GET", "/v1/transactions/unassociated-count", None),
        ("GET", "/v1/deposits", None),
        ("GET", "/v1/reports/daily-close", None),
        ("GET", "/v1/exports/transactions.csv", None),
        ("GET", "/v1/payment-requests", None),
        ("POST", "/v1/payment-requests", {"patient_id": p, "amount": 100, "channel": "sms"}),
        ("GET", f"/v1/payment-requests/{req}", None),
        ("POST", f"/v1/payment-requests/{req}/cancel", None),
        ("POST", "/v1/payment-requests/bulk", {"patient_ids": [p]}),
        ("GET", "/v1/ar/patients", None),
        ("GET", "/v1/ar/filters", None),
        ("POST", "/v1/ar/filters", {"name": "n", "filter": {}}),
        ("DELETE", f"/v1/ar/filters/{ids['filter']}", None),
        ("POST", "/v1/pms/sync", None),
        ("GET", "/v1/ledger-queue", None),
        ("GET", "/v1/events", None),
        ("GET", f"/v1/history/{pay}", None),
        ("GET", "/v1/sandbox/clock", None),
        ("POST", "/v1/sandbox/clock/advance", {"seconds": 60}),
        ("GET", "/v1/sandbox/mailbox", None),
        ("PATCH", f"/v1/practices/{practice_id}/settings", {"batch_cutoff": "22:00"}),
    ]


def call(api: Api, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return api.client.request(method, path, json=body, headers=headers)


def test_every_endpoint_wants_an_admin_of_the_practice(two: tuple[Api, Api]) -> None:
    elm, _ = two
    ids = objects(elm)
    for method, path, body in endpoints(ids, elm.practice_id):
        missing = call(elm, method, path, body, {})
        assert missing.status_code == 401, (method, path)
        assert missing.headers["content-type"] == PROBLEM
        assert missing.headers["www-authenticate"] == "Bearer"
        bad = call(elm, method, path, body, {"Authorization": "Bearer nope"})
        assert bad.status_code == 401, (method, path)
        staff = call(elm, method, path, body, elm.staff)
        assert staff.status_code == 403, (method, path, staff.text)
        assert "admin" in staff.json()["detail"]
        if path.startswith("/v1/practices"):
            continue
        operator = call(elm, method, path, body, elm.operator)
        assert operator.status_code == 403, (method, path)


def test_one_practice_never_sees_another_practices_objects(two: tuple[Api, Api]) -> None:
    elm, oak = two
    ids = objects(elm)
    for method, path, body in endpoints(ids, elm.practice_id):
        if not any(v in path for v in ids.values()) and elm.practice_id not in path:
            continue
        answer = call(oak, method, path, body, oak.admin)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.headers["content-type"] == PROBLEM
    # Lists and feeds hold only the caller's practice.
    assert oak.get("/v1/transactions").json()["items"] == []
    assert oak.get("/v1/payment-requests").json()["items"] == []
    assert oak.get("/v1/ar/filters").json()["items"] == []
    feed = oak.get("/v1/events", params={"limit": 100}).json()["items"]
    assert {e["aggregate_id"] for e in feed}.isdisjoint(ids.values())
    assert oak.get("/v1/sandbox/mailbox").json()["items"] == []
    assert oak.get("/v1/transactions/unassociated-count").json()["count"] == 0
    # A payment for another practice's patient is refused, naming the field.
    refused = oak.pay(100, patient_id=ids["patient"])
    assert refused.status_code == 422 and refused.json()["field"] == "patient_id"


def test_the_same_key_and_body_replay_the_first_answer(api: Api) -> None:
    headers = {**api.admin, "Idempotency-Key": "sale-1"}
    body = {"method": "virtual_terminal", "amount": 4200, "card": CARD}
    first = api.client.post("/v1/payments", json=body, headers=headers)
    again = api.client.post("/v1/payments", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(api.get("/v1/transactions").json()["items"]) == 1
    other = api.client.post("/v1/payments", json={**body, "amount": 4300}, headers=headers)
    assert other.status_code == 409
    assert other.json()["type"] == "/problems/idempotency-key-reused"


def test_a_refused_request_does_not_use_up_its_key(api: Api) -> None:
    headers = {**api.admin, "Idempotency-Key": "sale-2"}
    bad = api.client.post(
        "/v1/payments",
        json={"method": "virtual_terminal", "amount": -1, "card": CARD},
        headers=headers,
    )
    assert bad.status_code == 422
    good = api.client.post(
        "/v1/payments",
        json={"method": "virtual_terminal", "amount": 100, "card": CARD},
        headers=headers,
    )
    assert good.status_code == 201


def test_keys_belong_to_their_caller_and_have_a_length(two: tuple[Api, Api]) -> None:
    elm, oak = two
    body = {"method": "terminal", "terminal_id": "t", "amount": 100}
    a = elm.client.post("/v1/payments", json=body, headers={**elm.admin, "Idempotency-Key": "k"})
    b = oak.client.post("/v1/payments", json=body, headers={**oak.admin, "Idempotency-Key": "k"})
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    long = elm.client.post(
        "/v1/payments", json=body, headers={**elm.admin, "Idempotency-Key": "k" * 256}
    )
    assert long.status_code == 400


def test_a_refund_with_a_key_refunds_once(api: Api, clock: PinnedClock) -> None:
    payment = api.pay(10000).json()
    api.advance(86400)
    headers = {**api.admin, "Idempotency-Key": "refund-1"}
    path = f"/v1/payments/{payment['id']}/refund"
    first = api.client.post(path, json={"amount": 1000}, headers=headers)
    again = api.client.post(path, json={"amount": 1000}, headers=headers)
    assert first.json() == again.json()
    assert api.get(f"/v1/payments/{payment['id']}").json()["refunded_amount"] == 1000


BAD_PAYMENTS: list[tuple[str, dict[str, Any], int, str]] = [
    ("negative", {"amount": -500}, 422, "amount"),
    ("zero", {"amount": 0}, 422, "amount"),
    ("float", {"amount": 12.5}, 422, "amount"),
    ("string", {"amount": "100"}, 422, "amount"),
    ("boolean", {"amount": True}, 422, "amount"),
    ("huge", {"amount": 10**12}, 422, "amount"),
    ("enormous", {"amount": 10**30}, 422, "amount"),
    ("bad check digit", {"card": {**CARD, "number": "4242424242424241"}}, 422, "card.number"),
    ("short card", {"card": {**CARD, "number": "4242"}}, 422, "card.number"),
    ("letters", {"card": {**CARD, "number": "4242abcd42424242"}}, 422, "card.number"),
    ("expired", {"card": {**CARD, "exp_month": 2, "exp_year": 2026}}, 422, "card.exp_year"),
    ("month 13", {"card": {**CARD, "exp_month": 13}}, 422, "card.exp_month"),
    ("cvc", {"card": {**CARD, "cvc": "12a"}}, 422, "card.cvc"),
    ("not a test card", {"card": {**CARD, "number": "5555555555554444"}}, 422, "card"),
    ("missing card", {"card": None}, 422, "card"),
    ("unknown field", {"tip": 100}, 422, "tip"),
    ("bad patient id", {"patient_id": "nope"}, 422, "patient_id"),
    ("unknown patient", {"patient_id": str(uuid.uuid4())}, 422, "patient_id"),
    ("method", {"method": "cash"}, 422, "method"),
]


@pytest.mark.parametrize(
    ("case", "change", "status", "field"), BAD_PAYMENTS, ids=[c[0] for c in BAD_PAYMENTS]
)
def test_bad_payments_are_explained(
    api: Api, case: str, change: dict[str, Any], status: int, field: str
) -> None:
    body = {"method": "virtual_terminal", "amount": 1000, "card": CARD, **change}
    answer = api.post("/v1/payments", body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["status"] == status and problem["detail"] and problem["title"]
    assert problem.get("field") == field, problem
    assert "4242424242424241" not in answer.text
    assert api.get("/v1/transactions").json()["items"] == []


def test_terminal_payments_need_a_terminal_and_no_card(api: Api) -> None:
    no_terminal = api.post("/v1/payments", {"method": "terminal", "amount": 100})
    assert no_terminal.status_code == 422 and no_terminal.json()["field"] == "terminal_id"
    with_card = api.post(
        "/v1/payments", {"method": "terminal", "terminal_id": "t", "amount": 100, "card": CARD}
    )
    assert with_card.status_code == 422 and with_card.json()["field"] == "card"


def test_malformed_json_and_wrong_types_are_4xx(api: Api) -> None:
    raw = api.client.post(
        "/v1/payments",
        content='{"amount":',
        headers={**api.admin, "Content-Type": "application/json"},
    )
    assert raw.status_code == 400 and raw.json()["type"] == "/problems/malformed-json"
    listed = api.client.post(
        "/v1/payments", content="[1, 2]", headers={**api.admin, "Content-Type": "application/json"}
    )
    assert listed.status_code == 422
    assert api.get("/v1/payments/not-a-uuid").status_code == 422
    assert api.get(f"/v1/payments/{uuid.uuid4()}").status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-03-10", "to": "2026-03-01"}, "from"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"association": "maybe"}, "association"),
    ],
)
def test_bad_list_parameters_are_explained(api: Api, params: dict[str, Any], field: str) -> None:
    answer = api.get("/v1/transactions", params=params)
    assert answer.status_code in (400, 422), answer.text
    assert answer.json()["field"] == field


def test_refund_rules_answer_in_plain_words(api: Api) -> None:
    declined = api.pay(1000, card="4000000000000002").json()
    assert declined["status"] == "declined" and declined["decline_reason"] == "card declined"
    refused = api.post(f"/v1/payments/{declined['id']}/refund")
    assert refused.status_code == 409 and "declined" in refused.json()["detail"]
    fresh = api.pay(1000).json()
    partial_void = api.post(f"/v1/payments/{fresh['id']}/refund", {"amount": 500})
    assert partial_void.status_code == 409 and "in full" in partial_void.json()["detail"]
    api.post(f"/v1/payments/{fresh['id']}/refund")
    again = api.post(f"/v1/payments/{fresh['id']}/refund")
    assert again.status_code == 409 and "already voided" in again.json()["detail"]


def test_receipt_copies_need_a_confirmed_address(api: Api) -> None:
    payment = api.pay(1000).json()
    path = f"/v1/payments/{payment['id']}/receipt/send"
    assert (
        api.post(path, {"email": "a@example.com", "confirm_email": "b@example.com"}).status_code
        == 422
    )
    assert (
        api.post(path, {"email": "not-an-address", "confirm_email": "not-an-address"}).status_code
        == 422
    )
    sent = api.post(path, {"email": "a@example.com", "confirm_email": "a@example.com"})
    assert sent.status_code == 200
    [message] = api.get("/v1/sandbox/mailbox").json()["items"]
    assert "ending in 4242" in message["body"] and "4242424242424242" not in message["body"]


def test_the_clock_only_moves_forward_and_only_in_sandbox(
    api: Api, api_for: Callable[..., Api], clock: PinnedClock
) -> None:
    for body in (
        {"seconds": -5},
        {"seconds": 0},
        {},
        {"seconds": 5, "to": "2030-01-01T00:00:00Z"},
        {"to": "2020-01-01T00:00:00Z"},
    ):
        assert api.post("/v1/sandbox/clock/advance", body).status_code == 422, body
    live = api_for("sqlite", clock, sandbox=False).setup(name="Live Dental")
    assert live.post("/v1/sandbox/clock/advance", {"seconds": 5}).status_code == 404
    assert live.get("/v1/sandbox/clock").status_code == 404


def test_practice_set_up_needs_the_operator(api: Api) -> None:
    body = {
        "name": "X",
        "timezone": "America/Chicago",
        "pms": "dentrix",
        "deposit_account": {"kind": "Checking", "last4": "1111"},
    }
    assert api.post("/v1/practices", body).status_code == 403
    for bad, field in (
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"timezone": "Europe"}, "timezone"),
        ({"batch_cutoff": "25:00"}, "batch_cutoff"),
        ({"pms": "softdent"}, "pms"),
        ({"deposit_account": {"kind": "Checking", "last4": "12"}}, "deposit_account.last4"),
    ):
        answer = api.post("/v1/practices", {**body, **bad}, headers=api.operator)
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["field"] == field


def test_health_and_openapi(api: Api) -> None:
    health = api.client.get("/healthz").json()
    assert health["status"] == "ok" and health["database"] in ("sqlite", "postgresql")
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/payments",
        "/v1/transactions",
        "/v1/deposits",
        "/v1/payment-requests",
        "/v1/ar/patients",
        "/v1/events",
        "/pay/{token}",
        "/v1/ledger-queue",
    ):
        assert path in paths


@pytest.mark.parametrize("backend", BACKENDS)
def test_metrics_count_requests_by_route_without_ids(
    api_for: Callable[..., Api], clock: PinnedClock, backend: str
) -> None:
    api = api_for(backend, clock, metrics_token="scrape").setup()
    payment = api.pay(1000).json()
    api.get(f"/v1/payments/{payment['id']}")
    text = api.client.get("/metrics", headers={"Authorization": "Bearer scrape"}).text
    assert 'route="/v1/payments/{payment_id}"' in text
    assert payment["id"] not in text
    assert "payledger_projection_lag_events" in text
