"""Worked example: what needs posting is defined once, so the badge, the Post to Ledger
queue and the `association=unassociated` list agree, over two months of payments,
refunds, voids and declines in a Dentrix office (which posts everything by hand)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.conftest import Api, PinnedClock

DAY = 86400
DECLINE = "4000000000000002"


def all_pages(api: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.get(
            path, params={**params, "limit": 3, **({"cursor": cursor} if cursor else {})}
        )
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def month_of_activity(api: Api, patient_id: str) -> dict[str, str]:
    """Posted and unposted payments, a decline, voids before and after posting, refunds
    posted and not: what each one is, by its payment id."""
    made: dict[str, str] = {}

    def pay(amount: int, card: str = "4242424242424242") -> str:
        response = api.pay(amount, card=card, patient_id=patient_id)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def post(payment_id: str, **body: Any) -> None:
        marked = api.post(f"/v1/payments/{payment_id}/associate", {"source": "manual", **body})
        assert marked.status_code == 200, marked.text

    made[pay(1000)] = "unposted payment"
    posted = pay(2000)
    post(posted)
    made[posted] = "posted payment"
    made[pay(3000, DECLINE)] = "decline"
    voided = pay(4000)
    api.post(f"/v1/payments/{voided}/refund")
    made[voided] = "voided before posting"
    posted_then_voided = pay(5000)
    post(posted_then_voided)
    api.post(f"/v1/payments/{posted_then_voided}/refund")
    made[posted_then_voided] = "posted, then voided"
    void_posted = pay(5500)
    post(void_posted)
    api.post(f"/v1/payments/{void_posted}/refund")
    post(void_posted, void=True)
    made[void_posted] = "posted, voided, void posted"
    refunded_unposted = pay(6000)
    refunded_posted = pay(7000)
    post(refunded_posted)
    api.advance(DAY)  # the batch closes: refunds from here on
    api.post(f"/v1/payments/{refunded_unposted}/refund", {"amount": 600})
    made[refunded_unposted] = "unposted payment, unposted refund"
    refund = api.post(f"/v1/payments/{refunded_posted}/refund", {"amount": 700}).json()
    made[refunded_posted] = "posted payment, unposted refund"
    all_done = pay(8000)
    post(all_done)
    api.advance(DAY)
    done_refund = api.post(f"/v1/payments/{all_done}/refund", {"amount": 800}).json()
    post(all_done, refund_id=done_refund["refund_id"])
    made[all_done] = "posted payment, posted refund"
    assert refund["kind"] == "refund"
    return made


EXPECTED = {
    "unposted payment": ("unassociated", ["payment"]),
    "posted payment": ("associated", []),
    "decline": ("not_applicable", []),
    "voided before posting": ("not_applicable", []),
    "posted, then voided": ("unassociated", ["void"]),
    "posted, voided, void posted": ("associated", []),
    "unposted payment, unposted refund": ("unassociated", ["payment", "refund"]),
    "posted payment, unposted refund": ("unassociated", ["refund"]),
    "posted payment, posted refund": ("associated", []),
}


def test_badge_queue_and_unassociated_list_agree_over_two_months(
    api_for: Callable[..., Api],
) -> None:
    clock = PinnedClock(datetime(2026, 1, 14, 15, 0, tzinfo=UTC))  # Wednesday 14 January
    api = api_for("sqlite", clock).setup(pms="dentrix")
    patient = api.post(
        "/v1/patients", {"pms_patient_id": "D-1", "first_name": "Ruth", "last_name": "Okoye"}
    ).json()
    made = month_of_activity(api, patient["id"])
    api.advance(33 * DAY)  # the next month
    made |= month_of_activity(api, patient["id"])

    everything = all_pages(api, "/v1/transactions", **{"from": "2026-01-01"})
    assert {t["id"] for t in everything} == set(made)
    for row in everything:
        association, kinds = EXPECTED[made[row["id"]]]
        assert row["association"] == association, (made[row["id"]], row)
        assert [e["kind"] for e in row["unposted"]] == kinds, (made[row["id"]], row)
        detail = api.get(f"/v1/payments/{row['id']}").json()
        assert (detail["association"], detail["unposted"]) == (row["association"], row["unposted"])

    badge = api.get("/v1/transactions/unassociated-count").json()
    unassociated = all_pages(
        api, "/v1/transactions", association="unassociated", **{"from": badge["oldest_date"]}
    )
    queue = all_pages(api, "/v1/ledger-queue")
    entries = {e["id"] for row in unassociated for e in row["unposted"]}
    assert badge["count"] == len(entries) == len(queue) == 10
    assert entries == {item["id"] for item in queue}
    assert badge["transactions"] == len(unassociated) == 8
    assert {t["id"] for t in unassociated} == {
        t["id"] for t in everything if t["association"] == "unassociated"
    }
    assert badge["oldest_date"] == "2026-01-14"
    # The default list (the last 30 days) holds only this month's, and says so by its range.
    recent = all_pages(api, "/v1/transactions", association="unassociated")
    assert len(recent) == 4
    not_applicable = all_pages(
        api, "/v1/transactions", association="not_applicable", **{"from": "2026-01-01"}
    )
    assert sorted(made[t["id"]] for t in not_applicable) == sorted(
        ["decline", "voided before posting"] * 2
    )
