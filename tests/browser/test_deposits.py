"""The Deposits tab as an office admin uses it: each deposit opens to the payments and
refunds in it, and they add up to the amount deposited; the chart; the CSV for the accountant."""

from __future__ import annotations

import re
from pathlib import Path

from tests.browser.conftest import Browse

MONEY = re.compile(r"^(-?)\$([\d,]+)\.(\d\d)$")


def cents(text: str) -> int:
    """'$1,234.50' -> 123450, '-$137.50' -> -13750, as the page shows them."""
    first = text.strip().splitlines()[0].strip()
    found = MONEY.match(first)
    assert found, f"not an amount: {text!r}"
    sign, whole, part = found.groups()
    value = int(whole.replace(",", "")) * 100 + int(part)
    return -value if sign else value


def test_a_deposit_opens_to_items_that_add_up_to_its_net(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/payments/deposits")
    deposits = browse.page.locator("#deposits tbody.deposit")
    assert deposits.count() > 1
    # the demo office has deposits with refunds in them: open one of those
    deposit = deposits.filter(has_text="refund").first
    shown_net = cents(deposit.locator("td.net").inner_text())
    gross = cents(deposit.locator("td.num").nth(0).inner_text())
    assert shown_net < gross  # refunds came off
    deposit.locator("button.expander").click()
    opened = browse.page.locator("#deposits tbody.deposit.open")
    opened.locator("tr.deposit-items").wait_for()
    assert opened.locator("button.expander").get_attribute("aria-expanded") == "true"
    nets = [cents(t) for t in opened.locator("td.item-net").all_inner_texts()]
    assert len(nets) >= 2
    assert any(n < 0 for n in nets)  # a refund is an item, taken off
    assert sum(nets) == shown_net
    assert cents(opened.locator("td.items-total-net").inner_text()) == shown_net
    assert "= net deposited" in opened.locator("tr.items-total").inner_text()
    browse.shot("deposit-open", full=True)
    opened.locator("button.expander").click()
    browse.page.locator("#deposits tbody.deposit.open").wait_for(state="detached")
    assert browse.page.locator("#deposits tr.deposit-items").count() == 0


def test_the_chart_draws_each_deposit_of_the_range(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/payments/deposits")
    chart = browse.page.locator("#deposits-chart svg")
    assert chart.is_visible()
    rows = browse.page.locator("#deposits tbody.deposit").count()
    assert chart.locator("rect.bar").count() == rows
    assert "deposits from" in (chart.locator("desc").text_content() or "")
    # a deposit scheduled but not yet paid is drawn (and listed) as scheduled
    scheduled = browse.page.locator("#deposits tbody.deposit", has_text="Scheduled").count()
    assert chart.locator("rect.bar.scheduled").count() == scheduled
    box = chart.bounding_box()
    assert box is not None and box["width"] > 800


def test_a_chosen_range_filters_the_list_and_the_chart(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/payments/deposits")
    first_date = browse.page.locator("input[name=from]").input_value()
    browse.page.fill("input[name=to]", first_date)
    browse.page.click("button:has-text('Apply')")
    browse.page.wait_for_load_state()
    assert browse.page.locator("input[name=to]").input_value() == first_date
    rows = browse.page.locator("#deposits tbody.deposit").count()
    if rows == 0:
        assert "nightly batch closes" in browse.page.inner_text("#deposits-empty")
    else:
        assert browse.page.locator("#deposits-chart rect.bar").count() == rows


def test_a_range_from_before_to_is_refused_with_a_sentence(browse: Browse) -> None:
    browse.problems.expect("422")
    browse.sign_in()
    browse.go("/payments/deposits?from=2026-11-20&to=2026-11-01")
    assert "is after" in browse.page.inner_text("#form-error")
    assert browse.page.locator("#deposits").is_visible()


def test_the_deposits_csv_downloads_with_its_header(browse: Browse, tmp_path: Path) -> None:
    browse.sign_in()
    browse.go("/payments/deposits")
    name, rows = browse.download_csv("#deposits-csv")
    assert name.startswith("deposits-")
    assert rows[0][:3] == ["deposit_id", "deposit_date", "status"]
    assert len(rows) > 1


def test_the_arrow_works_from_the_keyboard_and_at_tablet_width(browse: Browse) -> None:
    browse.page.set_viewport_size({"width": 768, "height": 1024})
    browse.sign_in()
    browse.go("/payments/deposits")
    first = browse.page.locator("#deposits tbody.deposit").first
    arrow_id = first.locator("button.expander").get_attribute("id")
    first.locator("button.expander").focus()
    browse.page.keyboard.press("Enter")
    browse.page.locator("#deposits tr.deposit-items").wait_for()
    # the swapped-in arrow keeps the focus, so Enter again closes the list
    assert browse.page.evaluate("document.activeElement.id") == arrow_id
    assert browse.page.locator(f"#{arrow_id}").get_attribute("aria-expanded") == "true"
    width = browse.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 768, f"the page scrolls sideways at tablet width ({width}px)"
    browse.shot("tablet-open", full=True)
    browse.page.keyboard.press("Enter")
    browse.page.locator("#deposits tr.deposit-items").wait_for(state="detached")


def test_a_withdrawal_hangs_below_the_zero_line_in_its_own_colour() -> None:
    from services.web.pages.deposits import chart
    from services.web.render import LocalTime

    def deposit(day: str, net: int, status: str = "paid") -> dict[str, object]:
        return {"id": day + status, "deposit_date": day, "net_amount": net, "status": status}

    items = [deposit("2026-11-02", 50000), deposit("2026-11-03", -12000)]
    items.append(deposit("2026-11-04", 30000, "scheduled"))
    drawn = chart(items, "2026-11-01", "2026-11-05", LocalTime("America/New_York"))
    paid, withdrawal, scheduled = drawn["bars"]
    assert paid.css == "bar" and paid.y + paid.height == drawn["zero"]
    assert withdrawal.css == "bar negative" and withdrawal.y == drawn["zero"]
    assert withdrawal.title == "$120.00 withdrawn on Nov 3, 2026"
    assert scheduled.css == "bar scheduled" and "scheduled for Nov 4" in scheduled.title
    assert paid.height > scheduled.height > 0 and withdrawal.height > 0
    assert drawn["has_withdrawal"] and drawn["ticks"][0].text.startswith("-$")
