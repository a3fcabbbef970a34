"""One definition per answer: each JSON route returns the response model it declares
(services/app/answers.py), built from the use case's result or the view's row, never a
dict that the model validates afterwards."""

from __future__ import annotations

import importlib
import pkgutil
import typing
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.responses import Response

from services.app import answers
from services.http import routes

ROUTERS = [
    router
    for module in pkgutil.iter_modules(routes.__path__)
    for router in vars(importlib.import_module(f"{routes.__name__}.{module.name}")).values()
    if isinstance(router, APIRouter)
]
ROUTES = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
assert len(ROUTES) > 60, "every route module is read"


def returned(route: APIRoute) -> Any:
    return typing.get_type_hints(route.endpoint)["return"]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{sorted(r.methods)[0]} {r.path}")
def test_a_route_returns_the_model_it_declares(route: APIRoute) -> None:
    kind = returned(route)
    if isinstance(kind, type) and issubclass(kind, Response):
        return  # a response of its own (CSV, 204, /healthz's 503): nothing validated
    assert route.response_model is not None, "a JSON route declares its answer"
    assert kind is route.response_model, (
        f"{route.endpoint.__name__} returns {kind}, not its answer {route.response_model}"
    )
    assert issubclass(route.response_model, answers.Answer)


def test_an_answer_is_read_by_its_name_in_the_json() -> None:
    page = answers.TransactionTotals(
        count=1,
        collected_amount=500,
        refunded_amount=0,
        net_amount=500,
        from_="2026-03-01",
        to="2026-03-31",
    )
    assert page["from"] == "2026-03-01" and page.get("to") == "2026-03-31"
    assert page.get("nothing") is None
    with pytest.raises(KeyError):
        page["from_x"]
    assert page.model_dump(by_alias=True)["from"] == "2026-03-01"
    assert {**page} == page.model_dump(by_alias=True)


def test_an_answer_with_more_fields_than_declared_is_read_by_them_too() -> None:
    status = answers.WritebackStatus.model_validate(
        {
            "status": "ok",
            "failing_since": None,
            "last_error": None,
            "last_error_at": None,
            "last_success_at": None,
            "pending": 2,
        }
    )
    assert status["status"] == "ok" and status["pending"] == 2
    assert {**status}["pending"] == 2
