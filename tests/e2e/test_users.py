"""The users of a practice over HTTP: list, invite, change role, revoke; roles, tenancy,
idempotency and bad input (on both backends)."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.e2e.support import CARD, assert_problem, keyed, paid, second_practice

PASSWORD = "correct horse battery"


def users_path(api: Api) -> str:
    return f"/v1/practices/{api.practice_id}/users"


def invite(api: Api, name: str = "Dana Reyes", role: str = "staff", **extra: Any) -> Any:
    answer = api.post(users_path(api), {"name": name, "role": role, **extra})
    assert answer.status_code == 201, answer.text
    return answer.json()


def bearer(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


def listed(api: Api) -> dict[str, dict[str, Any]]:
    answer = api.get(users_path(api))
    assert answer.status_code == 200, answer.text
    return {u["id"]: u for u in answer.json()["items"]}


def test_an_admin_lists_and_invites_people(api: Api) -> None:
    before = listed(api)
    assert len(before) == 2  # the fixture's admin and staff
    made = invite(api, email="Dana@Elm.example", password=PASSWORD, role="admin")
    assert set(made) == {"id", "name", "role", "email", "token"}
    assert made["email"] == "dana@elm.example" and made["role"] == "admin"
    users = listed(api)
    assert set(users) == {*before, made["id"]}
    row = users[made["id"]]
    assert row == {
        "id": made["id"],
        "name": "Dana Reyes",
        "email": "dana@elm.example",
        "role": "admin",
        "status": "active",
        "created_at": row["created_at"],
        "two_factor": {"enabled": False, "since": None},
    }
    assert made["token"] not in api.get(users_path(api)).text
    # The new admin's token works at once.
    assert api.get("/v1/transactions", headers=bearer(made)).status_code == 200


def test_an_admin_changes_a_role_and_it_counts_at_once(api: Api) -> None:
    sam = invite(api, "Sam Okafor")
    assert_problem(api.get("/v1/transactions", headers=bearer(sam)), 403)
    promoted = api.client.patch(
        f"{users_path(api)}/{sam['id']}", json={"role": "admin"}, headers=api.admin
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["role"] == "admin" and promoted.json()["status"] == "active"
    assert api.get("/v1/transactions", headers=bearer(sam)).status_code == 200
    assert listed(api)[sam["id"]]["role"] == "admin"
    history = api.get(f"/v1/history/{sam['id']}").json()["items"]
    assert [e["type"] for e in history] == ["UserCreated", "UserRoleChanged"]
    assert "token_hash" not in str(history)


def test_a_revoked_users_token_answers_401_at_once(api: Api) -> None:
    sam = invite(api, "Sam Okafor", role="admin")
    assert api.get("/v1/transactions", headers=bearer(sam)).status_code == 200
    revoked = api.client.delete(f"{users_path(api)}/{sam['id']}", headers=api.admin)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["name"] == "Sam Okafor"
    assert_problem(api.get("/v1/transactions", headers=bearer(sam)), 401)
    assert listed(api)[sam["id"]]["status"] == "revoked"
    # A revoked user cannot be changed; revoking again changes nothing.
    changed = api.client.patch(
        f"{users_path(api)}/{sam['id']}", json={"role": "staff"}, headers=api.admin
    )
    assert_problem(changed, 409, says="revoked")
    again = api.client.delete(f"{users_path(api)}/{sam['id']}", headers=api.admin)
    assert again.status_code == 200 and again.json()["status"] == "revoked"


def test_the_last_admin_and_oneself_are_kept(api: Api) -> None:
    users = listed(api)
    admin_id = next(u["id"] for u in users.values() if u["role"] == "admin")
    demote = api.client.patch(
        f"{users_path(api)}/{admin_id}", json={"role": "staff"}, headers=api.admin
    )
    assert_problem(demote, 409, says="last active admin")
    himself = api.client.delete(f"{users_path(api)}/{admin_id}", headers=api.admin)
    assert_problem(himself, 409, says="cannot revoke yourself")
    other = invite(api, "Sam Okafor", role="admin")
    last = api.client.delete(f"{users_path(api)}/{admin_id}", headers=bearer(other))
    assert last.status_code == 200, last.text
    assert_problem(api.get("/v1/transactions"), 401)
    step_down = api.client.patch(
        f"{users_path(api)}/{other['id']}", json={"role": "staff"}, headers=bearer(other)
    )
    assert_problem(step_down, 409, says="last active admin")


def test_staff_get_403_and_another_practice_404(api: Api) -> None:
    oak = second_practice(api)
    oak_user = next(iter(listed(oak)))
    mine = next(iter(listed(api)))
    for method, body in (("GET", None), ("POST", {"name": "Eve", "role": "admin"})):
        answer = api.client.request(method, users_path(api), json=body, headers=api.staff)
        assert_problem(answer, 403, says="admin")
    for method, body in (("PATCH", {"role": "admin"}), ("DELETE", None)):
        answer = api.client.request(
            method, f"{users_path(api)}/{mine}", json=body, headers=api.staff
        )
        assert_problem(answer, 403, says="admin")
    # Oak's practice and Oak's users are not found from Elm.
    attempts = [
        ("GET", f"/v1/practices/{oak.practice_id}/users", None),
        ("POST", f"/v1/practices/{oak.practice_id}/users", {"name": "Eve", "role": "admin"}),
        ("PATCH", f"/v1/practices/{oak.practice_id}/users/{oak_user}", {"role": "staff"}),
        ("DELETE", f"/v1/practices/{oak.practice_id}/users/{oak_user}", None),
        ("PATCH", f"{users_path(api)}/{oak_user}", {"role": "staff"}),
        ("DELETE", f"{users_path(api)}/{oak_user}", None),
    ]
    for method, path, body in attempts:
        answer = api.client.request(method, path, json=body, headers=api.admin)
        assert_problem(answer, 404)
        assert "Oak" not in answer.text
    assert all(u["status"] == "active" for u in listed(oak).values())
    assert len(listed(oak)) == 2
    # The operator adds users, but does not list or change them.
    assert_problem(api.get(users_path(api), headers=api.operator), 403, says="operator")


def test_an_email_is_taken_once(api: Api) -> None:
    invite(api, email="dana@elm.example", password=PASSWORD)
    taken = api.post(
        users_path(api),
        {"name": "Dana", "role": "staff", "email": "DANA@elm.example", "password": PASSWORD},
    )
    assert_problem(taken, 409, field="email", says="already exists")
    oak = second_practice(api)
    elsewhere = oak.post(
        users_path(oak),
        {"name": "Dana", "role": "staff", "email": "dana@elm.example", "password": PASSWORD},
    )
    assert_problem(elsewhere, 409, field="email")
    assert len(listed(api)) == 3


def test_bad_input_gets_a_clear_422(api: Api) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        (
            {"name": "Dana", "role": "staff", "email": "d@elm.example", "password": "short"},
            "password",
            "at least 10 characters",
        ),
        ({"name": "Dana", "role": "staff", "email": "d@elm.example"}, "password", "password"),
        ({"name": "Dana", "role": "staff", "password": PASSWORD}, "email", "email"),
        (
            {"name": "Dana", "role": "staff", "email": "nope", "password": PASSWORD},
            "email",
            "email address",
        ),
        ({"name": "Dana", "role": "owner"}, "role", "admin"),
        ({"name": "  ", "role": "staff"}, "name", "name"),
    ]
    for body, field, says in cases:
        assert_problem(api.post(users_path(api), body), 422, field=field, says=says)
    user = next(iter(listed(api)))
    wrong_role = api.client.patch(
        f"{users_path(api)}/{user}", json={"role": "boss"}, headers=api.admin
    )
    assert_problem(wrong_role, 422, field="role")
    assert len(listed(api)) == 2


def test_an_invitation_with_a_key_is_made_once(api: Api) -> None:
    body = {"name": "Dana", "role": "staff", "email": "dana@elm.example", "password": PASSWORD}
    first = api.post(users_path(api), body, headers=keyed(api, "invite-1"))
    assert first.status_code == 201, first.text
    # The answer held a token, which is never kept: the retry says so and gives the rest.
    again = api.post(users_path(api), body, headers=keyed(api, "invite-1"))
    problem = assert_problem(again, 409, says="not kept")
    assert problem["answer"]["id"] == first.json()["id"]
    assert problem["answer"]["token"] != first.json()["token"]
    assert len(listed(api)) == 3
    other = api.post(users_path(api), {**body, "name": "Other"}, headers=keyed(api, "invite-1"))
    assert_problem(other, 409, says="Idempotency-Key")


def test_history_receipts_and_the_feed_name_the_people(api: Api) -> None:
    dana = invite(api, "Dana Reyes", role="admin")
    body = {"method": "virtual_terminal", "amount": 700, "card": CARD}
    payment = api.post("/v1/payments", body, headers=bearer(dana)).json()
    refund = api.post(f"/v1/payments/{payment['id']}/refund", {})
    assert refund.status_code == 200, refund.text
    history = api.get(f"/v1/history/{payment['id']}").json()["items"]
    names = {e["type"]: (e["actor"], e["actor_name"]) for e in history}
    assert names["PaymentCaptured"] == (f"user:{dana['id']}", "Dana Reyes")
    assert names["PaymentVoided"][1] == "A admin"
    receipt = api.get(f"/v1/payments/{payment['id']}/receipt").json()
    assert (receipt["actor"], receipt["actor_name"]) == (f"user:{dana['id']}", "Dana Reyes")
    embedded = api.get(f"/v1/payments/{payment['id']}").json()["history"]
    assert [e["actor_name"] for e in embedded] == [e["actor_name"] for e in history]
    feed = api.get("/v1/events", params={"limit": 100}).json()["items"]
    created = next(e for e in feed if e["type"] == "PracticeCreated")
    assert (created["actor"], created["actor_name"]) == ("operator", "Operator")


def test_a_settled_refund_on_a_receipt_names_who_refunded(api: Api) -> None:
    payment = paid(api, 900)
    api.advance(2 * 86400)
    refund = api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 300})
    assert refund.status_code == 200, refund.text
    receipt = api.get(f"/v1/payments/{payment['id']}/receipt").json()
    [line] = receipt["refunds"]
    assert line["actor_name"] == "A admin" and line["actor"].startswith("user:")
    settled = api.get(f"/v1/history/{payment['id']}").json()["items"]
    assert ("PaymentSettled", "System") in {(e["type"], e["actor_name"]) for e in settled}


def test_an_admin_sets_a_password_over_the_api(api: Api) -> None:
    body = {"name": "Dana", "role": "staff", "email": "dana.pw@elm.example", "password": PASSWORD}
    user = api.post(users_path(api), body).json()
    short = api.client.put(
        f"{users_path(api)}/{user['id']}/password", json={"password": "short"}, headers=api.admin
    )
    assert_problem(short, 422, says="10")
    done = api.client.put(
        f"{users_path(api)}/{user['id']}/password",
        json={"password": "another-long-password"},
        headers=api.admin,
    )
    assert done.status_code == 200, done.text
    by_staff = api.client.put(
        f"{users_path(api)}/{user['id']}/password", json={}, headers=api.staff
    )
    assert by_staff.status_code == 403
