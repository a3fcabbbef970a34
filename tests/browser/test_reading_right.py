"""Pages that must read right to an office: a payment's history, AR's figures, the
settings of each PMS, the links staff see, the sandbox clock and the receipts' copies."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from domain.practices import PmsKind
from tests.browser.conftest import STAFF_EMAIL, Browse
from tests.browser.test_settings import new_office
from tests.browser.test_status import office_writing_back_to, serve_pms
from tests.browser.test_transactions import collect_by_card


def test_details_and_history_lists_the_payment_events(browse: Browse) -> None:
    browse.sign_in()
    collect_by_card(browse, "61.25")
    row = browse.page.locator("#transactions tbody tr", has_text="$61.25").first
    row.locator("summary:has-text('Actions')").click()
    row.locator("a:has-text('Details and history')").click()
    browse.page.wait_for_load_state()
    history = browse.page.inner_text("ol.history")
    assert "No history recorded" not in history
    assert "$61.25" in history
    assert "Robin Front" in history
    browse.shot("payment-history")


def api(browse: Browse, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {browse.server.admin_token}"}
    if method in ("POST", "PUT", "DELETE"):
        headers["Idempotency-Key"] = str(uuid.uuid4())
    return httpx.request(method, browse.server.url + path, headers=headers, timeout=30, **kwargs)


def ar_rows(browse: Browse) -> list[dict[str, Any]]:
    answer = api(browse, "GET", "/v1/ar/patients", params={"limit": 100})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def ar_row_when(browse: Browse, row_id: str, ready: Callable[[dict[str, Any]], bool]) -> Any:
    """The AR row once `ready` holds of it (the views follow within moments), else as it
    is after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        row = next(r for r in ar_rows(browse) if r["id"] == row_id)
        if ready(row) or time.monotonic() > deadline:
            return row
        time.sleep(0.2)


