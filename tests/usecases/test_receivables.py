"""Accounts receivable: the PMS's balances less what the ledger collected since, snoozes,
bulk requests with the office's eligibility rules, driven through the use cases
(tests/worked_examples/test_receivables.py and test_views_follow_the_money.py show the
same through HTTP)."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import pytest

from domain.errors import Conflict
from domain.patients import Patient
from domain.payments import Payment
from domain.receivables import AmountRule, Balance, Eligibility, SnoozeReason
from domain.requests import Channel
from projections.receivables import ArQuery, ArRow, list_ar, list_filters
from services.app.ar_filters import parse_filter
from services.app.receivables import (
    bulk_send,
    delete_filter,
    record_balance,
    save_filter,
    saved_filter_values,
    snooze,
)
from tests.usecases.conftest import ADMIN, APPROVED, DECLINED, Office


def owes(
    office: Office,
    patient: Patient,
    current: int = 0,
    over_90: int = 0,
    last_paid: date | None = date(2026, 2, 10),
) -> None:
    """The PMS's balance of the patient, as `PUT /v1/patients/{id}/balance` records it."""
    values: dict[str, Any] = {
        "total": current + over_90,
        "bal_0_30": current,
        "bal_31_60": 0,
        "bal_61_90": 0,
        "bal_over_90": over_90,
        "insurance_estimate": 0,
        "on_payment_plan": False,
        "is_guarantor": True,
        "last_payment_date": last_paid,
    }
    record_balance(
        office.ledger,
        practice_id=office.id,
        patient_id=patient.id,
        balance=Balance.from_snapshot(**values),
        source="api",
        actor=ADMIN,
    )


def rows(office: Office, query: ArQuery | None = None) -> dict[UUID, ArRow]:
    found = office.ledger.reads(
        list_ar,
        office.id,
        query or ArQuery(),
        today="2026-03-04",
        sort="-total",
        after=None,
        limit=None,
    )
    return {UUID(r["id"]): r for r in found}


def snoozed(office: Office, patient: Patient) -> None:
    snooze(
        office.ledger,
        practice_id=office.id,
        patient_id=patient.id,
        until=date(2026, 4, 15),
        reason=SnoozeReason.CLAIM_NOT_STARTED,
        note=None,
        actor=ADMIN,
    )


def paid_by(office: Office, patient: Patient, amount: int, number: str = APPROVED) -> Payment:
    return office.pay(amount, number, patient_id=patient.id)


def test_the_balance_is_the_pms_snapshot_less_what_was_collected_since(office: Office) -> None:
    rosa = office.patient()
    owes(office, rosa, current=30000)
    office.clock.move(hours=1)

    paid_by(office, rosa, 12000)

    row = rows(office)[rosa.id]
    assert (row["total"], row["collected_since"], row["last_payment_date"]) == (
        18000,
        12000,
        "2026-03-04",
    )


def test_a_voided_payment_is_owed_again_and_is_nobodys_last_payment(office: Office) -> None:
    rosa = office.patient()
    owes(office, rosa, current=30000)
    office.clock.move(hours=1)
    paid_by(office, rosa, 12000, DECLINED)
    assert rows(office)[rosa.id]["last_payment_date"] == "2026-02-10"  # a decline never was

    payment = paid_by(office, rosa, 12000)
    office.refund(payment.id)

    row = rows(office)[rosa.id]
    assert (row["total"], row["collected_since"], row["last_payment_date"]) == (
        30000,
        0,
        "2026-02-10",
    )


def test_a_payment_refunded_in_full_is_nobodys_last_payment(office: Office) -> None:
    rosa = office.patient()
    owes(office, rosa, current=30000)
    office.clock.move(hours=1)
    part, whole = paid_by(office, rosa, 5000), paid_by(office, rosa, 12000)
    office.advance(days=1)  # the batch closed: a refund now, not a void
    assert rows(office)[rosa.id]["last_payment_date"] == "2026-03-04"

    office.refund(whole.id)
    assert rows(office)[rosa.id]["last_payment_date"] == "2026-03-04"  # $50.00 still stands
    office.refund(part.id, 2000)
    assert rows(office)[rosa.id]["last_payment_date"] == "2026-03-04"  # $30.00 of it stands
    office.refund(part.id)
    row = rows(office)[rosa.id]
    assert (row["total"], row["last_payment_date"]) == (30000, "2026-02-10")


