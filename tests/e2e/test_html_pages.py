"""Every HTML page: security headers, sign-in, one practice only; the pay page's unknown
links; and every event's actor, down to who voided or refunded a payment.

The dashboard's pages are read from the application's routes (they are not in the
OpenAPI document), so a new page is covered when it is served.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from domain.users import Role
from services.app import accounts
from tests.conftest import NO_RATE_LIMITS, Api, PinnedClock
from tests.e2e.scenario import PASSWORD, Made, dashboard_paths, populate
from tests.e2e.support import second_practice


@dataclass
class Office:
    api: Api
    made: Made
    pages: list[tuple[str, str]]


def person(api: Api, email: str, role: Role = Role.STAFF) -> UUID:
    """A person of `api`'s practice, with PASSWORD; answers the user's id."""
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    user, _ = accounts.invite_user(
        ctx,
        practice_id=UUID(api.practice_id),
        name=email.split("@")[0].title(),
        email=email,
        role=role,
        password=PASSWORD,
        actor="operator",
    )
    return user.id


def browser(api: Api, email: str, role: Role = Role.ADMIN) -> tuple[TestClient, str]:
    """A person of `api`'s practice signed in on the dashboard (plain HTTP on the local
    machine); answers the browser and the user's id."""
    user_id = person(api, email, role)
    web = TestClient(api.client.app, base_url="http://127.0.0.1")
    page = web.get("/signin")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    answer = web.post(
        "/signin",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf.group(1), "next": ""},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return web, str(user_id)


@pytest.fixture
def oak(api_for: Callable[..., Api], clock: PinnedClock) -> Office:
    api = api_for("sqlite", clock, rate_limits=NO_RATE_LIMITS).setup(name="Oak Dental")
    made = populate(api, "1")
    return Office(api, made, dashboard_paths(api, made))


def assert_security_headers(answer: object, where: str) -> None:
    headers = answer.headers  # type: ignore[attr-defined]
    assert headers["content-type"].startswith("text/html"), where
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, where
    assert "default-src 'self'" in csp and "object-src 'none'" in csp, where
    assert headers["x-content-type-options"] == "nosniff", where
    assert headers["referrer-policy"] in {"same-origin", "no-referrer"}, where


