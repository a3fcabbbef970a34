"""Inputs that must get a clear 4xx, never a 500: huge and deep bodies, deep cursors,
numbers beyond 64 bits; /metrics behind its own token; authorisation before validation."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable

import anyio
import pytest
from starlette.types import Message, Receive, Scope, Send

from services.http.limits import RequestLimitsMiddleware
from tests.conftest import NO_RATE_LIMITS, Api, PinnedClock
from tests.e2e.support import assert_problem

LIMIT = 64 * 1024


def test_a_body_over_the_limit_is_refused_before_it_is_read_or_authenticated(api: Api) -> None:
    big = b'{"x": "' + b"a" * (LIMIT + 10) + b'"}'
    for headers in ({}, api.admin):
        answer = api.client.post(
            "/v1/payments", content=big, headers={**headers, "Content-Type": "application/json"}
        )
        assert_problem(answer, 413, says="64 KiB")


def test_a_chunked_body_over_the_limit_is_refused_without_reading_it_all() -> None:
    received = {"chunks": 0}
    answered: list[Message] = []

    async def receive() -> Message:
        received["chunks"] += 1  # 16 MB if it were all read
        return {"type": "http.request", "body": b"a" * 16384, "more_body": True}

    async def send(message: Message) -> None:
        answered.append(message)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the application must not see the request")

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/payments",
        "headers": [(b"transfer-encoding", b"chunked")],
    }
    anyio.run(RequestLimitsMiddleware(app), scope, receive, send)
    assert answered[0]["status"] == 413
    assert received["chunks"] == LIMIT // 16384 + 1


def test_a_deeply_nested_json_body_is_a_400(api: Api) -> None:
    deep = b"[" * 20000 + b"]" * 20000
    answer = api.client.post(
        "/v1/payments", content=deep, headers={**api.admin, "Content-Type": "application/json"}
    )
    assert_problem(answer, 400, says="nested")


@pytest.mark.parametrize("path", ["/v1/transactions", "/v1/ar/patients", "/v1/events"])
def test_a_deeply_nested_cursor_is_a_400(api: Api, path: str) -> None:
    deep = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode()
    answer = api.get(path, params={"cursor": deep})
    assert answer.status_code in (400, 422), answer.text  # the feed's cursor is digits only
    assert answer.json()["field"] == "cursor"


def test_a_number_beyond_64_bits_in_an_ar_filter_is_a_422(api: Api) -> None:
    for name in ("min_total", "max_bal_0_30", "min_patient_portion"):
        answer = api.get("/v1/ar/patients", params={name: str(10**30)})
        assert_problem(answer, 422, field=name)
    saved = api.post("/v1/ar/filters", {"name": "huge", "filter": {"min_total": 10**30}})
    assert_problem(saved, 422, field="min_total")
    assert api.get("/v1/ar/filters").json()["items"] == []


def test_a_huge_event_feed_position_is_a_4xx(api: Api) -> None:
    answer = api.get("/v1/events", params={"after": str(10**30)})
    assert 400 <= answer.status_code < 500, answer.text


# -- /metrics -------------------------------------------------------------------------


def test_metrics_are_off_without_a_metrics_token(api: Api) -> None:
    for headers in ({}, api.admin, api.operator):
        answer = api.client.get("/metrics", headers=headers)
        assert_problem(answer, 404, says="PAYLEDGER_METRICS_TOKEN")


def test_metrics_need_the_metrics_token(api_for: Callable[..., Api], clock: PinnedClock) -> None:
    api = api_for("sqlite", clock, metrics_token="scrape-me").setup()
    for headers in ({}, api.admin, api.operator, {"Authorization": "Bearer scrape-you"}):
        answer = api.client.get("/metrics", headers=headers)
        assert_problem(answer, 401)
    ok = api.client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert ok.status_code == 200
    assert "payledger_http_requests_total" in ok.text


# -- authorisation before validation --------------------------------------------------------


def mutating_routes(api: Api) -> list[tuple[str, str]]:
    paths = api.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return [
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/v1")
        for method in operations
        if method in ("post", "put", "patch", "delete")
    ]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_staff_user_gets_403_before_any_validation(
    api_for: Callable[..., Api], clock: PinnedClock, backend: str
) -> None:
    # every mutating route twice, at once: more writes than a caller's per-second budget
    api = api_for(backend, clock, rate_limits=NO_RATE_LIMITS).setup()
    checked = 0
    for method, template in mutating_routes(api):
        path = re.sub(r"\{practice_id\}", api.practice_id, template)
        path = re.sub(r"\{[a-z_]+\}", str(uuid.uuid4()), path)
        for body in ({}, {"amount": "not a number", "unknown": 1}):
            answer = api.client.request(method, path, json=body, headers=api.staff)
            assert answer.status_code == 403, (method, template, answer.status_code, answer.text)
            checked += 1
    assert checked > 20
