"""Two-step sign-in in the browser: an admin turns it on from their account page (the
code computed here from the key the page shows, as their phone would), saves the
recovery codes, signs in again with a code, and reads it all in the security log."""

from __future__ import annotations

import time

import pyotp

from domain.users import Role
from services.app import accounts
from tests.browser.conftest import PASSWORD, Browse

EMAIL = "two-step@browser.example"


def test_an_admin_turns_on_two_step_sign_in_and_signs_in_with_a_code(browse: Browse) -> None:
    server = browse.server
    accounts.invite_user(
        server.ctx,
        practice_id=server.practice_id,
        name="Jo Twostep",
        email=EMAIL,
        role=Role.ADMIN,
        password=PASSWORD,
        actor="operator",
    )
    browse.sign_in(EMAIL, PASSWORD)
    browse.page.click("text=Your account")
    browse.page.wait_for_load_state()
    assert browse.page.locator("h1").inner_text() == "Your account"
    browse.shot("account-off")

    browse.page.click("text=Set up two-step sign-in")
    browse.page.wait_for_load_state()
    assert browse.page.locator("#qr-code svg").count() == 1
    secret = browse.page.locator("#totp-secret").inner_text().strip()
    browse.shot("account-enrolment", full=True)
    app = pyotp.TOTP(secret)
    browse.page.fill("#confirm-code", app.now())
    browse.page.click("text=Turn on")
    browse.page.wait_for_load_state()
    codes = browse.page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    browse.shot("account-recovery-codes", full=True)
    browse.page.click("text=I have saved them")
    browse.page.wait_for_load_state()
    assert "since" in browse.page.locator("#two-factor").inner_text()
    assert secret not in browse.page.content()

    browse.page.click("text=Sign out")
    browse.page.wait_for_load_state()
    browse.sign_in(EMAIL, PASSWORD)
    assert "/signin/code" in browse.page.url
    browse.shot("signin-code")
    browse.problems.expect("401")
    browse.page.fill("#code", "000000")
    browse.page.click("button[type=submit]")
    browse.page.wait_for_load_state()
    assert "not right" in browse.page.locator("#signin-error").inner_text()
    # the step after the one that confirmed the enrolment (which is used)
    browse.page.fill("#code", app.at(time.time() + 30))
    browse.page.click("button[type=submit]")
    browse.page.wait_for_load_state()
    assert "/payments/transactions" in browse.page.url

    browse.page.click("text=Security log")
    browse.page.wait_for_load_state()
    kinds = browse.page.locator("#security-log tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)"
    )
    assert {"two-factor-enabled", "sign-in", "sign-in-failed"} <= set(kinds)
    browse.shot("security-log", full=True)
    browse.page.select_option("#kind", "sign-in-failed")
    browse.page.click("text=Show")
    browse.page.wait_for_load_state()
    rows = browse.page.locator("#security-log tbody tr")
    assert rows.count() >= 1
    assert "Jo Twostep" in rows.first.inner_text()
    for code in codes:
        assert code not in browse.page.content()

    browse.go("/settings")
    row = browse.page.locator(f'tr[data-user="{EMAIL}"]')
    assert "On" in row.locator("td.two-factor").inner_text()
    browse.shot("settings-two-step", full=True)
