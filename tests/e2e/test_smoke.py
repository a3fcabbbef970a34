from tests.conftest import Api


def test_collect_void_settle_refund(api: Api) -> None:
    paid = api.pay(10000).json()
    assert paid["status"] == "approved"
    voided = api.post(f"/v1/payments/{paid['id']}/refund").json()
    assert voided["kind"] == "void"
    second = api.pay(20000).json()
    api.advance(86400)
    refund = api.post(f"/v1/payments/{second['id']}/refund", {"amount": 5000})
    assert refund.status_code == 200, refund.text
    assert refund.json()["kind"] == "refund"
    assert refund.json()["payment"]["refunded_amount"] == 5000
