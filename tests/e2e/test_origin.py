"""Every answer states the API's cross-origin policy: this service's own origin, so that
no page of another origin can read an answer in a browser; the document says so too."""

from __future__ import annotations

from tests.conftest import Api


def test_every_answer_names_this_services_origin_only(api: Api) -> None:
    origin = api.client.app.state.ctx.settings.base_url.rstrip("/")  # type: ignore[attr-defined]
    for answer in (
        api.get("/v1/transactions"),
        api.client.get("/v1/transactions"),  # 401
        api.client.get("/healthz"),
        api.client.get("/signin"),
    ):
        assert answer.headers["access-control-allow-origin"] == origin, answer.url


def test_the_document_declares_it_on_every_answer(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                declared = response.get("headers", {})
                assert "Access-Control-Allow-Origin" in declared, (method, path, status)
