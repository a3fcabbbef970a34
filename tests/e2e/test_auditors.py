"""Auditors read everything and change nothing. The routes come from the OpenAPI document,
so a new route is covered the day it is added: every read answers an auditor exactly as it
answers an admin, and every write is refused with 403 before anything is written."""

from __future__ import annotations

import re
import uuid

import pytest

from domain.users import PLATFORM, Role
from services.app import accounts
from services.context import Components
from tests.conftest import Api
from tests.e2e.support import assert_problem, new_patient, paid, second_practice

READS = {"get"}
WRITES = {"post", "put", "patch", "delete"}


def ctx_of(api: Api) -> Components:
    ctx: Components = api.client.app.state.ctx  # type: ignore[attr-defined]
    return ctx


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def auditor_of(api: Api) -> dict[str, str]:
    answer = api.post(
        f"/v1/practices/{api.practice_id}/users", {"name": "Ada Auditor", "role": "auditor"}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["role"] == "auditor"
    return bearer(answer.json()["token"])


def platform_auditor(api: Api) -> dict[str, str]:
    _, token = accounts.invite_user(
        ctx_of(api),
        practice_id=PLATFORM,
        name="Pat Platform",
        email=None,
        role=Role.PLATFORM_AUDITOR,
        password=None,
        actor="operator:cli",
    )
    return bearer(token)


def history(api: Api) -> dict[str, str]:
    """A little of everything, so that the reads have something to show; the ids of it."""
    patient = new_patient(api)
    payment = paid(api, patient_id=patient["id"])
    request = api.post(
        "/v1/payment-requests",
        {"patient_id": patient["id"], "amount": 4000, "channel": "email"},
    )
    assert request.status_code == 201, request.text
    api.advance(3 * 86400)  # batches close, deposits arrive
    refund = api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 500})
    assert refund.status_code in (200, 201), refund.text
    deposits = api.get("/v1/deposits").json()["items"]
    return {
        "practice_id": api.practice_id,
        "payment_id": payment["id"],
        "patient_id": patient["id"],
        "request_id": request.json()["id"],
        "aggregate_id": payment["id"],
        "deposit_id": deposits[0]["id"] if deposits else str(uuid.uuid4()),
    }


def as_user(api: Api, headers: dict[str, str]) -> Api:
    """The same practice, calling as another user."""
    other = Api(api.client)
    other.practice_id = api.practice_id
    other.admin = headers
    return other


def routes(api: Api, methods: set[str]) -> list[tuple[str, str]]:
    document = api.client.get("/openapi.json").json()
    found = [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in methods and path.startswith("/v1/")
    ]
    assert len(found) >= (15 if methods == READS else 20), found
    return found


def filled(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)


def event_count(api: Api) -> int:
    position, count = 0, 0
    while True:
        page = api.get("/v1/events", params={"after": position, "limit": 100}).json()["items"]
        if not page:
            return count
        count += len(page)
        position = page[-1]["position"]


def test_an_auditor_reads_every_route_as_an_admin_does(api: Api) -> None:
    ids = history(api)
    auditor = auditor_of(api)
    for method, template in routes(api, READS):
        path = filled(template, ids)
        as_admin = api.client.request(method, path, headers=api.admin)
        as_auditor = api.client.request(method, path, headers=auditor)
        assert as_auditor.status_code == as_admin.status_code, (path, as_auditor.text)
        assert as_auditor.status_code < 500, (path, as_auditor.text)
        if as_admin.headers.get("content-type") == "application/json":
            assert as_auditor.json() == as_admin.json(), path


def test_every_write_refuses_an_auditor_and_writes_nothing(api: Api) -> None:
    ids = history(api)
    auditor = auditor_of(api)
    before = event_count(api)
    for method, template in routes(api, WRITES):
        path = filled(template, ids)
        answer = api.client.request(
            method, path, json={}, headers={**auditor, "Idempotency-Key": f"k-{path}-{method}"}
        )
        problem = assert_problem(answer, 403, says="may read but never change anything")
        assert problem["type"] == "/problems/read-only", (path, problem)
        assert f"{method} {path}" in problem["detail"], problem
    assert event_count(api) == before


