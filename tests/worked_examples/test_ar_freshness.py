"""Worked example: the AR list reflects today's payments and the PMS's latest word.

Elm Dental (New York) reads its balances from Open Dental (a fake of its API), hourly
by default. The clock starts on Wednesday 4 March 2026, 09:00 local.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from services.workers.writeback import Worker
from tests.conftest import Api, PinnedClock
from tests.fakes.opendental import FakeOpenDental, Served
from tests.pms_syncs import ended, sync

HOUR = 3600


def aging(total: int) -> dict[str, Any]:
    dollars = f"{total / 100:.2f}"
    return {"Total": dollars, "Bal_0_30": dollars, "InsEst": "0", "PatEstBal": dollars}


@pytest.fixture
def office(api_for: Callable[..., Api]) -> Iterator[tuple[Api, FakeOpenDental, PinnedClock]]:
    od = FakeOpenDental()
    od.add_patient(1001, "Maria", "Alvarez", aging=aging(38000))
    od.patients[1001]["Email"] = "maria@example.com"
    clock = PinnedClock(datetime(2026, 3, 4, 14, 0, tzinfo=UTC))  # 09:00 in New York
    with Served(od.app) as url:
        api = api_for("sqlite", clock).setup(pms="opendental")
        connect(api, f"{url}/api/v1", "cust-key")
        yield api, od, clock


def connect(api: Api, url: str, key: str) -> None:
    response = api.client.patch(
        f"/v1/practices/{api.practice_id}/settings",
        headers=api.admin,
        json={"opendental": {"base_url": url, "developer_key": "dev-key", "customer_key": key}},
    )
    assert response.status_code == 200, response.text


def ar(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    answer = api.get("/v1/ar/patients").json()
    [row] = answer["items"]
    return row, answer["pms_sync"]


def figures(row: dict[str, Any]) -> tuple[int, int, int]:
    return row["balance_at_snapshot"], row["collected_since"], row["balance"]


def bulk(api: Api, **selection: Any) -> dict[str, Any]:
    response = api.post(
        "/v1/payment-requests/bulk", {"channel": "email", "amount_rule": "total", **selection}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_payment_today_lowers_the_live_balance_until_the_pms_counts_it(
    office: tuple[Api, FakeOpenDental, PinnedClock],
) -> None:
    api, od, clock = office
    assert sync(api)["outcome"] == "ok"  # 09:00: the PMS says $380
    row, status = ar(api)
    assert figures(row) == (38000, 0, 38000)
    assert (status["outcome"], status["interval_minutes"], status["scheduled"]) == (
        "ok",
        60,
        True,
    )
    assert status["last_ok_at"].startswith("2026-03-04T14:00")

    clock.move(hours=1)  # 10:00: the family pays $300 at the desk
    payment = api.pay(30000, patient_id=row["id"])
    assert payment.status_code == 201, payment.text
    row, _ = ar(api)
    assert figures(row) == (38000, 30000, 8000)
    assert row["total"] == 8000 and row["bal_0_30"] == 8000 and row["patient_portion"] == 8000
    assert row["balance_as_of"].startswith("2026-03-04T14:00")

    # "Balance over $100": the family is not asked for money it no longer owes.
    assert bulk(api, filter={"min_total": 10001})["results"] == []
    [skipped] = bulk(api, patient_ids=[row["id"]], min_balance=10001)["results"]
    assert (skipped["outcome"], skipped["reason"]) == ("skipped", "below_minimum")

    # 11:00: the hourly sync reads the PMS, which has counted the payment: $80.
    od.patients[1001]["aging"] = aging(8000)
    clock.move(hours=1)
    assert api.advance(1)["pms_syncs"] == 1  # started in the background
    ended(api)
    row, status = ar(api)
    assert figures(row) == (8000, 0, 8000)
    assert status["outcome"] == "ok" and status["last_ok_at"].startswith("2026-03-04T16:00")
    assert api.get(f"/v1/practices/{api.practice_id}").json()["pms_sync"]["outcome"] == "ok"
    assert api.advance(60)["pms_syncs"] == 0  # not due again before noon


def test_a_family_with_nothing_left_to_pay_is_not_asked(
    office: tuple[Api, FakeOpenDental, PinnedClock],
) -> None:
    api, _, clock = office
    sync(api)
    row, _ = ar(api)
    clock.move(minutes=30)
    assert api.pay(38000, patient_id=row["id"]).status_code == 201
    # paid to $0.00: no longer among the families with a balance
    assert api.get("/v1/ar/patients").json()["items"] == []
    [skipped] = bulk(api, patient_ids=[row["id"]])["results"]
    assert (skipped["outcome"], skipped["reason"]) == ("skipped", "no_balance")
    [skipped] = bulk(api, patient_ids=[row["id"]], amount_rule="patient_portion")["results"]
    assert skipped["reason"] == "no_balance"


def test_an_unchanged_pms_balance_still_counts_what_was_posted_before_the_sync(
    office: tuple[Api, FakeOpenDental, PinnedClock],
) -> None:
    """The PMS's total did not move (a new charge of $300 and the $300 payment), so no
    new snapshot is recorded: the sync still confirms the balance as of its read."""
    api, _, clock = office
    sync(api)
    row, _ = ar(api)
    clock.move(hours=1)
    payment = api.pay(30000, patient_id=row["id"]).json()
    api.post(f"/v1/payments/{payment['id']}/associate", {"source": "manual"})
    assert figures(ar(api)[0]) == (38000, 30000, 8000)
    clock.move(hours=1)
    api.advance(1)  # the scheduled sync: still $380 in the PMS
    ended(api)
    assert figures(ar(api)[0]) == (38000, 0, 38000)


def test_a_payment_waiting_for_the_writeback_is_not_in_the_pms_yet(
    office: tuple[Api, FakeOpenDental, PinnedClock],
) -> None:
    api, od, clock = office
    settings = f"/v1/practices/{api.practice_id}/settings"
    api.client.patch(settings, json={"auto_writeback": True}, headers=api.admin)
    sync(api)
    row, _ = ar(api)
    clock.move(hours=1)
    api.pay(30000, patient_id=row["id"])
    clock.move(hours=1)
    api.advance(1)  # a sync before the payment was written: the PMS still says $380
    ended(api)
    assert figures(ar(api)[0]) == (38000, 30000, 8000)
    ctx = api.client.app.state.ctx
    Worker(ctx, ctx.journal, "opendental").run_once()  # written and associated
    assert len(od.payments) == 1
    assert figures(ar(api)[0]) == (38000, 30000, 8000)
    od.patients[1001]["aging"] = aging(8000)
    clock.move(hours=1)
    api.advance(1)
    ended(api)
    assert figures(ar(api)[0]) == (8000, 0, 8000)


def test_a_failed_sync_is_shown_with_its_error(
    office: tuple[Api, FakeOpenDental, PinnedClock],
) -> None:
    api, _, clock = office
    sync(api)
    url = api.get(f"/v1/practices/{api.practice_id}").json()["connection"]["opendental"]
    connect(api, url["base_url"], "wrong-key")
    clock.move(hours=1)
    assert api.advance(1)["pms_syncs"] == 1  # started; it fails in the background
    ended(api)
    _, status = ar(api)
    assert status["outcome"] == "failed" and "401" in status["error"]
    assert status["progress"]["error"] == status["error"]
    assert status["last_ok_at"].startswith("2026-03-04T14:00")  # balances as of then
    practice = api.get(f"/v1/practices/{api.practice_id}").json()
    assert practice["pms_sync"]["outcome"] == "failed"
    again = sync(api)  # by hand: answered at once, failed again in the background
    assert again["outcome"] == "failed" and "401" in again["error"]
