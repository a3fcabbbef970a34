"""Finding a payment on the Transactions tab: a search by name, amount or card, date presets,
totals of the whole list, filters set from the column headers (green when on), the
unassociated filter that says what lies outside its dates, and receipts on hover."""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser.conftest import Browse
from tests.browser.test_transactions import collect_by_card

SIZES = {"wide": (1280, 800), "tablet": (768, 1024), "phone": (390, 844)}


def api_get(browse: Browse, path: str, **params: Any) -> Any:
    response = httpx.get(
        browse.server.url + path,
        params=params,
        headers={"Authorization": f"Bearer {browse.server.admin_token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def totals_on_page(browse: Browse) -> list[str]:
    cells = browse.page.locator("#tx-totals strong")
    return [cells.nth(i).inner_text().strip() for i in range(cells.count())]


def shots(browse: Browse, name: str, *, fits_phone: str = "") -> None:
    """Screenshots at the three widths; `fits_phone`: an element (the part this change
    made) that must end inside the 390 px screen (the page's own shell, tabs and list at
    390 px are the phone layout's change)."""
    for size, (width, height) in SIZES.items():
        browse.page.set_viewport_size({"width": width, "height": height})
        browse.shot(f"{name}-{size}", full=size != "phone")
        if size == "phone" and fits_phone:
            box = browse.page.locator(fits_phone).bounding_box()
            assert box is not None and box["x"] + box["width"] <= 390, box
    browse.page.set_viewport_size({"width": 1280, "height": 800})


def test_a_search_finds_by_amount_and_card_and_the_totals_cover_the_list(browse: Browse) -> None:
    browse.sign_in()
    collect_by_card(browse, "731.17")
    browse.page.fill("#tx-q", "731.17")
    browse.page.click("#tx-filters button:has-text('Search')")
    rows = browse.page.locator("#transactions tbody tr")
    assert rows.count() == 1 and "$731.17" in rows.first.inner_text()
    assert totals_on_page(browse)[:2] == ["1", "$731.17"]
    browse.page.fill("#tx-q", "731")  # whole dollars find it too? no: $731.00 is another amount
    browse.page.click("#tx-filters button:has-text('Search')")
    assert "$731.17" not in browse.page.inner_text("#transactions")

    # every card of the demo is the sandbox's Visa ending 4242: the totals are the API's,
    # for every page of the list (not the 50 rows shown)
    browse.page.fill("#tx-q", "4242")
    browse.page.click("#tx-filters button:has-text('Search')")
    expected = api_get(browse, "/v1/transactions/totals", q="4242")
    count, collected, refunded, net = totals_on_page(browse)
    assert int(count) == expected["count"] > 0
    assert collected == f"${expected['collected_amount'] / 100:,.2f}"
    assert refunded == f"${expected['refunded_amount'] / 100:,.2f}"
    assert net == f"${expected['net_amount'] / 100:,.2f}"
    assert "matching “4242”" in browse.page.inner_text("#tx-range")
    shots(browse, "search")


def test_a_search_by_patient_name_and_a_date_preset(browse: Browse) -> None:
    browse.sign_in()
    first = api_get(browse, "/v1/transactions", limit=100)["items"]
    named = next(t for t in first if t["patient_name"])
    last_name = named["patient_name"].split()[-1]
    browse.go("/payments/transactions")
    browse.page.fill("#tx-q", last_name.lower())
    browse.page.click("#tx-filters button:has-text('Search')")
    names = browse.page.locator("#transactions tbody tr td:nth-child(2)")
    assert names.count() > 0
    assert all(last_name in names.nth(i).inner_text() for i in range(names.count()))

    browse.page.click(".presets a:has-text('Last month')")
    browse.page.wait_for_load_state()
    assert "period=last_month" in browse.page.url
    assert browse.page.input_value("#tx-q") == last_name.lower()  # the search stays
    expected = api_get(browse, "/v1/transactions", period="last_month", q=last_name)
    shown = browse.page.inner_text("#tx-range")
    assert expected["from"][:4] in shown
    assert browse.page.locator(".presets a.on").inner_text() == "Last month"
    browse.page.click(".presets a:has-text('Today')")
    assert browse.page.locator(".presets a.on").inner_text() == "Today"
    browse.page.click("#clear-filters")
    assert browse.page.input_value("#tx-q") == ""
    assert browse.page.locator(".presets a.on").count() == 0


def test_column_filters_are_set_in_their_headers_and_shown_green(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/payments/transactions")
    assert browse.page.locator("th.filtered").count() == 0
    assert browse.page.locator("form.filters").count() == 0  # no separate filter form
    browse.page.click("th[data-column=status] summary")
    browse.page.select_option("th[data-column=status] select[name=status]", "declined")
    browse.shot("status-filter-open")
    browse.page.click("th[data-column=status] button:has-text('Apply')")
    browse.page.wait_for_load_state()
    status_head = browse.page.locator("th[data-column=status]")
    assert "filtered" in (status_head.get_attribute("class") or "")
    green = status_head.evaluate("e => getComputedStyle(e).backgroundColor")
    assert green == "rgb(227, 245, 232)"  # the one green of every filtered column
    assert "Green: a filtered column" in browse.page.inner_text(".filter-legend")
    statuses = browse.page.locator("#transactions tbody tr .pill-declined")
    assert statuses.count() == browse.page.locator("#transactions tbody tr[data-id]").count()

    # a second column's filter keeps the first
    browse.page.click("th[data-column=pms] summary")
    browse.page.select_option("th[data-column=pms] select[name=association]", "not_applicable")
    browse.page.click("th[data-column=pms] button:has-text('Apply')")
    browse.page.wait_for_load_state()
    assert browse.page.locator("th.filtered").count() == 2
    shots(browse, "column-filters")
    browse.page.click("#clear-filters")
    browse.page.wait_for_load_state()
    assert browse.page.locator("th.filtered").count() == 0
    assert browse.page.locator("#clear-filters").count() == 0


def test_the_unassociated_filter_says_what_lies_before_its_dates(browse: Browse) -> None:
    browse.sign_in()
    summary = api_get(browse, "/v1/transactions/unassociated-count")
    browse.go("/payments/transactions?association=unassociated")
    in_range = api_get(browse, "/v1/transactions/totals", association="unassociated")
    listed = int(totals_on_page(browse)[0])
    assert listed == in_range["count"]
    if summary["transactions"] > listed:  # the demo has older ones: the page says so
        note = browse.page.inner_text("#outside-range")
        assert f"{summary['transactions'] - listed} more unassociated" in note
        browse.shot("outside-range")
        browse.page.click("#outside-range a:has-text('Show all')")
        browse.page.wait_for_load_state()
        assert int(totals_on_page(browse)[0]) == summary["transactions"]
        assert "more unassociated" not in browse.page.inner_text("#outside-range")
    else:
        assert "more unassociated" not in browse.page.inner_text("#outside-range")
    # the badge's figure is explained beside the list, as entries over all dates
    explained = browse.page.inner_text("#badge-explained")
    assert f"The badge ({summary['count']}) counts every entry" in explained
    assert f"{summary['transactions']} transaction" in explained


def test_a_receipt_opens_on_hover_and_focus_and_says_approved(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/payments/transactions?status=settled")
    row = browse.page.locator("#transactions tbody tr[data-id]").first
    receipt = row.locator("details.receipt")
    receipt.locator("summary").hover()
    body = receipt.locator(".popover-body")
    body.wait_for(state="visible")
    assert "Approved" in body.inner_text() and "Settled" not in body.inner_text()
    browse.shot("receipt-hover")
    browse.page.mouse.move(5, 5)
    body.wait_for(state="hidden")
    receipt.locator("summary").focus()  # by keyboard
    body.wait_for(state="visible")
    browse.page.keyboard.press("Escape")
    body.wait_for(state="hidden")
    receipt.locator("summary").click()  # a click keeps it open when the pointer leaves
    browse.page.mouse.move(5, 5)
    assert body.is_visible()


def test_a_declined_payment_has_its_receipt_with_the_reason(browse: Browse) -> None:
    browse.problems.expect("402")
    browse.sign_in()
    collect_by_card(browse, "64.20", card="4000000000009995")
    browse.go("/payments/transactions?status=declined")
    row = browse.page.locator("#transactions tbody tr", has_text="$64.20").first
    row.locator("details.receipt summary").hover()
    body = row.locator("details.receipt .popover-body")
    body.wait_for(state="visible")
    text = body.inner_text()
    assert "Declined" in text and "insufficient funds" in text.lower()
    row.locator("a:has-text('Open, print or send')").click()
    browse.page.wait_for_load_state()
    panel = browse.page.inner_text("#receipt-panel")
    assert "Declined" in panel and "insufficient funds" in panel.lower()
    shots(browse, "declined-receipt")
