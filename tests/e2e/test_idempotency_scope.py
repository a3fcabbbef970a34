"""Idempotency keys belong to the authenticated principal (not to how its header is spelt),
claims of dead processes are released at once, and kept answers hold no secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from services.http import idempotency
from tests.conftest import Api
from tests.e2e.support import assert_problem, history_types, keyed, new_patient, paid

SALE = {
    "method": "virtual_terminal",
    "amount": 4200,
    "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
}


def spelt(headers: dict[str, str], scheme: str) -> dict[str, str]:
    token = headers["Authorization"].split(" ", 1)[1]
    return {"Authorization": f"{scheme} {token}"}


def actor_of(api: Api, headers: dict[str, str]) -> str:
    token = headers["Authorization"].split(" ", 1)[1]
    caller = api.client.app.state.authenticator.caller(token)  # type: ignore[attr-defined]
    assert caller is not None
    return str(caller.actor)


def test_a_key_replays_whatever_the_spelling_of_the_authorization_header(api: Api) -> None:
    first = api.client.post("/v1/payments", json=SALE, headers=keyed(api, "s-1"))
    assert first.status_code == 201, first.text
    for scheme in ("bearer", "BEARER", "Bearer "):
        again = api.client.post(
            "/v1/payments", json=SALE, headers=keyed(api, "s-1", spelt(api.admin, scheme))
        )
        assert again.status_code == 201, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
    assert history_types(api, first.json()["id"]) == ["PaymentCaptured"]


def test_a_void_retried_with_its_key_in_another_spelling_replays(api: Api) -> None:
    payment = paid(api, 1000)
    path = f"/v1/payments/{payment['id']}/refund"
    first = api.client.post(path, headers=keyed(api, "v-1"))
    assert first.status_code == 200 and first.json()["kind"] == "void", first.text
    again = api.client.post(path, headers=keyed(api, "v-1", spelt(api.admin, "bearer")))
    assert again.status_code == 200, again.text
    assert again.json() == first.json()


def test_a_void_rerun_after_its_kept_answer_was_lost_answers_the_void(api: Api) -> None:
    payment = paid(api, 1000)
    path = f"/v1/payments/{payment['id']}/refund"
    first = api.client.post(path, headers=keyed(api, "v-2"))
    assert first.status_code == 200, first.text
    db = api.client.app.state.ctx.store.database()  # type: ignore[attr-defined]
    with db.transaction() as tx:  # as after a crash between the save and the kept answer
        tx.execute("DELETE FROM idempotency_keys WHERE key = ?", ("v-2",))
    again = api.client.post(path, headers=keyed(api, "v-2"))
    assert again.status_code == 200, again.text
    assert again.json()["kind"] == "void"
    assert again.json()["payment"]["status"] == "voided"
    assert history_types(api, payment["id"]).count("PaymentVoided") == 1


def leave_claim(api: Api, key: str, claimant: str, body: dict[str, Any]) -> None:
    """A claim as a process that died in the middle of the request leaves it."""
    db = api.client.app.state.ctx.store.database()  # type: ignore[attr-defined]
    fingerprint = idempotency.fingerprint(
        "POST", "/v1/payments", b"", json.dumps(body, separators=(",", ":")).encode()
    )
    with db.transaction() as tx:
        tx.execute(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, claimed_at, claimant) "
            "VALUES (?, ?, ?, ?, ?)",
            (actor_of(api, api.admin), key, fingerprint, idempotency.now_text(), claimant),
        )


def post_raw(api: Api, key: str, body: dict[str, Any]) -> Any:
    return api.client.post(
        "/v1/payments",
        content=json.dumps(body, separators=(",", ":")),
        headers={**keyed(api, key), "Content-Type": "application/json"},
    )


def test_a_claim_of_a_dead_process_is_released_at_once(api: Api) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = idempotency.ProcessIdentity.current().with_pid(child.pid, start="0")
    leave_claim(api, "dead-1", dead.text, SALE)
    retried = post_raw(api, "dead-1", SALE)
    assert retried.status_code == 201, retried.text


def test_a_claim_of_this_process_that_is_not_running_is_released_at_once(api: Api) -> None:
    me = idempotency.ProcessIdentity.current()
    leave_claim(api, "dead-2", me.text, SALE)
    retried = post_raw(api, "dead-2", SALE)
    assert retried.status_code == 201, retried.text


def test_a_claim_of_a_live_process_elsewhere_waits(api: Api) -> None:
    elsewhere = idempotency.ProcessIdentity("other-host", "boot", 1, "1")
    leave_claim(api, "live-1", elsewhere.text, SALE)
    busy = post_raw(api, "live-1", SALE)
    assert_problem(busy, 409, says="still being processed")


# -- secrets are not kept in stored answers -----------------------------------------------


def kept_bodies(api: Api) -> str:
    db = api.client.app.state.ctx.store.database()  # type: ignore[attr-defined]
    return json.dumps(db.query("SELECT body FROM idempotency_keys"))


def test_a_new_users_token_is_not_kept_and_its_answer_is_not_replayed(api: Api) -> None:
    path = f"/v1/practices/{api.practice_id}/users"
    headers = keyed(api, "user-1", api.operator)
    first = api.client.post(path, json={"name": "Dr Bee", "role": "staff"}, headers=headers)
    assert first.status_code == 201, first.text
    token = first.json()["token"]
    assert token not in kept_bodies(api)
    again = api.client.post(path, json={"name": "Dr Bee", "role": "staff"}, headers=headers)
    problem = assert_problem(again, 409, says="not kept")
    assert problem["answer"]["id"] == first.json()["id"]
    assert token not in again.text


def test_a_pay_url_is_not_kept(api: Api) -> None:
    patient = new_patient(api)
    body = {"patient_id": patient["id"], "amount": 900, "channel": "email"}
    first = api.client.post("/v1/payment-requests", json=body, headers=keyed(api, "req-1"))
    assert first.status_code == 201, first.text
    token = first.json()["pay_url"].rsplit("/", 1)[1]
    assert token not in kept_bodies(api)
    again = api.client.post("/v1/payment-requests", json=body, headers=keyed(api, "req-1"))
    problem = assert_problem(again, 409, says="not kept")
    assert problem["answer"]["id"] == first.json()["id"]
    assert token not in again.text
