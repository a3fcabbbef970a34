"""What the OpenAPI document says each route answers when it refuses, and the rules of
the edge that make it true: every error is `application/problem+json` (a `Problem`);
a /v1 route refuses a query parameter it does not take (400, naming it); a method a path
does not take is a 405 that lists the ones it does in `Allow`.

Each route declares its own refusals with `responses=problems(...)` (404 of an object it
looks up, 409 of a rule of the ledger, 502 of a service behind it); the document adds
those that follow from the operation's shape: 400, 401 and 403 on every /v1 route, 422
where it takes parameters or a body, 413 where it takes a body, 409 where it takes an
`Idempotency-Key`. Every operation that is rate limited (services/http/rate_limits.py)
declares its 429 and the RateLimit-* headers on each of its 2xx and 4xx answers.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from services.app.ar_filters import CONTROL
from services.app.bounds import URL_LENGTH, Code, Message, whole
from services.app.inputs import Body
from services.http.deps import bearer, get_caller
from services.http.errors import FIELD_LENGTH, MAX_ERRORS, PROBLEM, TITLES
from services.http.rate_limits import is_limited
from services.problems import HttpProblem

#: routes whose query string is a filter of any of many columns, checked by the use case
OPEN_QUERY = {"/v1/ar/patients"}


class FieldError(BaseModel):
    field: Annotated[str, Field(max_length=FIELD_LENGTH)]
    message: Message


class Problem(BaseModel):
    """RFC 9457 problem details; some problems add members of their own. Its bounds are
    kept by `errors.problem`, which cuts what it is given to them."""

    model_config = ConfigDict(extra="allow")

    type: Code = Field(description="a URI reference naming the kind of problem")
    title: Code
    status: Annotated[int, whole(400, 599)]
    detail: Message = Field(description="what went wrong, and what to change")
    field: Annotated[str, Field(max_length=FIELD_LENGTH)] | None = Field(
        None, description="the field (or parameter) at fault"
    )
    errors: list[FieldError] | None = Field(
        None, max_length=MAX_ERRORS, description="every field at fault (the first 100)"
    )


#: what each status means on this API, as the document says it
MEANINGS = {
    400: "Malformed: an unknown query parameter, a bad cursor, bad JSON or a bad header",
    401: "No valid bearer token",
    403: "The token's user may not do this",
    404: "No such object in this practice",
    405: "The path does not take this method (`Allow` lists those it takes)",
    409: "In conflict with the object's state, or an Idempotency-Key in use or reused",
    413: "The body is over 64 KiB",
    422: "A value is invalid: `field` and `errors` say which and why",
    429: "Too many attempts: wait (`Retry-After`) and try again",
    500: "An unexpected error: a read changed nothing; a write's finished steps stay, and "
    "the same call with the same Idempotency-Key finishes it without doing anything twice",
    502: "A service behind the ledger (the PMS, email) refused or failed",
}

REF = {"$ref": "#/components/schemas/Problem"}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route for the problems it can answer."""
    return {
        status: {
            "description": MEANINGS.get(status, TITLES.get(status, "Error")),
            "content": {PROBLEM: {"schema": REF}},
        }
        for status in statuses
    }


def params(dependant: Dependant, kind: str) -> list[str]:
    """The names of a route's parameters of one kind (query, path, header), its
    dependencies' included."""
    names = [p.alias for p in getattr(dependant, f"{kind}_params")]
    for sub in dependant.dependencies:
        names += params(sub, kind)
    return names


def derived_statuses(operation: dict[str, Any]) -> list[int]:
    """The problems that follow from a /v1 operation's shape."""
    parameters = operation.get("parameters", [])
    statuses = [400, 401, 403]
    if parameters or "requestBody" in operation:
        statuses.append(422)
    if "requestBody" in operation:
        statuses.append(413)
    if any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in parameters):
        statuses.append(409)
    return statuses


async def known_query_only(request: Request) -> None:
    """Refuse a query parameter that a /v1 route does not take (400, naming it), once the
    caller is known to be someone (a stranger learns nothing of the route: 401)."""
    route = request.scope.get("route")
    if not request.url.path.startswith("/v1") or not isinstance(route, APIRoute):
        return
    if route.path in OPEN_QUERY:
        return
    known = set(params(route.dependant, "query"))
    unknown = [name for name in request.query_params if name not in known]
    if not unknown:
        return
    get_caller(request, await bearer(request))
    takes = ", ".join(sorted(known)) or "none"
    raise HttpProblem(
        400,
        f"unknown query parameter {unknown[0]!r}; this route takes: {takes}",
        code="unknown-parameter",
        field=unknown[0],
    )


