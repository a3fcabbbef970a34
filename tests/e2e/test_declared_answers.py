"""The OpenAPI document says what each route answers, and the edge holds to it: a
response model on every /v1 operation, every refusal a declared problem+json, unknown
query parameters and non-ISO dates refused, 405 with `Allow`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.e2e.support import assert_problem, new_patient, paid

PROBLEM = "application/problem+json"
REF = {"$ref": "#/components/schemas/Problem"}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_v1_operation_declares_its_answer_and_its_problems(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    assert document["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
    ]
    checked = 0
    for method, path, operation in operations(document):
        responses = operation["responses"]
        for status, response in responses.items():
            if status.startswith("4") and path.startswith("/v1"):
                assert response["content"] == {PROBLEM: {"schema": REF}}, (method, path, status)
        if not path.startswith("/v1"):
            continue
        checked += 1
        assert {"400", "401", "403"} <= set(responses), (method, path)
        success = [s for s in responses if s.startswith("2")]
        if operation.get("deprecated") and not success:  # a former address: one redirect
            assert [s for s in responses if s.startswith("3")] == ["308"], (method, path)
            assert "Location" in responses["308"]["headers"], (method, path)
            continue
        assert len(success) == 1, (method, path)
        if success[0] == "204" or path.endswith(".csv"):
            continue
        if set(responses[success[0]]["content"]) == {"application/x-ndjson"}:
            continue  # a streamed export: JSON lines, not one body
        if set(responses[success[0]]["content"]) == {"application/pdf"}:
            # a document (the receipt's PDF): bytes, declared as such and bounded
            pdf = responses[success[0]]["content"]["application/pdf"]["schema"]
            assert pdf["format"] == "binary" and pdf["maxLength"] > 0, (method, path)
            continue
        schema = responses[success[0]]["content"]["application/json"]["schema"]
        assert schema.get("$ref", "").startswith("#/components/schemas/"), (method, path, schema)
        if "requestBody" in operation:
            assert {"413", "422"} <= set(responses), (method, path)
    assert checked >= 40


def test_answers_are_the_declared_models(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    payment = paid(api, 4500)
    assert list(payment) == list(schemas["Payment"]["properties"])
    answer = api.get(f"/v1/payments/{payment['id']}").json()
    assert list(answer) == list(schemas["PaymentWithHistory"]["properties"])
    page = api.get("/v1/transactions").json()
    assert list(page) == ["items", "next_cursor", "from", "to"]
    assert list(page["items"][0]) == list(schemas["TransactionRow"]["properties"])


def test_an_unknown_query_parameter_is_a_400_naming_it(api: Api) -> None:
    new_patient(api, "1")
    for path in ("/v1/transactions", "/v1/patients", "/v1/sandbox/clock", "/v1/events"):
        answer = api.get(path, params={"limt": "5"})
        assert_problem(answer, 400, field="limt", says="limt")
    assert api.get("/v1/transactions", params={"limit": 5}).status_code == 200
    stranger = api.client.get("/v1/transactions", params={"limt": "5"})
    assert_problem(stranger, 401)  # who asks comes first


def test_the_ar_list_takes_its_filters_by_name(api: Api) -> None:
    assert api.get("/v1/ar/patients", params={"min_total": 100}).status_code == 200
    assert_problem(api.get("/v1/ar/patients", params={"min_totl": 1}), 422, field="min_totl")


@pytest.mark.parametrize("value", ["0", "1700000000", "20260301", "2026-3-1", " 2026-03-01"])
@pytest.mark.parametrize("name", ["from", "to"])
def test_dates_in_query_strings_are_iso_only(api: Api, name: str, value: str) -> None:
    assert_problem(api.get("/v1/transactions", params={name: value}), 422, field=name, says="date")


def test_instants_and_report_dates_are_iso_only(api: Api) -> None:
    assert_problem(api.get("/v1/reports/transactions", params={"as_of": "0"}), 422, field="as_of")
    assert_problem(api.get("/v1/reports/daily-close", params={"date": "0"}), 422, field="date")
    good = api.get("/v1/reports/transactions", params={"as_of": "2026-03-04T15:00:00Z"})
    assert good.status_code == 200, good.text


def test_a_method_a_path_does_not_take_is_a_405_listing_the_ones_it_does(api: Api) -> None:
    patient = new_patient(api, "1")
    answer = api.client.put(f"/v1/patients/{patient['id']}/snooze", headers=api.admin)
    assert_problem(answer, 405)
    assert answer.headers["Allow"] == "DELETE, POST"
    listing = api.client.delete("/v1/transactions", headers=api.admin)
    assert_problem(listing, 405)
    assert listing.headers["Allow"] == "GET, HEAD"
