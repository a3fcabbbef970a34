"""RFC 9457 problem details, and the one place that maps domain errors to HTTP."""

from __future__ import annotations

import logging
import re
from typing import Any

import stripe
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import PaymentsError
from services.app.bounds import MESSAGE_LENGTH
from services.http.access_log import redact_path
from services.problems import HttpProblem, status_for

log = logging.getLogger("payledger.api")

PROBLEM = "application/problem+json"
#: a problem's bounds, as its schema states them (services/http/openapi.py, `Problem`): what
#: it is given (a parameter's name, a value echoed back) is cut to them
FIELD_LENGTH = 200
MAX_ERRORS = 100

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal error",
    502: "Bad gateway",
}


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{code or TITLES.get(status, 'error').lower().replace(' ', '-')}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": cut(detail, MESSAGE_LENGTH),
    }
    if field:
        body["field"] = cut(field, FIELD_LENGTH)
    if errors:
        body["errors"] = [
            {"field": cut(e["field"], FIELD_LENGTH), "message": cut(e["message"], MESSAGE_LENGTH)}
            for e in errors[:MAX_ERRORS]
        ]
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def cut(text: str, limit: int) -> str:
    """Text within its bound, an ellipsis at the end when it was longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def allowed_methods(request: Request, allow: str | None) -> str:
    """Every method that some operation of the API takes at this request's path (the
    framework names only those of the first route that matched the path)."""
    methods = {m.strip() for m in (allow or "").split(",") if m.strip()}
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {m.upper() for m in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def stripe_problem(error: stripe.StripeError) -> tuple[int, str]:
    message = error.user_message or str(error) or type(error).__name__
    if isinstance(error, stripe.InvalidRequestError | stripe.CardError):
        return 422, f"Stripe refused the request: {message}"
    log.warning("stripe error reached the API: %s", type(error).__name__)
    return 502, "Stripe could not answer; nothing was recorded: try again in a moment"


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts)


def error_field(error: dict[str, Any]) -> str:
    """The field of a validation error; a body-wide check may name the field in its context."""
    path = field_path(error.get("loc", ()))
    inner = (
        (error.get("ctx") or {}).get("field") if error.get("type") == "control_character" else None
    )
    if inner:
        return f"{path}.{inner}" if path else str(inner)
    return path


def error_message(error: dict[str, Any]) -> str:
    if tuple(error.get("loc", ())) == ("body",):
        if error.get("type") == "missing":
            return "this request needs a JSON body (Content-Type: application/json)"
        if error.get("type") in ("model_attributes_type", "dict_type"):
            return (
                "the request body must be a JSON object holding this request's fields "
                "(Content-Type: application/json)"
            )
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def install(app: FastAPI) -> None:
    @app.exception_handler(PaymentsError)
    async def domain_error(request: Request, error: PaymentsError) -> JSONResponse:
        return problem(status_for(error), error.detail, code=error.code, field=error.field)

    @app.exception_handler(stripe.StripeError)
    async def stripe_error(request: Request, error: stripe.StripeError) -> JSONResponse:
        """A Stripe error the adapter did not turn into the ledger's own (a read of a
        reader, say): a request Stripe refused is 422, anything else 502; never a 500."""
        return problem(*stripe_problem(error))

    @app.exception_handler(HttpProblem)
    async def http_problem(request: Request, error: HttpProblem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return problem(
            error.status, error.detail, code=error.code, field=error.field, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [{"field": error_field(e), "message": error_message(e)} for e in error.errors()]
        if any(e.get("type") == "json_invalid" for e in error.errors()):
            return problem(400, "the request body is not valid JSON", code="malformed-json")
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more)"
        return problem(
            422, detail, code="invalid-request", field=first["field"] or None, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = (
            error.detail if isinstance(error.detail, str) else TITLES.get(error.status_code, "")
        )
        if error.status_code == 404 and detail == "Not Found":
            detail = f"no such resource: {request.url.path}"
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = allowed_methods(request, headers.get("Allow"))
            detail = f"{request.method} is not taken here; use {headers['Allow']}"
        return problem(error.status_code, detail, headers=headers or None)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, redact_path(request.url.path))
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return problem(500, "an unexpected error occurred; nothing was changed by this request")
        return problem(
            500,
            "an unexpected error occurred; what this request saved before it stays saved, "
            "and the rest was not done: retry it with the same Idempotency-Key to finish it "
            "without doing anything twice, or check the object first",
        )
