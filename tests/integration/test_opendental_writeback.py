"""The Open Dental writer against a strict fake of its API: every payment, refund and
void lands exactly once, whatever faults the API throws, and is marked associated."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.processor.port import CardInput
from domain.payments import Method
from domain.practices import DepositAccount, PmsKind
from domain.requests import Channel
from domain.schedule import parse_cutoff
from services.app.payments import collect_payment, refund_payment
from services.app.practices import change_settings, create_practice, register_patient
from services.app.requests import send_request
from services.context import Components
from services.workers.writeback import Worker
from tests.conftest import ComponentsFactory, PinnedClock
from tests.fakes.opendental import FakeOpenDental, serving

CARD = CardInput("4242424242424242", 12, 2030, "123")


@pytest.fixture
def fake() -> Iterator[tuple[FakeOpenDental, str]]:
    with serving(range(101, 106)) as served:
        yield served


def setup(ctx: Components, url: str) -> tuple[Any, list[Any]]:
    practice = create_practice(
        ctx,
        name="OD Dental",
        timezone="America/Chicago",
        pms=PmsKind.OPENDENTAL,
        auto_writeback=True,
        deposit_account=DepositAccount("Checking", "4444"),
        batch_cutoff=parse_cutoff("23:59"),
        actor="operator",
    )
    change_settings(ctx, practice.id, {"pms_payment_type": "391"}, "operator")
    ctx.pms_connections.keep(
        str(practice.id),
        {
            "opendental": {
                "base_url": url,
                "developer_key": "dev-key",
                "customer_key": "cust-key",
                "timeout": 0.5,
            }
        },
    )
    patients = [
        register_patient(
            ctx,
            practice_id=practice.id,
            pms_patient_id=str(n),
            first_name="Pat",
            last_name=str(n),
            email=f"{n}@example.com",
            phone=None,
            guarantor_id=None,
            actor="operator",
        )
        for n in range(101, 106)
    ]
    return practice, patients


def drain(worker: Worker, ctx: Components, seconds: float = 20) -> None:
    """Run the worker until nothing is pending (retries wait real time)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        ctx.projector.catch_up()
        worker.run_once()
        pending = ctx.store.database().query_one(
            "SELECT COUNT(*) AS n FROM writeback_journal WHERE status = 'pending'"
        )
        if pending is not None and int(pending["n"]) == 0:
            return
        time.sleep(0.05)
    raise AssertionError("writeback did not finish")


