"""Payment requests under concurrency, against PostgreSQL with two independent sets of components
(as two server processes would be): one outstanding request per patient, and due work
(expiry, reminders, deliveries) done once however many schedulers run it."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

from domain.patients import Patient
from domain.practices import DepositAccount, PmsKind
from domain.requests import Channel, PaymentRequest, RequestStatus
from domain.schedule import parse_cutoff
from services.app.due import run_due_work
from services.app.practices import change_settings, create_practice, register_patient
from services.app.requests import send_request
from services.context import Components
from tests.conftest import ComponentsFactory, PinnedClock

DAY = 86400


def race(*actions: Callable[[], Any]) -> list[Any]:
    """Start the actions at the same moment in threads; their results or exceptions."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = actions[index]()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def setup(ctx: Components, patients: int) -> tuple[Any, list[Patient]]:
    practice = create_practice(
        ctx,
        name="Race Dental",
        timezone="America/Denver",
        pms=PmsKind.OPENDENTAL,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "5555"),
        batch_cutoff=parse_cutoff("23:59"),
        actor="operator",
    )
    change_settings(ctx, practice.id, {"reminder_days": [3, 10]}, "operator")
    people = [
        register_patient(
            ctx,
            practice_id=practice.id,
            pms_patient_id=str(n),
            first_name="Pat",
            last_name=f"N{n}",
            email=f"p{n}@example.com",
            phone=None,
            guarantor_id=None,
            actor="operator",
        )
        for n in range(patients)
    ]
    return practice, people


def outstanding(ctx: Components, practice_id: Any, patient_id: Any) -> list[str]:
    rows = ctx.store.database().query(
        "SELECT id FROM payment_requests WHERE practice_id = ? AND patient_id = ? "
        "AND status = 'requested'",
        (str(practice_id), str(patient_id)),
    )
    return [r["id"] for r in rows]


def test_two_concurrent_sends_leave_exactly_one_outstanding(
    make_components: ComponentsFactory, postgres_url: str, clock: PinnedClock
) -> None:
    one = make_components("postgres", clock)
    two = make_components("postgres", clock)
    practice, patients = setup(one, 8)
    for patient in patients:
        results = race(
            *(
                partial(
                    send_request,
                    ctx,
                    practice_id=practice.id,
                    patient_id=patient.id,
                    amount=amount,
                    channel=Channel.EMAIL,
                    actor="user:race",
                )
                for ctx, amount in ((one, 1000), (two, 2000), (one, 3000), (two, 4000))
            )
        )
        sent = [r for r in results if isinstance(r, PaymentRequest)]
        # A send that lost every retry answers 409 "try again"; most win.
        assert len(sent) >= 2, results
        one.projector.catch_up()
        assert len(outstanding(one, practice.id, patient.id)) == 1
        statuses = Counter(one.get(PaymentRequest, r.id, practice.id).status for r in sent)
        assert statuses == {RequestStatus.REQUESTED: 1, RequestStatus.CANCELLED: len(sent) - 1}


def test_due_work_runs_once_in_two_schedulers(
    make_components: ComponentsFactory, postgres_url: str, clock: PinnedClock
) -> None:
    one = make_components("postgres", clock)
    two = make_components("postgres", clock)
    practice, patients = setup(one, 6)
    requests = [
        send_request(
            one,
            practice_id=practice.id,
            patient_id=p.id,
            amount=5000,
            channel=Channel.EMAIL,
            actor="user:race",
        )
        for p in patients
    ]
    for days in (3, 7, 4):  # day 3: first reminders; day 10: second; day 14: expiry
        one.sandbox_clock.advance(practice.id, days * DAY)  # type: ignore[union-attr]
        race(lambda: run_due_work(one, practice.id), lambda: run_due_work(two, practice.id))
    one.projector.catch_up()
    for request in requests:
        history = one.store.database().query(
            "SELECT type, data FROM event_feed WHERE aggregate_id = ? ORDER BY position",
            (str(request.id),),
        )
        types = Counter(h["type"] for h in history)
        assert types["PaymentRequestCancelled"] == 1
        assert types["PaymentRequestReminded"] == 2
        assert types["PaymentRequestDelivered"] == 3  # the request and two reminders
        final = one.get(PaymentRequest, request.id, practice.id)
        assert final.cancel_reason is not None and final.cancel_reason.value == "expired"
    sent = one.store.database().query(
        "SELECT recipient, COUNT(*) AS n FROM mailbox GROUP BY recipient"
    )
    assert {r["recipient"]: int(r["n"]) for r in sent} == {f"p{n}@example.com": 3 for n in range(6)}
