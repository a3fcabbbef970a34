"""The PMS side of the one protocol, after every step of any sequence of office work, PMS
answers and time: every entry the ledger owes lands once, and nothing else lands.

A Hypothesis state machine runs one practice that writes its card payments back
automatically, once against the Open Dental fake and once against the Eaglesoft
bridge fake (tests/fakes/). Its steps: a payment is taken; it is voided (before its
batch closes) or refunded in part (after); time passes (the batch closes, the
writeback's back-offs run out); the writeback worker runs (one, or two at once on the
same database); the office posts an entry by hand and marks it associated
(`associate_payment`); a request is sent (a commlog, Open Dental); the connection's key
goes bad and is fixed (`set_pms_connection`, which makes the failing rows due again).
Every PMS call a worker makes may meet a fault: refused (4xx), a 500 after the entry
was applied, the connection dropped after it was applied, a hang (nothing applied), a
proxy's HTML page with 200, an answer after the client gave up, an entry applied after
the client gave up; and a read back may meet a proxy's page, a redirect, a 500, a drop
or a hang.

After every step:

- no entry (payment, refund, void reversal, commlog) is in the PMS twice (the fake's
  rows counted by their `[ref:<id>]` marker or reference, and the office's own
  entries); the bridge is never sent a reference it has (an unknown outcome is read
  back before anything is sent again);
- nothing is in the PMS that the ledger says needs no posting: a payment voided before
  it was written is never written; the only entry of a voided payment the PMS may hold
  is one written (its answer lost) before the void, and then its reversal too;
- a journal row is done only when its entry is in the PMS or was posted by hand; a
  skipped row's entry is not in the PMS; an entry the ledger has as associated is in
  the PMS.

At the end of each example the key is fixed, faults stop, and the worker runs a few
passes with the clock moved past every back-off: each entry the ledger owes is in the
PMS exactly once (written, or posted by hand) and associated, and no journal row is
left pending, failed or with an unknown outcome.

SQLite; `PAYLEDGER_OUTCOME_EXAMPLES` examples per PMS (a few by default; 300 for a long
run).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from adapters.clock import iso
from adapters.processor.port import CardInput
from domain.errors import PaymentsError
from domain.payments import AssociationSource, Method, Payment, Status
from domain.practices import DepositAccount, PmsKind
from domain.requests import Channel
from domain.schedule import parse_cutoff
from services.app.due import run_due_work
from services.app.payments import associate_payment, collect_payment, refund_payment
from services.app.practices import (
    change_settings,
    create_practice,
    register_patient,
    set_pms_connection,
)
from services.app.requests import send_request
from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings
from services.workers.writeback import Worker
from tests.conftest import LOCAL_PMS, PinnedClock
from tests.fakes.eaglesoft_bridge import FakeBridge
from tests.fakes.opendental import FakeOpenDental, Served
from tests.integration.test_product_rules_machine import run as run_machine

#: examples per PMS of the bounded run (PAYLEDGER_OUTCOME_EXAMPLES=300 for a long one)
EXAMPLES = int(os.environ.get("PAYLEDGER_OUTCOME_EXAMPLES", "15"))
#: steps per example: a short sequence in the bounded run, longer in a long run
STEPS = 14 if EXAMPLES <= 20 else 30
CARD = CardInput("4242424242424242", 12, 2030, "123")
ACTOR = "user:front-desk"
#: a PMS call gives up after this many seconds; a fault that hangs lasts longer
TIMEOUT = 0.5
HANG = 0.6
#: what the PMS may answer a write: its answer (None), or a fault of the fakes
WRITE_FAULTS = [
    None,
    "400",
    "500-after-apply",
    "drop-after-apply",
    "hang-before-apply",
    "html-after-apply",
    "timeout-after-apply",
    "apply-late",
]
#: what the PMS (or what stands in front of it) may answer a read back
READ_FAULTS = [None, "html-200", "redirect", "500", "drop", "hang"]
#: the final passes of the worker (at most), each after the clock moved past every back-off
FINAL_PASSES = 12


class PmsOutcomes(RuleBasedStateMachine):
    pms: ClassVar[str] = "opendental"
    #: the fake and its URL, served for the whole test (cleared for each example)
    fake: ClassVar[Any]
    url: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="payledger-outcomes-"))
        self.ctx: Components | None = None
        self.payments: list[UUID] = []
        self.requests: list[str] = []
        self.patients: list[UUID] = []
        #: entries the office posted in the PMS by hand (by our marker)
        self.by_hand: Counter[str] = Counter()
        #: voided payments whose entry was in the PMS when they were voided (written,
        #: its answer lost, before the void)
        self.in_pms_at_void: set[str] = set()

    # -- set-up --------------------------------------------------------------------

    @initialize()
    def open_the_office(self) -> None:
        self.clock = PinnedClock(datetime(2026, 3, 4, 15, 0, tzinfo=UTC))
        self.ctx = build_components(
            Settings(data_dir=self.tmp, run_scheduler=False, pms_allowed_hosts=LOCAL_PMS),
            real_clock=self.clock,
        )
        reset(self.fake)
        practice = create_practice(
            self.ctx,
            name="Outcome Dental",
            timezone="America/Chicago",
            pms=PmsKind.OPENDENTAL if self.pms == "opendental" else PmsKind.EAGLESOFT,
            auto_writeback=True,
            deposit_account=DepositAccount("Checking", "4444"),
            batch_cutoff=parse_cutoff("18:00"),
            actor="operator",
        )
        self.practice_id = practice.id
        change_settings(
            self.ctx, practice.id, {"pms_payment_type": "391", "pms_sync_minutes": 0}, "operator"
        )
        self.connect(good=True)
        for n in range(3):
            pms_id = str(101 + n) if self.pms == "opendental" else f"E-{n}"
            patient = register_patient(
                self.ctx,
                practice_id=practice.id,
                pms_patient_id=pms_id,
                first_name=f"Pat{n}",
                last_name="Outcome",
                email=f"pat{n}@example.com",
                phone=f"+1617555010{n}",
                guarantor_id=None,
                actor="operator",
            )
            self.patients.append(patient.id)

    def connect(self, *, good: bool) -> None:
        """The office saves the connection's settings (a good key or a bad one); the
        waiting writes are due at once."""
        if self.pms == "opendental":
            block = {
                "base_url": self.url,
                "developer_key": "dev-key",
                "customer_key": "cust-key" if good else "a-bad-key",
                "timeout": TIMEOUT,
            }
        else:
            token = "bridge-token" if good else "a-bad-token"
            block = {"bridge_url": self.url, "token": token, "timeout": TIMEOUT}
        set_pms_connection(self.led, self.practice_id, {self.pms: block})

    @property
    def led(self) -> Components:
        assert self.ctx is not None
        return self.ctx

    def payment(self, index: int) -> Payment:
        return self.led.get(Payment, self.payments[index % len(self.payments)], self.practice_id)

    # -- what the PMS holds --------------------------------------------------------

    def written(self) -> Counter[str]:
        """Our entries in the PMS, by marker (each row the PMS keeps, and for the bridge
        each reference it was sent again: it keeps one entry per reference)."""
        if self.pms == "opendental":
            od: FakeOpenDental = self.fake
            return Counter(od.paid_markers()) + Counter(od.commlog_markers())
        bridge: FakeBridge = self.fake
        return Counter(bridge.entries.keys()) + bridge.reposts

    def in_pms(self) -> Counter[str]:
        """Every entry in the PMS by our marker: written by us, or by the office's hand."""
        return self.written() + self.by_hand

    def pms_reference(self, marker: str) -> str | None:
        """What the office sees in the PMS for one of our entries (None: nothing)."""
        if self.pms == "opendental":
            for row in self.fake.payments:
                if row["PayNote"].endswith(f"[ref:{marker}]"):
                    return f"PayNum {row['PayNum']}"
            return None
        entry = self.fake.entries.get(marker)
        return f"Eaglesoft tran {entry['transaction_number']}" if entry else None

    # -- office work ---------------------------------------------------------------

    @rule(patient=st.integers(0, 2), amount=st.integers(100, 90_000))
    def take_a_payment(self, patient: int, amount: int) -> None:
        payment = collect_payment(
            self.led,
            practice_id=self.practice_id,
            amount=amount,
            method=Method.VIRTUAL_TERMINAL,
            card=CARD,
            actor=ACTOR,
            patient_id=self.patients[patient],
        )
        assert payment.status == Status.APPROVED
        self.payments.append(payment.id)

    @precondition(lambda self: self.payments)
    @rule(index=st.integers(0, 20), percent=st.sampled_from([100, 40, 10]))
    def void_or_refund(self, index: int, percent: int) -> None:
        """Before its batch closes a payment is voided (in full); after, refunded in part."""
        before = self.payment(index)
        left = before.amount.cents - before.refunded.cents
        if before.status == Status.SETTLED and left <= 0:
            return
        if before.status == Status.APPROVED:
            self.fake.settle()
            in_pms = self.in_pms()[str(before.id)] > 0
        try:
            refund_payment(
                self.led,
                practice_id=self.practice_id,
                payment_id=before.id,
                amount=max(1, left * percent // 100) if before.status == Status.SETTLED else None,
                actor=ACTOR,
            )
        except PaymentsError:
            return
        if before.status == Status.APPROVED and in_pms:
            self.in_pms_at_void.add(str(before.id))

    @precondition(lambda self: self.pms == "opendental")
    @rule(patient=st.integers(0, 2), sms=st.booleans())
    def send_a_request(self, patient: int, sms: bool) -> None:
        request = send_request(
            self.led,
            practice_id=self.practice_id,
            patient_id=self.patients[patient],
            amount=12_500,
            channel=Channel.SMS if sms else Channel.EMAIL,
            actor=ACTOR,
        )
        self.requests.append(str(request.id))

    @precondition(lambda self: self.payments)
    @rule(index=st.integers(0, 20), which=st.integers(0, 3))
    def post_by_hand(self, index: int, which: int) -> None:
        """Staff post an entry the ledger still owes (looking in the PMS first: an entry
        already there is only marked) and mark it associated."""
        payment = self.payment(index)
        owed = [e for e in payment.ledger_entries if not e.posted]
        if not owed:
            return
        entry = owed[which % len(owed)]
        reference = self.pms_reference(entry.id)
        if reference is None:
            self.by_hand[entry.id] += 1
            reference = f"hand {sum(self.by_hand.values())}"
        associate_payment(
            self.led,
            practice_id=self.practice_id,
            payment_id=payment.id,
            source=AssociationSource.MANUAL,
            pms_reference=reference,
            actor=ACTOR,
            refund_id=UUID(entry.id) if entry.kind == "refund" else None,
            void=entry.kind == "void",
        )

    @rule()
    def the_key_goes_bad(self) -> None:
        self.connect(good=False)

    @rule()
    def the_key_is_fixed(self) -> None:
        self.connect(good=True)

    @rule(minutes=st.sampled_from([1, 10, 90, 60 * 26]))
    def time_passes(self, minutes: int) -> None:
        """The ledger's clock and the writeback's move together: batches close, back-offs
        and claims run out."""
        self.clock.move(minutes=minutes)
        run_due_work(self.led, self.practice_id)
        self.journal_time_passes(timedelta(minutes=minutes))

    def journal_time_passes(self, by: timedelta) -> None:
        """The writeback journal keeps real times: moving them back is real time passing."""
        database = self.led.store.database()
        rows = database.query(
            "SELECT id, next_attempt_at, claimed_until FROM writeback_journal "
            "WHERE status = 'pending'"
        )
        with database.transaction() as tx:
            for row in rows:
                tx.execute(
                    "UPDATE writeback_journal SET next_attempt_at = ?, claimed_until = ? "
                    "WHERE id = ?",
                    (
                        earlier(row["next_attempt_at"], by),
                        earlier(row["claimed_until"], by),
                        row["id"],
                    ),
                )

    @rule(
        writes=st.lists(st.sampled_from(WRITE_FAULTS), max_size=4),
        reads=st.lists(st.sampled_from(READ_FAULTS), max_size=3),
        two=st.booleans(),
    )
    def the_worker_runs(self, writes: list[str | None], reads: list[str | None], two: bool) -> None:
        """One worker round (or two workers at once on the same database); each PMS call
        meets the next fault queued (None: the PMS answers as it should)."""
        with self.faults(writes, reads):
            self.run_workers(2 if two else 1)

    @contextmanager
    def faults(self, writes: list[str | None], reads: list[str | None]) -> Iterator[None]:
        fake = self.fake
        fake.faults.extend(f or "none" for f in writes)
        fake.read_faults.extend(f or "none" for f in reads)
        if self.pms == "opendental":
            fake.commlog_faults.extend(f or "none" for f in writes)
        try:
            yield
        finally:
            fake.settle()  # what the PMS applies late, it applies within the step
            fake.faults.clear()
            fake.read_faults.clear()
            if self.pms == "opendental":
                fake.commlog_faults.clear()

    def run_workers(self, count: int) -> None:
        self.led.projector.catch_up()
        workers = [Worker(self.led, self.led.journal, self.pms) for _ in range(count)]
        if count == 1:
            workers[0].run_once()
            return
        errors: list[BaseException] = []

        def run(worker: Worker) -> None:
            try:
                worker.run_once()
            except BaseException as error:  # raised again below
                errors.append(error)

        threads = [threading.Thread(target=run, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    # -- the rules -----------------------------------------------------------------

    def ledger(self) -> dict[str, tuple[Payment, bool]]:
        """Every entry the ledger has (posted or not): marker -> (payment, posted)."""
        entries: dict[str, tuple[Payment, bool]] = {}
        for pid in self.payments:
            payment = self.led.get(Payment, pid, self.practice_id)
            for entry in payment.ledger_entries:
                entries[entry.id] = (payment, entry.posted)
        return entries

    def journal(self) -> dict[str, dict[str, Any]]:
        rows = self.led.store.database().query(
            "SELECT id, kind, status, outcome_unknown, payment_id FROM writeback_journal"
        )
        return {str(r["id"]): dict(r) for r in rows}

    def written_before_void(self, marker: str) -> bool:
        """The entry of a payment in the PMS when it was voided, or that entry's reversal."""
        return marker.removeprefix("void:") in self.in_pms_at_void

    @invariant()
    def the_pms_obeys_the_ledger(self) -> None:
        if self.ctx is None:
            return
        self.fake.settle()
        self.led.projector.catch_up()
        in_pms = self.in_pms()
        ledger = self.ledger()
        journal = self.journal()

        twice = {m: n for m, n in in_pms.items() if n > 1}
        assert not twice, f"in the PMS more than once: {twice}"

        for marker in in_pms:
            if marker in ledger or marker in self.requests or self.written_before_void(marker):
                continue
            row = journal.get(marker)
            # an attempt whose answer was lost may have written it: until it is read
            # back, its row is pending with its outcome unknown
            assert row is not None and row["status"] == "pending" and row["outcome_unknown"], (
                f"{marker} is in the PMS, and the ledger owes no such entry ({row})"
            )

        for marker, row in journal.items():
            if row["status"] == "done":
                assert in_pms[marker] == 1, f"{marker}'s row is done, and it is not in the PMS"
            if row["status"] == "skipped" and row["kind"] != "commlog":
                assert in_pms[marker] == 0, f"{marker} was skipped, and it is in the PMS"

        for marker, (_, posted) in ledger.items():
            if posted:
                assert in_pms[marker] == 1, f"{marker} is associated, and it is not in the PMS"

    def teardown(self) -> None:
        try:
            if self.ctx is not None:
                self.everything_owed_lands_once()
        finally:
            if self.ctx is not None:
                self.ctx.store.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def everything_owed_lands_once(self) -> None:
        """The key fixed, no faults, the worker run with the clock past every back-off:
        each entry owed is in the PMS once and associated; no row is left open."""
        self.fake.settle()
        reset_faults(self.fake)
        self.connect(good=True)
        for _ in range(FINAL_PASSES):
            self.journal_time_passes(timedelta(hours=2))
            self.run_workers(1)
            if not any(r["status"] == "pending" for r in self.journal().values()):
                break
        self.the_pms_obeys_the_ledger()
        in_pms = self.in_pms()
        for marker, (payment, posted) in self.ledger().items():
            assert posted, f"{marker} of {payment.id} is still owed to the PMS"
            assert in_pms[marker] == 1, f"{marker} is in the PMS {in_pms[marker]} times"
        for marker in self.requests:
            assert in_pms[marker] == 1, (
                f"the commlog of {marker} is in the PMS {in_pms[marker]} times"
            )
        for marker in in_pms:
            if self.written_before_void(marker):
                payment = marker.removeprefix("void:")
                assert in_pms[payment] == 1 and in_pms[f"void:{payment}"] == 1, (
                    f"payment {payment} was in the PMS when it was voided: its reversal must be too"
                )
        open_rows = {
            m: (r["status"], r["outcome_unknown"])
            for m, r in self.journal().items()
            if r["status"] not in ("done", "skipped") or r["outcome_unknown"]
        }
        assert not open_rows, f"rows left open: {open_rows}"


def earlier(stamp: str | None, by: timedelta) -> str | None:
    if stamp is None:
        return None
    return iso(datetime.fromisoformat(stamp.replace("Z", "+00:00")) - by)


def reset_faults(fake: Any) -> None:
    fake.faults.clear()
    fake.read_faults.clear()
    if isinstance(fake, FakeOpenDental):
        fake.commlog_faults.clear()


def reset(fake: Any) -> None:
    """A fresh PMS for an example: no entries, no faults."""
    fake.settle()
    reset_faults(fake)
    if isinstance(fake, FakeOpenDental):
        fake.payments.clear()
        fake.commlogs.clear()
    else:
        fake.entries.clear()
        fake.reposts.clear()


def run(machine: type[PmsOutcomes]) -> None:
    run_machine(machine, examples=EXAMPLES, steps=STEPS)


def test_open_dental_writes_what_the_ledger_owes_once() -> None:
    od = FakeOpenDental()
    od.timeout_sleep = HANG
    for pat_num in (101, 102, 103):
        od.add_patient(pat_num)
    with Served(od.app) as url:

        class OnOpenDental(PmsOutcomes):
            pms = "opendental"
            fake = od

        OnOpenDental.url = f"{url}/api/v1"
        run(OnOpenDental)


def test_the_eaglesoft_bridge_is_sent_what_the_ledger_owes_once() -> None:
    bridge = FakeBridge()
    bridge.timeout_sleep = HANG
    bridge.patients.update({"E-0", "E-1", "E-2"})
    with Served(bridge.app) as url:

        class OnEaglesoft(PmsOutcomes):
            pms = "eaglesoft"
            fake = bridge

        OnEaglesoft.url = url
        run(OnEaglesoft)
