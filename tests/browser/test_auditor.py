"""An auditor signs in and sees every payments page read-only: the views and their history,
no button or form that changes anything, no Settings; an action page or a sent form is
refused with a page that says why."""

from __future__ import annotations

from domain.users import Role
from tests.browser.conftest import PASSWORD, Browse
from tests.browser.test_settings import person


def changing_forms(browse: Browse) -> int:
    """Forms on the page that would change something (signing out changes nothing)."""
    return browse.page.locator("form[method=post]:not([action='/signout'])").count()


def test_an_auditor_sees_every_page_read_only(browse: Browse) -> None:
    email = person(browse, "Avery Auditor", Role.AUDITOR)
    browse.sign_in(email, PASSWORD)
    page = browse.page
    assert "/payments/transactions" in page.url
    assert "Auditor (read-only)" in page.locator(".who-role").inner_text()
    assert page.locator("#read-only-note").is_visible()
    assert page.locator("#collect-menu").count() == 0
    assert page.locator("nav.menu >> text=Settings").count() == 0
    rows = page.locator("#transaction-rows tr[data-id]")
    assert rows.count() > 0
    assert page.locator("#transaction-rows details.actions").count() == 0
    assert changing_forms(browse) == 0

    # One payment's details and history, without its action buttons.
    rows.first.locator("a", has_text="Details").click()
    page.wait_for_load_state()
    assert "/payments/transactions/" in page.url
    assert page.locator("a.button", has_text="Refund").count() == 0
    assert page.locator("a.button", has_text="Post to Ledger").count() == 0
    assert changing_forms(browse) == 0

    for tab, path in (
        ("Deposits", "/payments/deposits"),
        ("Payment requests", "/payments/requests"),
        ("Accounts receivable", "/payments/ar"),
    ):
        browse.go("/payments/transactions")
        page.click(f"nav.tabs >> text={tab}")
        page.wait_for_load_state()
        assert path in page.url
        assert page.locator("#read-only-note").is_visible()
        assert changing_forms(browse) == 0, tab
    assert page.locator("#ar-table").is_visible()
    # no box to select patients (the filters in the headers read, and may have boxes)
    assert page.locator("#ar-table input[type=checkbox]:not([form=ar-filter-form])").count() == 0
    assert page.locator("#save-filter").count() == 0

    # Deposits open to their items (a read).
    browse.go("/payments/deposits")
    expander = page.locator("button.expander").first
    expander.click()
    page.locator("tr.deposit-items").first.wait_for()

    page.click("nav.menu >> text=Practice status")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Practice status"
    assert page.locator("#daily-close").is_visible()
    assert changing_forms(browse) == 0


def test_an_auditor_is_refused_any_page_or_form_that_changes_something(browse: Browse) -> None:
    email = person(browse, "Blair Auditor", Role.AUDITOR)
    browse.sign_in(email, PASSWORD)
    browse.problems.expect("403")
    payment = browse.page.locator("#transaction-rows tr[data-id]").first.get_attribute("data-id")
    for path in (
        "/settings",
        "/payments/collect/virtual",
        f"/payments/transactions/{payment}/refund",
        f"/payments/transactions/{payment}/post",
    ):
        answer = browse.go(path)
        assert answer.status == 403, path
        assert browse.page.locator("#read-only h1").inner_text() == (
            "Auditors read, and change nothing"
        )
    # A form sent anyway, with the session's own CSRF token, is refused too.
    browse.go("/payments/transactions")
    status = browse.page.evaluate(
        """async (id) => {
            const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];
            const body = new URLSearchParams({csrf_token: token, amount: '1.00'});
            const path = `/payments/transactions/${id}/refund`;
            const answer = await fetch(path, {method: 'POST', body});
            return answer.status;
        }""",
        payment,
    )
    assert status == 403


def test_the_settings_page_offers_the_auditor_role(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/settings")
    options = browse.page.locator("#invite-form select[name=role] option")
    assert "auditor" in [options.nth(i).get_attribute("value") for i in range(options.count())]
