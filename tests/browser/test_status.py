"""Practice status: writeback state, the daily close of a chosen day, the sandbox's test
clock and sandbox mailbox."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from domain.payments import Method
from domain.requests import Channel
from domain.schedule import zone
from services.app.payments import collect_payment
from services.app.practices import register_patient, set_pms_connection
from services.app.requests import send_request
from tests.browser.conftest import Browse
from tests.browser.test_settings import Office, new_office


def a_past_weekday(browse: Browse) -> date:
    """A day of the demo's card history: a few days back, not a Sunday (the office is
    closed on Sundays)."""
    ctx = browse.server.ctx
    pid = browse.server.practice_id
    today = ctx.clock.now(pid).astimezone(zone("America/New_York")).date()
    day = today - timedelta(days=3)
    return day - timedelta(days=1) if day.weekday() == 6 else day


def test_the_status_page_shows_writeback_and_the_daily_close(browse: Browse) -> None:
    browse.sign_in()
    browse.page.click("nav.menu >> text=Practice status")
    browse.page.wait_for_load_state()
    assert browse.page.locator("h1").inner_text() == "Practice status"
    assert browse.page.locator("#writeback-state").inner_text() in ("OK", "Failing")
    assert browse.page.locator("#writeback-counts dt").count() == 4
    # yesterday by default
    assert browse.page.locator("#close-date").input_value() != ""

    day = a_past_weekday(browse)
    browse.page.fill("#close-date", day.isoformat())
    browse.page.click("#daily-close button[type=submit]")
    browse.page.wait_for_load_state()
    assert f"date={day.isoformat()}" in browse.page.url
    heading = browse.page.locator("#close-title").inner_text()
    assert f"{day:%b} {day.day}, {day:%Y}" in heading
    for column in ("#close-batch", "#close-ledger", "#close-pms"):
        assert browse.page.locator(column).is_visible()
    sales = int(
        browse.page.locator("#close-batch tr", has_text="Sales").locator("td").first.inner_text()
    )
    taken = int(
        browse.page.locator("#close-ledger tr", has_text="Approved or settled")
        .locator("td")
        .first.inner_text()
    )
    assert taken > 0 and sales > 0

    answer = browse.page.request.get(
        f"{browse.server.url}/v1/reports/daily-close?date={day.isoformat()}",
        headers={"Authorization": f"Bearer {browse.server.admin_token}"},
    ).json()
    listed = browse.page.locator("#differences tbody tr").count()
    assert listed == len(answer["differences"])
    if answer["differences"]:
        assert f"{listed} difference" in browse.page.locator("#close-state").inner_text()
    else:
        assert browse.page.locator("#no-differences").is_visible()
    browse.shot("status", full=True)


class Refusing(BaseHTTPRequestHandler):
    """An Open Dental that refuses every call as a bad request (not worth retrying)."""

    def answer(self) -> None:
        body = b'"PatNum is invalid."'
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = answer

    def log_message(self, *args: object) -> None:
        pass


def serve_pms(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """An Open Dental answering as `handler` does, on 127.0.0.1: its API's base URL."""
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture
def refusing_pms() -> Iterator[str]:
    yield from serve_pms(Refusing)


def office_writing_back_to(
    browse: Browse, name: str, pms_url: str, patient: tuple[str, str, str], amount: int
) -> Office:
    """A new office writing back to the Open Dental at `pms_url`, with one terminal
    payment of `amount` cents by its patient (PMS id, first name, last name)."""
    office = new_office(browse, name, auto_writeback=True)
    ctx = browse.server.ctx
    set_pms_connection(
        ctx,
        office.id,
        {"opendental": {"base_url": pms_url, "developer_key": "d", "customer_key": "c"}},
    )
    pms_id, first, last = patient
    registered = register_patient(
        ctx,
        practice_id=office.id,
        pms_patient_id=pms_id,
        first_name=first,
        last_name=last,
        email=None,
        phone=None,
        guarantor_id=None,
        actor="operator",
    )
    collect_payment(
        ctx,
        practice_id=office.id,
        amount=amount,
        method=Method.TERMINAL,
        terminal_id="front-desk-1",
        patient_id=registered.id,
        actor="operator",
    )
    return office


