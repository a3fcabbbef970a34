"""Accounts receivable filters are set from the column headers (a funnel button in each
filterable column), not a separate form or panel; a filtered column is green in its header,
its cells and its button, the legend says so, and Clear filters clears them all."""

from __future__ import annotations

from tests.browser.conftest import Browse
from tests.browser.test_find_anything import shots

GREEN = "rgb(227, 245, 232)"


def filtered_columns(browse: Browse) -> list[str]:
    heads = browse.page.locator("#ar-table th.filtered")
    return [heads.nth(i).get_attribute("data-column") or "" for i in range(heads.count())]


def test_every_filterable_column_has_its_filter_in_its_header(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/payments/ar")
    assert browse.page.locator("#more-filters").count() == 0  # no "Filter every column" panel
    assert browse.page.locator("#ar-filter-form input:visible").count() == 0  # no form of fields
    columns = browse.page.locator("#ar-table th details.colfilter")
    names = {columns.nth(i).get_attribute("data-column") for i in range(columns.count())}
    assert names == {
        "patient", "total", "bal_0_30", "bal_31_60", "bal_61_90", "bal_over_90",
        "insurance_estimate", "patient_portion", "last_payment_date", "last_request",
        "snooze", "contact",
    }  # fmt: skip


def test_two_header_filters_are_green_together_and_clear_at_once(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/payments/ar")
    everyone = browse.page.locator("#ar-table tbody tr[data-id]").count()
    browse.page.click("#ar-table th[data-column=bal_0_30] summary.colfilter-button")
    browse.page.fill("#f-min_bal_0_30", "1")
    browse.shot("header-filter-open")
    browse.page.click("#ar-table th[data-column=bal_0_30] button:has-text('Apply')")
    browse.page.wait_for_load_state()
    browse.page.click("#ar-table th[data-column=contact] summary.colfilter-button")
    browse.page.select_option("#f-has_phone", "true")
    browse.page.click("#ar-table th[data-column=contact] button:has-text('Apply')")
    browse.page.wait_for_load_state()
    assert "min_bal_0_30=100" in browse.page.url and "has_phone=true" in browse.page.url
    assert sorted(filtered_columns(browse)) == ["bal_0_30", "contact"]
    for column in ("bal_0_30", "contact"):
        head = browse.page.locator(f"#ar-table th[data-column={column}]")
        assert head.evaluate("e => getComputedStyle(e).backgroundColor") == GREEN
        button = head.locator("summary.colfilter-button")
        assert button.evaluate("e => getComputedStyle(e).backgroundColor") == GREEN
    cell = browse.page.locator("#ar-table tbody tr[data-id] td.contact").first
    assert cell.evaluate("e => getComputedStyle(e).backgroundColor") == GREEN
    assert "Green: a filtered column" in browse.page.inner_text("#ar-filter-form .filter-legend")
    shots(browse, "ar-filtered")

    browse.page.click("#clear-filters")
    browse.page.wait_for_load_state()
    assert filtered_columns(browse) == []
    assert browse.page.locator("#ar-table tbody tr[data-id]").count() == everyone
    assert browse.page.locator("#clear-filters").count() == 0
