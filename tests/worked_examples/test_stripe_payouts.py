"""Worked examples: Stripe's payouts matched with Elm Dental's deposits.

Each batch is an expected deposit; Stripe pays out on its own schedule. When a payout
arrives (`payout.paid`), its balance transactions are matched to the deposits' lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.conftest import Api, PinnedClock
from tests.fakes.stripe import FakeStripe, sign
from tests.stripe_fixtures import served_fake_stripe, stripe_api  # noqa: F401

DAY = 24 * 3600
SECRET = "whsec_test_payledger"
#: Monday 9 March 2026, as Stripe states an arrival date (midnight UTC)
ARRIVAL = int(datetime(2026, 3, 9, tzinfo=UTC).timestamp())


def deliver(api: Api, event: dict[str, Any]) -> None:
    payload = json.dumps(event).encode()
    answer = api.client.post(
        "/webhooks/stripe", content=payload, headers={"Stripe-Signature": sign(payload, SECRET)}
    )
    assert answer.status_code == 200, answer.text


def pay(api: Api, amount: int) -> dict[str, Any]:
    body = {"method": "virtual_terminal", "amount": amount, "payment_method": "pm_card_visa"}
    answer = api.post("/v1/payments", body)
    assert answer.status_code == 201, answer.text
    paid: dict[str, Any] = answer.json()
    return paid


def deposits(api: Api) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = api.get(
        "/v1/deposits", params={"from": "2026-03-01", "to": "2026-03-31"}
    ).json()["items"]
    return sorted(rows, key=lambda d: d["batch_date"])


def test_one_payout_matched_to_two_batches_with_stripes_fees(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe, backend: str
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe, backend)
    # Wednesday: $100.00 and $50.00; Thursday: $200.00, and $30.00 back of Wednesday's first.
    first = pay(api, 10000)
    pay(api, 5000)
    api.advance(DAY)
    pay(api, 20000)
    assert api.post(f"/v1/payments/{first['id']}/refund", {"amount": 3000}).status_code == 200
    api.advance(DAY)
    wednesday, thursday = deposits(api)
    # The expected deposits already carry Stripe's fee of each sale (2.9% + 30 cents).
    assert wednesday["fees_amount"] == (290 + 30) + (145 + 30)
    assert thursday["fees_amount"] == 580 + 30
    assert wednesday["status"] == thursday["status"] == "scheduled"

    payout = fake_stripe.pay_out(account, ARRIVAL)
    assert payout["amount"] == wednesday["net_amount"] + thursday["net_amount"]
    deliver(api, fake_stripe.event("payout.paid", payout, account))

    for deposit in deposits(api):
        assert deposit["status"] == "paid"
        assert deposit["payout"]["id"] == payout["id"]
        assert deposit["payout"]["arrival_date"] == "2026-03-09"
        assert deposit["payout"]["differences"] == []
    assert deposits(api)[0]["payout"]["fees_amount"] == wednesday["fees_amount"]
    report = api.get("/v1/reports/daily-close", params={"date": "2026-03-04"}).json()
    assert not [d for d in report["differences"] if d["kind"].startswith("payout")]


def test_a_payout_missing_an_item_is_listed_in_the_daily_close(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe, backend: str
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe, backend)
    carried = pay(api, 10000)
    left_out = pay(api, 4000)
    api.advance(DAY)
    charge = fake_stripe.objects[fake_stripe.objects[carried["transaction_id"]]["latest_charge"]]
    payout = fake_stripe.pay_out(account, ARRIVAL, only={charge["id"]})
    deliver(api, fake_stripe.event("payout.paid", payout, account))
    (deposit,) = deposits(api)
    assert deposit["payout"]["id"] == payout["id"]
    report = api.get("/v1/reports/daily-close", params={"date": "2026-03-04"}).json()
    missing = [d for d in report["differences"] if d["kind"] == "payout_missing_item"]
    assert missing == [
        {
            "kind": "payout_missing_item",
            "payment_id": left_out["id"],
            "refund_id": None,
            "amount": 4000,
            "detail": "in the deposit, not in Stripe's payout",
            "deposit_id": deposit["id"],
            "payout_id": payout["id"],
        }
    ]


def test_a_failed_payout_is_shown_on_the_deposit(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe, backend: str
) -> None:
    api, account = stripe_api(api_for, clock, fake_stripe, backend)
    pay(api, 10000)
    api.advance(DAY)
    payout = fake_stripe.pay_out(account, ARRIVAL, status="failed", failure_code="account_closed")
    deliver(api, fake_stripe.event("payout.failed", payout, account))
    (deposit,) = deposits(api)
    assert deposit["status"] == "scheduled"
    assert deposit["payout"]["status"] == "failed"
    assert deposit["payout"]["failure"].startswith("account_closed")
    report = api.get("/v1/reports/daily-close", params={"date": "2026-03-04"}).json()
    assert "payout_failed" in [d["kind"] for d in report["differences"]]


def test_a_returned_payouts_money_paid_out_again_is_listed_on_the_failed_deposit(
    api_for: Callable[..., Api], clock: PinnedClock, fake_stripe: FakeStripe, backend: str
) -> None:
    """The bank returns a paid payout: Stripe puts its amount back in the balance (a
    `payout_failure` balance transaction) and a later payout carries it. The deposit
    stays failed; the later payout's money is listed there, not lost and not matched
    to the sale again."""
    api, account = stripe_api(api_for, clock, fake_stripe, backend)
    pay(api, 10000)
    api.advance(DAY)
    first = fake_stripe.pay_out(account, ARRIVAL)
    deliver(api, fake_stripe.event("payout.paid", first, account))
    returned = fake_stripe.fail_payout(first["id"])
    assert returned["failure_balance_transaction"]
    deliver(api, fake_stripe.event("payout.failed", returned, account))
    again = fake_stripe.pay_out(account, ARRIVAL + 2 * DAY)
    assert again["amount"] == first["amount"]
    deliver(api, fake_stripe.event("payout.paid", again, account))
    (deposit,) = deposits(api)
    assert deposit["payout"]["id"] == first["id"]
    assert deposit["payout"]["status"] == "failed"
    (other,) = [d for d in deposit["payout"]["differences"] if d.get("payout_id") == again["id"]]
    assert (other["kind"], other["stripe_type"]) == ("payout_other_item", "payout_failure")
    assert other["amount"] == first["amount"]
