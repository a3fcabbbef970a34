"""The refund action, driven through the use cases: a void before the batch closes, a
refund after, never beyond what remains (tests/worked_examples/test_void_and_refund.py
shows the same through HTTP)."""

from __future__ import annotations

import pytest

from domain.errors import Conflict, RefundExceedsRemaining
from domain.payments import ReversalKind, Status
from projections.transactions import unassociated_summary
from services.app.payments import EmailNotSent, send_receipt
from tests.usecases.conftest import ADMIN, DECLINED, Office


def test_a_payment_is_approved_and_a_declined_card_moves_no_money(office: Office) -> None:
    paid = office.pay(12500)
    declined = office.pay(12500, DECLINED)

    assert (paid.status, paid.amount.cents, paid.card.last4) == (Status.APPROVED, 12500, "4242")
    assert (declined.status, declined.decline_reason) == (Status.DECLINED, "card declined")
    assert office.money_moved() == {"charge": 1}


def test_a_same_day_refund_is_a_void_for_the_full_amount(office: Office) -> None:
    payment = office.pay(12500)
    office.advance(hours=5)  # 15:00: the visit is cancelled

    answer = office.refund(payment.id)

    assert (answer.kind, answer.amount) == (ReversalKind.VOID, 12500)
    assert answer.payment.status == Status.VOIDED and answer.payment.refunds == []
    office.advance(hours=10)  # past the cut-off: nothing of it settles
    after = office.payment(payment.id)
    assert (after.status, after.batch_id) == (Status.VOIDED, None)
    summary = office.ledger.reads(unassociated_summary, office.id)
    assert summary["count"] == 0  # nothing is left to post to the PMS


def test_a_partial_refund_after_settlement_then_the_rest(office: Office) -> None:
    payment = office.pay(30000)
    office.advance(hours=23)  # Thursday 09:00: last night's batch closed
    assert office.payment(payment.id).status == Status.SETTLED

    part = office.refund(payment.id, 8000)
    assert (part.kind, part.amount, part.payment.refunded.cents) == (
        ReversalKind.REFUND,
        8000,
        8000,
    )

    rest = office.refund(payment.id)
    assert (rest.kind, rest.amount, rest.payment.remaining.cents) == (ReversalKind.REFUND, 22000, 0)


def test_a_refund_beyond_what_remains_is_refused_and_records_nothing(office: Office) -> None:
    payment = office.pay(5000)
    office.advance(hours=24)
    office.refund(payment.id, 3000)

    with pytest.raises(RefundExceedsRemaining) as refused:
        office.refund(payment.id, 2500)

    assert "$25.00" in refused.value.detail and "$20.00" in refused.value.detail
    after = office.payment(payment.id)
    assert (after.refunded.cents, len(after.refunds)) == (3000, 1)


def test_a_voided_payment_cannot_be_voided_again(office: Office) -> None:
    payment = office.pay(4000)
    office.refund(payment.id)
    with pytest.raises(Conflict):
        office.refund(payment.id)


def test_a_payment_at_2358_settles_that_night_and_one_at_0001_the_next(office: Office) -> None:
    office.clock.move(hours=13, minutes=58)  # Wednesday 23:58 in New York
    late = office.pay(1000)
    office.clock.move(minutes=3)  # Thursday 00:01
    early = office.pay(2000)
    office.advance(seconds=60)

    assert office.payment(late.id).status == Status.SETTLED
    assert office.payment(early.id).status == Status.APPROVED
    answer = office.refund(early.id)
    assert answer.kind == ReversalKind.VOID


def test_a_receipt_copy_is_emailed_and_its_sending_recorded(office: Office) -> None:
    payment = office.pay(30000)
    office.advance(days=1)
    refund = office.refund(payment.id, 8000)

    send_receipt(
        office.ledger,
        practice_id=office.id,
        payment_id=payment.id,
        email="rosa@example.com",
        refund_id=refund.refund_id,
        actor=ADMIN,
    )

    [email] = office.ledger.email.sent
    assert (email.to, email.subject) == ("rosa@example.com", "Elm Dental: refund receipt $80.00")
    assert "Card: Visa ending in 4242" in email.body and "4242424242424242" not in email.body
    assert "Status: refund pending settlement" in email.body
    assert office.payment(payment.id).receipts_sent == 1


def test_a_receipt_the_mail_server_refused_is_not_recorded(office: Office) -> None:
    payment = office.pay(30000)
    office.ledger.email.failing = 1
    with pytest.raises(EmailNotSent, match="nothing was recorded"):
        send_receipt(
            office.ledger,
            practice_id=office.id,
            payment_id=payment.id,
            email="rosa@example.com",
            refund_id=None,
            actor=ADMIN,
        )
    assert office.payment(payment.id).receipts_sent == 0