def pay(ctx: Components, practice: Any, patient: Any, amount: int) -> Any:
    return collect_payment(
        ctx,
        practice_id=practice.id,
        amount=amount,
        method=Method.VIRTUAL_TERMINAL,
        card=CARD,
        patient_id=patient.id,
        actor="user:desk",
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_each_payment_lands_once_through_every_fault(
    fake: tuple[FakeOpenDental, str],
    make_components: ComponentsFactory,
    clock: PinnedClock,
    backend: str,
) -> None:
    od, url = fake
    ctx = make_components(backend, clock)
    practice, patients = setup(ctx, url)
    od.faults.extend(
        ["429", "500-after-apply", "504-after-apply", "timeout-after-apply", "500-before-apply"]
    )
    payments = [pay(ctx, practice, patients[n % 5], 1000 + n) for n in range(8)]
    drain(Worker(ctx, ctx.journal, "opendental", first_delay=0.05), ctx)

    assert Counter(od.paid_markers()) == {str(p.id): 1 for p in payments}
    # 500, 504 and the timeout left outcomes unknown: each was read back before a retry
    assert od.reads >= 3
    assert not od.faults
    for row in od.payments:
        assert row["PayType"] == "391"
        assert row["PaymentSource"] == "API"
    by_marker = {m: row for m, row in zip(od.paid_markers(), od.payments, strict=True)}
    for payment in payments:
        fresh = ctx.get(type(payment), payment.id, practice.id)
        assert fresh.association_source is not None
        assert fresh.association_source.value == "automatic"
        assert fresh.pms_reference == f"PayNum {by_marker[str(payment.id)]['PayNum']}"
        assert Decimal_of(by_marker[str(payment.id)]["PayAmt"]) == payment.amount.cents
    assert ctx.store.database().query_one(
        "SELECT COUNT(*) AS n FROM transactions WHERE association = 'unassociated'"
    ) == {"n": 0}


def Decimal_of(text: str) -> int:
    from decimal import Decimal

    return int(Decimal(text) * 100)


def test_refunds_and_voids_are_negative_payments(
    fake: tuple[FakeOpenDental, str], make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    od, url = fake
    ctx = make_components("sqlite", clock)
    practice, patients = setup(ctx, url)
    worker = Worker(ctx, ctx.journal, "opendental", first_delay=0.05)
    kept = pay(ctx, practice, patients[0], 30000)
    voided = pay(ctx, practice, patients[1], 5000)
    drain(worker, ctx)
    refund_payment(
        ctx, practice_id=practice.id, payment_id=voided.id, amount=None, actor="user:desk"
    )
    clock.move(days=1)
    refund = refund_payment(
        ctx, practice_id=practice.id, payment_id=kept.id, amount=8000, actor="user:desk"
    )
    od.faults.append("504-after-apply")
    drain(worker, ctx)
    amounts = Counter((row["PatNum"], row["PayAmt"]) for row in od.payments)
    assert amounts == {
        ("101", "300.00"): 1,
        ("102", "50.00"): 1,
        ("102", "-50.00"): 1,
        ("101", "-80.00"): 1,
    }
    markers = od.paid_markers()
    assert markers.count(f"void:{voided.id}") == 1
    assert markers.count(str(refund.refund_id)) == 1
    fresh = ctx.get(type(kept), kept.id, practice.id)
    assert refund.refund_id in fresh.associated_refunds
    assert ctx.get(type(voided), voided.id, practice.id).void_associated


def test_a_void_before_the_write_writes_nothing(
    fake: tuple[FakeOpenDental, str], make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    od, url = fake
    ctx = make_components("sqlite", clock)
    practice, patients = setup(ctx, url)
    payment = pay(ctx, practice, patients[0], 4000)
    refund_payment(
        ctx, practice_id=practice.id, payment_id=payment.id, amount=None, actor="user:desk"
    )
    drain(Worker(ctx, ctx.journal, "opendental", first_delay=0.05), ctx)
    assert od.payments == []
    statuses = {r["id"]: r["status"] for r in ctx.journal.of_payment(str(payment.id))}
    assert statuses == {str(payment.id): "skipped", f"void:{payment.id}": "skipped"}


def test_an_unknown_patient_fails_visibly_and_can_be_retried(
    fake: tuple[FakeOpenDental, str], api_for: Any, clock: PinnedClock
) -> None:
    od, url = fake
    api = api_for("sqlite", clock).setup(pms="opendental", auto_writeback=True)
    ctx = api.client.app.state.ctx
    patch = api.client.patch(
        f"/v1/practices/{api.practice_id}/settings",
        headers=api.admin,
        json={
            "opendental": {"base_url": url, "developer_key": "dev-key", "customer_key": "cust-key"}
        },
    )
    assert patch.status_code == 200, patch.text
    assert patch.json()["connection"]["opendental"]["customer_key"] == "****-key"
    assert "cust-key" not in patch.text
    patient = api.post(
        "/v1/patients", {"pms_patient_id": "999", "first_name": "No", "last_name": "Body"}
    ).json()
    payment = api.pay(2500, patient_id=patient["id"]).json()
    drain(Worker(ctx, ctx.journal, "opendental", first_delay=0.05), ctx)
    shown = api.get(f"/v1/payments/{payment['id']}").json()
    [attempt] = shown["writeback_attempts"]
    assert attempt["status"] == "failed" and "not found" in attempt["last_error"]
    assert shown["association"] == "unassociated"
    practice = api.get(f"/v1/practices/{api.practice_id}").json()
    assert practice["writeback"]["status"] == "failing"

    od.add_patient(999)
    retry = api.post(f"/v1/payments/{payment['id']}/writeback/retry")
    assert retry.status_code == 200, retry.text
    drain(Worker(ctx, ctx.journal, "opendental", first_delay=0.05), ctx)
    assert api.get(f"/v1/payments/{payment['id']}").json()["association"] == "associated"
    assert api.get(f"/v1/practices/{api.practice_id}").json()["writeback"]["status"] == "ok"


def test_a_sent_request_becomes_a_commlog(
    fake: tuple[FakeOpenDental, str], make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    od, url = fake
    ctx = make_components("sqlite", clock)
    practice, patients = setup(ctx, url)
    send_request(
        ctx,
        practice_id=practice.id,
        patient_id=patients[2].id,
        amount=9900,
        channel=Channel.EMAIL,
        actor="user:desk",
    )
    drain(Worker(ctx, ctx.journal, "opendental", first_delay=0.05), ctx)
    [commlog] = od.commlogs
    assert commlog["PatNum"] == 103
    assert (commlog["Mode_"], commlog["SentOrReceived"]) == ("Email", "Sent")
    assert "$99.00" in commlog["Note"]


def test_a_claimed_entry_holds_no_other_entry_and_is_written_once(
    fake: tuple[FakeOpenDental, str], make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    """While another process holds one entry (or it waits to retry), the worker leaves
    that entry alone and writes the practice's others; when the holder dies with the
    outcome unknown, the entry is read back and written once."""
    od, url = fake
    ctx = make_components("sqlite", clock)
    practice, patients = setup(ctx, url)
    other, other_patients = setup(ctx, url)
    first, second = (
        pay(ctx, practice, patients[0], 100),
        pay(ctx, practice, patients[1], 200),
    )
    elsewhere = pay(ctx, other, other_patients[0], 300)
    journal = ctx.journal
    head = journal.get(str(first.id))
    assert head is not None and journal.claim(head, seconds=30)  # a process is writing it
    Worker(ctx, journal, "opendental").run_once()
    assert od.paid_markers() == [str(second.id), str(elsewhere.id)]
    journal.finish(str(first.id), status="pending", unknown=True)  # it died: outcome unknown
    drain(Worker(ctx, journal, "opendental", first_delay=0.05), ctx)
    assert od.paid_markers() == [str(second.id), str(elsewhere.id), str(first.id)]
