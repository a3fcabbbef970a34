"""Worked example: the PMS writes obey the ledger, and every PMS answer ends clearly.

Elm Dental writes its card payments into Open Dental (or Eaglesoft through the office
bridge) automatically. The clock starts on Wednesday 4 March 2026.

- The office's Open Dental key is wrong for a day: every write is refused. The office
  posts the payment, a refund and a void by hand and marks them associated. When the
  key is fixed and the failed writes are due again, nothing is written a second time:
  the worker asks the ledger (the payment's own events) before each write, and each
  association already finished its journal row.
- Open Dental commits a payment and the connection drops before its answer (or a
  proxy answers with an HTML page, or the answer is cut off): the outcome is unknown,
  so the worker reads it back by its `[ref:<id>]` marker and does not post it again.
- An attempt holds its row for longer than its calls can take, so a second worker
  never posts the same row meanwhile.
- The Post to Ledger page of a payment already written whose refund is waiting shows
  the payment as associated with its PayNum and asks only for the refund.
- A sync that meets a proxy's HTML page (or a redirect, a cut-off, endless or huge
  page, a hang) ends failed with a clear error (502), and the next sync runs.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from adapters.pms.addresses import AllowedHosts
from domain.practices import DepositAccount, PmsKind
from domain.schedule import parse_cutoff
from services.app.payments import associate_payment, refund_payment
from services.app.practices import create_practice, register_patient
from services.context import Components
from services.workers.writeback import CALLS_PER_ATTEMPT, Worker
from tests.conftest import Api, ComponentsFactory, PinnedClock
from tests.e2e.test_html_pages import browser
from tests.fakes.eaglesoft_bridge import FakeBridge
from tests.fakes.opendental import FakeOpenDental, Served, serving
from tests.integration.test_opendental_writeback import drain, pay, setup
from tests.pms_syncs import sync

#: the fakes are served on 127.0.0.1, which PMS calls reach only when allowed
LOCAL = AllowedHosts.of(["127.0.0.1"])

DAY = 86400


@pytest.fixture
def fake() -> Iterator[tuple[FakeOpenDental, str]]:
    with serving(range(101, 106)) as served:
        yield served


def connect_od(ctx: Components, practice_id: Any, url: str, key: str, timeout: float = 0.5) -> None:
    ctx.pms_connections.keep(
        str(practice_id),
        {
            "opendental": {
                "base_url": url,
                "developer_key": "dev-key",
                "customer_key": key,
                "timeout": timeout,
            }
        },
    )


def journal_of(ctx: Components, payment_id: Any) -> dict[str, tuple[str, str | None]]:
    return {
        r["id"]: (r["status"], r["pms_reference"]) for r in ctx.journal.of_payment(str(payment_id))
    }


# -- case 7: posted by hand while the key was bad -------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_posted_by_hand_while_the_key_was_bad_nothing_is_written_twice(
    fake: tuple[FakeOpenDental, str],
    make_components: ComponentsFactory,
    clock: PinnedClock,
    backend: str,
) -> None:
    od, url = fake
    ctx = make_components(backend, clock)
    practice, patients = setup(ctx, url)
    connect_od(ctx, practice.id, url, "a-bad-key")
    worker = Worker(ctx, ctx.journal, "opendental", first_delay=0.01, max_attempts=2)

    # Two payments of the morning: Open Dental refuses every write (401).
    kept = pay(ctx, practice, patients[0], 15000)
    voided = pay(ctx, practice, patients[1], 5000)
    drain(worker, ctx)
    assert od.payments == []
    assert {s for s, _ in journal_of(ctx, kept.id).values()} == {"failed"}

    # The office posts both by hand and marks them associated; the second is then
    # voided (a negative entry, also refused, posted by hand too).
    for payment, pay_num in ((kept, "58627"), (voided, "58628")):
        associate_payment(
            ctx,
            practice_id=practice.id,
            payment_id=payment.id,
            source=manual(),
            pms_reference=f"PayNum {pay_num}",
            actor="user:desk",
        )
    refund_payment(
        ctx, practice_id=practice.id, payment_id=voided.id, amount=None, actor="user:desk"
    )
    # The next day a refund of the first: refused as well, then posted by hand.
    clock.move(days=1)
    refund = refund_payment(
        ctx, practice_id=practice.id, payment_id=kept.id, amount=4000, actor="user:desk"
    )
    drain(worker, ctx)
    assert od.payments == []
    associate_payment(
        ctx,
        practice_id=practice.id,
        payment_id=kept.id,
        source=manual(),
        pms_reference="PayNum 58630",
        actor="user:desk",
        refund_id=refund.refund_id,
    )
    associate_payment(
        ctx,
        practice_id=practice.id,
        payment_id=voided.id,
        source=manual(),
        pms_reference=None,
        actor="user:desk",
        void=True,
    )

    # The key is fixed and every waiting or failed write is due again: none is sent.
    connect_od(ctx, practice.id, url, "cust-key")
    ctx.projector.catch_up()
    ctx.journal.retry_failed(str(practice.id))
    drain(worker, ctx)
    assert od.payments == []
    assert journal_of(ctx, kept.id) == {
        str(kept.id): ("done", "posted by hand: PayNum 58627"),
        str(refund.refund_id): ("done", "posted by hand: PayNum 58630"),
    }
    assert journal_of(ctx, voided.id) == {
        str(voided.id): ("done", "posted by hand: PayNum 58628"),
        f"void:{voided.id}": ("done", "posted by hand"),
    }


def manual() -> Any:
    from domain.payments import AssociationSource

    return AssociationSource.MANUAL


def test_the_worker_asks_the_ledger_even_before_the_journal_heard_of_the_association(
    fake: tuple[FakeOpenDental, str], make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    """The journal's row may not know yet (its intake runs behind, or through Kafka):
    the worker reads the payment's events before it writes, and writes nothing."""
    od, url = fake
    ctx = make_components("sqlite", clock)
    practice, patients = setup(ctx, url)
    payment = pay(ctx, practice, patients[0], 9900)
    ctx.projector.catch_up()
    associate_payment(
        ctx,
        practice_id=practice.id,
        payment_id=payment.id,
        source=manual(),
        pms_reference="PayNum 777",
        actor="user:desk",
    )
    # The association is in the ledger; the journal's row is as an intake that has not
    # caught up yet leaves it: pending.
    with ctx.store.database().transaction() as tx:
        tx.execute(
            "UPDATE writeback_journal SET status = 'pending', pms_reference = NULL WHERE id = ?",
            (str(payment.id),),
        )
    Worker(ctx, ctx.journal, "opendental").run_once()
    assert od.payments == []
    assert journal_of(ctx, payment.id) == {str(payment.id): ("done", "PayNum 777")}


