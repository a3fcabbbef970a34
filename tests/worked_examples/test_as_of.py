"""Worked example: an auditor asks what the reports showed at a past moment."""

from __future__ import annotations

from tests.conftest import Api

DAY = 86400


def test_reports_as_they_stood_before_a_refund_and_a_settlement(api: Api) -> None:
    payment = api.pay(20000).json()
    before_close = api.get("/v1/sandbox/clock").json()["now"]
    api.advance(DAY)  # Wednesday's batch closes; Thursday 10:00
    api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 5000})

    then = api.get("/v1/reports/transactions", params={"as_of": before_close}).json()
    [row] = then["items"]
    assert (row["status"], row["refunded_amount"], row["batch_id"]) == ("approved", 0, None)
    now = api.get("/v1/transactions").json()["items"][0]
    assert (now["status"], now["refunded_amount"]) == ("settled", 5000)

    deposits_then = api.get("/v1/reports/deposits", params={"as_of": before_close}).json()
    assert deposits_then["items"] == []
    deposits_now = api.get("/v1/reports/deposits", params={"as_of": "2030-01-01T00:00:00Z"}).json()[
        "items"
    ]
    assert [d["net_amount"] for d in deposits_now] == [20000]
    assert api.get("/v1/reports/nothing", params={"as_of": before_close}).status_code == 404
    assert api.get("/v1/reports/transactions").status_code == 422  # as_of is required
