"""Pay links sent, paid, reminded, superseded and expired, driven through the use cases
(tests/worked_examples/test_payment_requests.py and test_views_follow_the_money.py show
the same through HTTP and the pay page)."""

from __future__ import annotations

from typing import Any

import pytest

from domain.base import event_type
from domain.errors import InvalidAmount
from domain.money import Money
from domain.patients import Patient
from domain.payments import Method, Payment, ReversalKind, Status
from domain.requests import CancelReason, Channel, PaymentRequest, RequestClosed, RequestStatus
from projections.requests import list_requests
from services.app.requests import (
    RequestChanged,
    cancel_request,
    open_link,
    pay_request,
    pay_url,
)
from tests.usecases.conftest import ADMIN, APPROVED, INSUFFICIENT, Office, card


def send(
    office: Office, patient: Patient, amount: int, channel: Channel = Channel.SMS
) -> PaymentRequest:
    return office.request(patient, amount, channel)


def pay(
    office: Office,
    request: PaymentRequest,
    amount: int | None = None,
    number: str = APPROVED,
    attempt: str = "form-1",
) -> Payment:
    """The patient opens the link and pays (the whole of what is owed by default)."""
    token = pay_url(office.ledger, request).rsplit("/pay/", 1)[1]
    link = open_link(office.ledger, token)
    owed = link.request.owed.cents
    return pay_request(
        office.ledger, link, amount=amount or owed, card=card(number), attempt_id=attempt
    )


def state(office: Office, request: PaymentRequest) -> PaymentRequest:
    return office.ledger.get(PaymentRequest, request.id, office.id)


def history(office: Office, request: PaymentRequest) -> list[str]:
    return [event_type(e) for e in office.ledger.history(request.id)]


def test_a_request_is_texted_with_the_practice_the_amount_and_its_link(office: Office) -> None:
    request = send(office, office.patient(), 12500)
    [text] = office.ledger.sms.sent
    assert text.to == "+16175550123"
    assert "Elm Dental" in text.body and "$125.00" in text.body
    assert pay_url(office.ledger, request) in text.body


def test_a_request_paid_in_full_completes_and_the_payment_is_a_pay_link_payment(
    office: Office,
) -> None:
    patient = office.patient()
    request = send(office, patient, 12500)

    payment = pay(office, request)

    done = state(office, request)
    assert (done.status, done.paid_amount, done.payment_id) == (
        RequestStatus.COMPLETED,
        Money(12500),
        payment.id,
    )
    assert (payment.method, payment.patient_id, payment.request_id) == (
        Method.PAY_LINK,
        patient.id,
        request.id,
    )
    assert list(office.transactions()) == [payment.id]
    with pytest.raises(RequestClosed):
        pay(office, request, amount=100, attempt="form-2")


def test_the_same_form_posted_twice_charges_once(office: Office) -> None:
    request = send(office, office.patient(), 9000)
    first = pay(office, request, attempt="form-1")
    again = pay(office, request, attempt="form-1")
    assert again.id == first.id
    assert office.money_moved() == {"charge": 1}


def test_a_part_payment_leaves_the_rest_payable_and_never_more(office: Office) -> None:
    request = send(office, office.patient(), 20000)
    pay(office, request, amount=7550)
    part = state(office, request)
    assert (part.status, part.paid_amount, part.owed) == (
        RequestStatus.REQUESTED,
        Money(7550),
        Money(12450),
    )

    with pytest.raises(InvalidAmount, match=r"at most the \$124.50 still owed"):
        pay(office, request, amount=12500, attempt="form-2")

    pay(office, request, attempt="form-3")
    assert state(office, request).status == RequestStatus.COMPLETED
    assert len(office.transactions()) == 2


def test_paying_more_than_requested_is_refused(office: Office) -> None:
    request = send(office, office.patient(), 5000)
    with pytest.raises(InvalidAmount, match=r"at most the \$50.00 requested"):
        pay(office, request, amount=5001)
    assert state(office, request).status == RequestStatus.REQUESTED


