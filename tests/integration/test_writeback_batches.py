"""The writeback's batches: a practice's rows are claimed together before their calls and
their outcomes recorded together after them (one transaction per batch, not one per
entry), each entry still called once and recorded once whatever its PMS answers; the
practices go side by side, so a slow PMS delays only its own practice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from adapters.pms.journal import Journal, Outcome
from adapters.pms.port import Commlog, PmsEntry, PmsWriteError, PmsWriter, Written
from domain.payments import Payment
from services.context import Components
from services.workers.writeback import Worker
from tests.conftest import ComponentsFactory, PinnedClock
from tests.integration.test_opendental_writeback import pay, setup


class Scripted(PmsWriter):
    """A PMS that answers each marker as scripted (a refusal, a Retry-After, slowly) and
    keeps every call with the time it was answered."""

    call_seconds = 1.0

    def __init__(
        self,
        refuse: set[str] | None = None,
        throttle: set[str] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.refuse = refuse or set()
        self.throttle = throttle or set()
        self.delay = delay
        self.calls: list[str] = []
        self.answered: list[float] = []

    def post_entry(self, entry: PmsEntry) -> Written:
        time.sleep(self.delay)
        self.calls.append(entry.marker)
        self.answered.append(time.monotonic())
        if entry.marker in self.refuse:
            raise PmsWriteError("Open Dental refused (400): PatNum not found", retryable=False)
        if entry.marker in self.throttle:
            raise PmsWriteError("throttling (429)", retryable=True, retry_after=600)
        return Written(f"PayNum {len(self.calls)}")

    def find_entry(self, entry: PmsEntry) -> Written | None:
        return None

    def post_commlog(self, commlog: Commlog) -> Written | None:
        return None


class Counted(Journal):
    """The journal, counting its transactions of claims and of outcomes."""

    def __init__(self, journal: Journal) -> None:
        super().__init__(journal.db)
        self.claims = 0
        self.records: list[tuple[float, list[Outcome]]] = []

    def claim_many(self, items: Any, seconds: float) -> list[str]:
        self.claims += 1
        return super().claim_many(items, seconds)

    def record(self, outcomes: Any) -> None:
        super().record(outcomes)
        self.records.append((time.monotonic(), list(outcomes)))


def office(ctx: Components, count: int, base: int) -> tuple[Any, list[Payment]]:
    practice, patients = setup(ctx, "http://127.0.0.1:9/unused")
    payments = [pay(ctx, practice, patients[n % 5], base + n) for n in range(count)]
    ctx.projector.catch_up()  # the journal holds them
    return practice, payments


def test_one_refusal_in_a_batch_is_recorded_once_and_the_others_are_written(
    make_components: ComponentsFactory, clock: PinnedClock, backend: str
) -> None:
    ctx = make_components(backend, clock)
    practice, payments = office(ctx, 5, 1000)
    refused = str(payments[2].id)
    pms = Scripted(refuse={refused})
    journal = Counted(ctx.journal)

    written = Worker(ctx, journal, "opendental", writers={str(practice.id): pms}).run_once()

    assert written == 4
    assert Counter(pms.calls) == {str(p.id): 1 for p in payments}  # each called once
    assert pms.calls == [str(p.id) for p in payments]  # in the order taken
    assert journal.claims == 1 and len(journal.records) == 1  # one batch, two transactions
    for payment in payments:
        row = ctx.journal.get(str(payment.id))
        fresh = ctx.get(Payment, payment.id, practice.id)
        assert row is not None and row["attempts"] == 1
        if str(payment.id) == refused:
            assert (row["status"], row["outcome_unknown"]) == ("failed", 0)
            assert row["claimed_until"] is None
            assert "PatNum not found" in str(row["last_error"])
            assert fresh.pms_reference is None
        else:
            assert row["status"] == "done" and row["pms_reference"] is not None
            assert fresh.pms_reference == row["pms_reference"]  # associated once
    # the refusal came after two writes and before two more: the practice is ok again
    assert ctx.journal.status(str(practice.id)).get("failing_since") is None
    # nothing is written again
    ctx.projector.catch_up()
    assert Worker(ctx, journal, "opendental", writers={str(practice.id): pms}).run_once() == 0
    assert len(pms.calls) == 5


def test_a_pause_asked_mid_batch_releases_the_rows_not_tried_as_they_were(
    make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    ctx = make_components("sqlite", clock)
    practice, payments = office(ctx, 4, 2000)
    pms = Scripted(throttle={str(payments[1].id)})

    assert Worker(ctx, ctx.journal, "opendental", writers={str(practice.id): pms}).run_once() == 1

    assert pms.calls == [str(payments[0].id), str(payments[1].id)]
    first, throttled, *untried = (ctx.journal.get(str(p.id)) for p in payments)
    assert first is not None and first["status"] == "done"
    assert throttled is not None and throttled["status"] == "pending"
    assert throttled["attempts"] == 1 and throttled["claimed_until"] is None
    for row in untried:  # claimed with the batch, never called: no attempt counted
        assert row is not None and row["status"] == "pending"
        assert (row["attempts"], row["outcome_unknown"], row["claimed_until"]) == (0, 0, None)
        assert row["first_attempt_at"] is None
        assert row["next_attempt_at"] > first["updated_at"]  # the practice waits


def test_a_slow_practice_delays_only_itself(
    make_components: ComponentsFactory, clock: PinnedClock, backend: str
) -> None:
    ctx = make_components(backend, clock)
    slow_practice, slow_payments = office(ctx, 3, 3000)
    fast_practice, fast_payments = office(ctx, 6, 4000)
    slow, fast = Scripted(delay=0.4), Scripted()
    journal = Counted(ctx.journal)
    worker = Worker(
        ctx,
        journal,
        "opendental",
        writers={str(slow_practice.id): slow, str(fast_practice.id): fast},
        parallel=2,
    )

    assert worker.run_once() == 9

    assert fast.calls == [str(p.id) for p in fast_payments]
    assert slow.calls == [str(p.id) for p in slow_payments]
    recorded_fast = [at for at, outcomes in journal.records if has(outcomes, fast_payments)]
    # the fast practice's outcomes were recorded before the slow one's first answer
    assert recorded_fast and max(recorded_fast) < slow.answered[0]
    for payment in fast_payments + slow_payments:
        row = ctx.journal.get(str(payment.id))
        assert row is not None and row["status"] == "done" and row["attempts"] == 1


def has(outcomes: list[Outcome], payments: list[Payment]) -> bool:
    ids = {str(p.id) for p in payments}
    return any(getattr(o, "item_id", None) in ids for o in outcomes)


def test_outcomes_are_recorded_even_when_a_later_call_blows_up(
    make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    """A bug mid-batch (not a PMS answer) still records what was called before it; the
    row whose call blew up stays claimed with its outcome unknown (read back first)."""
    ctx = make_components("sqlite", clock)
    practice, payments = office(ctx, 3, 5000)
    pms = Scripted()
    boom = threading.Event()
    post = pms.post_entry

    def flaky(entry: PmsEntry) -> Written:
        if entry.marker == str(payments[1].id):
            boom.set()
            raise RuntimeError("a bug")
        return post(entry)

    pms.post_entry = flaky  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="a bug"):
        Worker(ctx, ctx.journal, "opendental", writers={str(practice.id): pms}).run_once()
    assert boom.is_set()
    done, blew, untried = (ctx.journal.get(str(p.id)) for p in payments)
    assert done is not None and done["status"] == "done"
    assert ctx.get(Payment, payments[0].id, practice.id).pms_reference is not None
    assert blew is not None and blew["status"] == "pending" and blew["outcome_unknown"] == 1
    assert blew["claimed_until"] is not None
    assert untried is not None and untried["outcome_unknown"] == 1  # not known: read back


def test_the_continuous_loop_writes_other_practices_while_a_slow_one_works(
    make_components: ComponentsFactory, clock: PinnedClock, backend: str
) -> None:
    """`Worker.run` (what `payledger writeback` runs): a practice's job ending starts the
    next at once, so entries of a fast practice that arrive while a slow practice's batch
    is under way are written before it ends (a round of `run_once` waits for its
    slowest practice)."""
    ctx = make_components(backend, clock)
    slow_practice, slow_payments = office(ctx, 3, 6000)
    fast_practice, fast_patients = setup(ctx, "http://127.0.0.1:9/unused")
    first = [pay(ctx, fast_practice, fast_patients[n], 7000 + n) for n in range(2)]
    ctx.projector.catch_up()
    slow, fast = Scripted(delay=0.5), Scripted()
    worker = Worker(
        ctx,
        ctx.journal,
        "opendental",
        writers={str(slow_practice.id): slow, str(fast_practice.id): fast},
        parallel=2,
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), kwargs={"idle": 0.01})
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while len(fast.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        later = [pay(ctx, fast_practice, fast_patients[n], 7100 + n) for n in range(2)]
        ctx.projector.catch_up()
        while (len(fast.calls) < 4 or len(slow.calls) < 3) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
    assert fast.calls == [str(p.id) for p in first + later]
    assert slow.calls == [str(p.id) for p in slow_payments]
    # the fast practice's later entries were written while the slow batch was under way
    assert fast.answered[-1] < slow.answered[-1]
    for payment in first + later + slow_payments:
        row = ctx.journal.get(str(payment.id))
        assert row is not None and row["status"] == "done" and row["attempts"] == 1