def test_every_html_page_sends_the_security_headers(oak: Office) -> None:
    web, _ = browser(oak.api, "headers@oak.example")
    pages = [("GET /signin", "/signin"), ("GET /docs", "/docs"), ("GET /redoc", "/redoc")]
    pages += oak.pages
    for name, url in pages:
        answer = web.get(url)
        assert answer.status_code == 200, (name, url, answer.status_code)
        if url.endswith((".csv", ".pdf")):
            assert answer.headers["x-content-type-options"] == "nosniff", url
            continue
        assert_security_headers(answer, url)
    # The pay page: open, paid (closed) and unknown.
    for token, status in (
        (oak.made.pay_tokens[1], 200),
        (oak.made.pay_tokens[0], 410),
        ("not-a-real-token", 404),
    ):
        answer = oak.api.client.get(f"/pay/{token}")
        assert answer.status_code == status, answer.text
        assert_security_headers(answer, "/pay")
        assert answer.headers["cache-control"] == "no-store"
    # The pages that answer an error are HTML with the headers too.
    missing = web.get("/payments/transactions/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert_security_headers(missing, "a missing payment's page")


def test_every_dashboard_page_needs_a_live_session(oak: Office, clock: PinnedClock) -> None:
    anonymous = TestClient(oak.api.client.app, base_url="http://127.0.0.1")
    expired, _ = browser(oak.api, "expired@oak.example")
    revoked, revoked_id = browser(oak.api, "revoked@oak.example")
    out = oak.api.client.delete(
        f"/v1/practices/{oak.api.practice_id}/users/{revoked_id}", headers=oak.api.admin
    )
    assert out.status_code == 200, out.text
    live, _ = browser(oak.api, "live@oak.example")
    signed_out, _ = browser(oak.api, "signed-out@oak.example")
    page = signed_out.get("/payments/transactions")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    assert signed_out.post("/signout", data={"csrf_token": csrf.group(1)}).status_code < 400
    clock.move(hours=13)  # past the 12 hours of every session so far
    for name, url in oak.pages:
        if url == "/signin":
            continue
        for who, web in (
            ("anonymous", anonymous),
            ("expired", expired),
            ("revoked", revoked),
            ("signed out", signed_out),
        ):
            answer = web.get(url, follow_redirects=False)
            for _ in range(2):  # "/" and "/payments" only point at a page
                if not answer.headers.get("location", "/signin").startswith("/signin"):
                    assert "Oak Dental" not in answer.text
                    answer = web.get(answer.headers["location"], follow_redirects=False)
            where = (who, name, url, answer.status_code)
            assert answer.status_code in {302, 303}, where
            assert answer.headers["location"].startswith("/signin"), where
            assert "Oak Dental" not in answer.text, where
    # A session opened now works (the clock did not break signing in).
    fresh, _ = browser(oak.api, "fresh@oak.example")
    assert fresh.get("/payments/transactions").status_code == 200
    del live


def test_another_practices_pages_are_not_found(oak: Office, api_for: Callable[..., Api]) -> None:
    elm = second_practice(oak.api, "Elm Dental")
    mine = populate(elm, "1")
    web, _ = browser(elm, "admin@elm.example")
    checked = 0
    for name, url in oak.pages:
        if not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", url):
            # A list page: Elm's own, naming nothing of Oak.
            answer = web.get(url)
            assert answer.status_code == 200, (name, url)
            leaked = {i for i in oak.made.all_ids() if i in answer.text}
            assert not leaked, (url, leaked)
            assert "Oak Dental" not in answer.text, url
            continue
        answer = web.get(url, follow_redirects=False)
        assert answer.status_code == 404, (name, url, answer.status_code)
        assert "Oak Dental" not in answer.text, url
        checked += 1
    assert checked >= 8, checked
    # And the forms that act on one object refuse Oak's.
    payment = oak.made.first("payment")
    page = web.get("/payments/transactions")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    for url in (
        f"/payments/transactions/{payment}/refund",
        f"/payments/transactions/{payment}/associate",
        f"/payments/requests/{oak.made.ids['request'][1]}/cancel",
    ):
        answer = web.post(url, data={"csrf_token": csrf.group(1)}, follow_redirects=False)
        assert answer.status_code == 404, (url, answer.status_code)
    assert oak.api.get(f"/v1/payments/{payment}").json()["refunded_amount"] == 2500
    assert mine.ids["payment"]


def test_an_unknown_pay_link_says_nothing_of_which_links_exist(oak: Office) -> None:
    real = oak.made.pay_tokens[1]
    tries = [
        "not-a-real-token",
        real[:-1],  # one character short
        real[:-1] + ("A" if real[-1] != "A" else "B"),  # one character changed
        real.upper() if real.upper() != real else real.lower(),
        real + "x",
        "A" * 43,
        "x" * 100,
        "x" * 101,  # past the longest token read
    ]
    answers = [oak.api.client.get(f"/pay/{token}") for token in tries]
    posts = [
        oak.api.client.post(f"/pay/{token}", data={"amount": "1.00", "card_number": "4242"})
        for token in tries[:3]
    ]
    for answer in answers + posts:
        assert answer.status_code == 404, answer.text
        assert "Oak Dental" not in answer.text
    bodies = {answer.text for answer in answers + posts}
    assert len(bodies) == 1, "every unknown link gets the very same page"
    assert "not valid" in bodies.pop()


def test_every_event_names_its_actor_and_a_payments_history_names_who_reversed_it(
    oak: Office,
) -> None:
    api = oak.api
    feed = api.get("/v1/events", params={"limit": 100}).json()["items"]
    assert len(feed) > 20
    for event in feed:
        assert event["actor"], event
        # a person (user:<id>), the operator, the patient (pay page), or the machinery
        # that acted on its own (the processor's batch close, the scheduler's jobs)
        assert event["actor"] in {"operator", "patient", "processor"} or event["actor"].startswith(
            ("user:", "system:", "operator:")
        ), event
        if event["actor"].startswith("user:"):
            assert event["actor_name"], event
    # Two admins: one voids a payment, the other refunds a settled one.
    voider = second_admin(api, "Vera Void")
    refunder = second_admin(api, "Rob Refund")
    voided = api.post(
        "/v1/payments", {"method": "terminal", "terminal_id": "T-2", "amount": 900}
    ).json()
    assert api.post(f"/v1/payments/{voided['id']}/refund", headers=voider).status_code == 200
    settled = oak.made.first("payment")
    refund = api.post(f"/v1/payments/{settled}/refund", {"amount": 100}, headers=refunder)
    assert refund.status_code == 200, refund.text

    def history(payment_id: str) -> list[dict[str, str]]:
        answer = api.get(f"/v1/history/{payment_id}", params={"limit": 100})
        assert answer.status_code == 200
        return list(answer.json()["items"])

    void_events = [e for e in history(voided["id"]) if e["type"] == "PaymentVoided"]
    assert [e["actor_name"] for e in void_events] == ["Vera Void"]
    refunds = [e for e in history(settled) if e["type"] == "PaymentRefunded"]
    assert [e["actor_name"] for e in refunds][-1] == "Rob Refund"
    assert refunds[0]["actor_name"] != "Rob Refund"  # the scenario's refund, by its admin
    # The payment's own answer names them too.
    shown = api.get(f"/v1/payments/{voided['id']}").json()
    assert any(e.get("actor_name") == "Vera Void" for e in shown["history"]), shown


def second_admin(api: Api, name: str) -> dict[str, str]:
    made = api.post(f"/v1/practices/{api.practice_id}/users", {"name": name, "role": "admin"})
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['token']}"}


def test_a_page_that_does_not_exist_is_a_page_saying_so(oak: Office) -> None:
    """A browser asking for an unknown page gets a 404 page with the way back, signed in or
    not; the API and htmx keep their own answers."""
    web, _ = browser(oak.api, "admin@oak.example")
    html = {"Accept": "text/html,application/xhtml+xml"}
    for client in (web, TestClient(oak.api.client.app, base_url="http://127.0.0.1")):
        answer = client.get("/deposits", headers=html)
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"].startswith("text/html")
        assert "Page not found" in answer.text and "/deposits" in answer.text
        assert_security_headers(answer, "/deposits")
    assert "Oak Dental" in web.get("/deposits", headers=html).text, "the side bar names it"
    api = web.get("/v1/no-such-thing", headers=html)
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    fragment = web.get("/no-such-fragment", headers={**html, "HX-Request": "true"})
    assert fragment.headers["content-type"] == "application/problem+json"
