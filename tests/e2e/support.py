"""Helpers shared by the end-to-end tests: problem answers, cards, a second practice."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api

PROBLEM = "application/problem+json"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
DECLINED = "4000000000000002"
INSUFFICIENT = "4000000000009995"


def assert_problem(
    response: Any,
    status: int,
    *,
    field: str | None = None,
    says: str | None = None,
) -> dict[str, Any]:
    """An RFC 9457 answer with this status, naming the field and saying something useful."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == PROBLEM, response.headers
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status, problem
    assert problem["type"].startswith("/problems/"), problem
    assert problem["title"], problem
    detail = problem["detail"]
    assert isinstance(detail, str) and len(detail) >= 10, problem
    assert "Traceback" not in detail and "unexpected error" not in detail, problem
    if field is not None:
        assert problem.get("field") == field, problem
    if says is not None:
        assert says.lower() in detail.lower(), (says, problem)
    return problem


def second_practice(api: Api, name: str = "Oak Dental") -> Api:
    """Another practice on the same service, with its own admin and staff."""
    other = Api(api.client)
    other.practice_id = other.new_practice(name=name)["id"]
    other.admin = other.new_user(other.practice_id, "admin")
    other.staff = other.new_user(other.practice_id, "staff")
    return other


def new_patient(api: Api, pms_patient_id: str = "1", **extra: Any) -> dict[str, Any]:
    body = {
        "pms_patient_id": pms_patient_id,
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann@example.com",
        "phone": "+16175550100",
        **extra,
    }
    response = api.post("/v1/patients", body)
    assert response.status_code == 201, response.text
    patient: dict[str, Any] = response.json()
    return patient


def paid(api: Api, amount: int = 12500, **extra: Any) -> dict[str, Any]:
    """An approved virtual-terminal payment."""
    response = api.pay(amount, **extra)
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    assert payment["status"] == "approved", payment
    return payment


def keyed(api: Api, key: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    return {**(headers if headers is not None else api.admin), "Idempotency-Key": key}


def history_types(api: Api, aggregate_id: str) -> list[str]:
    answer = api.get(f"/v1/history/{aggregate_id}", params={"limit": 100})
    assert answer.status_code == 200, answer.text
    return [item["type"] for item in answer.json()["items"]]
