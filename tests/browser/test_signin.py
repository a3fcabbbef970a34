"""Signing in and out, as an office admin and as a staff member."""

from __future__ import annotations

from tests.browser.conftest import PASSWORD, STAFF_EMAIL, Browse


def test_an_admin_signs_in_and_sees_the_transactions(browse: Browse) -> None:
    browse.go("/")
    assert browse.page.url.endswith("/signin")
    browse.sign_in()
    assert "/payments/transactions" in browse.page.url
    assert browse.page.locator("h1").inner_text() == "Payments"
    assert browse.page.locator("#transactions tbody tr").count() > 1
    browse.shot("transactions")


def test_a_wrong_password_is_refused(browse: Browse) -> None:
    browse.problems.expect("401")
    browse.sign_in(password="not-the-password")
    assert "/signin" in browse.page.url
    assert "not right" in browse.page.locator("#signin-error").inner_text()
    browse.go("/payments/transactions")
    assert "/signin" in browse.page.url


def test_sign_out_ends_the_session(browse: Browse) -> None:
    browse.sign_in()
    browse.page.click("text=Sign out")
    browse.page.wait_for_load_state()
    assert "/signin" in browse.page.url
    browse.go("/payments/transactions")
    assert "/signin" in browse.page.url


def test_a_staff_member_sees_that_payments_is_for_admins(browse: Browse) -> None:
    browse.problems.expect("403")
    browse.sign_in(STAFF_EMAIL, PASSWORD)
    assert browse.page.locator("#admins-only h1").inner_text() == (
        "Payments is available to admins"
    )