def test_the_pms_date_of_a_payment_given_back_after_a_sync_is_not_last_paid(
    office: Office,
) -> None:
    """The PMS counted the payment (posted, then synced: its own last payment date is the
    payment's day); the payment is then refunded in full, and the refund posted and synced
    too (the PMS's date may be the payment's or its negative entry's day). Neither is a
    payment that stands; the family's payment before it is not known here."""
    rosa = office.patient()
    owes(office, rosa, current=30000)
    office.clock.move(hours=1)
    payment = paid_by(office, rosa, 12000)
    office.associate(payment.id)
    office.clock.move(hours=1)
    owes(office, rosa, current=18000, last_paid=date(2026, 3, 4))  # the PMS's sync
    assert rows(office)[rosa.id]["last_payment_date"] == "2026-03-04"

    office.advance(days=1)
    office.refund(payment.id)
    assert rows(office)[rosa.id]["last_payment_date"] is None  # not the PMS's 2026-03-04

    owes(office, rosa, current=30000, last_paid=date(2026, 3, 5))  # the refund's entry's day
    assert rows(office)[rosa.id]["last_payment_date"] is None
    owes(office, rosa, current=30000, last_paid=date(2026, 3, 4))
    assert rows(office)[rosa.id]["last_payment_date"] is None

    # A payment the PMS has of another day (cash at the desk) is its date again.
    owes(office, rosa, current=25000, last_paid=date(2026, 3, 6))
    assert rows(office)[rosa.id]["last_payment_date"] == "2026-03-06"


def test_a_lost_dispute_is_owed_again(office: Office) -> None:
    rosa = office.patient()
    owes(office, rosa, current=30000)
    office.clock.move(hours=1)
    paid = paid_by(office, rosa, 12000)
    office.advance(days=1)

    payment = office.payment(paid.id)
    payment.record_dispute(
        dispute_id="dp_rosa",
        reason="fraudulent",
        amount=12000,
        evidence_due_by=None,
        status="lost",
        processor_event_id="evt_dispute_lost",
        at=office.clock.now(),
        actor="processor",
    )
    office.ledger.save(payment)

    row = rows(office)[rosa.id]
    assert (row["total"], row["last_payment_date"]) == (30000, "2026-03-04")


def test_a_filter_finds_over_90_days_above_200_dollars_not_snoozed(office: Office) -> None:
    ana, ben = office.patient("1", "Ana"), office.patient("2", "Ben")
    cat, dev = office.patient("3", "Cat"), office.patient("4", "Dev")
    owes(office, ana, over_90=25000)
    owes(office, ben, over_90=15000, current=90000)
    owes(office, cat, over_90=40000)
    owes(office, dev, current=50000)
    snoozed(office, cat)

    query, _ = parse_filter({"min_bal_over_90": 20001, "snoozed": False})
    assert list(rows(office, query)) == [ana.id]
    query, _ = parse_filter({"min_bal_over_90": 20001})
    assert list(rows(office, query)) == [cat.id, ana.id]


def test_a_bulk_send_sends_to_the_eligible_and_says_why_it_skips_the_others(
    office: Office,
) -> None:
    eligible = [office.patient(str(n), f"P{n}") for n in range(1, 4)]
    asleep = office.patient("7", "Sam")
    small = office.patient("8", "Tim")
    for patient in [*eligible, asleep]:
        owes(office, patient, current=30000)
    owes(office, small, current=1500)
    snoozed(office, asleep)
    selected = [p.id for p in [*eligible, asleep, small]]

    def send_all() -> dict[str, tuple[str, str | None]]:
        outcomes = bulk_send(
            office.ledger,
            practice_id=office.id,
            patient_ids=selected,
            raw_filter=None,
            channel="sms",
            rule=AmountRule.TOTAL,
            rules=Eligibility(min_balance=2000),
            actor=ADMIN,
            key="march-run",
        )
        return {o.patient_id: (o.outcome, o.reason) for o in outcomes}

    answer = send_all()
    assert answer == {
        **{str(p.id): ("sent", None) for p in eligible},
        str(asleep.id): ("skipped", "snoozed"),
        str(small.id): ("skipped", "below_minimum"),
    }
    assert len(office.ledger.sms.sent) == 3
    assert send_all() == answer  # the same key again sends nothing more
    assert len(office.ledger.sms.sent) == 3


def test_a_single_request_to_a_snoozed_patient_needs_an_override(office: Office) -> None:
    ana = office.patient()
    owes(office, ana, current=5000)
    snoozed(office, ana)

    with pytest.raises(Conflict):
        office.request(ana, 5000, Channel.EMAIL)
    office.request(ana, 5000, Channel.EMAIL, override_snooze=True)
    assert rows(office)[ana.id]["last_request_status"] == "requested"


def test_a_saved_filter_reapplied_later_reflects_new_balances(office: Office) -> None:
    ana, ben = office.patient("1", "Ana"), office.patient("2", "Ben")
    owes(office, ana, over_90=25000)
    owes(office, ben, over_90=5000)
    saved = save_filter(
        office.ledger,
        practice_id=office.id,
        name="Over 90, above $200",
        raw={"min_bal_over_90": 20001},
        actor=ADMIN,
    )

    def found() -> list[UUID]:
        values = saved_filter_values(office.ledger, office.id, saved.id)
        return list(rows(office, parse_filter(values)[0]))

    assert found() == [ana.id]
    owes(office, ana, over_90=10000)  # a week later the PMS reports new balances
    owes(office, ben, over_90=30000)
    assert found() == [ben.id]
    assert [f["name"] for f in office.ledger.reads(list_filters, office.id)] == [
        "Over 90, above $200"
    ]
    delete_filter(office.ledger, practice_id=office.id, filter_id=saved.id, actor=ADMIN)
    assert office.ledger.reads(list_filters, office.id) == []
