"""The practice's writeback status says at once when Open Dental refuses the writes, and
fixing the cause (the connection settings, or pressing retry) writes them without waiting
out the backoff."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from services.workers.writeback import Worker
from tests.conftest import Api, PinnedClock
from tests.fakes.opendental import FakeOpenDental, Served


@pytest.fixture
def fake() -> Iterator[tuple[FakeOpenDental, str]]:
    od = FakeOpenDental()
    od.add_patient(101)
    with Served(od.app) as url:
        yield od, f"{url}/api/v1"


def connect(api: Api, url: str, key: str) -> Any:
    response = api.client.patch(
        f"/v1/practices/{api.practice_id}/settings",
        headers=api.admin,
        json={"opendental": {"base_url": url, "developer_key": "dev-key", "customer_key": key}},
    )
    assert response.status_code == 200, response.text
    return response.json()


def refused_payment(api: Api, url: str) -> tuple[dict[str, Any], Worker]:
    connect(api, url, "wrong-key")
    body = {"pms_patient_id": "101", "first_name": "A", "last_name": "B"}
    patient = api.post("/v1/patients", body)
    payment = api.pay(2500, patient_id=patient.json()["id"]).json()
    ctx = api.client.app.state.ctx
    worker = Worker(ctx, ctx.journal, "opendental")  # backoff from 30 s, as in production
    worker.run_once()
    return payment, worker


def writeback(api: Api) -> dict[str, Any]:
    status: dict[str, Any] = api.get(f"/v1/practices/{api.practice_id}").json()["writeback"]
    return status


def test_a_refused_write_turns_the_practice_failing_at_once(
    fake: tuple[FakeOpenDental, str], api_for: Any, clock: PinnedClock
) -> None:
    od, url = fake
    api = api_for("sqlite", clock).setup(pms="opendental", auto_writeback=True)
    payment, worker = refused_payment(api, url)
    [attempt] = api.get(f"/v1/payments/{payment['id']}").json()["writeback_attempts"]
    assert attempt["status"] == "pending" and "refused (401)" in attempt["last_error"]
    status = writeback(api)
    assert status["status"] == "failing"
    assert "refused (401)" in status["last_error"]
    assert status["failing_since"] is not None
    assert status["pending"] == 1

    # Fixing the key makes the write due at once: no waiting out the 30 s backoff.
    connect(api, url, "cust-key")
    worker.run_once()
    assert od.paid_markers() == [payment["id"]]
    assert api.get(f"/v1/payments/{payment['id']}").json()["association"] == "associated"
    status = writeback(api)
    assert (status["status"], status["failing_since"], status["last_error"]) == ("ok", None, None)
    assert status["last_success_at"] is not None


def test_retry_makes_a_waiting_write_due_and_says_how_many(
    fake: tuple[FakeOpenDental, str], api_for: Any, clock: PinnedClock
) -> None:
    od, url = fake
    api = api_for("sqlite", clock).setup(pms="opendental", auto_writeback=True)
    payment, worker = refused_payment(api, url)
    ctx = api.client.app.state.ctx
    ctx.pms_connections.keep(  # fixed behind the API's back: nothing made it due
        api.practice_id,
        {"opendental": {"base_url": url, "developer_key": "dev-key", "customer_key": "cust-key"}},
    )
    worker.run_once()
    assert od.paid_markers() == []  # still waiting out its backoff
    retry = api.post(f"/v1/payments/{payment['id']}/writeback/retry")
    assert retry.status_code == 200, retry.text
    assert retry.json()["retried"] == 1
    worker.run_once()
    assert od.paid_markers() == [payment["id"]]
    assert writeback(api)["status"] == "ok"
    assert api.post(f"/v1/payments/{payment['id']}/writeback/retry").json()["retried"] == 0
