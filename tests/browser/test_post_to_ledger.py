"""Post to Ledger as a queue: every entry still waiting for the PMS, across payments, with
its PMS reference typed on its row and marked as associated in bulk; what was marked
leaves the list (it shows only what still needs posting)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser.conftest import Browse
from tests.browser.test_find_anything import shots


def queue(browse: Browse) -> list[dict[str, Any]]:
    response = httpx.get(
        browse.server.url + "/v1/ledger-queue",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {browse.server.admin_token}"},
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_the_queue_lists_what_waits_and_marks_ticked_entries_with_their_references(
    browse: Browse,
) -> None:
    browse.sign_in()
    browse.page.click("nav.tabs a:has-text('Post to Ledger')")
    browse.page.wait_for_load_state()
    waiting = queue(browse)
    assert len(waiting) >= 2, "the demo office posts by hand: entries are waiting"
    rows = browse.page.locator("#queue tbody tr[data-id]")
    assert [rows.nth(i).get_attribute("data-id") for i in range(rows.count())] == [
        i["id"] for i in waiting
    ]
    shots(browse, "queue", fits_phone="#queue-form")

    # The note reads short: our reference by its first 8 characters, the whole of it in
    # the title (and on the entry's Details page).
    note = browse.page.locator(f"#queue tr[data-id='{waiting[0]['id']}'] .note")
    text = note.inner_text()
    assert "[ref:" not in text and f"#{waiting[0]['payment_id'][:8]}" in text, text
    assert len(text) < len(waiting[0]["enter_payment"]["note"])
    assert waiting[0]["enter_payment"]["note"] in (note.get_attribute("title") or "")
    ref = note.locator(".ref").first
    assert ref.get_attribute("title") == f"[ref:{waiting[0]['payment_id']}]"

    first, second = waiting[0], waiting[1]
    browse.page.check(f"#pick-{first['id']}")
    browse.page.check(f"#pick-{second['id']}")
    assert browse.page.inner_text("[data-selected-count]") == "2"
    browse.page.fill(f"#ref-{first['id']}", "PayNum 777001")
    browse.page.click("#mark-selected")
    browse.page.wait_for_load_state()
    assert "Marked 2 entries as associated" in browse.page.inner_text("#notice")
    left = {i["id"] for i in queue(browse)}
    assert first["id"] not in left and second["id"] not in left
    assert browse.page.locator(f"#queue tr[data-id='{first['id']}']").count() == 0

    payment = httpx.get(
        browse.server.url + f"/v1/payments/{first['payment_id']}",
        headers={"Authorization": f"Bearer {browse.server.admin_token}"},
    ).json()
    if first["kind"] == "payment":
        assert payment["pms_reference"] == "PayNum 777001"
    else:
        refs = [r.get("pms_reference") for r in payment["refunds"]]
        assert "PayNum 777001" in refs or first["kind"] != "refund"


def test_marking_with_nothing_ticked_says_what_to_do(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/payments/post-to-ledger")
    before = len(queue(browse))
    browse.page.click("#mark-selected")
    browse.page.wait_for_load_state()
    assert "Tick the entries you posted first" in browse.page.inner_text("#notice")
    assert len(queue(browse)) == before
