"""Batches close at the cut-off and become deposits, driven through the use cases
(tests/worked_examples/test_deposits.py shows the same through HTTP)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.payments import AssociationSource
from projections.deposits import DepositItemRow, DepositRow, deposits_of_batch_date
from services.app.reports import daily_close
from tests.conftest import PinnedClock
from tests.usecases.conftest import Office, open_office
from tests.usecases.memory import MemoryLedger


def adds_up(deposit: DepositRow, items: list[DepositItemRow]) -> bool:
    payments = sum(i["amount"] for i in items if i["kind"] == "payment")
    refunds = -sum(i["amount"] for i in items if i["kind"] == "refund")
    return (
        sum(i["net_amount"] for i in items) == deposit["net_amount"]
        and payments == deposit["gross_amount"]
        and refunds == deposit["refunds_amount"]
        and deposit["net_amount"]
        == deposit["gross_amount"] - deposit["refunds_amount"] - deposit["fees_amount"]
    )


def test_a_day_of_sales_a_void_and_a_refund_of_an_earlier_sale(office: Office) -> None:
    earlier = office.pay(10000)  # Wednesday; settles that night
    office.advance(days=1)  # Thursday 10:00
    first, mistaken, third = office.pay(5000), office.pay(7500), office.pay(12000)
    office.refund(mistaken.id)
    office.refund(earlier.id, 4000)

    office.advance(days=1)  # Friday 10:00: Thursday's batch closed at 23:59

    thursday, items = office.deposit_of(first.id)
    assert (thursday["batch_date"], thursday["deposit_date"]) == ("2026-03-05", "2026-03-06")
    assert thursday["gross_amount"] == 5000 + 12000  # the void is in no batch
    assert thursday["refunds_amount"] == 4000  # in the batch open when it was made
    assert (thursday["fees_amount"], thursday["net_amount"]) == (0, 13000)
    assert thursday["account"] == "Checking ****6789"
    assert {i["payment_id"] for i in items} == {str(first.id), str(third.id), str(earlier.id)}
    assert adds_up(thursday, items)
    assert office.transactions()[mistaken.id]["deposit_id"] is None


def test_a_friday_batch_is_deposited_on_monday_and_paid_then(office: Office) -> None:
    office.advance(days=2)  # Friday 6 March
    payment = office.pay(25000)
    office.advance(days=1)
    deposit, _ = office.deposit_of(payment.id)
    assert (deposit["deposit_date"], deposit["status"]) == ("2026-03-09", "scheduled")
    office.advance(days=2)  # Monday 10:00
    assert office.deposit_of(payment.id)[0]["status"] == "paid"


def test_a_batch_before_a_bank_holiday_is_deposited_after_it() -> None:
    clock = PinnedClock(datetime(2026, 11, 25, 15, 0, tzinfo=UTC))  # the day before Thanksgiving
    office = open_office(MemoryLedger(clock), clock)
    payment = office.pay(8000)
    office.advance(days=1)
    assert office.deposit_of(payment.id)[0]["deposit_date"] == "2026-11-27"


def test_a_batch_of_refunds_only_is_a_withdrawal(office: Office) -> None:
    payment = office.pay(20000)
    office.advance(days=1)
    refund = office.refund(payment.id, 8000)
    office.advance(days=1)
    [withdrawal] = office.ledger.reads(deposits_of_batch_date, office.id, "2026-03-05")
    assert (withdrawal["gross_amount"], withdrawal["net_amount"]) == (0, -8000)
    _, items = office.deposit_of(payment.id)  # the payment's own deposit, Wednesday's
    assert [i["amount"] for i in items] == [20000]
    assert refund.refund_id is not None


def test_a_day_without_activity_makes_no_deposit(office: Office) -> None:
    work = office.advance(days=3)
    assert work.batches_closed == 0
    for day in ("2026-03-04", "2026-03-05", "2026-03-06"):
        assert office.ledger.reads(deposits_of_batch_date, office.id, day) == []


def test_fees_are_itemised_and_the_deposit_still_adds_up(office: Office) -> None:
    office.settings(fee_rate_bps=290)
    for amount in (10000, 3333, 99):
        last = office.pay(amount)
    office.advance(days=1)
    deposit, items = office.deposit_of(last.id)
    # 2.9% of each sale, rounded half up: $2.90, $0.97 (96.657), $0.03 (2.871)
    assert {i["amount"]: i["fee_amount"] for i in items} == {10000: 290, 3333: 97, 99: 3}
    assert (deposit["fees_amount"], deposit["net_amount"]) == (390, 13432 - 390)
    assert adds_up(deposit, items)


def test_the_daily_close_lists_what_is_not_yet_in_the_pms(office: Office) -> None:
    posted, waiting = office.pay(5000), office.pay(7000)
    office.associate(posted.id)
    office.advance(days=1)

    report = daily_close(office.ledger, office.id, date(2026, 3, 4))
    assert report["batch"]["gross_amount"] == report["ledger"]["payments_amount"] == 12000
    assert report["pms"]["associated_amount"] == 5000
    assert not report["balanced"]
    assert [(d["kind"], d["payment_id"], d["amount"]) for d in report["differences"]] == [
        ("payment_not_associated", str(waiting.id), 7000)
    ]

    office.associate(waiting.id, source=AssociationSource.INBOX)
    assert daily_close(office.ledger, office.id, date(2026, 3, 4))["balanced"]