def test_a_declined_card_leaves_the_request_open(office: Office) -> None:
    request = send(office, office.patient(), 6000)
    declined = pay(office, request, number=INSUFFICIENT)
    assert (declined.status, declined.decline_reason) == (Status.DECLINED, "insufficient funds")
    assert state(office, request).status == RequestStatus.REQUESTED
    assert pay(office, request, attempt="form-2").status == Status.APPROVED


def test_a_newer_request_supersedes_the_older_one(office: Office) -> None:
    patient = office.patient()
    first = send(office, patient, 12000)
    second = send(office, patient, 15000, channel=Channel.EMAIL)
    older = state(office, first)
    assert (older.status, older.cancel_reason, older.superseded_by) == (
        RequestStatus.CANCELLED,
        CancelReason.SUPERSEDED,
        second.id,
    )
    assert state(office, second).status == RequestStatus.REQUESTED
    with pytest.raises(RequestClosed):
        pay(office, first)


def test_an_unpaid_request_expires_after_exactly_fourteen_days(office: Office) -> None:
    request = send(office, office.patient(), 9900)
    office.advance(days=14, seconds=-1)
    assert state(office, request).status == RequestStatus.REQUESTED
    office.advance(seconds=1)
    expired = state(office, request)
    assert (expired.status, expired.cancel_reason) == (
        RequestStatus.CANCELLED,
        CancelReason.EXPIRED,
    )
    assert expired.closed_at is not None and expired.closed_at.isoformat() == (
        "2026-03-18T15:00:00+00:00"
    )
    assert history(office, request)[-1] == "PaymentRequestCancelled"
    with pytest.raises(RequestClosed):
        pay(office, request)


def test_staff_cancel_a_request_once(office: Office) -> None:
    request = send(office, office.patient(), 4000)
    cancelled = cancel_request(
        office.ledger, practice_id=office.id, request_id=request.id, actor=ADMIN
    )
    assert (cancelled.cancel_reason, cancelled.cancelled_by) == (CancelReason.STAFF, ADMIN)
    with pytest.raises(RequestClosed):
        cancel_request(office.ledger, practice_id=office.id, request_id=request.id, actor=ADMIN)


def test_two_reminders_before_expiry_at_the_practice_offsets(office: Office) -> None:
    office.settings(reminder_days=[3, 10])
    request = send(office, office.patient(), 8000, channel=Channel.EMAIL)
    office.advance(days=3)
    office.advance(days=7)
    office.advance(days=4)

    assert sorted(m.subject for m in office.ledger.email.sent) == [
        "Elm Dental: payment request for $80.00",
        "Reminder: Elm Dental: payment request for $80.00",
        "Reminder: Elm Dental: payment request for $80.00",
    ]
    events = office.ledger.history(request.id)
    reminded = [e for e in events if event_type(e) == "PaymentRequestReminded"]
    assert [(e.number, e.at.date().isoformat()) for e in reminded] == [
        (1, "2026-03-07"),
        (2, "2026-03-14"),
    ]
    assert event_type(events[-1]) == "PaymentRequestCancelled"  # and it stays on record


def test_a_paid_request_sends_no_reminder(office: Office) -> None:
    office.settings(reminder_days=[3])
    request = send(office, office.patient(), 8000, channel=Channel.EMAIL)
    pay(office, request)
    office.advance(days=5)
    assert len(office.ledger.email.sent) == 1


def test_a_reminder_of_a_part_paid_request_asks_for_what_is_still_owed(office: Office) -> None:
    office.settings(reminder_days=[3])
    request = send(office, office.patient(), 8000, channel=Channel.EMAIL)
    pay(office, request, amount=3000)
    office.advance(days=3)
    [reminder] = [m for m in office.ledger.email.sent if "Reminder" in m.subject]
    assert reminder.subject == "Reminder: Elm Dental: payment request for $50.00"
    assert "a payment request for $80.00, of which $50.00 is still owed" in reminder.body


def test_a_failed_text_is_recorded_and_sent_again_when_due(office: Office) -> None:
    office.ledger.sms.failing = 1
    request = send(office, office.patient(), 3000)
    assert office.ledger.sms.sent == []
    assert "PaymentRequestDeliveryFailed" in history(office, request)

    office.advance(hours=1)

    assert len(office.ledger.sms.sent) == 1
    assert state(office, request).messages[0].status == "sent"


