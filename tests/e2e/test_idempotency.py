"""Idempotency-Key: the same request answers the first response; another request is a 409."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.e2e.support import (
    CARD,
    DECLINED,
    PROBLEM,
    assert_problem,
    history_types,
    keyed,
    paid,
    second_practice,
)

SALE = {"method": "virtual_terminal", "amount": 4200, "card": CARD}
PRACTICE = {
    "name": "Keyed Dental",
    "timezone": "America/Denver",
    "pms": "dentrix",
    "deposit_account": {"kind": "Checking", "last4": "2222"},
}


def transactions(api: Api, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    answer = api.get("/v1/transactions", headers=headers or api.admin)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_the_same_key_and_body_replay_the_first_response(api: Api) -> None:
    first = api.client.post("/v1/payments", json=SALE, headers=keyed(api, "sale-1"))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = api.client.post("/v1/payments", json=SALE, headers=keyed(api, "sale-1"))
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"].startswith("application/json")
    assert again.json() == first.json()
    assert again.json()["id"] == first.json()["id"]
    listed = transactions(api)
    assert [t["id"] for t in listed] == [first.json()["id"]]
    assert history_types(api, first.json()["id"]) == ["PaymentCaptured"]


def test_a_replay_is_the_first_response_not_the_current_state(api: Api) -> None:
    first = api.client.post("/v1/payments", json=SALE, headers=keyed(api, "sale-2"))
    api.advance(2 * 86400)  # the payment settles, and more than a day passes
    assert api.get(f"/v1/payments/{first.json()['id']}").json()["status"] == "settled"
    again = api.client.post("/v1/payments", json=SALE, headers=keyed(api, "sale-2"))
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.json()["status"] == "approved"
    assert len(transactions(api)) == 1


def test_a_declined_payment_replays_and_is_not_charged_again(api: Api) -> None:
    body = {**SALE, "card": {**CARD, "number": DECLINED}}
    first = api.client.post("/v1/payments", json=body, headers=keyed(api, "decl"))
    assert first.status_code == 201 and first.json()["status"] == "declined"
    again = api.client.post("/v1/payments", json=body, headers=keyed(api, "decl"))
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(transactions(api)) == 1


def test_the_same_key_with_another_body_is_a_409(api: Api) -> None:
    first = api.client.post("/v1/payments", json=SALE, headers=keyed(api, "sale-3"))
    assert first.status_code == 201
    other = api.client.post(
        "/v1/payments", json={**SALE, "amount": 4300}, headers=keyed(api, "sale-3")
    )
    problem = assert_problem(other, 409, says="different request")
    assert problem["type"] == "/problems/idempotency-key-reused"
    assert "idempotent-replayed" not in other.headers
    listed = transactions(api)
    assert [t["amount"] for t in listed] == [4200]
    # Another path with the key is another request too.
    elsewhere = api.client.post(
        "/v1/patients",
        json={"pms_patient_id": "1", "first_name": "A", "last_name": "B"},
        headers=keyed(api, "sale-3"),
    )
    assert_problem(elsewhere, 409)
    assert api.get("/v1/patients").json()["items"] == []
    # The first request still replays.
    again = api.client.post("/v1/payments", json=SALE, headers=keyed(api, "sale-3"))
    assert again.status_code == 201 and again.json() == first.json()


def test_a_key_is_1_to_255_characters(api: Api) -> None:
    long = api.client.post("/v1/payments", json=SALE, headers=keyed(api, "k" * 256))
    assert_problem(long, 400, says="255")
    empty = api.client.post("/v1/payments", json=SALE, headers=keyed(api, ""))
    assert_problem(empty, 400, says="Idempotency-Key")
    assert transactions(api) == []
    longest = api.client.post("/v1/payments", json=SALE, headers=keyed(api, "k" * 255))
    assert longest.status_code == 201, longest.text
    again = api.client.post("/v1/payments", json=SALE, headers=keyed(api, "k" * 255))
    assert again.json()["id"] == longest.json()["id"]
    assert len(transactions(api)) == 1


def test_a_failed_request_does_not_use_up_its_key(api: Api) -> None:
    bad = api.client.post(
        "/v1/payments", json={**SALE, "amount": 12.5}, headers=keyed(api, "sale-4")
    )
    assert_problem(bad, 422, field="amount")
    refused = api.client.post(
        "/v1/payments",
        json={**SALE, "card": {**CARD, "exp_year": 2020}},
        headers=keyed(api, "sale-4"),
    )
    assert_problem(refused, 422, field="card.exp_year")
    fixed = api.client.post("/v1/payments", json=SALE, headers=keyed(api, "sale-4"))
    assert fixed.status_code == 201, fixed.text
    assert "idempotent-replayed" not in fixed.headers
    again = api.client.post("/v1/payments", json=SALE, headers=keyed(api, "sale-4"))
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == fixed.json()["id"]
    assert len(transactions(api)) == 1


def test_a_refused_state_change_does_not_use_up_its_key(api: Api) -> None:
    payment = paid(api, 1000)
    path = f"/v1/payments/{payment['id']}/refund"
    partial = api.client.post(path, json={"amount": 500}, headers=keyed(api, "void-1"))
    assert_problem(partial, 409, says="in full")
    voided = api.client.post(path, json={"amount": 1000}, headers=keyed(api, "void-1"))
    assert voided.status_code == 200, voided.text
    assert voided.json()["kind"] == "void"


def test_keys_of_two_practices_do_not_collide(api: Api) -> None:
    oak = second_practice(api)
    elm_answer = api.client.post("/v1/payments", json=SALE, headers=keyed(api, "shared"))
    oak_answer = oak.client.post("/v1/payments", json=SALE, headers=keyed(oak, "shared"))
    assert elm_answer.status_code == oak_answer.status_code == 201
    assert "idempotent-replayed" not in oak_answer.headers
    assert elm_answer.json()["id"] != oak_answer.json()["id"]
    assert [t["id"] for t in transactions(api)] == [elm_answer.json()["id"]]
    assert [t["id"] for t in transactions(oak)] == [oak_answer.json()["id"]]
    # Another body under the same key is fine in the other practice.
    oak_other = oak.client.post(
        "/v1/payments", json={**SALE, "amount": 1}, headers=keyed(oak, "other")
    )
    elm_other = api.client.post("/v1/payments", json=SALE, headers=keyed(api, "other"))
    assert oak_other.status_code == elm_other.status_code == 201


def test_keys_of_two_users_of_one_practice_do_not_collide(api: Api) -> None:
    second_admin = api.new_user(api.practice_id, "admin")
    first = api.client.post("/v1/payments", json=SALE, headers=keyed(api, "till-1"))
    mine = api.client.post(
        "/v1/payments",
        json={**SALE, "amount": 9900},
        headers=keyed(api, "till-1", second_admin),
    )
    assert first.status_code == mine.status_code == 201, mine.text
    assert "idempotent-replayed" not in mine.headers
    # The second admin's payment is their own, for the amount they asked for.
    assert mine.json()["amount"] == 9900
    assert mine.json()["id"] != first.json()["id"]
    assert sorted(t["amount"] for t in transactions(api)) == [4200, 9900]


def test_a_refund_with_a_key_refunds_once(api: Api) -> None:
    payment = paid(api, 10000)
    api.advance(86400)
    path = f"/v1/payments/{payment['id']}/refund"
    first = api.client.post(path, json={"amount": 2500}, headers=keyed(api, "refund-1"))
    assert first.status_code == 200, first.text
    assert first.json()["kind"] == "refund"
    again = api.client.post(path, json={"amount": 2500}, headers=keyed(api, "refund-1"))
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    now = api.get(f"/v1/payments/{payment['id']}").json()
    assert now["refunded_amount"] == 2500
    assert len(now["refunds"]) == 1
    assert history_types(api, payment["id"]).count("PaymentRefunded") == 1
    other = api.client.post(path, json={"amount": 100}, headers=keyed(api, "refund-1"))
    assert_problem(other, 409)
    assert api.get(f"/v1/payments/{payment['id']}").json()["refunded_amount"] == 2500


def test_refund_keys_of_two_users_do_not_collide(api: Api) -> None:
    second_admin = api.new_user(api.practice_id, "admin")
    payment = paid(api, 10000)
    api.advance(86400)
    path = f"/v1/payments/{payment['id']}/refund"
    first = api.client.post(path, json={"amount": 100}, headers=keyed(api, "r"))
    assert first.status_code == 200, first.text
    second = api.client.post(path, json={"amount": 200}, headers=keyed(api, "r", second_admin))
    assert second.status_code == 200, second.text
    assert second.json()["refund_id"] != first.json()["refund_id"]
    now = api.get(f"/v1/payments/{payment['id']}").json()
    assert now["refunded_amount"] == 300
    assert sorted(r["amount"] for r in now["refunds"]) == [100, 200]
    assert history_types(api, payment["id"]).count("PaymentRefunded") == 2
    # The service keeps working afterwards.
    later = api.pay(500)
    assert later.status_code == 201, later.text
    assert len(transactions(api)) == 2


def test_a_void_with_a_key_replays_instead_of_saying_already_voided(api: Api) -> None:
    payment = paid(api, 1000)
    path = f"/v1/payments/{payment['id']}/refund"
    first = api.client.post(path, headers=keyed(api, "void-2"))
    assert first.status_code == 200 and first.json()["kind"] == "void"
    again = api.client.post(path, headers=keyed(api, "void-2"))
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    without_key = api.post(path)
    assert_problem(without_key, 409, says="already voided")


def test_practice_creation_with_a_key(api: Api) -> None:
    first = api.client.post("/v1/practices", json=PRACTICE, headers=keyed(api, "p-1", api.operator))
    assert first.status_code == 201, first.text
    again = api.client.post("/v1/practices", json=PRACTICE, headers=keyed(api, "p-1", api.operator))
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    other = api.client.post(
        "/v1/practices",
        json={**PRACTICE, "name": "Other Dental"},
        headers=keyed(api, "p-1", api.operator),
    )
    assert_problem(other, 409)
    # One practice was made: a new user of it sees one practice created in its feed.
    practice_id = first.json()["id"]
    admin = api.new_user(practice_id, "admin")
    feed = api.get("/v1/events", params={"limit": 100}, headers=admin).json()["items"]
    assert [e["type"] for e in feed].count("PracticeCreated") == 1
    fresh = api.client.post("/v1/practices", json=PRACTICE, headers=keyed(api, "p-2", api.operator))
    assert fresh.status_code == 201 and fresh.json()["id"] != practice_id


def test_a_key_on_a_read_is_ignored(api: Api) -> None:
    paid(api, 100)
    headers = keyed(api, "read")
    first = api.client.get("/v1/transactions", headers=headers)
    paid(api, 200)
    second = api.client.get("/v1/transactions", headers=headers)
    assert first.status_code == second.status_code == 200
    assert "idempotent-replayed" not in second.headers
    assert len(second.json()["items"]) == 2


def test_a_key_without_a_token_is_not_kept(api: Api) -> None:
    anonymous = api.client.post("/v1/payments", json=SALE, headers={"Idempotency-Key": "anon"})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == PROBLEM
    again = api.client.post("/v1/payments", json=SALE, headers={"Idempotency-Key": "anon"})
    assert again.status_code == 401
    assert "idempotent-replayed" not in again.headers