def declare_problems(schema: dict[str, Any]) -> None:
    """Every error response of the document as a Problem in application/problem+json."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            default_422 = responses.get("422", {}).get("content", {}).get("application/json")
            if default_422 is not None:  # the framework's own validation answer
                del responses["422"]
            wanted = derived_statuses(operation) if path.startswith("/v1") else []
            if default_422 is not None:
                wanted.append(422)
            wanted.append(500)  # any route can fail unexpectedly: errors.install answers it
            for status, response in problems(*wanted).items():
                responses.setdefault(str(status), response)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in components["Problem"].pop("$defs", {}).items():
        components.setdefault(name, sub)
    for name in ("HTTPValidationError", "ValidationError"):
        if f'"#/components/schemas/{name}"' not in json.dumps(schema):
            components.pop(name, None)


#: the headers of a rate-limited operation's answers (draft-ietf-httpapi-ratelimit-headers)
RATE_HEADERS = {
    "RateLimit-Limit": "The requests the tightest budget of this request takes in one window",
    "RateLimit-Remaining": "The requests that budget has left in the current window",
    "RateLimit-Reset": "Seconds until the current window ends and the budget is whole again",
}
RETRY_AFTER = "Seconds to wait before trying again (the current window's end)"


def header_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def rate_limited_answer(path: str) -> dict[str, Any]:
    """The 429 of a limited operation: problem+json from the JSON API, a page elsewhere."""
    content = {PROBLEM: {"schema": REF}} if path.startswith("/v1") else {"text/html": {}}
    return {"description": "Too many requests: wait (`Retry-After`) and retry", "content": content}


ORIGIN = "Access-Control-Allow-Origin"


def declare_origin(schema: dict[str, Any]) -> None:
    """Every answer states the API's cross-origin policy (services/http/origin.py)."""
    headers = schema.setdefault("components", {}).setdefault("headers", {})
    headers[ORIGIN] = {
        "description": "This service's own origin: no page of another origin may read the "
        "answer in a browser",
        "schema": {"type": "string", "format": "uri", "maxLength": URL_LENGTH},
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                response.setdefault("headers", {})[ORIGIN] = header_ref(ORIGIN)


def declare_rate_limits(schema: dict[str, Any]) -> None:
    """A 429 with Retry-After on every limited operation, and the RateLimit-* headers on
    each of its 2xx and 4xx answers."""
    headers = schema.setdefault("components", {}).setdefault("headers", {})
    integer = {"type": "integer", "format": "int32", "minimum": 0, "maximum": 2**31 - 1}
    for name, description in {**RATE_HEADERS, "Retry-After": RETRY_AFTER}.items():
        headers[name] = {"description": description, "schema": integer}
    for path, operations in schema.get("paths", {}).items():
        if not is_limited(path):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            too_many = responses.setdefault("429", rate_limited_answer(path))
            too_many.setdefault("headers", {})["Retry-After"] = header_ref("Retry-After")
            for status, response in responses.items():
                if status.startswith(("2", "4")):
                    declared = response.setdefault("headers", {})
                    declared.update({name: header_ref(name) for name in RATE_HEADERS})


def parameters_never_null(schema: dict[str, Any]) -> None:
    """State an optional parameter as its own type: a parameter left out is absent, never
    null (the framework spells an optional one `anyOf: [type, null]`, which hides the type
    and its bounds from a reader and from linters)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                declared = parameter.get("schema", {})
                options = declared.get("anyOf", [])
                if len(options) == 2 and NULL in options:
                    del declared["anyOf"]
                    declared.update(next(o for o in options if o != NULL))
                    if declared.get("default", "") is None:
                        del declared["default"]


def pages_without_schema(schema: dict[str, Any]) -> None:
    """An HTML page is a page, not a string to validate: its answers name the media type
    alone (as the pay page's refusals do)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                response.get("content", {}).get("text/html", {}).pop("schema", None)


NULL = {"type": "null"}
#: text without the control characters every body refuses (the same class as CONTROL)
CONTROL_FREE = f"^[^{CONTROL.pattern[1:-1]}]*$"


def request_models() -> set[str]:
    """The names of the request body models (every one refuses control characters)."""
    names: set[str] = set()
    pending: list[type[Body]] = [Body]
    while pending:
        model = pending.pop()
        names.add(model.__name__)
        pending.extend(model.__subclasses__())
    return names


def without_control_characters(node: Any) -> None:
    """State in the schema that a body's text holds no control characters (tab, newline
    and carriage return are fine): every string of a request body model gets the pattern,
    beside any pattern of its own."""
    if isinstance(node, list):
        for item in node:
            without_control_characters(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "string" and "enum" not in node and "const" not in node:
        if "pattern" not in node:
            node["pattern"] = CONTROL_FREE
        elif node["pattern"] != CONTROL_FREE:
            node.setdefault("allOf", []).append({"pattern": CONTROL_FREE})
    for key, value in node.items():
        if key not in ("enum", "const", "examples", "default"):
            without_control_characters(value)


def install(app: FastAPI) -> None:
    """Serve a document whose every refusal is a declared Problem (call after the routes
    are in)."""

    def document() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        declare_problems(schema)
        parameters_never_null(schema)
        pages_without_schema(schema)
        declare_rate_limits(schema)
        declare_origin(schema)
        bodies = request_models()
        for name, model in schema.get("components", {}).get("schemas", {}).items():
            if name in bodies:
                without_control_characters(model)
        app.openapi_schema = schema
        return schema

    app.openapi = document  # type: ignore[method-assign]
