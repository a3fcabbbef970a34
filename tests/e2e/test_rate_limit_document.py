"""The served OpenAPI document declares the rate limits of every limited operation: a
429 (with Retry-After) and the RateLimit-* headers on each 2xx and 4xx answer, as the
OWASP API4 lint rule asks (`owasp:api4:2019-rate-limit`)."""

from __future__ import annotations

from collections.abc import Callable

from services.http.rate_limits import is_limited
from tests.conftest import Api

RATE_HEADERS = {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def test_every_limited_operation_declares_its_429_and_the_ratelimit_headers(
    api_for: Callable[..., Api],
) -> None:
    document = api_for("sqlite").client.get("/openapi.json").json()
    declared = document["components"]["headers"]
    assert RATE_HEADERS | {"Retry-After"} <= set(declared)
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            if not is_limited(path):
                assert "429" not in responses or path.startswith("/pay/"), where
                continue
            checked += 1
            assert "Retry-After" in responses["429"]["headers"], where
            for status, response in responses.items():
                if status.startswith(("2", "4")):
                    assert set(response.get("headers", {})) >= RATE_HEADERS, f"{where} {status}"
            media = responses["429"]["content"]
            assert ("application/problem+json" in media) == path.startswith("/v1"), where
    assert checked > 50
    assert not is_limited("/healthz") and not is_limited("/metrics")
    assert not is_limited("/static/htmx.min.js") and not is_limited("/openapi.json")
