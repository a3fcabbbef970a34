"""The payment plan's rules without I/O: the schedule, the last charge, the retry rule,
and what a cancelled or completed plan charges (nothing)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest

from domain.errors import Conflict, InvalidValue
from domain.plans import (
    MAX_NOTICE_ATTEMPTS,
    PaymentPlan,
    PlanState,
    Schedule,
    Unit,
    plan_lines,
)

AT = datetime(2026, 3, 4, 15, tzinfo=UTC)
TODAY = date(2026, 3, 4)


def plan(
    amount: int = 10000,
    total: int = 30000,
    every: int = 1,
    unit: Unit = Unit.MONTHS,
    start: date = TODAY,
) -> PaymentPlan:
    return PaymentPlan.create(
        id=uuid4(),
        practice_id=uuid4(),
        patient_id=uuid4(),
        card_id=uuid4(),
        schedule=Schedule(amount, total, every, unit, start),
        note=None,
        today=TODAY,
        at=AT,
        actor="user:1",
    )


def test_the_last_charge_is_what_is_left_and_month_ends_are_kept() -> None:
    schedule = Schedule(10000, 25000, 1, Unit.MONTHS, date(2026, 1, 31))
    assert schedule.charges() == [
        (1, date(2026, 1, 31), 10000),
        (2, date(2026, 2, 28), 10000),
        (3, date(2026, 3, 31), 5000),
    ]
    weekly = Schedule(5000, 10000, 2, Unit.WEEKS, TODAY)
    assert [d for _, d, _ in weekly.charges()] == [TODAY, date(2026, 3, 18)]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"total": 5000}, "total"),
        ({"every": 13}, "every"),
        ({"every": 0}, "every"),
        ({"start": date(2026, 3, 3)}, "start"),
        ({"start": date(2027, 3, 10)}, "start"),
        ({"amount": 100, "total": 12_100}, "amount"),
    ],
)
def test_a_plan_that_cannot_be_kept_is_refused_naming_what_to_fix(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidValue) as refused:
        plan(**changes)  # type: ignore[arg-type]
    assert refused.value.field == field


def test_a_declined_charge_is_tried_once_more_then_the_plan_is_past_due() -> None:
    p = plan()
    due = p.due(TODAY)
    assert due is not None and (due.installment, due.attempt, due.amount) == (1, 1, 10000)
    p.record_failed(due=due, payment_id=None, reason="card declined", today=TODAY, at=AT, actor="s")
    assert p.state == PlanState.ACTIVE and p.next_due_on() == date(2026, 3, 7)
    assert p.due(date(2026, 3, 6)) is None
    retry = p.due(date(2026, 3, 7))
    assert retry is not None and (retry.installment, retry.attempt) == (1, 2)
    p.record_failed(
        due=retry, payment_id=None, reason="card declined", today=TODAY, at=AT, actor="s"
    )
    assert p.state == PlanState.PAST_DUE and p.due(date(2027, 1, 1)) is None
    assert [line.status for line in plan_lines(p)] == ["failed", "not_charged", "not_charged"]


def test_a_plan_completes_at_its_total_and_a_cancelled_one_charges_nothing() -> None:
    p = plan()
    for day in (TODAY, date(2026, 4, 4), date(2026, 5, 4)):
        due = p.due(day)
        assert due is not None
        p.record_charged(due=due, payment_id=uuid4(), at=AT, actor="s")
    assert p.state == PlanState.COMPLETED and p.paid == 30000 and p.due(date(2027, 1, 1)) is None
    with pytest.raises(Conflict):
        p.cancel(reason="late", at=AT, actor="user:1")

    q = plan()
    q.cancel(reason="paid in cash", at=AT, actor="user:1")
    assert q.due(date(2027, 1, 1)) is None
    assert (q.ended_by, q.end_reason) == ("user:1", "paid in cash")


def past_due(p: PaymentPlan) -> PaymentPlan:
    for day in (TODAY, date(2026, 3, 7)):
        due = p.due(day)
        assert due is not None
        p.record_failed(
            due=due, payment_id=None, reason="card declined", today=day, at=AT, actor="s"
        )
    assert p.state == PlanState.PAST_DUE
    return p


def test_a_plan_past_due_has_one_notice_to_send_claimed_before_it_is_sent() -> None:
    p = plan()
    assert p.notice is None and not p.notice_due(AT)
    past_due(p)
    assert p.notice is not None and p.notice.installment == 1 and p.notice_due(AT)

    assert p.claim_notice(at=AT, actor="s") == 1
    # held by the attempt: a second claim meanwhile is refused, after the hold it is not
    assert not p.notice_due(AT + timedelta(minutes=1))
    with pytest.raises(Conflict):
        p.claim_notice(at=AT + timedelta(minutes=1), actor="s")
    assert p.notice_due(AT + timedelta(minutes=2))

    p.record_notice_sent(email="ann@example.com", message_id="m1", at=AT, actor="s")
    assert (p.notice.status, p.notice.email) == ("sent", "ann@example.com")
    assert not p.notice_due(AT + timedelta(days=30))
    with pytest.raises(Conflict):
        p.record_notice_sent(email="ann@example.com", message_id="m2", at=AT, actor="s")


def test_a_notice_that_fails_is_tried_again_with_backoff_then_given_up() -> None:
    p = past_due(plan())
    at = AT
    for attempt in range(1, MAX_NOTICE_ATTEMPTS + 1):
        assert p.notice_due(at)
        assert p.claim_notice(at=at, actor="s") == attempt
        p.record_notice_failed(email="ann@example.com", error="refused", at=at, actor="s")
        assert p.notice is not None
        if attempt < MAX_NOTICE_ATTEMPTS:
            assert not p.notice_due(at) and p.notice.retry_at == at + timedelta(
                minutes=2 ** (attempt - 1)
            )
            at = p.notice.retry_at
    assert p.notice is not None and p.notice.status == "failed"
    assert not p.notice_due(at + timedelta(days=1))


def test_a_notice_with_nowhere_to_go_is_recorded_as_not_sent() -> None:
    p = past_due(plan())
    p.record_notice_not_sent(reason="no email address", at=AT, actor="s")
    assert p.notice is not None and (p.notice.status, p.notice.reason) == (
        "not_sent",
        "no email address",
    )
    assert not p.notice_due(AT)
