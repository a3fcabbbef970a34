"""PaymentRequest.complete and reopen: part payments and voided payments, in the domain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.errors import InvalidAmount
from domain.money import Money
from domain.requests import CancelReason, Channel, PaymentRequest, RequestClosed, RequestStatus

SENT = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


def request_for(cents: int) -> PaymentRequest:
    return PaymentRequest.send(
        id=uuid4(),
        practice_id=uuid4(),
        patient_id=uuid4(),
        amount=Money(cents),
        channel=Channel.EMAIL,
        destination="rosa@example.com",
        token_nonce="n",
        token_hash="h",
        reminder_days=[],
        practice_name="Elm Dental",
        at=SENT,
        actor="user:1",
    )


def types(request: PaymentRequest) -> list[str]:
    return [type(e).__name__ for e in request.collect_events()]


def test_a_part_payment_leaves_what_is_owed_and_the_rest_completes() -> None:
    request = request_for(12000)
    first, second = uuid4(), uuid4()
    request.complete(payment_id=first, paid=Money(5000), at=SENT, actor="patient")
    assert (request.status, request.owed, request.paid_amount) == (
        RequestStatus.REQUESTED,
        Money(7000),
        Money(5000),
    )
    assert request.partly_paid and request.payment_id is None
    with pytest.raises(InvalidAmount, match=r"at most the \$70.00 still owed"):
        request.complete(payment_id=second, paid=Money(7001), at=SENT, actor="patient")
    request.complete(payment_id=second, paid=Money(7000), at=SENT, actor="patient")
    assert (request.status, request.payment_id, request.paid_amount) == (
        RequestStatus.COMPLETED,
        second,
        Money(12000),
    )
    assert types(request) == ["Sent", "PartlyPaid", "Completed"]


def test_reopen_changes_nothing_for_a_payment_that_did_not_count() -> None:
    request = request_for(12000)
    request.complete(payment_id=uuid4(), paid=Money(12000), at=SENT, actor="patient")
    request.collect_events()
    assert not request.reopen(payment_id=uuid4(), reason="voided", at=SENT, actor="system:x")
    assert request.status == RequestStatus.COMPLETED
    assert request.collect_events() == []


def test_a_voided_completing_payment_reopens_once() -> None:
    request = request_for(12000)
    payment = uuid4()
    request.complete(payment_id=payment, paid=Money(12000), at=SENT, actor="patient")
    request.collect_events()
    later = SENT + timedelta(hours=2)
    assert request.reopen(payment_id=payment, reason="voided", at=later, actor="system:x")
    assert (request.status, request.paid_amount, request.payment_id, request.closed_at) == (
        RequestStatus.REQUESTED,
        None,
        None,
        None,
    )
    assert (request.owed, request.reopen_reason) == (Money(12000), "voided")
    assert not request.reopen(payment_id=payment, reason="voided", at=later, actor="system:x")
    assert types(request) == ["Reopened"]
    request.check_payable(Money(12000), later)  # payable again, in full


def test_a_request_reopened_after_its_expiry_expires_when_reopened() -> None:
    request = request_for(12000)
    payment = uuid4()
    request.complete(payment_id=payment, paid=Money(12000), at=SENT, actor="patient")
    late = SENT + timedelta(days=20)
    request.reopen(payment_id=payment, reason="voided", at=late, actor="system:x")
    with pytest.raises(RequestClosed):
        request.check_payable(Money(100), late)
    request.cancel(reason=CancelReason.EXPIRED, at=late, actor="system:expiry")
    assert request.closed_at == late  # not before the reopening it follows


def test_a_voided_part_payment_of_a_cancelled_request_is_no_longer_paid() -> None:
    request = request_for(12000)
    payment = uuid4()
    request.complete(payment_id=payment, paid=Money(5000), at=SENT, actor="patient")
    request.cancel(reason=CancelReason.STAFF, at=SENT, actor="user:1")
    assert request.reopen(payment_id=payment, reason="voided", at=SENT, actor="system:x")
    assert (request.status, request.paid_amount) == (RequestStatus.CANCELLED, None)


def test_a_request_reopened_behind_a_newer_one_is_cancelled_as_superseded() -> None:
    request = request_for(12000)
    payment, newer = uuid4(), uuid4()
    request.complete(payment_id=payment, paid=Money(12000), at=SENT, actor="patient")
    request.collect_events()
    request.reopen(
        payment_id=payment, reason="voided", at=SENT, actor="system:x", superseded_by=newer
    )
    assert (request.status, request.cancel_reason, request.superseded_by) == (
        RequestStatus.CANCELLED,
        CancelReason.SUPERSEDED,
        newer,
    )
    assert types(request) == ["Reopened", "Cancelled"]
