"""The Accounts receivable tab as an office admin uses it: filters on the columns, the filter
library, bulk payment requests with their per-patient outcome, snoozes, the aging chart.
The demo office is shared by the session, so each test makes what it needs and puts back
what it changed."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.browser.conftest import Browse

BUCKETS = ("bal_0_30", "bal_31_60", "bal_61_90", "bal_over_90")


def cents(text: str) -> int:
    """'$1,234.50' or '-$12.00' as cents."""
    match = re.search(r"(-?)\$([\d,]+)\.(\d\d)", text)
    assert match, f"no amount in {text!r}"
    value = int(match.group(2).replace(",", "")) * 100 + int(match.group(3))
    return -value if match.group(1) else value


def rows(browse: Browse) -> Any:
    return browse.page.locator("#ar-table tbody tr[data-id]")


def accept_dialogs(browse: Browse) -> None:
    browse.page.on("dialog", lambda dialog: dialog.accept())


def test_a_minimum_balance_filters_the_list_with_a_chip_and_a_highlighted_column(
    browse: Browse,
) -> None:
    browse.sign_in()
    browse.go("/payments/ar")
    everyone = rows(browse).count()
    assert everyone >= 3
    browse.page.click("#ar-table th[data-column=total] summary.colfilter-button")
    browse.page.fill("#f-min_total", "300")
    browse.page.click("#ar-table th[data-column=total] button:has-text('Apply')")
    browse.page.wait_for_load_state()
    assert "min_total=30000" in browse.page.url  # the API's name and unit (cents)
    chips = browse.page.locator("#ar-chips .chip")
    assert chips.count() == 1
    assert "Balance at least $300.00" in chips.first.inner_text()
    assert "filtered" in (
        browse.page.get_attribute("#ar-table th[data-column=total]", "class") or ""
    )
    assert "filtered" not in (
        browse.page.get_attribute("#ar-table th[data-column=bal_0_30]", "class") or ""
    )
    assert browse.page.input_value("#f-min_total") == "300.00"
    found = rows(browse)
    assert 0 < found.count() < everyone
    for i in range(found.count()):
        assert cents(found.nth(i).locator("td.balance strong").inner_text()) >= 30000
    browse.shot("filtered")
    chips.first.locator("a").click()
    browse.page.wait_for_load_state()
    assert "min_total" not in browse.page.url
    assert rows(browse).count() == everyone


def test_the_filter_form_refuses_an_amount_that_is_not_dollars(browse: Browse) -> None:
    browse.problems.expect("422")
    browse.sign_in()
    browse.go("/payments/ar")
    browse.page.click("#ar-table th[data-column=total] summary.colfilter-button")
    browse.page.fill("#f-min_total", "lots")
    browse.page.click("#ar-table th[data-column=total] button:has-text('Apply')")
    browse.page.wait_for_load_state()
    assert "minimum balance in dollars" in browse.page.inner_text("#form-error")
    assert browse.page.input_value("#f-min_total") == "lots"


def test_a_filter_is_saved_applied_from_the_library_and_deleted(browse: Browse) -> None:
    accept_dialogs(browse)
    name = f"Phones over $100 {uuid.uuid4().hex[:6]}"
    browse.sign_in()
    browse.go("/payments/ar?min_total=10000&has_phone=true")
    assert browse.page.locator("#ar-chips .chip").count() == 2
    browse.page.fill("#filter-name", name)
    browse.page.click("#save-filter button:has-text('Save')")
    browse.page.wait_for_load_state()
    assert f"Saved the filter “{name}”" in browse.page.inner_text("#notice")
    saved = browse.page.locator("#filter-library li.saved-filter", has_text=name)
    assert saved.count() == 1

    browse.go("/payments/ar")
    assert browse.page.locator("#ar-chips .chip").count() == 0
    browse.page.locator("#filter-library a", has_text=name).click()
    browse.page.wait_for_load_state()
    assert "min_total=10000" in browse.page.url and "has_phone=true" in browse.page.url
    chips = browse.page.inner_text("#ar-chips")
    assert "Balance at least $100.00" in chips and "Has a phone number" in chips
    current = browse.page.locator("#filter-library li.saved-filter.current")
    assert name in current.inner_text()
    browse.shot("library")

    current.locator("button:has-text('Delete')").click()
    browse.page.wait_for_load_state()
    assert f"Deleted the saved filter “{name}”" in browse.page.inner_text("#notice")
    assert browse.page.locator("#filter-library li.saved-filter", has_text=name).count() == 0
    assert "min_total=10000" in browse.page.url  # the list keeps its filter


def test_bulk_request_to_everyone_matching_the_filter_says_per_patient_what_happened(
    browse: Browse,
) -> None:
    accept_dialogs(browse)
    browse.sign_in()
    browse.go("/payments/transactions")
    browse.page.click("summary:has-text('Collect payment')")
    browse.page.click("text=Bulk payment request (from Accounts receivable)")
    browse.page.wait_for_load_state()
    assert browse.page.locator("#bulk-panel").get_attribute("open") is not None
    assert "Bulk payment request" in browse.page.inner_text("#bulk-explain")

    browse.go("/payments/ar?min_total=10000&bulk=1")
    matching = {
        rows(browse).nth(i).get_attribute("data-id"): rows(browse).nth(i)
        for i in range(rows(browse).count())
    }
    on_plan = [
        pid
        for pid, row in matching.items()
        if "Payment plan" in row.locator("td.patient").inner_text()
    ]
    assert matching and on_plan, "the demo has a family on a payment plan with a balance"
    browse.page.check("input[name=scope][value=filter]")
    browse.page.fill("#bulk-min", "50")
    browse.shot("bulk-panel")
    browse.page.click("#bulk-send-button")
    browse.page.wait_for_load_state()

    heading = browse.page.inner_text("#bulk-result h2")
    outcomes = browse.page.locator("#bulk-results tbody tr")
    assert {outcomes.nth(i).get_attribute("data-id") for i in range(outcomes.count())} == set(
        matching
    )
    sent = browse.page.locator("#bulk-results tr.outcome-sent")
    skipped = browse.page.locator("#bulk-results tr.outcome-skipped")
    assert f"{sent.count()} sent, {skipped.count()} skipped" in heading
    assert sent.count() >= 1
    for i in range(sent.count()):
        assert cents(sent.nth(i).locator("td.num").inner_text()) >= 5000
        assert sent.nth(i).locator("td.why").inner_text().strip() == ""
    for i in range(skipped.count()):
        assert len(skipped.nth(i).locator("td.why").inner_text().strip()) > 10  # in words
    plan_row = browse.page.locator(f"#bulk-results tr[data-id='{on_plan[0]}']")
    assert "Skipped" in plan_row.inner_text()
    assert "payment plan" in plan_row.locator("td.why").inner_text()
    browse.shot("bulk-result")

    someone = sent.first.get_attribute("data-id")
    amount = sent.first.locator("td.num").inner_text()
    browse.page.click("text=Back to accounts receivable")
    browse.page.wait_for_load_state()
    request = browse.page.locator(f"#ar-table tr[data-id='{someone}'] td.last-request")
    assert "Requested" in request.inner_text() and amount in request.inner_text()


def test_bulk_request_to_ticked_patients_only(browse: Browse) -> None:
    accept_dialogs(browse)
    browse.sign_in()
    browse.go("/payments/ar?has_phone=true")
    assert rows(browse).count() >= 2
    picked = [rows(browse).nth(i).get_attribute("data-id") for i in range(2)]
    for pid in picked:
        browse.page.check(f"#ar-table input[name=patient_ids][value='{pid}']")
    assert browse.page.inner_text("[data-selected-count]") == "2"
    browse.page.click("#bulk-panel summary")
    browse.page.select_option("#bulk-channel", "sms")
    browse.page.click("#bulk-send-button")
    browse.page.wait_for_load_state()
    outcomes = browse.page.locator("#bulk-results tbody tr")
    assert sorted(outcomes.nth(i).get_attribute("data-id") or "" for i in range(2)) == sorted(
        p or "" for p in picked
    )
    assert outcomes.count() == 2
    for i in range(2):
        row = outcomes.nth(i)
        assert "Sent" in row.inner_text() or row.locator("td.why").inner_text().strip()
        if "Sent" in row.inner_text():
            assert "Text" in row.inner_text()


def test_bulk_request_without_a_selection_says_what_to_do(browse: Browse) -> None:
    browse.problems.expect("422")
    accept_dialogs(browse)
    browse.sign_in()
    browse.go("/payments/ar?bulk=1")
    browse.page.click("#bulk-send-button")
    browse.page.wait_for_load_state()
    assert "Select the patients" in browse.page.inner_text("#form-error")
    assert browse.page.locator("#bulk-panel").get_attribute("open") is not None


def test_a_patient_is_snoozed_then_the_snooze_is_ended(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/payments/ar?snoozed=false")
    row = rows(browse).first
    pid = row.get_attribute("data-id")
    who = row.locator("td.patient .pname").inner_text()
    row.locator("input[name=patient_ids]").check()
    browse.page.click("#bulk-panel summary")
    browse.page.select_option("#snooze-reason", "adjustment_pending")
    browse.page.fill("#snooze-note", "Waiting on the write-off")
    browse.page.click("#snooze-button")
    browse.page.wait_for_load_state()
    notice = browse.page.inner_text("#notice")
    last, first = who.split(", ")
    assert f"{first} {last} is snoozed until" in notice and "adjustment pending" in notice
    assert browse.page.locator(f"#ar-table tr[data-id='{pid}']").count() == 0  # not snoozed=false

    browse.go("/payments/ar?snoozed=true")
    snoozed = browse.page.locator(f"#ar-table tr[data-id='{pid}']")
    assert "Snoozed" in snoozed.locator("td.snooze").inner_text()
    assert "Adjustment pending: Waiting on the write-off" in snoozed.inner_text()
    browse.shot("snoozed")
    snoozed.locator("td.snooze button:has-text('End snooze')").click()
    browse.page.wait_for_load_state()
    assert f"{first} {last} is no longer snoozed" in browse.page.inner_text("#notice")
    assert browse.page.locator(f"#ar-table tr[data-id='{pid}']").count() == 0


def test_the_aging_chart_sums_the_buckets_of_the_matching_rows(browse: Browse) -> None:
    browse.sign_in()
    for path in ("/payments/ar", "/payments/ar?min_bal_over_90=1"):
        browse.go(path)
        chart = browse.page.locator("#aging-chart svg")
        assert chart.locator("rect.bar").count() == 4
        found = rows(browse)
        for index, bucket in enumerate(BUCKETS):
            label = chart.locator(f"g[data-bucket={bucket}] text.value").text_content() or ""
            column = 3 + index  # pick, patient, balance, then the buckets
            expected = sum(
                cents(found.nth(i).locator("td").nth(column).inner_text())
                for i in range(found.count())
            )
            assert cents(label) == expected, (path, bucket)
        assert f"of the {found.count()} patient" in browse.page.inner_text(
            "#aging-chart figcaption"
        )


def test_the_tab_reads_at_tablet_width(browse: Browse) -> None:
    browse.sign_in()
    browse.page.set_viewport_size({"width": 768, "height": 1000})
    browse.go("/payments/ar?bulk=1&min_total=1")
    assert browse.page.locator("#aging-chart svg rect.bar").count() == 4
    assert browse.page.locator("#filter-library").is_visible()
    assert browse.page.locator("#bulk-send-button").is_visible()
    width = browse.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 768, "the page itself does not scroll sideways"
    browse.shot("tablet", full=True)

    # The list fits its box: no column is hidden past its right edge. The secondary
    # columns (last paid, last request, snooze, contact) read on a line under the name.
    box = browse.page.eval_on_selector(
        "#ar-table",
        "t => [t.closest('.table-wrap').scrollWidth, t.closest('.table-wrap').clientWidth]",
    )
    assert box[0] <= box[1] + 1, f"the AR list scrolls inside its box: {box}"
    first = rows(browse).first
    assert not first.locator("td.last-request").is_visible()
    assert not first.locator("td.contact").is_visible()
    details = first.locator(".ar-more")
    assert details.is_visible()
    text = details.inner_text()
    assert "Last paid" in text and "Last request" in text and "Contact" in text

    # On a laptop (1280) the last request, snooze and contact columns are back; only the
    # insurance estimate and last paid stay on the line (their filters in the Patient
    # header); the list fits its box.
    browse.page.set_viewport_size({"width": 1280, "height": 800})
    assert first.locator("td.last-request").is_visible()
    line = " ".join(details.inner_text().split())
    assert "Last paid" in line and "Ins. est." in line and "Last request" not in line, line
    header = browse.page.locator("#ar-table thead th[data-column='patient']")
    browse.page.wait_for_function(
        "() => document.querySelector(\"#ar-table thead th[data-column='patient'] "
        "details[data-column='last_payment_date']\")"
    )
    assert header.locator("summary[aria-label^='Filter by Last paid']").is_visible()
    box = browse.page.eval_on_selector(
        "#ar-table",
        "t => [t.closest('.table-wrap').scrollWidth, t.closest('.table-wrap').clientWidth]",
    )
    assert box[0] <= box[1] + 1, f"the AR list scrolls inside its box at 1280: {box}"
    # On a wide desktop every column is in its place and the line is gone
    browse.page.set_viewport_size({"width": 1600, "height": 900})
    assert not details.is_visible()


def test_stacked_rows_on_a_phone_are_labelled_with_the_column_names_alone(
    browse: Browse,
) -> None:
    browse.sign_in()
    browse.page.set_viewport_size({"width": 390, "height": 844})
    browse.go("/payments/ar")
    first = rows(browse).first
    labels = [
        first.locator("td").nth(i).get_attribute("data-label")
        for i in range(first.locator("td").count())
    ]
    # the words of a header's filter (its fields and help) are not part of the label
    assert labels[1:5] == ["Patient", "Balance", "0-30", "31-60"], labels
    assert "Last request" in labels and "Contact" in labels
    assert not any("filter" in (label or "").lower() for label in labels), labels


def test_the_pms_is_synced_from_the_page(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/payments/ar")
    browse.page.click("#ar-sync-now button")
    browse.page.wait_for_load_state()
    notice = browse.page.inner_text("#notice")
    assert notice.startswith("Sync with the PMS started") and "progress" in notice
    # the line reads its progress again while the sync runs, and stops once it ended
    browse.page.wait_for_selector("#ar-sync:not([data-poll])", timeout=30_000)
    line = browse.page.inner_text("#ar-sync")
    assert "last synced" in line and "patients read" in line


def test_on_a_tablet_the_dropped_columns_keep_their_filters_and_end_snooze(
    browse: Browse,
) -> None:
    """At 768 px last request, snooze and contact read on a line under the name: their
    filters sit in the Patient header, and a snooze can still be ended from the line."""
    browse.sign_in()
    browse.go("/payments/ar?snoozed=false")
    row = rows(browse).first
    pid = row.get_attribute("data-id")
    row.locator("input[name=patient_ids]").check()
    browse.page.click("#bulk-panel summary")
    browse.page.select_option("#snooze-reason", "adjustment_pending")
    browse.page.click("#snooze-button")
    browse.page.wait_for_load_state()

    browse.page.set_viewport_size({"width": 768, "height": 1000})
    browse.go("/payments/ar")
    header = browse.page.locator("#ar-table thead th[data-column='patient']")
    for name in ("Last request", "Snooze", "Contact"):
        assert header.locator(f"summary[aria-label^='Filter by {name}']").is_visible(), name
    header.locator("summary[aria-label^='Filter by Snooze']").click()
    browse.page.select_option("#f-snoozed", "true")
    header.locator("details[data-column='snooze'] button:has-text('Apply')").click()
    browse.page.wait_for_load_state()
    assert "snoozed=true" in browse.page.url
    snoozed = browse.page.locator(f"#ar-table tr[data-id='{pid}']")
    line = snoozed.locator(".ar-more")
    assert "Snoozed" in line.inner_text()
    browse.shot("ar-tablet-snoozed")
    line.locator("button:has-text('End snooze')").click()
    browse.page.wait_for_load_state()
    assert "is no longer snoozed" in browse.page.inner_text("#notice")

    # wider again, the filters are back in their own headers
    browse.page.set_viewport_size({"width": 1280, "height": 800})
    browse.page.wait_for_function(
        "() => document.querySelector(\"#ar-table thead th[data-column='snooze'] details\")"
    )
    own = browse.page.locator("#ar-table thead th[data-column='snooze'] details.colfilter")
    assert own.count() == 1 and own.is_visible()
