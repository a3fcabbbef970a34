"""The API docs work offline: Swagger UI with Authorize and "Try it out", and ReDoc."""

from __future__ import annotations

from tests.browser.conftest import Browse

TIMEOUT = 20_000


def test_swagger_authorize_then_try_it_out_answers_200(browse: Browse) -> None:
    page = browse.page
    browse.go("/docs")
    page.locator("button.authorize").first.wait_for(timeout=TIMEOUT)
    page.locator("button.authorize").first.click()
    dialog = page.locator(".modal-ux")
    dialog.wait_for()
    assert "HTTPBearer" in dialog.inner_text() or "Bearer" in dialog.inner_text()
    dialog.locator("input").first.fill(browse.server.admin_token)
    dialog.locator("button.modal-btn.auth.authorize").click()
    assert dialog.locator("button", has_text="Logout").count() >= 1
    dialog.locator("button.btn-done").click()
    dialog.wait_for(state="detached")

    operation = page.locator(
        ".opblock.opblock-get", has=page.locator('[data-path="/v1/transactions"]')
    ).first
    operation.locator(".opblock-summary").first.click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for(timeout=TIMEOUT)
    assert status.inner_text().strip() == "200"
    assert '"items"' in operation.locator(".live-responses-table .microlight").first.inner_text()
    operation.scroll_into_view_if_needed()
    browse.shot("swagger", full=False)


def test_swagger_without_authorize_shows_the_401(browse: Browse) -> None:
    """Without a token the same call says so (and the page itself stays without errors)."""
    browse.problems.expect("401")
    page = browse.page
    browse.go("/docs")
    operation = page.locator(
        ".opblock.opblock-get", has=page.locator('[data-path="/v1/transactions"]')
    ).first
    operation.wait_for(timeout=TIMEOUT)
    operation.locator(".opblock-summary").first.click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for(timeout=TIMEOUT)
    assert status.inner_text().strip().startswith("401")


def test_redoc_renders(browse: Browse) -> None:
    page = browse.page
    browse.go("/redoc")
    page.locator("h1").first.wait_for(timeout=TIMEOUT)
    assert "payledger" in page.locator("h1").first.inner_text().lower()
    menu = page.locator("[role=menuitem]", has_text="transactions")
    assert menu.count() >= 1
    page.get_by_text("/v1/transactions", exact=True).first.wait_for(
        state="attached", timeout=TIMEOUT
    )
    browse.shot("redoc")