def test_the_requests_report_lists_paid_and_cancelled_with_reasons(office: Office) -> None:
    first, second = office.patient("1"), office.patient("2", first_name="Lee")
    superseded = send(office, first, 1000)
    paid = send(office, first, 2000)
    pay(office, paid, amount=1500, attempt="a")
    pay(office, paid, amount=500, attempt="b")
    part_paid = send(office, second, 4000)
    pay(office, part_paid, amount=1000)
    open_one = send(office, second, 3000)

    rows = office.ledger.reads(
        list_requests,
        office.id,
        date_from="2026-03-01",
        date_to="2026-03-31",
        status=None,
        patient_id=None,
        after=None,
        limit=100,
    )
    report: dict[str, Any] = {
        r["id"]: (r["status"], r["amount"], r["paid_amount"], r["cancel_reason"]) for r in rows
    }
    assert report == {
        str(superseded.id): ("cancelled", 1000, None, "superseded"),
        str(paid.id): ("completed", 2000, 2000, None),
        str(part_paid.id): ("cancelled", 4000, 1000, "superseded"),
        str(open_one.id): ("requested", 3000, None, None),
    }


def test_a_voided_pay_link_payment_reopens_its_request_for_what_is_owed(office: Office) -> None:
    request = send(office, office.patient(), 12000)
    payment = pay(office, request)

    voided = office.refund(payment.id)

    assert voided.kind == ReversalKind.VOID
    reopened = state(office, request)
    assert (reopened.status, reopened.owed.cents, reopened.payment_id) == (
        RequestStatus.REQUESTED,
        12000,
        None,
    )
    assert reopened.reopen_reason == "the payment was voided"
    assert history(office, request).count("PaymentRequestReopened") == 1
    office.advance(days=14)  # it is on the expiry list again
    assert state(office, request).cancel_reason == CancelReason.EXPIRED


def test_a_voided_payment_of_a_request_behind_a_newer_one_leaves_it_superseded(
    office: Office,
) -> None:
    patient = office.patient()
    first = send(office, patient, 12000)
    payment = pay(office, first)
    newer = send(office, patient, 18000)

    office.refund(payment.id)

    older = state(office, first)
    assert (older.status, older.cancel_reason, older.superseded_by) == (
        RequestStatus.CANCELLED,
        CancelReason.SUPERSEDED,
        newer.id,
    )
    assert history(office, first)[-2:] == ["PaymentRequestReopened", "PaymentRequestCancelled"]
    assert state(office, newer).status == RequestStatus.REQUESTED


def test_the_same_form_saved_first_by_its_other_post_answers_that_payment(
    office: Office,
) -> None:
    """A double tap: both posts carry the form's attempt id, so both name one payment."""
    request = send(office, office.patient(), 12000)
    answers: list[Payment] = []
    office.ledger.before_next_save_of(
        request.id, lambda: answers.append(pay(office, request, attempt="tap"))
    )

    mine = pay(office, request, attempt="tap")

    assert [a.id for a in answers] == [mine.id]
    assert state(office, request).status == RequestStatus.COMPLETED
    assert office.money_moved() == {"charge": 1}


def test_a_request_cancelled_while_its_card_was_charged_gives_the_money_back_by_a_void(
    office: Office,
) -> None:
    request = send(office, office.patient(), 12000)
    office.ledger.before_next_save_of(
        request.id,
        lambda: cancel_request(
            office.ledger, practice_id=office.id, request_id=request.id, actor=ADMIN
        ),
    )

    with pytest.raises(RequestChanged, match="no money was taken"):
        pay(office, request)

    [payment_id] = office.transactions()
    assert office.payment(payment_id).status == Status.VOIDED  # recorded, not forgotten
    assert state(office, request).cancel_reason == CancelReason.STAFF
    assert office.money_moved() == {"charge": 1, "void": 1}


def test_a_voided_part_payment_is_owed_again_on_its_request(office: Office) -> None:
    request = send(office, office.patient(), 12000)
    part = pay(office, request, amount=5000)
    assert state(office, request).owed == Money(7000)

    office.refund(part.id)

    after = state(office, request)
    assert (after.status, after.paid_amount, after.owed) == (
        RequestStatus.REQUESTED,
        None,
        Money(12000),
    )
