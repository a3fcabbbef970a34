"""Worked example: one office's slow Open Dental delays only that office.

Two offices on Open Dental, the scheduler running. Maple's Open Dental stops answering
in the middle of the scheduled sync (the patient list hangs). Birch takes a card
payment meanwhile: it is written into Birch's Open Dental within seconds, and at
Birch's cut-off its batch closes and the payment settles, all while Maple's sync still
hangs. The sync runs in the background, apart from the practice's due work: Maple's
own payment is written and its batch closes while its patient list still hangs, and
the sync ends once Maple's Open Dental answers again.

An office whose due work raises every time stops no one else either, and two
schedulers (two sets of components on one database: two sessions on PostgreSQL, as two
processes would be) never run one office's job at the same time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from domain.payments import Payment, Status
from projections.receivables import last_sync
from services.app import due
from services.app.receivables import SYNCS
from services.context import Components
from services.workers import scheduler as scheduling
from services.workers.scheduler import Scheduler
from tests.conftest import ComponentsFactory, PinnedClock
from tests.fakes.opendental import FakeOpenDental, Served, serving
from tests.integration.test_opendental_writeback import pay, setup

#: generous bounds for a noisy 2-core machine: what should take well under a second
WAIT = 60.0
TICK = 0.1


class HangingOpenDental(FakeOpenDental):
    """Open Dental whose patient list does not answer until released."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.released = threading.Event()

    async def list_patients(self, request: Request) -> JSONResponse:
        self.entered.set()
        while not self.released.is_set():
            await asyncio.sleep(0.02)
        return await super().list_patients(request)


@pytest.fixture
def hanging() -> Iterator[tuple[HangingOpenDental, str]]:
    fake = HangingOpenDental()
    for pat_num in range(101, 106):
        fake.add_patient(pat_num)
    with Served(fake.app) as url:
        try:
            yield fake, f"{url}/api/v1"
        finally:
            fake.released.set()


@pytest.fixture
def prompt() -> Iterator[tuple[FakeOpenDental, str]]:
    with serving(range(101, 106)) as served:
        yield served


@pytest.fixture
def running(
    make_components: ComponentsFactory, backend: str, request: pytest.FixtureRequest
) -> Iterator[Callable[[Components], Scheduler]]:
    """Start a scheduler on components; each is stopped before its database goes."""
    if backend == "postgres":
        request.getfixturevalue("postgres_url")  # dropped after the schedulers stop
    started: list[Scheduler] = []

    def start(ctx: Components) -> Scheduler:
        job = Scheduler(ctx, TICK, workers=4)
        job.start()
        started.append(job)
        return job

    yield start
    for job in started:
        job.stop(wait=WAIT)


def until(condition: Callable[[], bool], what: str, seconds: float = WAIT) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(0.05)


def written(fake: FakeOpenDental, payment: Payment) -> bool:
    return str(payment.id) in fake.paid_markers()


def status_of(ctx: Components, payment: Payment) -> Status:
    return ctx.get(Payment, payment.id, payment.practice_id).status


def with_timeout(ctx: Components, practice_id: UUID, url: str, timeout: float) -> None:
    ctx.pms_connections.keep(
        str(practice_id),
        {
            "opendental": {
                "base_url": url,
                "developer_key": "dev-key",
                "customer_key": "cust-key",
                "timeout": timeout,
            }
        },
    )


def test_a_hanging_sync_delays_only_its_own_office(
    hanging: tuple[HangingOpenDental, str],
    prompt: tuple[FakeOpenDental, str],
    make_components: ComponentsFactory,
    backend: str,
    clock: PinnedClock,
    running: Callable[[Components], Scheduler],
) -> None:
    slow_od, slow_url = hanging
    od, url = prompt
    ctx = make_components(backend, clock)
    maple, maple_patients = setup(ctx, slow_url)
    with_timeout(ctx, maple.id, slow_url, 300.0)  # it hangs far longer than the test
    birch, birch_patients = setup(ctx, url)
    maples_payment = pay(ctx, maple, maple_patients[0], 1500)

    running(ctx)
    until(slow_od.entered.is_set, "Maple's sync reached its Open Dental")
    births = pay(ctx, birch, birch_patients[0], 2500)

    until(lambda: written(od, births), "Birch's payment written into Birch's Open Dental")
    # the sync runs apart from Maple's due work: Maple's payment is written meanwhile
    until(lambda: written(slow_od, maples_payment), "Maple's payment written while it hangs")
    assert not slow_od.released.is_set()  # Maple's sync hangs all along
    assert SYNCS.running(maple.id)
    clock.move(days=1)  # past the cut-offs
    until(lambda: status_of(ctx, births) == Status.SETTLED, "Birch's batch closed")
    until(lambda: status_of(ctx, maples_payment) == Status.SETTLED, "Maple's batch closed")
    assert not slow_od.released.is_set()
    assert ctx.get(Payment, births.id, birch.id).pms_reference is not None
    assert not written(od, maples_payment)

    slow_od.released.set()
    assert SYNCS.wait(maple.id, WAIT), "Maple's sync ended once its Open Dental answered"
    assert ctx.reads(last_sync, maple.id)["outcome"] == "ok"  # type: ignore[index]
    assert Counter(od.paid_markers()) == {str(births.id): 1}
    assert Counter(slow_od.paid_markers()) == {str(maples_payment.id): 1}


