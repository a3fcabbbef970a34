"""The dashboard's security rules, over HTTP: headers, cookies, CSRF, roles."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from domain.users import Role
from services.app import accounts
from services.asgi import create_app
from tests.conftest import ComponentsFactory, PinnedClock

PASSWORD = "a-long-enough-password"


@pytest.fixture
def web(make_components: ComponentsFactory, clock: PinnedClock) -> Any:
    ctx = make_components("sqlite", clock)
    client = TestClient(create_app(ctx, scheduler=False), base_url="http://127.0.0.1")
    admin = client.post(
        "/v1/practices",
        json={
            "name": "Elm Dental",
            "timezone": "America/New_York",
            "pms": "dentrix",
            "deposit_account": {"kind": "Checking", "last4": "6789"},
        },
        headers={"Authorization": "Bearer operator-test-token"},
    ).json()
    from uuid import UUID

    for email, role in (("admin@elm.example", Role.ADMIN), ("staff@elm.example", Role.STAFF)):
        accounts.invite_user(
            ctx,
            practice_id=UUID(admin["id"]),
            name=email.split("@")[0].title(),
            email=email,
            role=role,
            password=PASSWORD,
            actor="operator",
        )
    return client


def sign_in(client: TestClient, email: str = "admin@elm.example") -> Any:
    page = client.get("/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return client.post(
        "/signin",
        data={"email": email, "password": PASSWORD, "csrf_token": token.group(1), "next": ""},
        follow_redirects=False,
    )


def test_every_html_page_sends_the_security_headers(web: TestClient) -> None:
    for path in ("/signin", "/docs", "/redoc"):
        answer = web.get(path)
        assert answer.status_code == 200, path
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert (
            "unsafe-eval" not in csp
            and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        )
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"]
    sign_in(web)
    page = web.get("/payments/transactions")
    assert page.status_code == 200
    assert "content-security-policy" in page.headers
    assert "<script>" not in page.text  # no inline script anywhere


def test_the_session_cookie_is_httponly_lax_and_signed(web: TestClient) -> None:
    answer = sign_in(web)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "pl_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP on 127.0.0.1
    value = web.cookies.get("pl_session")
    assert value is not None and "." in value
    web.cookies.set("pl_session", value[:-2] + "xx", domain="127.0.0.1")  # a forged signature
    assert web.get("/payments/transactions", follow_redirects=False).status_code == 303


def test_the_cookie_is_secure_away_from_the_local_machine(
    make_components: ComponentsFactory, clock: PinnedClock, web: TestClient
) -> None:
    remote = TestClient(web.app, base_url="https://payments.example.com")
    answer = sign_in(remote)
    assert "Secure" in answer.headers["set-cookie"]


def test_a_form_without_the_csrf_token_changes_nothing(web: TestClient) -> None:
    sign_in(web)
    answer = web.post(
        "/payments/collect/terminal",
        data={"amount": "10.00", "terminal_id": "t1"},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert "form has expired" in answer.text
    assert "$10.00" not in web.get("/payments/transactions").text


def test_a_sign_in_form_without_its_token_is_refused(web: TestClient) -> None:
    answer = web.post(
        "/signin",
        data={"email": "admin@elm.example", "password": PASSWORD, "csrf_token": "guess"},
        follow_redirects=False,
    )
    assert answer.status_code == 400
    assert "pl_session" not in answer.headers.get("set-cookie", "")


def test_staff_see_that_payments_is_for_admins(web: TestClient) -> None:
    sign_in(web, "staff@elm.example")
    for path in ("/payments/transactions", "/payments/deposits", "/payments/ar", "/settings"):
        answer = web.get(path)
        assert answer.status_code == 403, path
        assert "Payments is available to admins" in answer.text


def test_pages_need_a_sign_in_and_come_back_after_it(web: TestClient) -> None:
    answer = web.get("/payments/deposits?from=2026-03-01", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/signin?next=/payments/deposits")
    htmx = web.get("/payments/badge", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/signin")


def test_sign_in_never_sends_the_browser_to_another_site(web: TestClient) -> None:
    page = web.get("/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        answer = web.post(
            "/signin",
            data={
                "email": "admin@elm.example",
                "password": PASSWORD,
                "csrf_token": token.group(1),
                "next": target,
            },
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/payments/transactions", target
        web.cookies.clear()
        page = web.get("/signin")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
