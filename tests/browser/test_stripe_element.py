"""The pay page with Stripe on, in Chromium: Stripe's Payment Element container under the
Stripe policy, no card field of ours, and, when Stripe.js cannot load (blocked here, as
it cannot be reached), a sentence saying the card form could not load."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from domain.practices import DepositAccount, PmsKind
from domain.requests import Channel
from domain.schedule import DEFAULT_CUTOFF
from services.app.practices import connect_stripe_account, create_practice, register_patient
from services.app.requests import pay_url, send_request
from services.asgi import create_app
from services.bootstrap import build_components
from services.settings import Settings
from tests.browser.conftest import free_port
from tests.fakes.opendental import Served
from tests.fakes.stripe import FakeStripe

PUBLISHABLE = "pk_test_payledger_browser"


@pytest.fixture
def stripe_pay_page(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A server processing on the Stripe fake; the URL of an open pay page, and the practice's
    connected account."""
    fake = FakeStripe()
    with Served(fake.app) as stripe_base:
        port = free_port()
        ctx = build_components(
            Settings(
                data_dir=tmp_path / "var",
                operator_token="browser-operator",
                base_url=f"http://127.0.0.1:{port}",
                run_scheduler=False,
                processor="stripe",
                stripe_secret_key=fake.secret_key,
                stripe_webhook_secret="whsec_browser",
                stripe_api_base=stripe_base,
                stripe_publishable_key=PUBLISHABLE,
            )
        )
        account = fake.add_account()
        practice = create_practice(
            ctx,
            name="Elm Dental",
            timezone="America/New_York",
            pms=PmsKind.OPENDENTAL,
            auto_writeback=False,
            deposit_account=DepositAccount("Checking", "6789"),
            batch_cutoff=DEFAULT_CUTOFF,
            actor="operator",
        )
        connect_stripe_account(ctx, practice.id, account, "operator")
        patient = register_patient(
            ctx,
            practice_id=practice.id,
            pms_patient_id="77",
            first_name="Rosa",
            last_name="Diaz",
            email="rosa@example.com",
            phone=None,
            guarantor_id=None,
            actor="operator",
        )
        sent = send_request(
            ctx,
            practice_id=practice.id,
            patient_id=patient.id,
            amount=8000,
            channel=Channel.EMAIL,
            actor="operator",
        )
        server = uvicorn.Server(
            uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        try:
            yield pay_url(ctx, sent), account
        finally:
            server.should_exit = True
            thread.join(10)
            ctx.store.close()


def test_the_pay_page_says_when_stripes_card_form_cannot_load(
    browser: Any, stripe_pay_page: tuple[str, str], tmp_path: Path
) -> None:
    url, account = stripe_pay_page
    context = browser.new_context()
    page = context.new_page()
    blocked: list[str] = []
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    def block(route: Any) -> None:
        blocked.append(route.request.url)
        route.abort()

    page.route("https://js.stripe.com/**", block)
    answer = page.goto(url)
    assert answer is not None and answer.status == 200
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self' https://js.stripe.com" in policy
    assert "frame-src https://js.stripe.com" in policy
    assert blocked == ["https://js.stripe.com/v3/"]
    box = page.locator("#payment-element")
    assert box.count() == 1
    assert box.get_attribute("data-account") == account
    assert page.locator("input[name=card_number]").count() == 0
    assert page.locator("input[name=cvc]").count() == 0
    problem = page.locator("#card-form-problem")
    problem.wait_for(state="visible", timeout=5000)
    text = problem.inner_text()
    assert text.startswith("The card form could not load")
    assert text.endswith(".")
    assert page.locator("button[type=submit]").is_disabled()
    assert errors == []
    page.screenshot(path=str(tmp_path / "stripe-element-blocked.png"))
    context.close()