def test_an_office_whose_due_work_always_fails_stops_no_one(
    prompt: tuple[FakeOpenDental, str],
    make_components: ComponentsFactory,
    backend: str,
    clock: PinnedClock,
    running: Callable[[Components], Scheduler],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    od, url = prompt
    ctx = make_components(backend, clock)
    broken, broken_patients = setup(ctx, url)
    healthy, healthy_patients = setup(ctx, url)
    real = due.close_due_batches

    def close_due_batches(ctx: Any, practice_id: UUID) -> Any:
        if practice_id == broken.id:
            raise RuntimeError("the office's cut-off cannot be read")
        return real(ctx, practice_id)

    monkeypatch.setattr(due, "close_due_batches", close_due_batches)
    theirs = pay(ctx, broken, broken_patients[0], 1100)
    mine = pay(ctx, healthy, healthy_patients[0], 1200)
    clock.move(days=1)
    running(ctx)

    until(lambda: status_of(ctx, mine) == Status.SETTLED, "the healthy office's batch closed")
    until(lambda: written(od, mine), "the healthy office's payment written")
    # the broken office's writeback is its own job's second part: it still goes on
    until(lambda: written(od, theirs), "the broken office's payment written")
    assert status_of(ctx, theirs) == Status.APPROVED
    until(
        lambda: failures_in_a_row(ctx, broken.id) >= 2,
        "the broken office's failures recorded at each tick",
    )
    row = ctx.due_work.of_practice(str(broken.id))
    assert row is not None and row.failing and "cut-off" in (row.last_error or "")
    healthy_row = ctx.due_work.of_practice(str(healthy.id))
    assert healthy_row is None or not healthy_row.failing


def failures_in_a_row(ctx: Components, practice_id: UUID) -> int:
    row = ctx.due_work.of_practice(str(practice_id))
    return row.consecutive if row else 0


def test_two_schedulers_never_run_one_offices_job_at_once(
    make_components: ComponentsFactory,
    backend: str,
    clock: PinnedClock,
    running: Callable[[Components], Scheduler],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one = make_components(backend, clock)
    two = make_components(backend, clock)  # the same database, its own connections
    offices = [setup(one, "http://127.0.0.1:9/api/v1")[0].id for _ in range(3)]
    lock = threading.Lock()
    inside: Counter[UUID] = Counter()
    most: Counter[UUID] = Counter()
    runs: Counter[tuple[int, UUID]] = Counter()
    real = scheduling.run_due_work

    def run_due_work(ctx: Any, practice_id: UUID) -> Any:
        with lock:
            inside[practice_id] += 1
            most[practice_id] = max(most[practice_id], inside[practice_id])
            runs[(id(ctx), practice_id)] += 1
        try:
            time.sleep(0.15)  # long enough for the other scheduler's tick to come
            return real(ctx, practice_id)
        finally:
            with lock:
                inside[practice_id] -= 1

    refused: Counter[int] = Counter()

    def counting(ctx: Components) -> None:
        claim = ctx.due_work.claims.claim

        def counted(key: str) -> bool:
            mine = claim(key)
            if not mine:
                refused[id(ctx)] += 1
            return mine

        monkeypatch.setattr(ctx.due_work.claims, "claim", counted)

    monkeypatch.setattr(scheduling, "run_due_work", run_due_work)
    for ctx in (one, two):
        counting(ctx)
        running(ctx)

    def enough() -> bool:
        with lock:
            return all(runs[(id(one), p)] + runs[(id(two), p)] >= 6 for p in offices)

    until(enough, "each office's job ran six times")
    with lock:
        assert all(most[p] == 1 for p in offices), dict(most)
        assert sum(runs.values()) >= 18
    assert refused[id(one)] + refused[id(two)] >= 1  # the claims were contended
