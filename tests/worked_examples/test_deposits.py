"""Worked examples: how batches become deposits, as an office manager reconciles them.

Elm Dental is in New York, its batch closes at 23:59 and its deposits go to
"Checking ****6789". The clock starts on Wednesday 4 March 2026, 10:00 local.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.conftest import Api, PinnedClock

HOUR = 3600
DAY = 24 * HOUR


def deposit_of(api: Api, payment_id: str) -> dict[str, Any]:
    payment = api.get(f"/v1/payments/{payment_id}").json()
    assert payment["deposit_id"], payment
    deposit: dict[str, Any] = api.get(f"/v1/deposits/{payment['deposit_id']}").json()
    return deposit


def assert_adds_up(deposit: dict[str, Any]) -> None:
    items = deposit["items"]
    assert sum(i["net_amount"] for i in items) == deposit["net_amount"]
    assert sum(i["amount"] for i in items if i["kind"] == "payment") == deposit["gross_amount"]
    assert -sum(i["amount"] for i in items if i["kind"] == "refund") == deposit["refunds_amount"]
    assert deposit["net_amount"] == (
        deposit["gross_amount"] - deposit["refunds_amount"] - deposit["fees_amount"]
    )


def test_a_day_with_three_sales_a_void_and_a_refund_of_an_earlier_sale(api: Api) -> None:
    # Wednesday: a $100.00 cleaning. It settles in Wednesday night's batch.
    earlier = api.pay(10000).json()
    api.advance(DAY)  # Thursday 10:00

    # Thursday: three sales; one of them is voided the same day...
    first = api.pay(5000).json()
    mistaken = api.pay(7500).json()
    third = api.pay(12000).json()
    assert api.post(f"/v1/payments/{mistaken['id']}/refund").json()["kind"] == "void"
    # ...and $40.00 of Wednesday's cleaning is refunded.
    assert api.post(f"/v1/payments/{earlier['id']}/refund", {"amount": 4000}).json()["kind"] == (
        "refund"
    )

    api.advance(DAY)  # Friday 10:00: Thursday's batch closed at 23:59.
    thursday = deposit_of(api, first["id"])
    assert thursday["batch_date"] == "2026-03-05"
    assert thursday["deposit_date"] == "2026-03-06"  # the next business day
    assert thursday["gross_amount"] == 5000 + 12000  # the void is in no batch
    assert thursday["refunds_amount"] == 4000  # settles in the batch open when it was made
    assert thursday["fees_amount"] == 0
    assert thursday["net_amount"] == 13000
    assert thursday["account"] == "Checking ****6789"
    assert {i["payment_id"] for i in thursday["items"]} == {first["id"], third["id"], earlier["id"]}
    assert_adds_up(thursday)

    voided = api.get(f"/v1/payments/{mistaken['id']}").json()
    assert voided["batch_id"] is None and voided["deposit_id"] is None
    listed = {t["id"]: t["deposit_id"] for t in api.get("/v1/transactions").json()["items"]}
    assert listed[first["id"]] == listed[third["id"]] == thursday["id"]
    assert listed[mistaken["id"]] is None


def test_a_friday_batch_is_deposited_on_monday(api: Api) -> None:
    api.advance(2 * DAY)  # Friday 6 March, 10:00
    payment = api.pay(25000).json()
    api.advance(DAY)  # Saturday: the batch closed Friday night
    deposit = deposit_of(api, payment["id"])
    assert (deposit["batch_date"], deposit["deposit_date"]) == ("2026-03-06", "2026-03-09")
    assert deposit["status"] == "scheduled"
    api.advance(2 * DAY)  # Monday 10:00: paid
    assert api.get(f"/v1/deposits/{deposit['id']}").json()["status"] == "paid"


def test_a_batch_closing_before_a_holiday_is_deposited_after_it(
    api_for: Callable[..., Api],
) -> None:
    # Wednesday 25 November 2026, the day before Thanksgiving.
    clock = PinnedClock(datetime(2026, 11, 25, 15, 0, tzinfo=UTC))
    api = api_for("sqlite", clock).setup()
    payment = api.pay(8000).json()
    api.advance(DAY)
    deposit = deposit_of(api, payment["id"])
    assert deposit["deposit_date"] == "2026-11-27"  # Friday; Thursday is a bank holiday


def test_a_friday_before_memorial_day_is_deposited_on_tuesday(
    api_for: Callable[..., Api],
) -> None:
    clock = PinnedClock(datetime(2026, 5, 22, 15, 0, tzinfo=UTC))
    api = api_for("sqlite", clock).setup()
    payment = api.pay(8000).json()
    api.advance(DAY)
    assert deposit_of(api, payment["id"])["deposit_date"] == "2026-05-26"


def test_a_batch_with_only_refunds_is_a_withdrawal(api: Api) -> None:
    payment = api.pay(20000).json()
    api.advance(DAY)  # Thursday: Wednesday's sale has settled
    refund = api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 8000}).json()
    api.advance(DAY)  # Friday: Thursday's batch had nothing but the refund
    deposits = api.get("/v1/deposits", params={"from": "2026-03-06", "to": "2026-03-06"}).json()
    [withdrawal] = deposits["items"]
    assert withdrawal["kind"] == "withdrawal"
    assert withdrawal["gross_amount"] == 0
    assert withdrawal["refunds_amount"] == 8000
    assert withdrawal["net_amount"] == -8000
    detail = api.get(f"/v1/deposits/{withdrawal['id']}").json()
    assert [(i["kind"], i["refund_id"], i["amount"]) for i in detail["items"]] == [
        ("refund", refund["refund_id"], -8000)
    ]


def test_a_day_without_activity_makes_no_deposit(api: Api) -> None:
    api.advance(3 * DAY)
    assert api.get("/v1/deposits").json()["items"] == []


def test_payments_at_2358_and_0001_land_in_different_deposits(api: Api, clock: PinnedClock) -> None:
    clock.move(hours=13, minutes=58)  # Wednesday 23:58
    late = api.pay(1000).json()
    clock.move(minutes=3)  # Thursday 00:01
    early = api.pay(2000).json()
    api.advance(DAY)
    wednesday, thursday = deposit_of(api, late["id"]), deposit_of(api, early["id"])
    assert (wednesday["batch_date"], wednesday["deposit_date"]) == ("2026-03-04", "2026-03-05")
    assert (thursday["batch_date"], thursday["deposit_date"]) == ("2026-03-05", "2026-03-06")


def test_fees_are_itemised_and_the_deposit_still_adds_up(api: Api) -> None:
    settings = api.client.patch(
        f"/v1/practices/{api.practice_id}/settings",
        json={"fee_rate_bps": 290},
        headers=api.admin,
    )
    assert settings.status_code == 200, settings.text
    for amount in (10000, 3333, 99):
        api.pay(amount)
    api.advance(DAY)
    [deposit] = api.get("/v1/deposits").json()["items"]
    detail = api.get(f"/v1/deposits/{deposit['id']}").json()
    # 2.9% of each sale, rounded half up: $2.90, $0.97 (96.657), $0.03 (2.871)
    fees = {i["amount"]: i["fee_amount"] for i in detail["items"]}
    assert fees == {10000: 290, 3333: 97, 99: 3}
    assert deposit["fees_amount"] == 390
    assert deposit["net_amount"] == 10000 + 3333 + 99 - 390
    assert_adds_up(detail)


def test_the_daily_close_lists_what_is_not_yet_in_the_pms(api: Api) -> None:
    associated = api.pay(5000).json()
    api.post(f"/v1/payments/{associated['id']}/associate", {"source": "manual"})
    waiting = api.pay(7000).json()
    api.advance(DAY)
    report = api.get("/v1/reports/daily-close", params={"date": "2026-03-04"}).json()
    assert report["batch"]["gross_amount"] == 12000
    assert report["ledger"]["payments_amount"] == 12000
    assert report["pms"]["associated_amount"] == 5000
    assert report["balanced"] is False
    assert report["differences"] == [
        {
            "kind": "payment_not_associated",
            "payment_id": waiting["id"],
            "amount": 7000,
            "occurred_at": waiting["occurred_at"],
            "detail": "payment not yet in the PMS",
        }
    ]
    api.post(f"/v1/payments/{waiting['id']}/associate", {"source": "inbox"})
    assert api.get("/v1/reports/daily-close", params={"date": "2026-03-04"}).json()["balanced"]


def test_deposits_export_as_csv_with_their_items(api: Api) -> None:
    api.pay(12345)
    api.pay(500)
    api.advance(DAY)
    response = api.get("/v1/exports/deposits.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.strip().splitlines()
    assert lines[0].startswith("deposit_id,deposit_date,status")
    assert len(lines) == 3  # a header and one line per item
    assert ",123.45," in lines[1] or ",123.45," in lines[2]
    assert api.get("/v1/exports/nothing.csv").status_code == 404
