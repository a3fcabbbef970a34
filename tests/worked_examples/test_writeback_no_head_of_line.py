"""Worked example: one payment whose PMS write goes wrong does not hold the office's others.

Open Dental applies the first payment of the morning and then answers 500 (or times
out). Nobody knows whether it landed, so it must not simply be posted again; but a
read is safe, so the worker reads it back at once and finds it. Meanwhile the
office's next four payments are written without waiting for anyone's backoff. A
refund of a payment that is not yet written waits for that payment; nothing else
waits for anything. When Open Dental asks us to slow down (429 with Retry-After),
the whole practice waits that long, and other practices go on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from services.app.payments import refund_payment
from services.workers.writeback import Worker
from tests.conftest import ComponentsFactory, PinnedClock
from tests.fakes.opendental import FakeOpenDental, serving
from tests.integration.test_opendental_writeback import pay, setup

#: the real default backoff: a test that waited it out would take half a minute
REAL_FIRST_DELAY = 30.0


@pytest.fixture
def fake() -> Iterator[tuple[FakeOpenDental, str]]:
    with serving(range(101, 106)) as served:
        yield served


def rounds(worker: Worker, ctx: object, n: int) -> None:
    for _ in range(n):
        ctx.projector.catch_up()  # type: ignore[attr-defined]
        worker.run_once()


@pytest.mark.parametrize("fault", ["500-after-apply", "504-after-apply", "timeout-after-apply"])
def test_an_unknown_outcome_is_read_back_at_once_and_holds_no_one(
    fake: tuple[FakeOpenDental, str],
    make_components: ComponentsFactory,
    clock: PinnedClock,
    fault: str,
) -> None:
    od, url = fake
    ctx = make_components("sqlite", clock)
    practice, patients = setup(ctx, url)
    # calls time out after 1.5 s (setup's 0.5 s can pass on a loaded machine, which would
    # leave a read back unanswered); the late answer comes well after that
    od.timeout_sleep = 3.0
    connection = ctx.pms_connections.of(str(practice.id))
    ctx.pms_connections.keep(
        str(practice.id), {"opendental": {**connection["opendental"], "timeout": 1.5}}
    )
    od.faults.append(fault)
    payments = [pay(ctx, practice, patients[n], 1000 + n) for n in range(5)]

    rounds(Worker(ctx, ctx.journal, "opendental", first_delay=REAL_FIRST_DELAY), ctx, 2)

    # All five are in Open Dental once, the troubled one included (found by its marker).
    assert Counter(od.paid_markers()) == {str(p.id): 1 for p in payments}
    assert od.reads >= 1
    for payment in payments:
        fresh = ctx.get(type(payment), payment.id, practice.id)
        assert fresh.pms_reference is not None, f"{payment.id} is not associated"
    pending = ctx.store.database().query_one(
        "SELECT COUNT(*) AS n FROM writeback_journal WHERE status = 'pending'"
    )
    assert pending == {"n": 0}


def test_a_write_that_did_not_land_retries_alone(
    fake: tuple[FakeOpenDental, str], make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    """500 before applying: the read back finds nothing, so that payment waits out its
    backoff; the practice's other payments are written meanwhile."""
    od, url = fake
    ctx = make_components("sqlite", clock)
    practice, patients = setup(ctx, url)
    od.faults.append("500-before-apply")
    first, *others = [pay(ctx, practice, patients[n], 2000 + n) for n in range(5)]

    rounds(Worker(ctx, ctx.journal, "opendental", first_delay=REAL_FIRST_DELAY), ctx, 2)

    assert sorted(od.paid_markers()) == sorted(str(p.id) for p in others)
    row = ctx.journal.get(str(first.id))
    assert row is not None and row["status"] == "pending" and row["last_error"]
    assert datetime.fromisoformat(row["next_attempt_at"].replace("Z", "+00:00")) > datetime.now(UTC)


def test_a_refund_waits_for_its_payment_and_nothing_else_does(
    fake: tuple[FakeOpenDental, str], make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    od, url = fake
    ctx = make_components("sqlite", clock)
    practice, patients = setup(ctx, url)
    od.faults.append("500-before-apply")
    first = pay(ctx, practice, patients[0], 3000)
    clock.move(days=1)  # captured and settled: the refund is a refund, not a void
    ctx.projector.catch_up()
    refund_payment(ctx, practice_id=practice.id, payment_id=first.id, amount=500, actor="user:desk")
    later = pay(ctx, practice, patients[1], 3001)

    rounds(Worker(ctx, ctx.journal, "opendental", first_delay=REAL_FIRST_DELAY), ctx, 2)

    assert od.paid_markers() == [str(later.id)]  # the refund did not go before its payment
    reversal = [r for r in ctx.journal.of_payment(str(first.id)) if r["kind"] == "reversal"]
    assert len(reversal) == 1 and reversal[0]["status"] == "pending"


def test_retry_after_pauses_the_practice_and_no_other(
    fake: tuple[FakeOpenDental, str], make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    od, url = fake
    ctx = make_components("sqlite", clock)
    practice, patients = setup(ctx, url)
    other, other_patients = setup(ctx, url)
    od.faults.append("429")  # Retry-After: 1
    mine = [pay(ctx, practice, patients[n], 4000 + n) for n in range(3)]
    theirs = pay(ctx, other, other_patients[0], 4100)

    rounds(Worker(ctx, ctx.journal, "opendental", first_delay=REAL_FIRST_DELAY), ctx, 2)

    assert od.paid_markers() == [str(theirs.id)]  # the throttled practice waited
    assert od.calls == 2  # one refused call, then only the other practice's
    for payment in mine:
        row = ctx.journal.get(str(payment.id))
        assert row is not None and row["status"] == "pending"


@pytest.mark.postgres
def test_practices_are_written_side_by_side_each_in_its_own_order(
    fake: tuple[FakeOpenDental, str], make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    """The service's worker writes several practices at once (on PostgreSQL); each
    practice's payments still reach Open Dental once each and in the order taken, and a
    refund still waits for its payment."""
    od, url = fake
    ctx = make_components("postgres", clock)
    offices = [setup(ctx, url) for _ in range(4)]
    taken = {
        practice.id: [pay(ctx, practice, patients[n], 5000 + 10 * i + n) for n in range(4)]
        for i, (practice, patients) in enumerate(offices)
    }
    first = taken[offices[0][0].id][0]
    clock.move(days=2)  # settled: a partial refund
    refund_payment(
        ctx, practice_id=offices[0][0].id, payment_id=first.id, amount=100, actor="user:desk"
    )

    rounds(Worker(ctx, ctx.journal, "opendental", parallel=4), ctx, 2)

    markers = od.paid_markers()
    every = {str(p.id) for ps in taken.values() for p in ps}
    assert Counter(m for m in markers if m in every) == dict.fromkeys(every, 1)
    assert len(markers) == len(every) + 1  # and the refund, once
    for payments in taken.values():
        ids = [str(p.id) for p in payments]
        assert [m for m in markers if m in ids] == ids  # in the order taken
        for payment in payments:
            fresh = ctx.get(type(payment), payment.id, payment.practice_id)
            assert fresh.pms_reference is not None, f"{payment.id} is not associated"
    reversal = [r for r in ctx.journal.of_payment(str(first.id)) if r["kind"] == "reversal"]
    assert len(reversal) == 1 and reversal[0]["status"] == "done"