def card_payment(browse: Browse, cents: int, patient_id: str, card: str) -> dict[str, Any]:
    body = {
        "method": "virtual_terminal",
        "amount": cents,
        "patient_id": patient_id,
        "card": {"number": card, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
    }
    answer = api(browse, "POST", "/v1/payments", json=body)
    assert answer.status_code in (201, 402), answer.text
    made: dict[str, Any] = answer.json()
    return made


def test_a_voided_or_declined_payment_is_nobodys_last_payment(browse: Browse) -> None:
    row = next(r for r in ar_rows(browse) if r["total"] > 1000)
    before = row["last_payment_date"]
    declined = card_payment(browse, 700, row["id"], "4000000000000002")
    assert declined.get("status", "declined") == "declined"
    paid = card_payment(browse, 500, row["id"], "4242424242424242")
    assert paid["status"] == "approved"
    after = ar_row_when(browse, row["id"], lambda r: r["last_payment_date"] != before)
    assert after["last_payment_date"] != before  # the approved one counts
    voided = api(browse, "POST", f"/v1/payments/{paid['id']}/refund")
    assert voided.status_code in (200, 201), voided.text
    assert voided.json()["kind"] == "void"
    after = ar_row_when(browse, row["id"], lambda r: r["last_payment_date"] == before)
    assert after["last_payment_date"] == before
    browse.sign_in()
    browse.go("/payments/ar")
    line = browse.page.locator(f"#ar-table tbody tr[data-id='{row['id']}']")
    shown = line.inner_text()
    today = after.get("last_payment_date") or "never"
    browse.shot("ar-after-void")
    assert "Dec 7" not in shown or today != before, shown


def test_a_guarantor_paid_to_zero_is_not_listed_with_a_balance(browse: Browse) -> None:
    row = min((r for r in ar_rows(browse) if r["total"] > 0), key=lambda r: r["total"])
    paid = card_payment(browse, row["total"], row["id"], "4242424242424242")
    assert paid["status"] == "approved"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(r["id"] == row["id"] for r in ar_rows(browse)):
        time.sleep(0.2)
    assert all(r["id"] != row["id"] for r in ar_rows(browse))
    browse.sign_in()
    browse.go("/payments/ar")
    assert "every guarantor with a balance" in browse.page.inner_text("main")
    assert browse.page.locator(f"#ar-table tbody tr[data-id='{row['id']}']").count() == 0
    for cell in browse.page.locator("#ar-table tbody tr[data-id] td.balance strong").all():
        assert cell.inner_text().strip() != "$0.00"
    api(browse, "POST", f"/v1/payments/{paid['id']}/refund")  # puts the balance back


def test_a_refund_since_the_pms_figures_reads_as_added_back(browse: Browse) -> None:
    """The PMS counted the month's payments this morning; a refund since puts money back
    on the family's balance: "+ $x refunded since", never two minus signs."""
    listed = api(browse, "GET", "/v1/transactions", params={"status": "settled", "limit": 100})
    assert listed.status_code == 200, listed.text
    by_patient = {r["id"]: r for r in ar_rows(browse)}
    payment = next(
        t
        for t in listed.json()["items"]
        if t["patient_id"] in by_patient
        and not t["refunded_amount"]
        # a family nothing was paid for since the PMS's figures (other tests pay on this
        # server): the refund alone moves its balance
        and by_patient[t["patient_id"]]["collected_since"] == 0
    )
    refunded = api(browse, "POST", f"/v1/payments/{payment['id']}/refund")
    assert refunded.status_code in (200, 201), refunded.text
    assert refunded.json()["kind"] == "refund"
    row = ar_row_when(browse, payment["patient_id"], lambda r: r["collected_since"] < 0)
    assert row["collected_since"] < 0
    browse.sign_in()
    browse.go(f"/payments/ar?q={row['last_name']}")
    cell = browse.page.locator(f"#ar-table tbody tr[data-id='{row['id']}'] td.balance")
    text = " ".join(cell.inner_text().split())
    browse.shot("ar-refunded-since")
    assert "-$" not in text, text
    assert f"+ ${-row['collected_since'] / 100:,.2f} refunded since" in text, text


def test_staff_see_only_the_links_they_may_use(browse: Browse) -> None:
    browse.problems.expect("403")  # staff land on "available to admins"
    browse.sign_in(STAFF_EMAIL)
    menu = browse.page.inner_text("nav.menu")
    browse.shot("staff-menu")
    for link in ("Payments", "Practice status", "Settings", "Security log"):
        assert link not in menu, menu
    assert "Your account" in menu and "API docs" in menu
    refused = browse.go("/settings")  # typed by hand: still refused by the server
    assert refused.status == 403
    browse.go("/account")
    assert "Settings" not in browse.page.inner_text("nav.menu")


class Unavailable(BaseHTTPRequestHandler):
    """An Open Dental that is down for now (503: worth retrying later)."""

    def answer(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def unavailable_pms() -> Iterator[str]:
    yield from serve_pms(Unavailable)


def test_a_writeback_that_is_retrying_can_be_retried_now(
    browse: Browse, unavailable_pms: str
) -> None:
    office = office_writing_back_to(
        browse, "Retrying PMS Dental", unavailable_pms, ("78", "Ines", "Duarte"), 3900
    )
    browse.sign_in(office.email)
    row = browse.page.locator("#transactions tbody tr", has_text="$39.00").first
    for _ in range(40):  # the service's worker writes back every half second
        browse.go("/payments/transactions")
        row = browse.page.locator("#transactions tbody tr", has_text="$39.00").first
        if "Retrying" in row.locator("td.writeback").inner_text():
            break
        browse.page.wait_for_timeout(250)
    assert "Retrying" in row.locator("td.writeback").inner_text()
    browse.shot("retrying")
    row.locator("button:has-text('Retry')").click()
    browse.page.wait_for_load_state()
    assert "The writeback will be tried again now." in browse.page.inner_text("#notice")


def test_the_test_clock_moves_a_week_or_to_a_chosen_time(browse: Browse) -> None:
    browse.sign_in()
    browse.go("/payments/status")
    assert browse.page.locator("#advance-week").is_visible()
    now = browse.server.ctx.clock.now(browse.server.practice_id)
    target = (now.astimezone(ZoneInfo("America/New_York")) + timedelta(days=2)).replace(
        hour=9, minute=30, second=0, microsecond=0
    )
    browse.page.fill("#clock-to", target.strftime("%Y-%m-%dT%H:%M"))
    browse.shot("clock-form")
    browse.page.click("#advance-to")
    browse.page.wait_for_load_state()
    notice = browse.page.inner_text("#notice")
    assert "The test clock moved forward" in notice, notice
    moved = browse.server.ctx.clock.now(browse.server.practice_id)
    assert abs((moved - target).total_seconds()) < 5
    browse.page.fill("#clock-to", "2020-01-01T09:00")
    browse.problems.expect("422")
    browse.page.click("#advance-to")
    browse.page.wait_for_load_state()
    text = browse.page.inner_text("main")
    assert "only moves forward" in text and "'to'" not in text


def test_a_refund_receipt_counts_only_its_own_copies(browse: Browse) -> None:
    listed = api(browse, "GET", "/v1/transactions", params={"status": "settled", "limit": 100})
    payment = next(t for t in listed.json()["items"] if not t["refunded_amount"])
    copy = {"email": "front@example.com", "confirm_email": "front@example.com"}
    sent = api(browse, "POST", f"/v1/payments/{payment['id']}/receipt/send", json=copy)
    assert sent.status_code == 200, sent.text
    refund = api(browse, "POST", f"/v1/payments/{payment['id']}/refund", json={"amount": 100})
    assert refund.status_code in (200, 201), refund.text
    refund_id = refund.json()["refund_id"]
    browse.sign_in()
    browse.go(f"/payments/transactions/{payment['id']}/receipt?refund_id={refund_id}")
    panel = browse.page.inner_text("#receipt-panel")
    assert "Refund receipt" in panel
    assert "sent so far" not in panel, panel
    browse.page.fill("#email", "patient@example.com")
    browse.page.fill("#confirm_email", "patient@example.com")
    browse.page.click("button:has-text('Confirm and send')")
    browse.page.wait_for_load_state()
    browse.go(f"/payments/transactions/{payment['id']}/receipt?refund_id={refund_id}")
    copies = browse.page.inner_text("#copies-sent")
    assert copies == "Copies of this refund receipt sent so far: 1."
    browse.go(f"/payments/transactions/{payment['id']}/receipt")
    assert browse.page.inner_text("#copies-sent") == "Copies of this receipt sent so far: 1."
    browse.shot("receipt-copies")


def test_deposits_of_one_date_are_listed_newest_batch_first(browse: Browse) -> None:
    answer = api(browse, "GET", "/v1/deposits", params={"limit": 100})
    assert answer.status_code == 200, answer.text
    pairs = [(d["deposit_date"], d["batch_date"]) for d in answer.json()["items"]]
    dates = [p[0] for p in pairs]
    assert len(set(dates)) < len(dates), "the demo has a date with several deposits"
    assert pairs == sorted(pairs, reverse=True)
    paged, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api(browse, "GET", "/v1/deposits", params=params).json()
        paged += [(d["deposit_date"], d["batch_date"]) for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert paged == pairs
    browse.sign_in()
    browse.go("/payments/deposits")
    assert "deposits of one date: newest batch first" in browse.page.inner_text("main")
    shown = browse.page.locator("tr.deposit-row td:nth-child(2)").all_inner_texts()
    batches = [" ".join(t.split()) for t in shown]
    browse.shot("deposits-order", full=True)
    assert len(batches) == len(pairs)
    for text, (_, batch_date) in zip(batches, pairs, strict=True):
        day = date.fromisoformat(batch_date)
        assert f"batch of {day:%b} {day.day}" in text, (text, batch_date)


def test_a_dentrix_practice_is_told_what_is_true_of_its_writeback(browse: Browse) -> None:
    office = new_office(browse, "Dentrix Dental", pms=PmsKind.DENTRIX)
    browse.sign_in(office.email)
    browse.go("/payments/status")
    text = browse.page.inner_text("#writeback-manual")
    browse.shot("dentrix-status")
    assert "Turn it on" not in text
    assert "Dentrix" in text and "Post to Ledger" in text


def test_settings_shows_the_practice_pms_and_sets_up_the_eaglesoft_bridge(
    browse: Browse,
) -> None:
    office = new_office(browse, "Eaglesoft Dental", pms=PmsKind.EAGLESOFT)
    browse.sign_in(office.email)
    browse.go("/settings")
    fieldset = browse.page.locator("#pms-connection")
    assert "Eaglesoft bridge" in fieldset.inner_text()
    assert "Open Dental" not in fieldset.inner_text()
    assert "Not set up" in browse.page.inner_text("#connection-state")
    browse.page.fill("#es_bridge_url", "ftp://bridge.example")
    browse.page.fill("#es_token", "secret-token-1234")
    browse.problems.expect("422")
    browse.page.click("button:has-text('Save payments settings')")
    browse.page.wait_for_load_state()
    error = browse.page.inner_text("main")
    assert "bridge_url" not in error and "http" in error, error
    browse.shot("eaglesoft-refused")
    browse.page.fill("#es_bridge_url", "http://127.0.0.1:9/bridge")
    browse.page.fill("#es_token", "secret-token-1234")
    browse.page.fill("#es_timeout", "20")
    browse.page.click("button:has-text('Save payments settings')")
    browse.page.wait_for_load_state()
    assert "The payments settings were saved." in browse.page.inner_text("#notice")
    state = browse.page.inner_text("#connection-state")
    assert "Connected" in state and "http://127.0.0.1:9/bridge" in state, state
    assert "secret-token-1234" not in browse.page.content()
    assert "****1234" in state
    browse.shot("eaglesoft-connected")
    answer = httpx.get(
        f"{browse.server.url}/v1/practices/{office.id}",
        headers={"Authorization": f"Bearer {office.token}"},
    ).json()
    assert answer["connection"]["eaglesoft"]["bridge_url"] == "http://127.0.0.1:9/bridge"
    assert answer["connection"]["eaglesoft"]["timeout"] == "20"


def test_settings_of_a_dentrix_practice_offers_no_connection(browse: Browse) -> None:
    office = new_office(browse, "Dentrix Settings Dental", pms=PmsKind.DENTRIX)
    browse.sign_in(office.email)
    browse.go("/settings")
    text = browse.page.inner_text("#pms-connection")
    browse.shot("dentrix-settings")
    assert "Open Dental" not in text and "Not set up" not in text
    assert "Dentrix" in text and "Post to Ledger" in text


def test_refusals_on_the_pages_say_what_to_fix_in_words(browse: Browse) -> None:
    browse.problems.expect("422")
    listed = api(browse, "GET", "/v1/transactions", params={"status": "settled", "limit": 100})
    payment = next(t for t in listed.json()["items"] if not t["refunded_amount"])
    part = api(browse, "POST", f"/v1/payments/{payment['id']}/refund", json={"amount": 100})
    assert part.status_code in (200, 201), part.text
    browse.sign_in()
    browse.go(f"/payments/transactions/{payment['id']}/receipt")
    browse.page.fill("#email", "one@example.com")
    browse.page.fill("#confirm_email", "two@example.com")
    browse.page.click("button:has-text('Confirm and send')")
    browse.page.wait_for_load_state()
    error = browse.page.inner_text("#form-error")
    assert "The two email addresses differ" in error and "_" not in error, error
    browse.go(f"/payments/transactions/{payment['id']}/refund")
    browse.page.fill("#amount", f"{payment['amount'] / 100:.2f}")
    browse.page.select_option("#reason", index=1)
    browse.page.click("button:has-text('Confirm refund')")
    browse.page.wait_for_load_state()
    error = browse.page.inner_text("#form-error")
    browse.shot("over-refund")
    left, whole = payment["amount"] - 100, payment["amount"]
    assert f"${left / 100:,.2f} of this ${whole / 100:,.2f} payment can still be refunded" in (
        error
    ), error
    row = next(r for r in ar_rows(browse) if r["total"] > 0)
    snooze = api(
        browse,
        "POST",
        f"/v1/patients/{row['id']}/snooze",
        json={"until": "2031-01-01", "reason": "other"},
    )
    assert snooze.status_code == 422, snooze.text
    assert snooze.json()["detail"].lower().startswith("add a note when the reason is other")


def test_the_demo_writes_payments_back_to_its_simulated_open_dental(browse: Browse) -> None:
    row = next(r for r in ar_rows(browse) if r["total"] > 0)
    paid = card_payment(browse, 1234, row["id"], "4242424242424242")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        payment = api(browse, "GET", f"/v1/payments/{paid['id']}").json()
        if payment["association"] == "associated":
            break
        time.sleep(0.3)
    assert payment["association"] == "associated", payment["writeback_attempts"]
    assert payment["pms_reference"].startswith("PayNum ")
    browse.sign_in()
    browse.go("/settings")
    assert "simulated Open Dental" in browse.page.inner_text("#connection-state")
    browse.go(f"/payments/transactions/{paid['id']}")
    assert payment["pms_reference"] in browse.page.inner_text("ol.history")
    api(browse, "POST", f"/v1/payments/{paid['id']}/refund")  # puts the balance back
