"""A receipt's copy goes by text as well as by email: the text lands in the sandbox mailbox
(the SMS adapter's), the history records where it went, and a number that does not match
its confirmation, or both channels at once, is refused in words, with nothing sent."""

from __future__ import annotations

from tests.conftest import Api
from tests.e2e.support import assert_problem, paid


def mailbox(api: Api) -> list[dict[str, str]]:
    items: list[dict[str, str]] = api.get("/v1/sandbox/mailbox").json()["items"]
    return items


def test_a_receipt_is_texted_and_its_sending_recorded(api: Api) -> None:
    payment = paid(api, 12500)
    body = {"phone": "+1 (617) 555-0101", "confirm_phone": "+16175550101"}
    sent = api.post(f"/v1/payments/{payment['id']}/receipt/send", body)
    assert sent.status_code == 200, sent.text
    assert sent.json()["channel"] == "sms" and sent.json()["email"] is None
    [text] = mailbox(api)
    assert text["body"].startswith("Elm Dental: payment receipt. $125.00, Approved")
    assert "ending 4242" in text["body"]
    history = api.get(f"/v1/history/{payment['id']}").json()["items"]
    [event] = [e for e in history if e["type"] == "PaymentReceiptSent"]
    assert event["data"]["phone"] == "+1 (617) 555-0101" and event["data"]["email"] is None
    assert api.get(f"/v1/payments/{payment['id']}/receipt").json()["copies_sent"] == 1


def test_a_mistyped_number_or_two_channels_send_nothing(api: Api) -> None:
    payment = paid(api, 5000)
    path = f"/v1/payments/{payment['id']}/receipt/send"
    mistyped = api.post(path, {"phone": "617-555-0101", "confirm_phone": "617-555-0110"})
    assert_problem(mistyped, 422, says="differ")
    both = {
        "phone": "617-555-0101",
        "confirm_phone": "617-555-0101",
        "email": "ann@example.com",
        "confirm_email": "ann@example.com",
    }
    assert_problem(api.post(path, both), 422, says="either")
    assert_problem(api.post(path, {}), 422, says="either")
    assert_problem(api.post(path, {"phone": "call me", "confirm_phone": "call me"}), 422)
    assert mailbox(api) == []
    assert api.get(f"/v1/payments/{payment['id']}/receipt").json()["copies_sent"] == 0