def test_a_platform_auditor_reads_any_practice_it_names_and_writes_nothing(api: Api) -> None:
    ids = history(api)
    other = second_practice(api)
    new_patient(other, "77", first_name="Oak", last_name="Patient")
    platform = platform_auditor(api)
    named = {**platform, "X-Practice-Id": api.practice_id}
    for method, template in routes(api, READS):
        path = filled(template, ids)
        as_admin = api.client.request(method, path, headers=api.admin)
        as_platform = api.client.request(method, path, headers=named)
        assert as_platform.status_code == as_admin.status_code, (path, as_platform.text)
        if as_admin.headers.get("content-type") == "application/json":
            assert as_platform.json() == as_admin.json(), path
    # Another practice, by the header or by the path.
    oak = api.get("/v1/patients", headers={**platform, "X-Practice-Id": other.practice_id})
    assert [p["last_name"] for p in oak.json()["items"]] == ["Patient"]
    oak_practice = api.get(f"/v1/practices/{other.practice_id}", headers=platform)
    assert oak_practice.status_code == 200 and oak_practice.json()["name"] == "Oak Dental"
    # Writes: refused whatever the practice.
    before = event_count(api)
    for method, template in routes(api, WRITES):
        answer = api.client.request(method, filled(template, ids), json={}, headers=named)
        problem = assert_problem(answer, 403, says="platform auditor may read")
        assert problem["type"] == "/problems/read-only"
    assert event_count(api) == before


def test_a_platform_auditor_must_name_a_real_practice(api: Api) -> None:
    platform = platform_auditor(api)
    assert_problem(api.get("/v1/transactions", headers=platform), 400, says="X-Practice-Id")
    assert_problem(
        api.get("/v1/transactions", headers={**platform, "X-Practice-Id": "elm"}),
        400,
        says="must be a practice id",
    )
    missing = str(uuid.uuid4())
    assert_problem(
        api.get("/v1/transactions", headers={**platform, "X-Practice-Id": missing}),
        404,
        says=missing,
    )


def test_an_auditor_of_one_practice_never_sees_another(api: Api) -> None:
    other = second_practice(api)
    theirs = paid(other)
    auditor = auditor_of(api)
    assert_problem(api.get(f"/v1/payments/{theirs['id']}", headers=auditor), 404)
    assert_problem(api.get(f"/v1/practices/{other.practice_id}", headers=auditor), 404)
    # The header is for platform auditors only: a practice auditor's stays its own.
    mine = api.get(
        "/v1/transactions", headers={**auditor, "X-Practice-Id": other.practice_id}
    ).json()
    assert theirs["id"] not in {t["id"] for t in mine["items"]}


@pytest.mark.parametrize("role", ["platform-auditor", "operator"])
def test_an_admin_cannot_make_a_platform_auditor(api: Api, role: str) -> None:
    answer = api.post(f"/v1/practices/{api.practice_id}/users", {"name": "X", "role": role})
    assert_problem(answer, 422, field="role")


def test_an_admin_may_turn_a_user_into_an_auditor_and_back(api: Api) -> None:
    made = api.post(
        f"/v1/practices/{api.practice_id}/users", {"name": "Sam", "role": "admin"}
    ).json()
    sam = bearer(made["token"])
    assert paid(as_user(api, sam))["status"] == "approved"
    changed = api.client.patch(
        f"/v1/practices/{api.practice_id}/users/{made['id']}",
        json={"role": "auditor"},
        headers=api.admin,
    )
    assert changed.status_code == 200 and changed.json()["role"] == "auditor", changed.text
    assert_problem(as_user(api, sam).pay(), 403, says="never change anything")
    assert api.get("/v1/transactions", headers=sam).status_code == 200
