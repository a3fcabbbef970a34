"""Every operation of the served OpenAPI document, fuzzed by Schemathesis as a practice's
admin, on SQLite and on PostgreSQL: no 5xx, every 4xx is problem+json, and every answer
has a status code and a body that its operation declares.

`PAYLEDGER_FUZZ_EXAMPLES` sets the examples per operation (a few in the normal suite;
`make fuzz` runs many).
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import psycopg
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.meta import negated_parameters
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.app.ar_filters import FILTER_NAMES
from services.asgi import create_app
from services.bootstrap import build_components
from services.settings import Settings
from tests.conftest import OPERATOR_TOKEN, Api

#: examples per operation; the long run (`make fuzz`) also runs the coverage phase: every
#: boundary and every kind of invalid value that each parameter's schema defines
EXAMPLES = int(os.environ.get("PAYLEDGER_FUZZ_EXAMPLES", "0") or 0)
LONG = EXAMPLES > 0
EXAMPLES = EXAMPLES or 3
PROBLEM = "application/problem+json"


def problem_json_on_4xx(ctx: Any, response: Any, case: Case) -> bool | None:
    """Every refusal of the API is RFC 9457 problem details with the status it was sent
    with (the pay page answers patients in HTML, as its operations declare)."""
    if 400 <= response.status_code < 500 and case.path.startswith("/v1"):
        content_type = response.headers.get("content-type", [""])
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith(PROBLEM), (
            f"{response.status_code} answered as {content_type!r}, not {PROBLEM}"
        )
        body = response.json()
        assert body["status"] == response.status_code and body["detail"], body
    return None


#: the API's rules that JSON Schema cannot state: a request valid by the schema may still
#: be refused for one of these, and for nothing else (docs/reliability.md lists them)
BEYOND_THE_SCHEMA: list[tuple[str, str, str]] = [
    ("invalid-cursor", r"^cursor is not one this API returned", "a cursor is opaque and signed"),
    ("invalid-value", r"^from \(.+\) is after to \(", "a range's ends compared with each other"),
    ("invalid-value", r"(?i)^the two .* differ", "two fields that must be equal"),
    ("invalid-value", r"^the phone number and its confirmation differ", "two equal numbers"),
    ("invalid-value", r"^A confirmation is required", "a field needed with another one"),
    ("invalid-value", r"is not a patient of this practice$", "an id that must name a patient"),
    ("invalid-value", r"^the test clock ", "the sandbox clock: forward, < 10 years"),
    ("invalid-request", r"Input should be a valid integer", "JSON Schema's integers include 100.0"),
    ("invalid-card", r"^card\.number is not a valid card number", "the Luhn check digit"),
    ("invalid-card", r"^the card expired", "the card's expiry, against today"),
    ("invalid-card", r"^in sandbox mode only the test payment methods", "the processor's own ids"),
]


def filter_value(body: dict[str, Any]) -> bool:
    """An AR filter value refused by the AR rules (the schema states the filters' names)."""
    field = str(body.get("field") or "")
    return field in FILTER_NAMES or field.startswith("filter.") or " range for " in body["detail"]


def valid_by_schema_is_accepted(ctx: Any, response: Any, case: Case) -> bool | None:
    """Schemathesis's positive data acceptance, less the rules the schema cannot state: a
    request the schema allows is never refused with a 400 or a 422 for anything else."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if response.status_code not in (400, 422):
        return None
    if not case.path.startswith("/v1"):
        return None
    body = response.json()
    kind = str(body.get("type", "")).rsplit("/", 1)[-1]
    if any(kind == k and re.search(pattern, body["detail"]) for k, pattern, _ in BEYOND_THE_SCHEMA):
        return None
    if filter_value(body):
        return None
    raise AssertionError(
        f"{case.operation.label}: a request valid by the schema was refused with "
        f"{response.status_code} {kind}: {body['detail']} (body {case.body!r:.300})"
    )


CHECKS = [
    valid_by_schema_is_accepted,
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    problem_json_on_4xx,
]


class Fuzzed:
    """An app on one backend with a practice, its admin and a few objects to find."""

    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self.backend = "postgresql" if database_url else "sqlite"
        self.statuses: Counter[int] = Counter()
        self.operations: set[str] = set()
        self.ctx = build_components(
            Settings(
                data_dir=data_dir,
                database_url=database_url,
                operator_token=OPERATOR_TOKEN,
                run_scheduler=False,
            )
        )
        self.app: FastAPI = create_app(self.ctx, scheduler=False)
        api = Api(TestClient(self.app, raise_server_exceptions=False)).setup()
        patient = api.post(
            "/v1/patients",
            {"pms_patient_id": "1", "first_name": "Ann", "last_name": "Lee", "email": "a@b.co"},
        )
        assert patient.status_code == 201, patient.text
        assert api.pay(12500, patient_id=patient.json()["id"]).status_code == 201
        self.headers = api.admin

    def call(self, case: Case) -> None:
        headers = self.headers
        if any(name.lower() == "authorization" for name, _ in negated_parameters(case.meta)):
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        response = case.call_and_validate(app=self.app, headers=headers, checks=CHECKS)
        self.statuses[response.status_code] += 1
        self.operations.add(case.operation.label)

    def summary(self) -> str:
        by_class = Counter(f"{status // 100}xx" for status in self.statuses.elements())
        return (
            f"fuzz on {self.backend}: {sum(self.statuses.values())} requests over "
            f"{len(self.operations)} operations ({EXAMPLES} examples each"
            f"{' and the coverage phase' if LONG else ''}); "
            f"{', '.join(f'{k} {v}' for k, v in sorted(by_class.items()))}; "
            f"5xx {by_class.get('5xx', 0)}"
        )


def served_document() -> dict[str, Any]:
    """The OpenAPI document the app serves (the same on either backend)."""
    with tempfile.TemporaryDirectory() as folder:
        ctx = build_components(
            Settings(data_dir=Path(folder), operator_token=OPERATOR_TOKEN, run_scheduler=False)
        )
        try:
            answer = TestClient(create_app(ctx, scheduler=False)).get("/openapi.json")
            assert answer.status_code == 200, answer.text
            document: dict[str, Any] = answer.json()
            return document
        finally:
            ctx.store.close()


#: Schemathesis's rejections, and 413: a body over the size limit is refused before it is read
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}},
        "phases": {"coverage": {"enabled": LONG}},
    }
)
SCHEMA = schemathesis.openapi.from_dict(served_document(), config=CONFIG)


@pytest.fixture(scope="module")
def on_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    fuzzed = Fuzzed(tmp_path_factory.mktemp("fuzz-sqlite") / "var", None)
    yield fuzzed
    print("\n" + fuzzed.summary())
    fuzzed.ctx.store.close()


@pytest.fixture(scope="module")
def on_postgres(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    name = f"payledger_fuzz_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{postgres_server.rsplit('/', 1)[0]}/{name}"
    fuzzed = Fuzzed(tmp_path_factory.mktemp("fuzz-postgres") / "var", url)
    yield fuzzed
    print("\n" + fuzzed.summary())
    fuzzed.ctx.store.close()
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@SCHEMA.parametrize()
@FUZZ
def test_every_operation_on_sqlite(case: Case, on_sqlite: Fuzzed) -> None:
    on_sqlite.call(case)


@pytest.mark.postgres
@SCHEMA.parametrize()
@FUZZ
def test_every_operation_on_postgres(case: Case, on_postgres: Fuzzed) -> None:
    on_postgres.call(case)


#: clock advance bodies: (body, valid by the served schema and accepted by the API)
CLOCK_BODIES = [
    ({"seconds": 60}, True),
    ({"to": "2030-01-01T00:00:00Z"}, True),
    ({"seconds": None, "to": "2030-01-01T00:00:00Z"}, True),
    ({}, False),
    ({"seconds": None}, False),
    ({"seconds": None, "to": None}, False),
    ({"seconds": 5, "to": "2030-01-01T00:00:00Z"}, False),
]


DOCUMENT = served_document()


def valid_by_schema(model: str, body: Any) -> bool:
    schema = DOCUMENT["components"]["schemas"][model]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": DOCUMENT["components"]})
    return bool(validator.is_valid(body))


@pytest.mark.parametrize(("body", "valid"), CLOCK_BODIES)
def test_the_schema_says_which_clock_advances_are_accepted(
    api: Api, body: dict[str, Any], valid: bool
) -> None:
    """`seconds` or `to`, exactly one: the served schema refuses what the API refuses."""
    assert valid_by_schema("ClockAdvanceIn", body) is valid, body
    answer = api.post("/v1/sandbox/clock/advance", body)
    assert answer.status_code == (200 if valid else 422), answer.text


CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}
#: payment bodies: (body, valid by the served schema and accepted by the API)
PAYMENT_BODIES = [
    ({"method": "virtual_terminal", "amount": 100, "card": CARD}, True),
    ({"method": "virtual_terminal", "amount": 100, "card": CARD, "payment_method": None}, True),
    ({"method": "terminal", "amount": 100, "terminal_id": "front-desk"}, True),
    ({"method": "terminal", "amount": 100}, False),
    ({"method": "terminal", "amount": 100, "terminal_id": "front-desk", "card": CARD}, False),
    ({"method": "virtual_terminal", "amount": 100}, False),
    ({"method": "virtual_terminal", "amount": 100, "card": None}, False),
    ({"method": "virtual_terminal", "amount": 100, "card": CARD, "payment_method": "pm_x"}, False),
    ({"method": "virtual_terminal", "amount": 0, "card": CARD}, False),
    ({"method": "virtual_terminal", "amount": 100_000_000, "card": CARD}, False),
    ({"method": "virtual_terminal", "amount": 99_999_999, "card": CARD}, True),
    ({"method": "virtual_terminal", "amount": 100, "card": {**CARD, "number": "4242"}}, False),
    ({"method": "virtual_terminal", "amount": 100, "card": {**CARD, "exp_month": 13}}, False),
    ({"method": "virtual_terminal", "amount": 100, "card": {**CARD, "exp_year": 1999}}, False),
    ({"method": "virtual_terminal", "amount": 100, "card": {**CARD, "cvc": "12a"}}, False),
    ({"method": "terminal", "amount": 100, "terminal_id": "front\x00desk"}, False),
]


@pytest.mark.parametrize(("body", "valid"), PAYMENT_BODIES)
def test_the_schema_says_which_payments_are_accepted(
    api: Api, body: dict[str, Any], valid: bool
) -> None:
    """A terminal payment names its reader and takes no card; a virtual terminal one takes
    exactly one of card and payment_method; amounts within the domain's bounds; the card's
    shape; no control characters."""
    assert valid_by_schema("PaymentIn", body) is valid, body
    answer = api.post("/v1/payments", body)
    assert answer.status_code == (201 if valid else 422), answer.text


#: bulk request selections: (body, valid by the served schema and accepted by the API)
BULK_BODIES = [
    ({"filter": {"min_total": 100}}, True),
    ({"filter": {"min_total": 100}, "patient_ids": None, "filter_id": None}, True),
    ({"patient_ids": []}, True),
    ({}, False),
    ({"filter": None}, False),
    ({"filter": {"min_total": 100}, "patient_ids": []}, False),
    ({"filter": {"no_such_filter": 1}}, False),
]


@pytest.mark.parametrize(("body", "valid"), BULK_BODIES)
def test_the_schema_says_which_bulk_selections_are_accepted(
    api: Api, body: dict[str, Any], valid: bool
) -> None:
    """Exactly one of patient_ids, filter and filter_id; a filter of known names."""
    assert valid_by_schema("BulkIn", body) is valid, body
    answer = api.post("/v1/payment-requests/bulk", body)
    assert (answer.status_code < 300) is valid, answer.text
    assert answer.status_code < 300 or answer.status_code == 422, answer.text


@pytest.mark.parametrize(
    ("last_name", "valid"),
    [("Lee", True), (" Lee\u00a0", True), ("\u0085", False), ("\u3000 \t", False), ("", False)],
)
def test_the_schema_says_a_name_is_not_blank(api: Api, last_name: str, valid: bool) -> None:
    """A name holds something besides white space, as the domain strips it."""
    body = {"pms_patient_id": "7", "first_name": "Ann", "last_name": last_name}
    assert valid_by_schema("PatientIn", body) is valid, body
    answer = api.post("/v1/patients", body)
    assert answer.status_code == (201 if valid else 422), answer.text
