"""Settings: inviting people, changing their role, revoking them, payments settings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import time
from typing import Any
from uuid import UUID

from domain.practices import DepositAccount, PmsKind
from domain.users import Role
from services.app import accounts
from services.app.practices import connect_stripe_account, create_practice
from tests.browser.conftest import PASSWORD, Browse


def new_email(who: str) -> str:
    return f"{who}-{secrets.token_hex(4)}@browser.example"


@dataclass(frozen=True)
class Office:
    """A practice of its own, for a test that changes what other tests would see."""

    id: UUID
    email: str
    token: str


def new_office(
    browse: Browse, name: str, *, auto_writeback: bool = False, pms: PmsKind = PmsKind.OPENDENTAL
) -> Office:
    ctx = browse.server.ctx
    practice = create_practice(
        ctx,
        name=name,
        timezone="America/Chicago",
        pms=pms,
        auto_writeback=auto_writeback,
        deposit_account=DepositAccount("Checking", "4321"),
        batch_cutoff=time(17, 0),
        actor="operator",
        key=secrets.token_hex(8),
    )
    email = new_email("owner")
    _, token = accounts.invite_user(
        ctx,
        practice_id=practice.id,
        name="Alex Owner",
        email=email,
        role=Role.ADMIN,
        password=PASSWORD,
        actor="operator",
    )
    return Office(practice.id, email, token)


def person(browse: Browse, name: str, role: Role) -> str:
    """A person of the demo practice who signs in; returns their email."""
    email = new_email(name.split()[0].lower())
    accounts.invite_user(
        browse.server.ctx,
        practice_id=browse.server.practice_id,
        name=name,
        email=email,
        role=role,
        password=PASSWORD,
        actor="operator",
    )
    return email


def second_context(browse: Browse, email: str) -> Any:
    """Another browser (its own cookies) signed in as `email`."""
    context = browse.page.context.browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(browse.server.url + "/signin")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return context, page


def row(browse: Browse, email: str) -> Any:
    return browse.page.locator(f'#users tr[data-user="{email}"]')


def test_an_admin_invites_a_person_who_then_signs_in(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/settings")
    assert browse.page.locator("h1").inner_text() == "Settings"
    assert "At least 10 characters" in browse.page.locator("#password-rules").inner_text()
    email = new_email("lee")
    browse.page.fill("#invite-name", "Lee Hygienist")
    browse.page.fill("#invite-email", email)
    browse.page.select_option("#invite-role", "admin")
    browse.page.fill("#invite-password", "a-first-password-1")
    browse.page.click("#invite-form button[type=submit]")
    browse.page.wait_for_load_state()
    panel = browse.page.locator("#invited")
    assert "Lee Hygienist is invited" in panel.inner_text()
    token = browse.page.input_value("#invited-token")
    assert token.startswith("plt_")
    assert "Active" in row(browse, email).inner_text()
    browse.shot("invited", full=True)

    answer = browse.page.request.get(
        browse.server.url + "/v1/transactions", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status == 200

    context = browse.page.context.browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(browse.server.url + "/signin")
        page.fill("#email", email)
        page.fill("#password", "a-first-password-1")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert "/payments/transactions" in page.url
        assert "Lee Hygienist" in page.locator(".who-name").inner_text()
    finally:
        context.close()


def test_an_invite_with_a_short_password_says_what_to_fix(browse: Browse) -> None:
    browse.problems.expect("422")
    browse.sign_in()
    browse.go("/settings")
    email = new_email("short")
    browse.page.fill("#invite-name", "Short Password")
    browse.page.fill("#invite-email", email)
    browse.page.eval_on_selector("#invite-password", "el => el.removeAttribute('minlength')")
    browse.page.fill("#invite-password", "short")
    browse.page.click("#invite-form button[type=submit]")
    browse.page.wait_for_load_state()
    assert "at least 10 characters" in browse.page.locator("#form-error").inner_text()
    assert browse.page.input_value("#invite-email") == email
    assert row(browse, email).count() == 0


def test_an_admin_changes_a_role(browse: Browse) -> None:
    email = person(browse, "Kim Staff", Role.STAFF)
    browse.sign_in()
    browse.go("/settings")
    assert row(browse, email).locator("select").input_value() == "staff"
    row(browse, email).locator("select").select_option("admin")
    row(browse, email).locator("button", has_text="Change role").click()
    browse.page.wait_for_load_state()
    assert "Kim Staff is now admin." in browse.page.locator("#notice").inner_text()
    assert row(browse, email).locator("select").input_value() == "admin"


def test_a_revoked_persons_open_session_stops_at_once(browse: Browse) -> None:
    email = person(browse, "Pat Leaving", Role.ADMIN)
    context, theirs = second_context(browse, email)
    try:
        assert "/payments/transactions" in theirs.url
        browse.sign_in()
        browse.go("/settings")
        asked: list[str] = []

        def accept(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.accept()

        browse.page.on("dialog", accept)
        row(browse, email).locator("button", has_text="Revoke").click()
        browse.page.wait_for_load_state()
        assert asked and "Revoke Pat Leaving?" in asked[0]
        assert "Pat Leaving was revoked" in browse.page.locator("#notice").inner_text()
        assert "Revoked" in row(browse, email).inner_text()
        assert row(browse, email).locator("button", has_text="Revoke").count() == 0
        browse.shot("revoked", full=True)

        theirs.goto(browse.server.url + "/payments/transactions")
        assert "/signin" in theirs.url
    finally:
        context.close()


def test_a_revoke_waits_for_the_confirmation(browse: Browse) -> None:
    email = person(browse, "Jo Staying", Role.STAFF)
    browse.sign_in()
    browse.go("/settings")
    browse.page.on("dialog", lambda dialog: dialog.dismiss())
    row(browse, email).locator("button", has_text="Revoke").click()
    browse.page.wait_for_timeout(300)
    assert "Active" in row(browse, email).inner_text()


def test_the_payments_settings_are_saved_and_keys_stay_masked(browse: Browse) -> None:
    office = new_office(browse, "Settings Test Dental")
    browse.sign_in(office.email)
    browse.go("/settings")
    assert browse.page.input_value("#batch_cutoff") == "17:00"
    browse.page.fill("#batch_cutoff", "18:30")
    browse.page.check("#auto_writeback")
    browse.page.fill("#pms_payment_type", "391")
    browse.page.fill("#reminder_days", "2, 9")
    browse.page.fill("#od_base_url", "https://od.example/api/v1")
    browse.page.fill("#od_developer_key", "dev-key-secret-1234")
    browse.page.fill("#od_customer_key", "cust-key-secret-5678")
    browse.page.click("#settings-form button[type=submit]")
    browse.page.wait_for_load_state()
    assert "saved" in browse.page.locator("#notice").inner_text()
    assert browse.page.input_value("#batch_cutoff") == "18:30"
    assert browse.page.is_checked("#auto_writeback")
    assert browse.page.input_value("#pms_payment_type") == "391"
    assert browse.page.input_value("#reminder_days") == "2, 9"
    assert browse.page.input_value("#od_developer_key") == ""
    html = browse.page.content()
    assert "dev-key-secret-1234" not in html and "cust-key-secret-5678" not in html
    assert "****1234" in html and "****5678" in html
    browse.shot("settings", full=True)

    answer = browse.page.request.get(
        f"{browse.server.url}/v1/practices/{office.id}",
        headers={"Authorization": f"Bearer {office.token}"},
    ).json()
    assert answer["batch_cutoff"] == "18:30" and answer["auto_writeback"] is True
    assert answer["reminder_days"] == [2, 9] and answer["pms_payment_type"] == "391"
    assert answer["connection"]["opendental"]["base_url"] == "https://od.example/api/v1"

    browse.page.fill("#pms_payment_type", "")
    browse.page.fill("#reminder_days", "")
    browse.page.click("#settings-form button[type=submit]")
    browse.page.wait_for_load_state()
    assert browse.page.input_value("#reminder_days") == ""
    assert "****1234" in browse.page.content()


def test_only_one_pms_key_typed_is_refused(browse: Browse) -> None:
    browse.problems.expect("422")
    browse.sign_in()
    browse.go("/settings")
    browse.page.fill("#od_base_url", "https://od.example/api/v1")
    browse.page.fill("#od_developer_key", "only-one-key")
    browse.page.click("#settings-form button[type=submit]")
    browse.page.wait_for_load_state()
    assert "type its base URL, developer key and customer key" in (
        browse.page.locator("#form-error").inner_text()
    )


def test_an_admin_sets_a_new_password_for_someone_who_forgot_theirs(browse: Browse) -> None:
    email = person(browse, "Pat Forgetful", Role.STAFF)
    browse.sign_in()
    browse.go("/settings")
    row(browse, email).locator("summary", has_text="Set password").click()
    row(browse, email).locator("input[name=password]").fill("a-brand-new-password")
    row(browse, email).locator("button", has_text="Set password").click()
    browse.page.wait_for_load_state()
    assert "Pat Forgetful has a new password" in browse.page.locator("#notice").inner_text()
    login = browse.server.ctx
    assert accounts.sign_in(login, email, "a-brand-new-password", "127.0.0.2").token


def test_the_stripe_account_is_shown_and_says_who_connects_it(browse: Browse) -> None:
    office = new_office(browse, "Stripe Shown Dental")
    connect_stripe_account(browse.server.ctx, office.id, "acct_1ShownInSettings", "operator")
    browse.sign_in(office.email)
    browse.go("/settings")
    shown = browse.page.locator("#stripe-account").inner_text()
    assert "acct_1ShownInSettings" in shown
    assert "operator connects it" in shown and "Stripe Connect" in shown
    # read only: the form has no field for it, and saving the form keeps it
    assert browse.page.locator("#settings-form input[name*=stripe]").count() == 0
    browse.page.click("#settings-form button[type=submit]")
    browse.page.wait_for_load_state()
    assert "saved" in browse.page.locator("#notice").inner_text()
    assert "acct_1ShownInSettings" in browse.page.locator("#stripe-account").inner_text()
