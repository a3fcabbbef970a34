"""Every value of the OpenAPI document is bounded (docs/reliability.md, "Bounds"): the
document is walked here, so the rule holds even where the OWASP lint (node) cannot run."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from services.app import answers
from services.app.bounds import INT32, MESSAGE_LENGTH, NAME_LENGTH
from services.http.errors import FIELD_LENGTH, MAX_ERRORS, problem
from tests.conftest import Api


def schemas(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every JSON object of the document that states a `type`, with where it is."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from schemas(item, f"{where}/{index}")
        return
    if not isinstance(node, dict):
        return
    kinds = node.get("type")
    if isinstance(kinds, str | list):
        yield where, node
    for key, value in node.items():
        if key not in ("examples", "example", "default", "enum", "const"):
            yield from schemas(value, f"{where}/{key}")


def unbounded(schema: dict[str, Any]) -> str | None:
    """Why a schema is not bounded (None when it is)."""
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if "enum" in schema or "const" in schema:
        return None
    if "string" in kinds and "maxLength" not in schema:
        return "a string without maxLength"
    if "array" in kinds and "maxItems" not in schema:
        return "an array without maxItems"
    if "integer" in kinds:
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is None or high is None:
            return "an integer without minimum and maximum"
        if schema.get("format") not in ("int32", "int64"):
            return "an integer without an int32 or int64 format"
        if schema["format"] == "int32" and not (low >= -INT32 - 1 and high <= INT32):
            return f"an int32 from {low} to {high}"
        if not (low >= -(2**63) and high < 2**63):
            return f"an int64 from {low} to {high}"
    return None


@pytest.fixture
def document(api_for: Callable[..., Api]) -> dict[str, Any]:
    app = api_for("sqlite").client.app
    return dict(app.openapi())  # type: ignore[attr-defined]


def test_every_string_integer_and_array_of_the_document_is_bounded(
    document: dict[str, Any],
) -> None:
    found = list(schemas(document))
    assert len(found) > 1000, "the walk reaches the document's schemas"
    parameters = [where for where, _ in found if "/parameters/" in where]
    assert len(parameters) > 80, "the walk reaches the parameters"
    faults = [f"{where}: {why}" for where, schema in found if (why := unbounded(schema))]
    assert faults == []


def test_the_walk_finds_what_is_unbounded() -> None:
    sample = {
        "a": {"type": "string"},
        "b": {"type": ["integer", "null"], "minimum": 0, "maximum": 2**40, "format": "int32"},
        "c": {"type": "array", "items": {"type": "string", "maxLength": 3}},
        "d": {"type": "string", "enum": ["x"]},
        "e": {"type": "integer", "minimum": 0, "maximum": 9, "format": "int32"},
    }
    faults = {where: unbounded(schema) for where, schema in schemas(sample)}
    assert faults == {
        "/a": "a string without maxLength",
        "/b": "an int32 from 0 to 1099511627776",
        "/c": "an array without maxItems",
        "/c/items": None,
        "/d": None,
        "/e": None,
    }


def test_every_operation_declares_a_500_and_the_v1_ones_401_and_403(
    document: dict[str, Any],
) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert "500" in statuses, (method, path)
            if path.startswith("/v1"):
                assert {"401", "403"} <= statuses, (method, path)
            if operation.get("parameters") or "requestBody" in operation:
                assert "422" in statuses, (method, path)


def test_text_from_outside_is_cut_to_the_answers_bound() -> None:
    """A PMS may hold a longer name than we take; the answer keeps its declared bound."""
    patient = answers.Patient.model_validate(
        {
            "id": "6f1c3d8e-8a7e-4d53-9d1e-2b0c1f1e2a3b",
            "pms_patient_id": "7",
            "first_name": "A" * 5000,
            "last_name": "Lee",
            "email": None,
            "phone": None,
            "guarantor_id": None,
        }
    )
    assert len(patient.first_name) == NAME_LENGTH
    assert patient.first_name.endswith("…")
    assert patient.last_name == "Lee"


def test_a_problem_keeps_its_bounds_whatever_it_is_given() -> None:
    errors = [{"field": "f" * 500, "message": "m" * 5000}] * 300
    response = problem(422, "d" * 10_000, field="x" * 10_000, errors=errors)
    body = json.loads(bytes(response.body))
    assert len(body["detail"]) == MESSAGE_LENGTH
    assert len(body["field"]) == FIELD_LENGTH
    assert len(body["errors"]) == MAX_ERRORS
    assert {len(e["field"]) for e in body["errors"]} == {FIELD_LENGTH}
    assert {len(e["message"]) for e in body["errors"]} == {MESSAGE_LENGTH}
