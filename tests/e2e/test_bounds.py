"""Past a bound, a 422 that names the field (docs/reliability.md, "Bounds"): never a 500,
never a partial write. Each value here is far past what the document declares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema_rs
import pytest

from tests.conftest import Api, PinnedClock
from tests.e2e.scenario import populate
from tests.e2e.support import assert_problem, new_patient, paid
from tests.e2e.test_tenancy_generated import SANDBOX_REFUSES, operations, own_calls

UUID = "6f1c3d8e-8a7e-4d53-9d1e-2b0c1f1e2a3b"


def events(api: Api) -> list[dict[str, Any]]:
    answer = api.get("/v1/events", params={"limit": 100})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_a_ten_thousand_character_note_is_refused_naming_it(api: Api) -> None:
    patient = new_patient(api)
    before = events(api)
    answer = api.post(
        f"/v1/patients/{patient['id']}/snooze",
        {"until": "2026-04-01", "reason": "other", "note": "n" * 10_000},
    )
    problem = assert_problem(answer, 422, field="note", says="500")
    assert [e["field"] for e in problem["errors"]] == ["note"]
    assert events(api) == before, "nothing was written"


def test_an_amount_past_the_maximum_is_refused_naming_it(api: Api) -> None:
    assert_problem(api.pay(100_000_000), 422, field="amount")
    assert_problem(api.pay(10**30), 422, field="amount")
    assert api.get("/v1/transactions").json()["items"] == []


def test_an_array_of_ten_thousand_items_is_refused_naming_it(api: Api) -> None:
    settings = f"/v1/practices/{api.practice_id}/settings"
    answer = api.client.patch(settings, json={"reminder_days": [1] * 10_000}, headers=api.admin)
    assert_problem(answer, 422, field="reminder_days")
    bulk = {"patient_ids": [UUID] * 1_001, "channel": "email"}
    assert_problem(api.post("/v1/payment-requests/bulk", bulk), 422, field="patient_ids")
    practice = api.get(f"/v1/practices/{api.practice_id}").json()
    assert practice["reminder_days"] == []


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/transactions", {"cursor": "c" * 10_000}, "cursor"),
        ("/v1/transactions", {"from": "2026-03-04" * 1_000}, "from"),
        ("/v1/transactions", {"patient_id": UUID * 100}, "patient_id"),
        ("/v1/events", {"cursor": "1" * 100}, "cursor"),
        ("/v1/events", {"after": str(10**30)}, "after"),
        ("/v1/payment-requests", {"limit": "101"}, "limit"),
    ],
)
def test_a_too_long_query_parameter_is_refused_naming_it(
    api: Api, path: str, params: dict[str, str], field: str
) -> None:
    assert_problem(api.get(path, params=params), 422, field=field)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/payments/{long}", "payment_id"),
        ("/v1/payments/{long}/receipt", "payment_id"),
        ("/v1/patients/{long}", "patient_id"),
        ("/v1/history/{long}", "aggregate_id"),
        (f"/v1/payments/urn:uuid:{UUID}", "payment_id"),
        ("/v1/reports/{long}", "view"),
    ],
)
def test_a_too_long_path_id_is_refused_naming_it(api: Api, path: str, field: str) -> None:
    paid(api, 100)
    answer = api.get(path.replace("{long}", "a" * 10_000))
    assert_problem(answer, 422, field=field)


def test_long_text_in_a_body_is_refused_naming_each_field(api: Api) -> None:
    body = {
        "pms_patient_id": "p" * 65,
        "first_name": "A" * 201,
        "last_name": "Lee",
        "phone": "5" * 22,
    }
    problem = assert_problem(api.post("/v1/patients", body), 422)
    assert {e["field"] for e in problem["errors"]} == {"pms_patient_id", "first_name", "phone"}
    assert api.get("/v1/patients").json()["items"] == []


def test_a_problem_does_not_echo_an_unbounded_parameter_name(api: Api) -> None:
    answer = api.get("/v1/transactions", params={"x" * 10_000: "1"})
    problem = assert_problem(answer, 400)
    assert len(problem["field"]) <= 200
    assert len(problem["detail"]) <= 2_000


def test_every_answer_of_a_working_day_keeps_the_declared_bounds_and_formats(
    api_for: Callable[..., Api], clock: PinnedClock
) -> None:
    """A day of everything (tests/e2e/scenario.py), then every JSON read of the document:
    each answer is valid against its declared schema, formats (uuid, date, date-time)
    included, so the document claims nothing of an answer that is not so."""
    api = api_for("sqlite", clock).setup()
    made = populate(api, "1")
    document = api.client.app.openapi()  # type: ignore[attr-defined]
    checked = 0
    for op in operations(api):
        if op.method != "GET" or not op.path.startswith("/v1"):
            continue
        responses = document["paths"][op.path]["get"]["responses"]
        if "200" not in responses:  # a former address, redirected (its own test's)
            assert [s for s in responses if s[0] in "23"] == ["308"], op.path
            continue
        answer = responses["200"].get("content", {})
        if "application/json" not in answer:
            continue  # a CSV or a stream
        schema = {**answer["application/json"]["schema"], "components": document["components"]}
        validator = jsonschema_rs.validator_for(schema, validate_formats=True)
        for call in own_calls(op, made):
            response = call.send(api, api.admin)
            if op.name in SANDBOX_REFUSES:
                assert response.status_code == 409, response.text
                continue
            assert response.status_code == 200, (op.name, response.text)
            errors = [
                f"{e.instance_path}: {e.message}" for e in validator.iter_errors(response.json())
            ]
            assert errors == [], (op.name, call.url, errors[:5])
            checked += 1
    assert checked > 25
