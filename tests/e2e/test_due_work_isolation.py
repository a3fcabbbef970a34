"""One practice's failing background work does not stop the others: the failure is
logged, counted in /metrics and shown on that practice. The sandbox clock stays in sane
dates, and error answers say truly what was saved."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from services.app import due, payments
from services.workers.scheduler import Scheduler
from tests.conftest import Api, PinnedClock
from tests.e2e.support import assert_problem, paid, second_practice

DAY = 86400


def run_scheduler_once(ctx: Any) -> None:
    scheduler = Scheduler(ctx, 60)
    try:
        scheduler.run_once(timeout=60)
    finally:
        scheduler.stop()


def failing_for(practice_id: str, real: Callable[..., Any]) -> Callable[..., Any]:
    def work(ctx: Any, pid: UUID) -> Any:
        if str(pid) == practice_id:
            raise OverflowError("date value out of range")
        return real(ctx, pid)

    return work


def test_one_practices_failure_does_not_stop_the_others(
    api_for: Callable[..., Api], clock: PinnedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = api_for("sqlite", clock, metrics_token="scrape").setup()
    healthy = second_practice(broken)
    # practice ids sort: make sure the broken one is not simply last
    payment = paid(healthy, 5000)
    paid(broken, 4000)
    monkeypatch.setattr(
        due, "close_due_batches", failing_for(broken.practice_id, due.close_due_batches)
    )
    clock.move(seconds=DAY)
    ctx = broken.client.app.state.ctx  # type: ignore[attr-defined]
    run_scheduler_once(ctx)
    settled = healthy.get(f"/v1/payments/{payment['id']}").json()
    assert settled["status"] == "settled"
    shown = broken.get(f"/v1/practices/{broken.practice_id}").json()["due_work"]
    assert shown["status"] == "failing"
    assert "date value out of range" in shown["last_error"]
    assert shown["failures"] == 1
    assert healthy.get(f"/v1/practices/{healthy.practice_id}").json()["due_work"] == {
        "status": "ok",
        "failures": 0,
        "last_error": None,
        "failed_at": None,
    }
    text = broken.client.get("/metrics", headers={"Authorization": "Bearer scrape"}).text
    assert "payledger_due_work_failing_practices 1.0" in text
    assert "payledger_due_work_failures 1.0" in text
    monkeypatch.undo()
    run_scheduler_once(ctx)
    assert broken.get(f"/v1/practices/{broken.practice_id}").json()["due_work"]["status"] == "ok"


def test_a_clock_advance_whose_due_work_fails_says_the_clock_moved(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(due, "close_due_batches", failing_for(api.practice_id, lambda *a: []))
    answer = api.post("/v1/sandbox/clock/advance", {"seconds": DAY})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "date value out of range" in body["due_work_error"]
    assert api.get("/v1/sandbox/clock").json()["offset_seconds"] == DAY


def test_the_sandbox_clock_stays_within_sane_dates(api: Api) -> None:
    far = api.post("/v1/sandbox/clock/advance", {"to": "9999-12-31T00:00:00Z"})
    assert_problem(far, 422, field="to", says="years")
    for _ in range(9):
        api.advance(400 * DAY)
    beyond = api.post("/v1/sandbox/clock/advance", {"seconds": 400 * DAY})
    assert_problem(beyond, 422, field="seconds", says="years")
    offset = api.get("/v1/sandbox/clock").json()["offset_seconds"]
    assert offset == 9 * 400 * DAY
    sale = {"method": "terminal", "terminal_id": "front-desk", "amount": 100}
    assert api.post("/v1/payments", sale).status_code == 201


def test_a_500_on_a_change_does_not_claim_nothing_was_saved(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(payments, "charge", broken)
    answer = api.pay(100)
    assert answer.status_code == 500
    detail = answer.json()["detail"]
    assert "nothing was changed" not in detail
    assert "Idempotency-Key" in detail