def test_eaglesoft_posted_by_hand_while_the_token_was_bad_is_not_posted_again(
    make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    bridge = FakeBridge()
    bridge.patients.update({"E-1", "E-2"})
    with Served(bridge.app) as url:
        ctx = make_components("sqlite", clock)
        practice, patients = eaglesoft_practice(ctx, url, token="a-bad-token")
        worker = Worker(ctx, ctx.journal, "eaglesoft", first_delay=0.01, max_attempts=2)
        payment = pay(ctx, practice, patients[0], 12000)
        drain(worker, ctx)
        refused = bridge.posts
        assert refused == 0 and bridge.entries == {}  # 401 before anything is counted
        associate_payment(
            ctx,
            practice_id=practice.id,
            payment_id=payment.id,
            source=manual(),
            pms_reference="tran 4411",
            actor="user:desk",
        )
        clock.move(days=1)
        refund = refund_payment(
            ctx, practice_id=practice.id, payment_id=payment.id, amount=2000, actor="user:desk"
        )
        ctx.projector.catch_up()
        associate_payment(
            ctx,
            practice_id=practice.id,
            payment_id=payment.id,
            source=manual(),
            pms_reference="tran 4412",
            actor="user:desk",
            refund_id=refund.refund_id,
        )
        eaglesoft_connection(ctx, practice.id, url, "bridge-token")
        ctx.journal.retry_failed(str(practice.id))
        drain(worker, ctx)
        assert bridge.posts == 0 and bridge.entries == {}
        assert {s for s, _ in journal_of(ctx, payment.id).values()} == {"done"}


def eaglesoft_practice(ctx: Components, url: str, token: str) -> tuple[Any, list[Any]]:
    practice = create_practice(
        ctx,
        name="Eagle Dental",
        timezone="America/Chicago",
        pms=PmsKind.EAGLESOFT,
        auto_writeback=True,
        deposit_account=DepositAccount("Checking", "4444"),
        batch_cutoff=parse_cutoff("23:59"),
        actor="operator",
    )
    eaglesoft_connection(ctx, practice.id, url, token)
    patients = [
        register_patient(
            ctx,
            practice_id=practice.id,
            pms_patient_id=pms_id,
            first_name="Pat",
            last_name=pms_id,
            email=None,
            phone=None,
            guarantor_id=None,
            actor="operator",
        )
        for pms_id in ("E-1", "E-2")
    ]
    return practice, patients


def eaglesoft_connection(ctx: Components, practice_id: Any, url: str, token: str) -> None:
    ctx.pms_connections.keep(
        str(practice_id), {"eaglesoft": {"bridge_url": url, "token": token, "timeout": 0.5}}
    )


# -- case 8: the answer was lost after Open Dental committed ---------------------------


@pytest.mark.parametrize("fault", ["drop-after-apply", "html-after-apply", "truncated-after-apply"])
def test_a_write_whose_answer_was_lost_is_read_back_and_not_posted_again(
    fake: tuple[FakeOpenDental, str],
    make_components: ComponentsFactory,
    clock: PinnedClock,
    fault: str,
) -> None:
    od, url = fake
    ctx = make_components("sqlite", clock)
    practice, patients = setup(ctx, url)
    od.faults.append(fault)
    payment = pay(ctx, practice, patients[0], 12500)
    ctx.projector.catch_up()
    Worker(ctx, ctx.journal, "opendental", first_delay=0.01).run_once()

    assert od.paid_markers() == [str(payment.id)]  # once: found by its marker
    assert od.reads >= 1
    fresh = ctx.get(type(payment), payment.id, practice.id)
    assert fresh.pms_reference == f"PayNum {od.payments[0]['PayNum']}"
    assert journal_of(ctx, payment.id) == {str(payment.id): ("done", fresh.pms_reference)}


def test_eaglesoft_a_dropped_answer_is_looked_up_by_its_reference(
    make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    bridge = FakeBridge()
    bridge.patients.add("E-1")
    bridge.faults.append("drop-after-apply")
    with Served(bridge.app) as url:
        ctx = make_components("sqlite", clock)
        practice, patients = eaglesoft_practice(ctx, url, token="bridge-token")
        payment = pay(ctx, practice, patients[0], 3300)
        ctx.projector.catch_up()
        Worker(ctx, ctx.journal, "eaglesoft", first_delay=0.01).run_once()
        assert (bridge.posts, bridge.lookups) == (1, 1)  # looked up once, not posted again
        [entry] = bridge.entries.values()
        fresh = ctx.get(type(payment), payment.id, practice.id)
        assert fresh.pms_reference == f"Eaglesoft tran {entry['transaction_number']}"


# -- case 8: the claim outlasts the attempt --------------------------------------------


def test_two_workers_never_post_one_row_at_once(
    fake: tuple[FakeOpenDental, str], make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    """Open Dental takes longer than the client waits (0.5 s). The first worker's claim
    covers every call its attempt can make (4 read backs, the post, 4 read backs), not
    just the margin of 0.1 s: the second worker, running meanwhile, leaves the row."""
    od, url = fake
    od.timeout_sleep = 1.0
    ctx = make_components("sqlite", clock)
    practice, patients = setup(ctx, url)
    od.faults.append("timeout-after-apply")
    payment = pay(ctx, practice, patients[0], 4200)
    ctx.projector.catch_up()

    first = Worker(ctx, ctx.journal, "opendental", claim_seconds=0.1)
    second = Worker(ctx, ctx.journal, "opendental", claim_seconds=0.1)
    started = datetime.now(UTC)
    writing = threading.Thread(target=first.run_once)
    writing.start()
    while od.calls == 0:  # the first worker's post is at Open Dental
        time.sleep(0.01)
    row = ctx.journal.get(str(payment.id))
    assert row is not None and row["claimed_until"] is not None
    held = datetime.fromisoformat(row["claimed_until"].replace("Z", "+00:00")) - started
    assert held.total_seconds() >= CALLS_PER_ATTEMPT * 0.5
    time.sleep(0.3)  # past the margin alone
    assert second.run_once() == 0
    writing.join()
    assert second.run_once() == 0
    assert od.paid_markers() == [str(payment.id)]
    assert journal_of(ctx, payment.id)[str(payment.id)][0] == "done"


def test_an_open_dental_call_ends_within_its_timeout_whatever_it_sends() -> None:
    """An endless page, a huge one or a hang: the call gives up within the connection's
    timeout (or at the size limit), which is what the claim is reckoned from."""
    from adapters.pms.opendental import OpenDental, OpenDentalSettings
    from adapters.pms.reader import PmsUnavailable

    od = FakeOpenDental()
    od.add_patient(101)
    od.timeout_sleep = 5.0
    with Served(od.app) as url:
        reader = OpenDental(
            OpenDentalSettings(f"{url}/api/v1", "dev-key", "cust-key", 1.0, allowed=LOCAL)
        )
        for fault in ("endless", "hang", "huge"):
            od.read_faults.append(fault)
            began = time.monotonic()
            with pytest.raises(PmsUnavailable):
                list(reader.patients())
            assert time.monotonic() - began < 1.5, fault


# -- case 9: the Post to Ledger page asks only for what still needs posting -------------


def test_the_post_page_of_a_written_payment_asks_only_for_its_refund(
    api_for: Callable[..., Api], clock: PinnedClock
) -> None:
    od = FakeOpenDental()
    od.add_patient(58)
    with Served(od.app) as url:
        api = api_for("sqlite", clock).setup(pms="opendental", auto_writeback=True)
        ctx: Components = api.client.app.state.ctx  # type: ignore[attr-defined]
        connect_od(ctx, UUID(api.practice_id), f"{url}/api/v1", "cust-key")
        patient = api.post(
            "/v1/patients", {"pms_patient_id": "58", "first_name": "Ana", "last_name": "Reyes"}
        ).json()
        payment = api.pay(15000, patient_id=patient["id"]).json()
        worker = Worker(ctx, ctx.journal, "opendental", first_delay=0.01)
        drain(worker, ctx)
        pay_num = od.payments[0]["PayNum"]

        # The next day a refund of $50; Open Dental refuses its write (400).
        api.advance(DAY)
        od.faults.append("400")
        refund = api.post(f"/v1/payments/{payment['id']}/refund", {"amount": 5000}).json()
        drain(worker, ctx)
        shown = api.get(f"/v1/payments/{payment['id']}").json()
        assert shown["unposted"] == [{"kind": "refund", "id": refund["refund_id"], "amount": -5000}]

        web, _ = browser(api, "desk@elm.example")
        page = web.get(f"/payments/transactions/{payment['id']}/post")
        assert page.status_code == 200, page.text
        html = page.text
        assert f"Payment associated (PayNum {pay_num}); to post: Refund -$50.00" in html
        assert f"The payment is associated with the PMS (PayNum {pay_num})" in html
        assert "Enter Payment</em> window" not in html  # the payment is not asked for
        assert "150.00" not in html.split('id="post-panel"')[1]
        assert "Mark the payment as associated" not in html
        assert f'data-entry="{refund["refund_id"]}"' in html
        assert f"[ref:{refund['refund_id']}]" in html and "-$50.00" in html

        # Marked by hand from the page: nothing is left to post, nothing is written.
        csrf = html.split('name="csrf_token" value="')[1].split('"')[0]
        marked = web.post(
            f"/payments/transactions/{payment['id']}/associate",
            data={"csrf_token": csrf, "source": "manual", "refund_id": refund["refund_id"]},
            follow_redirects=False,
        )
        assert marked.status_code == 303, marked.text
        assert (
            "Nothing left to post" in web.get(f"/payments/transactions/{payment['id']}/post").text
        )
        ctx.projector.catch_up()
        ctx.journal.retry_failed(api.practice_id)
        drain(worker, ctx)
        assert Counter(r["PayAmt"] for r in od.payments) == {"150.00": 1}


# -- case 11: a sync that meets an HTML page ends failed; the next one runs -------------


@pytest.mark.parametrize(
    "fault", ["html-200", "truncated-json", "redirect", "huge", "endless", "hang"]
)
def test_a_sync_that_meets_a_bad_answer_ends_failed_and_the_next_one_runs(
    api_for: Callable[..., Api], clock: PinnedClock, fault: str
) -> None:
    od = FakeOpenDental()
    od.add_patient(1001, "Maria", "Alvarez", aging={"Total": "120.00", "Bal_0_30": "120.00"})
    od.timeout_sleep = 8.0
    with Served(od.app) as url:
        api = api_for("sqlite", clock).setup(pms="opendental")
        ctx: Components = api.client.app.state.ctx  # type: ignore[attr-defined]
        # short enough that a hang ends the sync soon, long enough for a loaded machine
        connect_od(ctx, UUID(api.practice_id), f"{url}/api/v1", "cust-key", timeout=3.0)
        od.read_faults.append(fault)

        first = sync(api)
        assert "could not be read" in first["error"]
        status = api.get("/v1/ar/patients").json()["pms_sync"]
        assert status["outcome"] == "failed"  # finished: not "running"

        second = sync(api)
        assert second["patients_seen"] == 1
        assert second["outcome"] == "ok"