def test_a_failing_writeback_shows_its_last_error(browse: Browse, refusing_pms: str) -> None:
    office = office_writing_back_to(
        browse, "Failing PMS Dental", refusing_pms, ("77", "Noor", "Haddad"), 4500
    )
    browse.sign_in(office.email)
    for _ in range(40):  # the service's worker writes back every half second
        browse.go("/payments/status")
        if browse.page.locator("#writeback-state").inner_text() == "Failing":
            break
        browse.page.wait_for_timeout(250)
    assert browse.page.locator("#writeback-state").inner_text() == "Failing"
    last_error = browse.page.locator("#last-error").inner_text()
    # who refused what, never the PMS's own answer (docs/reliability.md)
    assert "Open Dental refused (400) on POST /payments" in last_error
    assert "PatNum is invalid" not in last_error
    failed = browse.page.locator("#failed-writebacks tbody tr")
    assert failed.count() == 1
    assert "Noor Haddad" in failed.inner_text() and "$45.00" in failed.inner_text()
    browse.shot("failing", full=True)


def test_a_bad_day_says_what_to_fix(browse: Browse) -> None:
    browse.problems.expect("422")
    browse.sign_in()
    browse.go("/payments/status?date=yesterday")
    assert "The day must be a date such as" in browse.page.locator("#form-error").inner_text()
    assert browse.page.locator("#daily-close").is_visible()


def test_advancing_the_test_clock_a_day_makes_a_deposit(browse: Browse) -> None:
    office = new_office(browse, "Clock Test Dental")
    ctx = browse.server.ctx
    payment = collect_payment(
        ctx,
        practice_id=office.id,
        amount=12500,
        method=Method.TERMINAL,
        terminal_id="front-desk-1",
        actor="operator",
    )
    auth = {"Authorization": f"Bearer {office.token}"}
    today = ctx.clock.now(office.id).astimezone(zone("America/Chicago")).date()
    days = f"from={today - timedelta(days=1)}&to={today + timedelta(days=10)}"
    deposits_url = f"{browse.server.url}/v1/deposits?{days}"
    assert browse.page.request.get(deposits_url, headers=auth).json()["items"] == []

    browse.sign_in(office.email)
    browse.go("/payments/status")
    before = browse.page.locator("#sandbox-now").inner_text()
    browse.page.click("#advance-day")
    browse.page.wait_for_load_state()
    notice = browse.page.locator("#notice").inner_text()
    assert "The test clock moved 1 day forward" in notice
    assert browse.page.locator("#sandbox-now").inner_text() != before
    assert "ahead of real time" in browse.page.locator("#test-clock").inner_text()
    browse.shot("clock", full=True)

    deposits = browse.page.request.get(deposits_url, headers=auth).json()["items"]
    assert len(deposits) == 1
    assert deposits[0]["gross_amount"] == payment.amount.cents
    page = browse.page.request.get(f"{browse.server.url}/payments/deposits")
    if page.status == 200:  # the Deposits tab lists it too
        browse.go("/payments/deposits")
        assert "$125.00" in browse.page.locator("main").inner_text()


def test_the_sandbox_mailbox_opens_a_pay_link(browse: Browse) -> None:
    office = new_office(browse, "Mailbox Test Dental")
    ctx = browse.server.ctx
    patient = register_patient(
        ctx,
        practice_id=office.id,
        pms_patient_id="501",
        first_name="Maria",
        last_name="Lopez",
        email="maria.lopez@patients.example",
        phone=None,
        guarantor_id=None,
        actor="operator",
    )
    browse.sign_in(office.email)
    browse.go("/payments/status")
    assert "No messages yet" in browse.page.locator("#sandbox-mailbox").inner_text()
    send_request(
        ctx,
        practice_id=office.id,
        patient_id=patient.id,
        amount=8900,
        channel=Channel.EMAIL,
        actor="operator",
    )
    browse.go("/payments/status")
    message = browse.page.locator("#sandbox-mailbox li.message").first
    assert "maria.lopez@patients.example" in message.inner_text()
    link = message.locator("a[href*='/pay/']")
    assert link.count() == 1
    browse.shot("sandbox-mailbox", full=True)
    # The pay page names no icon, so the browser asks for /favicon.ico (a 404): allowed
    # here, and only that one.
    missing: list[str] = []
    browse.page.on(
        "console",
        lambda m: missing.append(m.location["url"]) if "404" in m.text else None,
    )
    browse.problems.expect("404")
    link.click()
    browse.page.wait_for_load_state()
    assert "/pay/" in browse.page.url
    assert "$89.00" in browse.page.locator("body").inner_text()
    browse.page.wait_for_timeout(300)
    assert all(url.endswith("/favicon.ico") for url in missing), missing
