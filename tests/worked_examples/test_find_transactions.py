"""Worked example: an office finds a payment by the patient's name, by its amount or by
the card's last four, picks a date preset, and reads the totals of everything it found
(over every page, not only the first), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

DAY = 86400
DECLINE = "4000000000000002"


def patient(api: Api, first: str, last: str, number: str) -> str:
    body = {"pms_patient_id": number, "first_name": first, "last_name": last}
    response = api.post("/v1/patients", body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def paid(api: Api, amount: int, **extra: Any) -> str:
    response = api.pay(amount, **extra)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def found(api: Api, **params: Any) -> list[int]:
    response = api.get("/v1/transactions", params=params)
    assert response.status_code == 200, response.text
    return sorted(int(t["amount"]) for t in response.json()["items"])


def totals(api: Api, **params: Any) -> dict[str, Any]:
    response = api.get("/v1/transactions/totals", params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture
def office(api: Api) -> Api:
    okoye = patient(api, "Ruth", "Okoye", "P-1")
    li = patient(api, "Wei", "Li", "P-2")
    paid(api, 12500, patient_id=okoye)
    paid(api, 4000, patient_id=li)
    paid(api, 4242, patient_id=li)
    declined = api.pay(9900, card=DECLINE, patient_id=okoye)
    assert declined.status_code == 201, declined.text
    return api


def test_a_search_finds_by_name_amount_and_last_four(office: Api) -> None:
    assert found(office, q="okoye") == [9900, 12500]
    assert found(office, q="RUTH O") == [9900, 12500]
    assert found(office, q="125") == [12500]
    assert found(office, q="125.00") == [12500]
    assert found(office, q="$125") == [12500]
    assert found(office, q="40") == [4000]
    # four digits: a card's last four (every Visa here ends in 4242) or $4,242.00
    assert found(office, q="4242") == [4000, 4242, 12500]  # the declined card ends in 0002
    assert found(office, q="0002") == [9900]
    assert found(office, q="nobody") == []
    assert found(office, q="100%_") == []  # the wildcards of LIKE are plain text here
    assert found(office, q="99999999999999999999") == []  # no such amount, and no error


def test_totals_count_every_page_and_only_money_that_moved(office: Api) -> None:
    refund_of = paid(office, 10000)
    office.advance(DAY)  # the batch closes: the payments settle and can be refunded
    refunded = office.post(f"/v1/payments/{refund_of}/refund", {"amount": 2500})
    assert refunded.status_code == 200, refunded.text
    voided = paid(office, 700)
    assert office.post(f"/v1/payments/{voided}/refund").json()["kind"] == "void"

    everything = totals(office)
    assert everything["count"] == 6  # with the decline and the void, which move no money
    assert everything["collected_amount"] == 12500 + 4000 + 4242 + 10000
    assert everything["refunded_amount"] == 2500
    assert everything["net_amount"] == 12500 + 4000 + 4242 + 10000 - 2500
    # one page of two rows: the totals are the whole list's
    page = office.get("/v1/transactions", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    okoye = totals(office, q="okoye")
    assert (okoye["count"], okoye["collected_amount"], okoye["net_amount"]) == (2, 12500, 12500)
    assert totals(office, status="refunded")["net_amount"] == 7500


def test_date_presets_are_the_practice_calendar(office: Api) -> None:
    # the pinned clock: Wednesday 2026-03-04, 10:00 in New York
    def dates(period: str) -> tuple[str, str]:
        page = office.get("/v1/transactions", params={"period": period}).json()
        return page["from"], page["to"]

    assert dates("today") == ("2026-03-04", "2026-03-04")
    assert dates("yesterday") == ("2026-03-03", "2026-03-03")
    assert dates("this_week") == ("2026-03-02", "2026-03-04")
    assert dates("this_month") == ("2026-03-01", "2026-03-04")
    assert dates("last_month") == ("2026-02-01", "2026-02-28")
    assert found(office, period="today") == [4000, 4242, 9900, 12500]
    assert found(office, period="yesterday") == []
    assert totals(office, period="yesterday")["count"] == 0
    assert totals(office, period="this_week")["from"] == "2026-03-02"


def test_bad_searches_are_refused_in_words(api: Api) -> None:
    # a preset wins over dates sent with it
    both = api.get("/v1/transactions/totals", params={"period": "today", "from": "2026-03-01"})
    assert both.status_code == 200, both.text
    assert both.json()["from"] == both.json()["to"]
    unknown = api.get("/v1/transactions/totals", params={"period": "fortnight"})
    assert unknown.status_code == 422
    too_long = api.get("/v1/transactions", params={"q": "x" * 101})
    assert too_long.status_code == 422


def test_another_practice_finds_nothing_of_this_one(office: Api, api_for: Any) -> None:
    office.setup(name="Oak Dental")  # a second practice on the same service
    assert found(office, q="okoye") == []
    assert totals(office)["count"] == 0
