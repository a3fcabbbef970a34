"""Who may call what: tokens, roles, the operator, and one practice never reaching another."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import Api
from tests.e2e.support import (
    CARD,
    PROBLEM,
    assert_problem,
    new_patient,
    paid,
    second_practice,
)

Call = tuple[str, str, Any]


def calls(api: Api, ids: dict[str, str]) -> list[Call]:
    """Every /v1 endpoint of the payments side, with a body that would be accepted."""
    patient, payment = ids["patient"], ids["payment"]
    return [
        ("GET", "/v1/patients", None),
        ("POST", "/v1/patients", {"pms_patient_id": "new", "first_name": "A", "last_name": "B"}),
        ("GET", f"/v1/patients/{patient}", None),
        ("POST", "/v1/payments", {"method": "virtual_terminal", "amount": 100, "card": CARD}),
        ("POST", "/v1/payments", {"method": "terminal", "terminal_id": "T-1", "amount": 100}),
        ("GET", f"/v1/payments/{payment}", None),
        ("GET", "/v1/transactions", None),
        ("GET", "/v1/transactions/unassociated-count", None),
        ("GET", "/v1/events", None),
        ("GET", f"/v1/history/{payment}", None),
        ("GET", "/v1/sandbox/clock", None),
        ("POST", "/v1/sandbox/clock/advance", {"seconds": 86400}),
        ("GET", "/v1/sandbox/mailbox", None),
        ("GET", f"/v1/payments/{payment}/receipt", None),
        (
            "POST",
            f"/v1/payments/{payment}/receipt/send",
            {"email": "ann@example.com", "confirm_email": "ann@example.com"},
        ),
        ("GET", f"/v1/payments/{payment}/ledger-entry", None),
        ("POST", f"/v1/payments/{payment}/associate", {"source": "manual"}),
        ("POST", f"/v1/payments/{payment}/refund", None),
        ("PATCH", f"/v1/practices/{api.practice_id}/settings", {"batch_cutoff": "18:00"}),
    ]


def objects(api: Api) -> dict[str, str]:
    patient = new_patient(api, "1")
    payment = paid(api, 5000, patient_id=patient["id"])
    return {"patient": patient["id"], "payment": payment["id"]}


def call(api: Api, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return api.client.request(method, path, json=body, headers=headers)


def unchanged(api: Api, ids: dict[str, str]) -> None:
    """Nothing of the practice moved: one payment, approved, unassociated; clock at rest."""
    items = api.get("/v1/transactions").json()["items"]
    assert [t["id"] for t in items] == [ids["payment"]]
    payment = api.get(f"/v1/payments/{ids['payment']}").json()
    assert payment["status"] == "approved"
    assert payment["association"] == "unassociated"
    assert payment["refunded_amount"] == 0 and payment["voided_at"] is None
    assert api.get("/v1/sandbox/clock").json()["offset_seconds"] == 0
    assert api.get("/v1/sandbox/mailbox").json()["items"] == []
    practice = api.get(f"/v1/practices/{api.practice_id}").json()
    assert practice["batch_cutoff"] == "23:59"
    patients = api.get("/v1/patients").json()["items"]
    assert [p["id"] for p in patients] == [ids["patient"]]


# -- tokens ---------------------------------------------------------------------------


def test_no_token_is_401_with_a_bearer_challenge_everywhere(api: Api) -> None:
    ids = objects(api)
    for method, path, body in calls(api, ids):
        answer = call(api, method, path, body, {})
        problem = assert_problem(answer, 401, says="Authorization: Bearer")
        assert answer.headers["www-authenticate"] == "Bearer", (method, path)
        assert problem["type"] == "/problems/unauthenticated", (method, path)
    unchanged(api, ids)


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer nope",
        "Bearer ",
        "Bearer",
        "Basic YWRtaW46YWRtaW4=",
        "Token abc",
        "Bearer operator-test-token-but-longer",
    ],
)
def test_a_bad_token_is_401_with_a_bearer_challenge_everywhere(
    api: Api, authorization: str
) -> None:
    ids = objects(api)
    for method, path, body in calls(api, ids):
        answer = call(api, method, path, body, {"Authorization": authorization})
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.headers["content-type"] == PROBLEM
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["detail"]
    unchanged(api, ids)


def test_the_bearer_scheme_is_case_insensitive(api: Api) -> None:
    token = api.admin["Authorization"].split(" ", 1)[1]
    for scheme in ("bearer", "BEARER", "Bearer"):
        answer = api.client.get("/v1/transactions", headers={"Authorization": f"{scheme} {token}"})
        assert answer.status_code == 200, (scheme, answer.text)


def test_staff_get_403_on_every_payments_endpoint(api: Api) -> None:
    ids = objects(api)
    for method, path, body in calls(api, ids):
        answer = call(api, method, path, body, api.staff)
        problem = assert_problem(answer, 403, says="admin")
        assert problem["type"] == "/problems/forbidden", (method, path)
    unchanged(api, ids)


def test_staff_may_not_create_users_or_practices(api: Api) -> None:
    users = api.post(
        f"/v1/practices/{api.practice_id}/users",
        {"name": "Sneaky", "role": "admin"},
        headers=api.staff,
    )
    assert_problem(users, 403, says="admin")
    practice = api.post(
        "/v1/practices",
        {
            "name": "Mine",
            "timezone": "America/Chicago",
            "pms": "dentrix",
            "deposit_account": {"kind": "Checking", "last4": "1111"},
        },
        headers=api.staff,
    )
    assert_problem(practice, 403, says="operator")


# -- the operator ---------------------------------------------------------------------


def test_the_operator_sets_up_practices_and_users(api: Api) -> None:
    practice = api.post(
        "/v1/practices",
        {
            "name": "Birch Dental",
            "timezone": "America/Los_Angeles",
            "pms": "eaglesoft",
            "auto_writeback": True,
            "deposit_account": {"kind": "Savings", "last4": "4321"},
            "batch_cutoff": "20:00",
        },
        headers=api.operator,
    )
    assert practice.status_code == 201, practice.text
    body = practice.json()
    assert body["name"] == "Birch Dental"
    assert body["timezone"] == "America/Los_Angeles"
    assert body["pms"] == "eaglesoft"
    assert body["auto_writeback"] is True
    assert body["deposit_account"]["kind"] == "Savings"
    assert body["deposit_account"]["last4"] == "4321"
    assert body["batch_cutoff"] == "20:00"
    uuid.UUID(body["id"])

    user = api.post(
        f"/v1/practices/{body['id']}/users",
        {"name": "Dana", "role": "admin"},
        headers=api.operator,
    )
    assert user.status_code == 201, user.text
    made = user.json()
    assert set(made) == {"id", "name", "role", "email", "token"}
    assert made["name"] == "Dana" and made["role"] == "admin" and made["token"]
    # The new admin's token works, and only on the new practice.
    birch = {"Authorization": f"Bearer {made['token']}"}
    assert api.get("/v1/transactions", headers=birch).json()["items"] == []
    assert api.get(f"/v1/practices/{body['id']}", headers=birch).status_code == 200
    assert_problem(api.get(f"/v1/practices/{api.practice_id}", headers=birch), 404)
    # The token is shown once: it appears in no other answer.
    assert made["token"] not in api.get(f"/v1/practices/{body['id']}", headers=birch).text
    feed = api.get("/v1/events", params={"limit": 100}, headers=birch).text
    assert made["token"] not in feed


def test_an_admin_may_add_users_to_their_own_practice_only(api: Api) -> None:
    other = second_practice(api)
    mine = api.post(f"/v1/practices/{api.practice_id}/users", {"name": "Eve", "role": "staff"})
    assert mine.status_code == 201, mine.text
    assert mine.json()["role"] == "staff"
    theirs = api.post(f"/v1/practices/{other.practice_id}/users", {"name": "Eve", "role": "admin"})
    assert_problem(theirs, 404)
    practice = {
        "name": "Mine",
        "timezone": "America/Chicago",
        "pms": "dentrix",
        "deposit_account": {"kind": "Checking", "last4": "1111"},
    }
    assert_problem(api.post("/v1/practices", practice), 403, says="operator")


def test_the_operator_gets_403_on_payments(api: Api) -> None:
    ids = objects(api)
    for method, path, body in calls(api, ids):
        answer = call(api, method, path, body, api.operator)
        problem = assert_problem(answer, 403, says="operator")
        assert problem["type"] == "/problems/forbidden", (method, path)
    unchanged(api, ids)


# -- one practice, never another ---------------------------------------------------------


@pytest.fixture
def two(api: Api) -> tuple[Api, Api, dict[str, str]]:
    """Elm (api) and Oak; Oak holds a patient and a payment for that patient."""
    oak = second_practice(api)
    return api, oak, objects(oak)


def test_an_admin_gets_404_for_another_practices_objects(
    two: tuple[Api, Api, dict[str, str]],
) -> None:
    elm, oak, ids = two
    patient, payment = ids["patient"], ids["payment"]
    attempts: list[Call] = [
        ("GET", f"/v1/payments/{payment}", None),
        ("GET", f"/v1/patients/{patient}", None),
        ("GET", f"/v1/history/{payment}", None),
        ("GET", f"/v1/history/{patient}", None),
        ("GET", f"/v1/history/{oak.practice_id}", None),
        ("GET", f"/v1/payments/{payment}/receipt", None),
        ("GET", f"/v1/payments/{payment}/ledger-entry", None),
        ("POST", f"/v1/payments/{payment}/refund", None),
        ("POST", f"/v1/payments/{payment}/refund", {"amount": 100}),
        ("POST", f"/v1/payments/{payment}/associate", {"source": "manual"}),
        ("POST", f"/v1/payments/{payment}/associate", {"source": "inbox", "pms_reference": "9"}),
        (
            "POST",
            f"/v1/payments/{payment}/receipt/send",
            {"email": "eve@example.com", "confirm_email": "eve@example.com"},
        ),
        ("GET", f"/v1/practices/{oak.practice_id}", None),
        ("PATCH", f"/v1/practices/{oak.practice_id}/settings", {"batch_cutoff": "01:00"}),
        ("POST", f"/v1/practices/{oak.practice_id}/users", {"name": "Eve", "role": "admin"}),
    ]
    for method, path, body in attempts:
        answer = call(elm, method, path, body, elm.admin)
        problem = assert_problem(answer, 404)
        assert problem["type"] == "/problems/not-found", (method, path)
        # The answer is the one a missing object gets: it says nothing of the other practice.
        assert "Oak" not in answer.text
    nobody = str(uuid.uuid4())
    missing = assert_problem(elm.get(f"/v1/payments/{nobody}"), 404)
    theirs = elm.get(f"/v1/payments/{payment}").json()
    assert theirs["type"] == missing["type"] and theirs["title"] == missing["title"]
    assert theirs["detail"].replace(payment, "ID") == missing["detail"].replace(nobody, "ID")

    # Oak's payment, patient and settings are exactly as they were.
    mine = oak.get(f"/v1/payments/{payment}").json()
    assert mine["status"] == "approved" and mine["refunded_amount"] == 0
    assert mine["association"] == "unassociated" and mine["voided_at"] is None
    assert oak.get("/v1/sandbox/mailbox").json()["items"] == []
    assert oak.get(f"/v1/practices/{oak.practice_id}").json()["batch_cutoff"] == "23:59"


def test_another_practices_objects_never_appear_in_lists_or_the_feed(
    two: tuple[Api, Api, dict[str, str]],
) -> None:
    elm, oak, ids = two
    own = paid(elm, 700)
    second_oak = oak.post(
        "/v1/payments", {"method": "terminal", "terminal_id": "T-9", "amount": 900}
    ).json()
    oak_ids = {ids["patient"], ids["payment"], second_oak["id"], oak.practice_id}

    listed = elm.get("/v1/transactions", params={"from": "2000-01-01", "to": "2100-01-01"})
    assert [t["id"] for t in listed.json()["items"]] == [own["id"]]
    by_patient = elm.get("/v1/transactions", params={"patient_id": ids["patient"]})
    assert by_patient.status_code == 200 and by_patient.json()["items"] == []
    assert elm.get("/v1/transactions/unassociated-count").json()["count"] == 1
    assert elm.get("/v1/patients").json()["items"] == []
    assert elm.get("/v1/sandbox/mailbox").json()["items"] == []

    feed: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = elm.get("/v1/events", params=params).json()
        feed.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert feed, "Elm's own events are in its feed"
    assert own["id"] in {e["aggregate_id"] for e in feed}
    assert elm.practice_id in {e["aggregate_id"] for e in feed}
    assert {e["aggregate_id"] for e in feed}.isdisjoint(oak_ids)
    assert "Oak Dental" not in str(feed)

    # And the other way round.
    oak_list = oak.get("/v1/transactions").json()["items"]
    assert {t["id"] for t in oak_list} == {ids["payment"], second_oak["id"]}
    oak_feed = oak.get("/v1/events", params={"limit": 100}).json()["items"]
    assert own["id"] not in {e["aggregate_id"] for e in oak_feed}


def test_another_practices_patient_cannot_be_charged_or_linked(
    two: tuple[Api, Api, dict[str, str]],
) -> None:
    elm, _, ids = two
    charged = elm.pay(100, patient_id=ids["patient"])
    assert_problem(charged, 422, field="patient_id", says="not a patient of this practice")
    linked = elm.post(
        "/v1/patients",
        {
            "pms_patient_id": "2",
            "first_name": "Bo",
            "last_name": "Lee",
            "guarantor_id": ids["patient"],
        },
    )
    assert_problem(linked, 422, field="guarantor_id")
    # The same PMS patient number in two practices is two patients.
    twin = new_patient(elm, "1")
    assert twin["id"] != ids["patient"]
    assert elm.get("/v1/transactions").json()["items"] == []


def test_the_sandbox_clock_of_one_practice_leaves_the_other_alone(
    two: tuple[Api, Api, dict[str, str]],
) -> None:
    elm, oak, ids = two
    elm.advance(3 * 86400)
    assert elm.get("/v1/sandbox/clock").json()["offset_seconds"] == 3 * 86400
    assert oak.get("/v1/sandbox/clock").json()["offset_seconds"] == 0
    # Oak's payment did not settle because Elm's clock moved.
    assert oak.get(f"/v1/payments/{ids['payment']}").json()["status"] == "approved"
