"""PMS writeback: turn payment, refund, void, lost dispute and request events into PMS
entries, once.

Intake (from Kafka or, in the embedded default, from the ordered log in process)
records what each practice is owed in the writeback journal; rows are keyed by our
marker, so at-least-once delivery gives one row. The worker claims due rows in
log order (a reversal waits for its payment; nothing else waits) and calls the
practice's PMS writer; on success it issues the command that marks the payment
(or refund) associated with the PMS reference. Failures are retried with backoff
(a Retry-After pauses the practice's writes to that PMS); after the configured
attempts the row is failed, shown on the payment, and the practice's status
turns failing.
A write whose outcome is unknown (anything after the request left: a timeout, a dropped
connection, a 5xx, a body that is not the answer expected) is read back (by its marker)
at once, and again before any retry.

The ledger decides: before each write the worker reads the payment's events and writes
only an entry that still needs posting (domain/posting.py, as the badge and Post to
Ledger say); every association (payment, refund, void, lost dispute; automatic, by
hand or from the inbox) finishes the entry's row as done, with no call to the PMS. A
claim holds its row longer than an attempt's calls can take (each call's time is
bounded by the writer), so two workers never write one row at once.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from adapters.pms.addresses import AllowedHosts
from adapters.pms.connections import PmsConnections
from adapters.pms.eaglesoft import BridgeSettings, EaglesoftBridge
from adapters.pms.journal import (
    PRACTICE_SETTINGS,
    Finish,
    Journal,
    JournalEntryRow,
    JournalIntake,
    Outcome,
    Pause,
    PracticeOutcome,
    Release,
    WritebackPracticeRow,
    now_text,
)
from adapters.pms.opendental import OpenDental, OpenDentalSettings
from adapters.pms.port import Commlog, PmsEntry, PmsWriteError, PmsWriter, Written
from adapters.pms.sandbox import SimulatedOpenDental, is_simulated
from domain.errors import AlreadyAssociated, PaymentsError
from domain.money import format_dollars
from domain.payments import AssociationSource, Payment, Status
from domain.posting import dispute_marker
from domain.schedule import practice_time
from services.app import payments
from services.app.payments import associate_payment
from services.app.publish import PublishedEvent, to_public
from services.app.writeback_status import writes_back_automatically
from services.context import Aggregates, PmsConnected


class Needs(payments.Needs, Aggregates, PmsConnected, Protocol):
    """The parts these use cases are given (services/context.py)."""


log = logging.getLogger("payledger.writeback")

R = TypeVar("R")

MAX_ATTEMPTS = 8
#: the days an earlier attempt's entry is looked for on (its pay date, and the day
#: before, of and after its first attempt): at most this many reads
READ_BACK_DAYS = 4
#: the most PMS calls one attempt makes: a read back, the write, and a read back of a
#: write whose answer was lost
CALLS_PER_ATTEMPT = 2 * READ_BACK_DAYS + 1
#: the margin an attempt's claim keeps over its calls' longest time (the claim, in
#: seconds, is CALLS_PER_ATTEMPT times the writer's `call_seconds` plus this), so that a
#: second worker never takes a row whose attempt is still under way; a process that
#: dies mid-attempt frees its row after the claim
CLAIM_SECONDS = float(os.environ.get("PAYLEDGER_WRITEBACK_CLAIM_SECONDS", "60"))
#: how many practices' rows the service's worker writes at once (a Worker made without
#: `parallel` takes one practice at a time)
PARALLEL = int(os.environ.get("PAYLEDGER_WRITEBACK_PARALLEL", "32"))
#: how many of a practice's rows one batch takes: claimed together before their calls,
#: their outcomes recorded together after them (one transaction, not one per row)
BATCH = int(os.environ.get("PAYLEDGER_WRITEBACK_BATCH", "20"))
FIRST_DELAY = 30.0  # seconds; doubles with each attempt, at most an hour
#: how many of its due rows a practice's job takes in the continuous loop (`Worker.run`)
#: before it makes way for the practices waiting for a thread
JOB_ROWS = int(os.environ.get("PAYLEDGER_WRITEBACK_JOB_ROWS", str(5 * BATCH)))
#: seconds the continuous loop waits, with nothing due, before it looks again
IDLE = 0.2


def backoff(attempts: int, first: float = FIRST_DELAY) -> float:
    return float(min(3600.0, first * 2 ** max(0, attempts - 1)))


# -- intake --------------------------------------------------------------------------


def intake(journal: JournalIntake, event: PublishedEvent, only_pms: str | None = None) -> None:
    """Record what this event owes a PMS (inside the consumer's transaction)."""
    handler = HANDLERS.get(event.type)
    if handler is not None:
        handler(journal, event, only_pms)


def practice_created(journal: JournalIntake, e: PublishedEvent, only_pms: str | None) -> None:
    d = e.data
    journal.practice_created(
        str(e.practice_id),
        pms=d["pms"],
        auto_writeback=bool(d["auto_writeback"]),
        timezone=d["timezone"],
        position=e.position,
    )


def settings_changed(journal: JournalIntake, e: PublishedEvent, only_pms: str | None) -> None:
    changes = e.data["changes"]
    for name in PRACTICE_SETTINGS:
        if name in changes:
            journal.practice_setting_changed(str(e.practice_id), name, changes[name], e.position)


def patient_registered(journal: JournalIntake, e: PublishedEvent, only_pms: str | None) -> None:
    journal.patient_registered(
        str(e.aggregate_id),
        practice_id=str(e.practice_id),
        pms_patient_id=e.data["pms_patient_id"],
        is_guarantor=e.data.get("guarantor_id") is None,
    )


def automatic_practice(
    journal: JournalIntake, e: PublishedEvent, only_pms: str | None
) -> WritebackPracticeRow | None:
    practice = journal.practice(str(e.practice_id))
    if practice is None or not writes_back_automatically(
        practice["pms"], bool(practice["auto_writeback"])
    ):
        return None
    if only_pms and practice["pms"] != only_pms:
        return None
    return practice


def payment_captured(journal: JournalIntake, e: PublishedEvent, only_pms: str | None) -> None:
    practice = automatic_practice(journal, e, only_pms)
    if practice is None:
        return
    d = e.data
    patient = journal.patient(d["patient_id"]) if d.get("patient_id") else None
    payload = {
        "pms_patient_id": patient["pms_patient_id"] if patient else None,
        "amount": d["amount"],
        "pay_date": practice_time(e.occurred_at, practice["timezone"]).date().isoformat(),
        "pay_type": practice["pms_payment_type"],
        "note": f"Card payment {d['card_brand']} ****{d['card_last4']} "
        f"{format_dollars(d['amount'])} txn {d['transaction_id']}",
        "patient_preferred": bool(patient and not patient["is_guarantor"]),
    }
    journal.add(
        id=str(e.aggregate_id),
        practice_id=str(e.practice_id),
        pms=practice["pms"],
        kind="payment",
        payment_id=str(e.aggregate_id),
        position=e.position,
        payload=payload,
        status="pending" if patient else "unmatched",
    )


def reversal(journal: JournalIntake, e: PublishedEvent, only_pms: str | None) -> None:
    """A void or refund of a payment that is (or will be) written: a negative entry."""
    payment = journal.payment_entry(str(e.aggregate_id))
    if payment is None or payment["status"] == "unmatched":
        return
    original = json.loads(payment["payload"])
    is_void = e.type == "PaymentVoided"
    marker = f"void:{e.aggregate_id}" if is_void else str(e.data["refund_id"])
    amount = -(original["amount"] if is_void else e.data["amount"])
    payload = {
        **original,
        "amount": amount,
        "pay_date": practice_time(e.occurred_at, journal.timezone(str(e.practice_id)))
        .date()
        .isoformat(),
        "note": f"{'Void' if is_void else 'Refund'} of card payment [ref:{e.aggregate_id}] "
        f"{format_dollars(-amount)}",
        "original_marker": str(e.aggregate_id),
    }
    journal.add(
        id=marker,
        practice_id=str(e.practice_id),
        pms=payment["pms"],
        kind="reversal",
        payment_id=str(e.aggregate_id),
        position=e.position,
        payload=payload,
        depends_on=str(e.aggregate_id),
    )


def dispute_closed(journal: JournalIntake, e: PublishedEvent, only_pms: str | None) -> None:
    """A lost dispute of a payment that is (or will be) written: a negative entry, once
    (the row is keyed by the dispute's marker)."""
    if e.data["status"] != "lost":
        return
    payment = journal.payment_entry(str(e.aggregate_id))
    if payment is None or payment["status"] == "unmatched":
        return
    original = json.loads(payment["payload"])
    amount = int(e.data["amount"])
    payload = {
        **original,
        "amount": -amount,
        "pay_date": practice_time(e.occurred_at, journal.timezone(str(e.practice_id)))
        .date()
        .isoformat(),
        "note": f"Lost card dispute {e.data['dispute_id']} of card payment "
        f"[ref:{e.aggregate_id}] {format_dollars(amount)}",
        "original_marker": str(e.aggregate_id),
    }
    journal.add(
        id=dispute_marker(e.data["dispute_id"]),
        practice_id=str(e.practice_id),
        pms=payment["pms"],
        kind="reversal",
        payment_id=str(e.aggregate_id),
        position=e.position,
        payload=payload,
        depends_on=str(e.aggregate_id),
    )


#: how the journal states an entry that was associated without a write of ours
BY_HAND = {"manual": "posted by hand", "inbox": "matched from the office inbox"}


def associated(journal: JournalIntake, e: PublishedEvent, only_pms: str | None) -> None:
    """An entry of the payment is in the PMS ledger (a payment, refund, void or lost
    dispute; written automatically, posted by hand or matched from the inbox): its
    journal row is finished as done, so no attempt writes it (again)."""
    d = e.data
    if e.type == "PaymentRefundAssociated":
        marker = str(d["refund_id"])
    elif e.type == "PaymentVoidAssociated":
        marker = f"void:{e.aggregate_id}"
    elif e.type == "PaymentDisputeAssociated":
        marker = dispute_marker(d["dispute_id"])
    else:
        marker = str(e.aggregate_id)
    source = str(d.get("source") or "")
    reference = d.get("pms_reference")
    if source in BY_HAND:
        reference = f"{BY_HAND[source]}: {reference}" if reference else BY_HAND[source]
    journal.associated(marker, reference)


def request_sent(journal: JournalIntake, e: PublishedEvent, only_pms: str | None) -> None:
    practice = automatic_practice(journal, e, only_pms)
    if practice is None or practice["pms"] != "opendental":
        return
    patient = journal.patient(e.data["patient_id"])
    if patient is None:
        return
    payload = {
        "pms_patient_id": patient["pms_patient_id"],
        "mode": e.data["commlog_mode"],
        "note": e.data["commlog_note"],
        "at": e.occurred_at.isoformat(),
        "timezone": practice["timezone"],
    }
    journal.add(
        id=str(e.aggregate_id),
        practice_id=str(e.practice_id),
        pms=practice["pms"],
        kind="commlog",
        payment_id=None,
        position=e.position,
        payload=payload,
    )


HANDLERS = {
    "PracticeCreated": practice_created,
    "PracticeSettingsChanged": settings_changed,
    "PatientRegistered": patient_registered,
    "PaymentCaptured": payment_captured,
    "PaymentVoided": reversal,
    "PaymentRefunded": reversal,
    "PaymentAssociated": associated,
    "PaymentRefundAssociated": associated,
    "PaymentVoidAssociated": associated,
    "PaymentDisputeAssociated": associated,
    "PaymentDisputeClosed": dispute_closed,
    "PaymentRequestSent": request_sent,
}


# -- the worker ----------------------------------------------------------------------


#: the writers made, by practice and PMS, with the settings each was made from: a writer
#: (its HTTP client, its throttle) is made again only when the practice's settings change
_writers: dict[tuple[str, str], tuple[str, PmsWriter]] = {}
_writers_lock = threading.Lock()
#: the most writers kept (beyond it, the oldest are made again when next needed)
KEPT_WRITERS = 10_000


def writer_for(connections: PmsConnections, practice_id: str, pms: str) -> PmsWriter:
    """The practice's writer for its PMS, as its connection settings say now (the
    settings are read every time; the writer is reused while they stay the same)."""
    config = connections.of(practice_id)
    settings = json.dumps(config.get(pms), sort_keys=True)
    with _writers_lock:
        kept = _writers.get((practice_id, pms))
    if kept is not None and kept[0] == settings:
        return kept[1]
    writer = make_writer(config, pms, connections.allowed)
    with _writers_lock:
        if len(_writers) >= KEPT_WRITERS:
            for key in list(_writers)[: KEPT_WRITERS // 10]:
                del _writers[key]
        _writers[(practice_id, pms)] = (settings, writer)
    return writer


def make_writer(
    config: Mapping[str, Any], pms: str, allowed: AllowedHosts | None = None
) -> PmsWriter:
    """The writer of the practice's connection; it reaches private addresses only for the
    hosts the operator allows (`allowed`)."""
    if pms == "opendental" and is_simulated(config.get("opendental")):
        return SimulatedOpenDental()  # the demo's, in sandbox mode (services/app/demo.py)
    if pms == "opendental" and "opendental" in config:
        return OpenDental(OpenDentalSettings.of_connection(config["opendental"], allowed))
    if pms == "eaglesoft" and "eaglesoft" in config:
        c = config["eaglesoft"]
        return EaglesoftBridge(
            BridgeSettings(
                c["bridge_url"], c["token"], float(c.get("timeout", 30)), allowed or AllowedHosts()
            )
        )
    raise PmsWriteError(f"no {pms} connection settings for this practice", retryable=True)


def entry_of(item: dict[str, Any]) -> PmsEntry:
    p = json.loads(item["payload"])
    return PmsEntry(
        marker=item["id"],
        pms_patient_id=p["pms_patient_id"],
        amount=p["amount"],
        pay_date=date.fromisoformat(p["pay_date"]),
        pay_type=p.get("pay_type"),
        note=p["note"],
        patient_preferred=p["patient_preferred"],
        original_marker=p.get("original_marker"),
    )


@dataclass(frozen=True)
class InLedger:
    """An entry as the ledger has it: still owed to the PMS, posted (associated) with
    its reference, or owed no more (why)."""

    owed: bool
    posted: bool = False
    reference: str | None = None
    why: str = ""
    payment: Payment | None = None


def reference_of(payment: Payment, kind: str, marker: str) -> str | None:
    """The PMS reference the ledger keeps for an associated entry of the payment."""
    if kind == "payment":
        return payment.pms_reference
    if kind == "refund":
        return payment.associated_refunds.get(UUID(marker))
    if kind == "dispute" and payment.dispute is not None:
        return payment.dispute.pms_reference
    return None


class Worker:
    """Processes due journal rows of one PMS kind (or all)."""

    def __init__(
        self,
        ctx: Needs,
        journal: Journal,
        pms: str | None = None,
        writers: dict[str, PmsWriter] | None = None,
        first_delay: float = FIRST_DELAY,
        max_attempts: int = MAX_ATTEMPTS,
        claim_seconds: float = CLAIM_SECONDS,
        parallel: int = 1,
    ) -> None:
        self.ctx = ctx
        self.journal = journal
        self.pms = pms
        self.writers = writers  # tests may pin a writer per practice
        self.first_delay = first_delay
        self.max_attempts = max_attempts
        # the claim's margin over the longest time an attempt's calls can take
        self.claim_seconds = claim_seconds
        self.parallel = parallel

    def run_once(self, limit: int = 100) -> int:
        """One round over the due rows: each practice's in log order, the practices side
        by side (at most `parallel` at once), so that a slow or refusing PMS holds up only
        its own practice. The association each write makes is saved without waiting for
        the views when their runners work in the background (nobody waits on it)."""
        practices: dict[str, list[JournalEntryRow]] = {}
        for item in self.journal.due(self.pms, limit):
            practices.setdefault(item["practice_id"], []).append(item)
        rounds = list(practices.values())
        with self.ctx.unwaited():
            if self.parallel <= 1 or len(rounds) <= 1:
                return sum(self.run_practice(items) for items in rounds)
            with ThreadPoolExecutor(min(self.parallel, len(rounds))) as pool:
                return sum(pool.map(self.in_context(self.run_practice), rounds))

    def run(self, stop: threading.Event, *, idle: float = IDLE, rows: int = JOB_ROWS) -> None:
        """Write until `stop`: each practice with due rows gets a job of its own (its rows
        in order, a batch at a time, at most `rows` of them), at most `parallel` jobs at
        once (at least one). A job that ends makes way at once for the next practice with
        due rows (the one waiting longest first), or for its own next rows: no practice
        waits for another's batch, as a round of `run_once` waits for its slowest, and a
        slow PMS holds only its own practice's job."""
        running: dict[str, Future[int]] = {}
        slots = max(1, self.parallel)
        with self.ctx.unwaited(), ThreadPoolExecutor(slots) as pool:
            job = self.in_context(partial_run_for(self, rows))
            while not stop.is_set():
                for practice_id, future in list(running.items()):
                    if future.done():
                        del running[practice_id]
                        if future.exception() is not None:
                            log.error(
                                "writeback of practice %s failed; retrying",
                                practice_id,
                                exc_info=future.exception(),
                            )
                if len(running) < slots:
                    try:
                        due = self.journal.due_practices(
                            self.pms, slots - len(running), list(running)
                        )
                    except Exception:
                        log.exception("could not read the due writeback; retrying")
                        due = []
                    for practice_id in due:
                        running[practice_id] = pool.submit(job, practice_id)
                if running:
                    wait_for(list(running.values()), timeout=idle, return_when=FIRST_COMPLETED)
                else:
                    stop.wait(idle)
            wait_for(list(running.values()))

    def run_for(self, practice_id: str, limit: int = 100) -> int:
        """One round over one practice's due rows (the scheduler's job of that practice)."""
        with self.ctx.unwaited():
            return self.run_practice(self.journal.due(self.pms, limit, practice_id))

    @staticmethod
    def in_context(action: Callable[[R], int]) -> Callable[[R], int]:
        """`action` run in a copy of the caller's context (the pool's threads have none)."""
        context = contextvars.copy_context()
        return lambda argument: context.copy().run(action, argument)

    def run_practice(self, items: list[JournalEntryRow]) -> int:
        """One practice's due rows in order, a batch of BATCH at a time, until its PMS asks
        us to wait: the batch's rows claimed in one transaction before any call, one call
        each (outside any retry), and the batch's outcomes (associations, then the rows
        and the practice's status) recorded together at its end."""
        done = 0
        writers: dict[str, PmsWriter] = {}
        for start in range(0, len(items), BATCH):
            written, paused = self.run_batch(items[start : start + BATCH], writers)
            done += written
            if paused:
                break  # the practice's other rows wait for the next round
        return done

    def run_batch(
        self, items: list[JournalEntryRow], writers: dict[str, PmsWriter]
    ) -> tuple[int, bool]:
        """One batch of a practice's rows: how many were written, and whether the PMS
        asked us to wait (the batch's untried rows are then released as they were)."""
        # held for two of the longest attempts, extended while the batch works: a worker
        # that dies holds its rows no longer than that (not for the whole batch's worst)
        lease = max(self.lease(item, writers) for item in items)
        taken = set(self.journal.claim_many(items, 2 * lease))
        held_until = time.monotonic() + 2 * lease
        batch = Batch(self)
        done, paused = 0, False
        stamp = now_text()
        try:
            for index, item in enumerate(items):
                if item["id"] not in taken:
                    continue
                if not paused and time.monotonic() + lease > held_until:
                    left = [i["id"] for i in items[index:] if i["id"] in taken]
                    taken -= set(left) - set(self.journal.extend(left, 2 * lease))
                    held_until = time.monotonic() + 2 * lease
                    if item["id"] not in taken:
                        continue
                if paused:
                    batch.release(item)
                    continue
                if item["depends_on"] in batch.unrecorded:
                    batch.flush()  # its payment's outcome first: the reversal reads it
                claimed: dict[str, Any] = {
                    **item,
                    "attempts": int(item["attempts"]) + 1,
                    "outcome_unknown": bool(item["outcome_unknown"]),  # as the last try left it
                    "first_attempt_at": item["first_attempt_at"] or stamp,
                }
                result = self.process(claimed, writers, batch)
                if result is None:
                    paused = True
                    continue
                done += result
        except BaseException:
            batch.flush()  # what was called is recorded; the rest stays claimed, unknown
            raise
        batch.flush()
        return done, paused

    def lease(self, item: Mapping[str, Any], writers: dict[str, PmsWriter]) -> float:
        """How long an attempt at this row holds it: longer than its calls can take (each
        call's time is bounded by the writer), plus the margin."""
        try:
            writer = self.writer_of(item, writers)
        except PmsWriteError:
            return self.claim_seconds  # no writer: the attempt makes no call
        return CALLS_PER_ATTEMPT * writer.call_seconds + self.claim_seconds

    def writer_of(self, item: Mapping[str, Any], made: dict[str, PmsWriter]) -> PmsWriter:
        writer = (self.writers or {}).get(item["practice_id"]) or made.get(item["pms"])
        if writer is None:
            writer = made[item["pms"]] = writer_for(
                self.ctx.pms_connections, item["practice_id"], item["pms"]
            )
        return writer

    def process(
        self,
        item: dict[str, Any],
        writers: dict[str, PmsWriter] | None = None,
        batch: Batch | None = None,
    ) -> int | None:
        """1 when written, 0 when not (yet), None when the PMS asked us to wait.
        `writers`: the writers made so far this round, by PMS (made once, not per row).
        `batch`: where the outcome is kept until the batch's end (without one, it is
        recorded at once)."""
        writer: PmsWriter | None = None
        made = writers if writers is not None else {}
        into = batch or Batch(self)
        try:
            writer = self.writer_of(item, made)
            written = self.attempt(writer, item, into)
        except PmsWriteError as error:
            found = self.read_back_at_once(writer, item, error)
            if found is None:
                self.failed(item, error, into)
                if batch is None:
                    into.flush()
                return None if error.retry_after is not None else 0
            written = found
        if written is None:
            return 0
        into.written(item, written)
        if batch is None:
            into.flush()
        return 1

    def read_back_at_once(
        self, writer: PmsWriter | None, item: dict[str, Any], error: PmsWriteError
    ) -> Written | None:
        """The PMS may have applied a write whose answer was lost (500, 504, timeout).
        Reading is safe, so look for it now rather than after a backoff; when it is not
        there (yet), the row is retried later and read back again before any write."""
        if writer is None or not error.outcome_unknown:
            return None
        try:
            if item["kind"] == "commlog":
                return writer.find_commlog(self.commlog_of(item))
            return self.read_back(writer, entry_of(item), item)
        except PmsWriteError as unreadable:
            log.warning("could not read back %s %s: %s", item["kind"], item["id"], unreadable)
            return None

    def attempt(
        self, writer: PmsWriter, item: dict[str, Any], batch: Batch | None = None
    ) -> Written | None:
        """The row's one attempt: the ledger asked first (the payment read is kept on the
        `batch`, whose associations it then carries without reading it again)."""
        if item["kind"] == "commlog":
            commlog = self.commlog_of(item)
            if item["outcome_unknown"]:  # an earlier attempt may have written it: look
                found = writer.find_commlog(commlog)
                if found is not None:
                    return found
            written = writer.post_commlog(commlog)
            if written is None:
                self.journal.finish(
                    item["id"], status="skipped", error="this PMS keeps no communication log"
                )
            return written
        ledger = self.in_ledger(item)
        if batch is not None and ledger.payment is not None:
            batch.read(ledger.payment)
        if ledger.posted:
            # associated already (posted by hand, matched from the inbox, or written by
            # an attempt that died before it finished the row): nothing is sent
            self.journal.finish(
                item["id"], status="done", reference=ledger.reference or "associated by staff"
            )
            return None
        entry = entry_of(item)
        if not ledger.owed and self.voided_after_written(item, ledger.payment):
            ledger = InLedger(owed=True, payment=ledger.payment)
        elif not ledger.owed and self.waits_for_read_back(item, ledger.payment):
            return None
        if not ledger.owed:
            # e.g. voided before it was written; an attempt whose outcome is unknown may
            # have written it though: look, and finish it as found
            found = self.read_back(writer, entry, item) if item["outcome_unknown"] else None
            if found is None:
                self.journal.finish(item["id"], status="skipped", error=ledger.why)
            return found
        if item["kind"] == "reversal" and not self.dependency_written(item, ledger.payment):
            return None
        if item["outcome_unknown"]:
            found = self.read_back(writer, entry, item)
            if found is not None:
                return found
        return writer.post_entry(entry)

    def commlog_of(self, item: Mapping[str, Any]) -> Commlog:
        p = json.loads(item["payload"])
        return Commlog(
            item["id"],
            p["pms_patient_id"],
            p["mode"],
            p["note"],
            practice_time(
                datetime.fromisoformat(p["at"]),
                p.get("timezone") or self.journal.timezone(item["practice_id"]),
            ),
        )

    def in_ledger(self, item: Mapping[str, Any]) -> InLedger:
        """What the ledger says of this entry now (the Payment's events, read from the
        store: the one definition of domain/posting.py, never the PMS's rows)."""
        payment = self.ctx.find(Payment, UUID(item["payment_id"]))
        if payment is None:
            return InLedger(owed=False, why="the payment is not in the ledger")
        for entry in payment.ledger_entries:
            if entry.id == item["id"]:
                return InLedger(
                    owed=not entry.posted,
                    posted=entry.posted,
                    reference=reference_of(payment, entry.kind, entry.id),
                    payment=payment,
                )
        why = (
            "voided before it was written"
            if payment.status == Status.VOIDED
            else "the ledger owes the PMS no such entry"
        )
        return InLedger(owed=False, why=why, payment=payment)

    def read_back(self, writer: PmsWriter, entry: PmsEntry, item: dict[str, Any]) -> Written | None:
        """Look for an earlier attempt by marker, on the days it could have been entered."""
        first = datetime.fromisoformat(item["first_attempt_at"].replace("Z", "+00:00")).date()
        days = sorted({entry.pay_date, first - timedelta(days=1), first, first + timedelta(days=1)})
        if not writer.lookup_by_day:
            days = [entry.pay_date]
        for day in days[:READ_BACK_DAYS]:
            found = writer.find_entry(PmsEntry(**{**entry.__dict__, "pay_date": day}))
            if found is not None:
                return found
        return None

    def voided_after_written(self, item: Mapping[str, Any], payment: Payment | None) -> bool:
        """The void of a payment whose write landed before the void (its answer was lost,
        and the read back that found it came after the void): the ledger keeps it as
        voided before it was posted (a voided payment is not associated), but the PMS has
        the payment, so its reversal is owed. The payment's row, done with the reference
        read back, says so."""
        if not item["id"].startswith("void:") or payment is None or payment.is_associated:
            return False
        row = self.journal.get(str(item["depends_on"]))
        return row is not None and row["status"] == "done" and row["pms_reference"] is not None

    def waits_for_read_back(self, item: Mapping[str, Any], payment: Payment | None) -> bool:
        """The void of a payment whose last write's outcome is unknown waits until that
        write is read back (found: the void is owed; not found: nothing is)."""
        if not item["id"].startswith("void:") or payment is None or payment.is_associated:
            return False
        row = self.journal.get(str(item["depends_on"]))
        if row is None or row["status"] not in ("pending", "failed") or not row["outcome_unknown"]:
            return False
        self.journal.defer(item["id"], 5 if row["status"] == "pending" else 300)
        return True

    def dependency_written(self, item: dict[str, Any], payment: Payment | None) -> bool:
        """A reversal waits for its payment's entry: in the PMS once the ledger has it
        associated (written, or posted by hand) or its row is done."""
        if payment is not None and payment.is_associated:
            return True
        row = self.journal.get(item["depends_on"])
        status = row["status"] if row else "skipped"
        if status == "done":
            return True
        if status in ("pending", "failed"):
            self.journal.defer(item["id"], 5 if status == "pending" else 300)
        else:  # the payment was never written: nothing to take back
            self.journal.finish(
                item["id"], status="skipped", error=f"the payment was not written ({status})"
            )
        return False

    def failed(self, item: dict[str, Any], error: PmsWriteError, batch: Batch) -> None:
        attempts = int(item["attempts"])
        final = not error.retryable or attempts >= self.max_attempts
        delay = (
            error.retry_after
            if error.retry_after is not None
            else backoff(attempts, self.first_delay)
        )
        log.warning(
            "writeback of %s %s failed (attempt %s): %s", item["kind"], item["id"], attempts, error
        )
        if error.retry_after is not None and not final:
            batch.outcomes.append(
                Pause(
                    item["practice_id"],
                    item["pms"],
                    datetime.now(UTC) + timedelta(seconds=error.retry_after),
                )
            )
        batch.outcomes.append(
            Finish(
                item["id"],
                status="failed" if final else "pending",
                error=str(error),
                unknown=error.outcome_unknown or bool(item["outcome_unknown"]),
                retry_at=datetime.now(UTC) + timedelta(seconds=delay),
            )
        )
        batch.outcomes.append(PracticeOutcome(item["practice_id"], str(error)))

    def associate(self, item: dict[str, Any], written: Written) -> None:
        """One entry's association on its own (with its retries on a conflict)."""
        if item["kind"] == "commlog":
            return
        refund_id, is_void, is_dispute = association(item)
        try:
            associate_payment(
                self.ctx,
                practice_id=UUID(item["practice_id"]),
                payment_id=UUID(item["payment_id"]),
                source=AssociationSource.AUTOMATIC,
                pms_reference=written.reference,
                actor=f"system:writeback-{item['pms']}",
                refund_id=refund_id,
                void=is_void,
                dispute=is_dispute,
            )
        except AlreadyAssociated:
            pass
        except PaymentsError as error:
            log.warning("payment %s written but not associated: %s", item["payment_id"], error)


def partial_run_for(worker: Worker, rows: int) -> Callable[[str], int]:
    """A practice's job of the continuous loop: up to `rows` of its due rows."""
    return lambda practice_id: worker.run_for(practice_id, rows)


def association(item: Mapping[str, Any]) -> tuple[UUID | None, bool, bool]:
    """Which of the payment's entries a row is: (its refund id, its void, its lost
    dispute); all empty for the payment itself."""
    is_void = item["id"].startswith("void:")
    is_dispute = item["id"].startswith("dispute:")
    refund_id = (
        UUID(item["id"]) if item["kind"] == "reversal" and not is_void and not is_dispute else None
    )
    return refund_id, is_void, is_dispute


def mark_associated(
    payment: Payment, item: Mapping[str, Any], reference: str, at: datetime
) -> None:
    """Record on the payment that the row's entry is in the PMS (as `associate_payment`
    decides it: the payment, one refund, the void or the lost dispute)."""
    refund_id, is_void, is_dispute = association(item)
    actor = f"system:writeback-{item['pms']}"
    source = AssociationSource.AUTOMATIC
    if refund_id is not None:
        payment.associate_refund(
            refund_id=refund_id, source=source, pms_reference=reference, at=at, actor=actor
        )
    elif is_void:
        payment.associate_void(source=source, pms_reference=reference, at=at, actor=actor)
    elif is_dispute:
        payment.associate_dispute(source=source, pms_reference=reference, at=at, actor=actor)
    else:
        payment.associate(source=source, pms_reference=reference, at=at, actor=actor)


class Batch:
    """One practice's batch of attempts, their outcomes kept until its end and recorded
    together (`flush`): first the associations of what was written, on the payments'
    events in one save, then the rows and the practice's status in one transaction of the
    journal. A crash before the end leaves the batch's rows claimed with their outcome
    unknown: their next attempt reads the ledger and the PMS back before writing."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.outcomes: list[Outcome] = []
        self.writes: list[tuple[dict[str, Any], Written]] = []
        #: the rows whose outcome is kept here, not yet recorded
        self.unrecorded: set[str] = set()
        #: the payments the batch's attempts read (their newest read), by id: the
        #: associations are recorded on them (saved with a version check: a payment changed
        #: since is read again, each entry on its own)
        self.payments: dict[UUID, Payment] = {}

    def read(self, payment: Payment) -> None:
        kept = self.payments.get(payment.id)
        if kept is None or kept.version < payment.version:
            self.payments[payment.id] = payment

    def written(self, item: dict[str, Any], written: Written) -> None:
        self.writes.append((item, written))
        self.outcomes.append(Finish(item["id"], status="done", reference=written.reference))
        self.outcomes.append(PracticeOutcome(item["practice_id"], None))
        self.unrecorded.add(item["id"])
        log.info("wrote %s %s to %s: %s", item["kind"], item["id"], item["pms"], written.reference)

    def release(self, item: Mapping[str, Any]) -> None:
        """Claimed with the batch, not tried: as it was (the practice was paused)."""
        self.outcomes.append(
            Release(item["id"], bool(item["outcome_unknown"]), item["first_attempt_at"])
        )

    def flush(self) -> None:
        """Associate first: a crash in between leaves the rows pending with their outcome
        unknown, so their next attempt finds each entry associated in the ledger (or by
        its marker in the PMS) and finishes it without writing again."""
        if self.writes:
            self.associate(self.writes)
        if self.outcomes:
            self.worker.journal.record(self.outcomes)
        self.writes, self.outcomes, self.unrecorded, self.payments = [], [], set(), {}

    def associate(self, writes: list[tuple[dict[str, Any], Written]]) -> None:
        """The written entries' associations, every payment of the batch in one save; on a
        conflict (a payment changed meanwhile), each on its own with its retries."""
        ctx = self.worker.ctx
        entries = [(item, w) for item, w in writes if item["kind"] != "commlog"]
        if not entries:
            return
        ids = list(dict.fromkeys(UUID(item["payment_id"]) for item, _ in entries))
        practice_id = UUID(entries[0][0]["practice_id"])
        payments = {
            i: self.payments[i]
            for i in ids
            if i in self.payments and self.payments[i].practice_id == practice_id
        }
        missing = [i for i in ids if i not in payments]
        if missing:
            payments.update(ctx.get_many(Payment, missing, practice_id))
        at = ctx.clock.now(practice_id)
        for item, written in entries:
            payment = payments.get(UUID(item["payment_id"]))
            if payment is None:
                log.warning("payment %s written but not in the ledger", item["payment_id"])
                continue
            try:
                mark_associated(payment, item, written.reference, at)
            except AlreadyAssociated:
                pass
            except PaymentsError as error:
                log.warning("payment %s written but not associated: %s", item["payment_id"], error)
        changed = [p for p in payments.values() if p.pending_events]
        try:
            if changed:
                ctx.save(*changed)
        except IntegrityError:
            for item, written in entries:
                self.worker.associate(item, written)


def take_in(journal: JournalIntake, event: Any, position: int) -> None:
    """The embedded default's transport (projections/writeback_intake.py): intake straight
    from the ordered log, each event in its public form."""
    published = to_public(event, position)
    if published is not None:
        intake(journal, published)
