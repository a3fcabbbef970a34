"""Deposits from Clearent's batches: who closes the batch, and each closed batch matched.

The ledger captures each approved payment at the practice's cut-off (settlement.py): the
CAPTURE goes into Clearent's open batch. Who closes that batch is the merchant's gateway
setting (GET /rest/v2/settings/terminal, `enable-auto-close-batch`):

- Clearent closes it itself, at its `batch-time-utc`: Clearent's batch close rules what
  each deposit carries; the daily close says so;
- otherwise the ledger closes it right after its own cut-off, with the totals it expects
  (PUT /rest/v2/batches/open, `total-count` and `net-amount`, as Clearent's batch
  validation example does): Clearent refuses a close whose totals differ from its own,
  so a batch closes only when it holds what the ledger's deposit holds. The close is an
  intent (`ProcessorBatchClose`): recorded first, one call, its outcome recorded; one
  whose answer was lost is read back from Clearent's batches before it is asked again.

Each closed batch (GET /rest/v2/batches?status=CLOSED) is matched, transaction by
transaction (its CAPTUREs by the AUTH's id, its REFUNDs by their order id: the ledger's
refund id), to the deposits that hold them, as a Stripe payout is (payouts.py): the
deposit records the batch (`PayoutReconciled`, payout id `clearent-batch-<id>`) and every
difference (a deposit line not in the batch, an amount that differs, a batch item in no
deposit, batch totals that differ from its items), and is marked paid. Clearent's fees
come on its monthly statement, not per transaction: fees are not compared.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol
from uuid import UUID

from adapters.processor.port import (
    Batch,
    BatchSettings,
    Capability,
    CardProcessor,
    OutcomeUnknown,
    PayoutItem,
    ProcessorUnavailable,
)
from domain.batches import ProcessorBatchClose, processor_close_id
from domain.errors import PaymentsError
from domain.practices import Practice
from domain.schedule import local_date
from projections.deposits import batches_matched
from services.app import payouts
from services.app.reconcile import SETTLE_AFTER
from services.context import Aggregates, Charging, Reading, Timed, retry_on_conflict

log = logging.getLogger("payledger.clearent")

ACTOR = "processor:clearent"
#: the actor of the ledger's closes of Clearent's batch
CLOSER = "system:batch-close"
PREFIX = "clearent-batch-"


class Needs(Aggregates, Reading, Timed, Charging, Protocol):
    """The parts these use cases are given (services/context.py)."""


def clearent_of(ctx: Needs) -> CardProcessor | None:
    """The processor, where its batch close pays the deposits (None elsewhere)."""
    processor = ctx.processor
    return processor if processor.can(Capability.BATCHES) else None


def batch_close_rule(ctx: Needs, practice: Practice) -> dict[str, Any] | None:
    """Who closes the practice's Clearent batch, for the daily close (None off Clearent)."""
    clearent = clearent_of(ctx)
    if clearent is None:
        return None
    try:
        settings = clearent.batch_settings(str(practice.id))
    except PaymentsError as error:
        return {"by": "unknown", "detail": f"Clearent's batch settings could not be read: {error}"}
    return rule_of(settings, practice)


def rule_of(settings: BatchSettings, practice: Practice) -> dict[str, Any]:
    if settings.auto_close:
        return {
            "by": "clearent",
            "batch_time_utc": settings.batch_time_utc,
            "detail": f"Clearent closes the batch itself at {settings.batch_time_utc} UTC "
            "(the merchant's gateway settings): a payment captured at the practice's cut-off "
            "is deposited with the batch Clearent closes next",
        }
    return {
        "by": "practice_cutoff",
        "cutoff": practice.batch_cutoff.strftime("%H:%M"),
        "detail": "the ledger closes Clearent's batch at the practice's cut-off, with the "
        "totals of its own batch (Clearent refuses a close whose totals differ)",
    }


def settle_batches(ctx: Needs, practice_id: UUID) -> int:
    """Close Clearent's open batch where the ledger closes it, then match every closed
    batch not matched yet; how many deposits recorded a batch."""
    clearent = clearent_of(ctx)
    if clearent is None:
        return 0
    practice = ctx.get(Practice, practice_id, practice_id)
    account = str(practice_id)
    try:
        settings = clearent.batch_settings(account)
        closed = clearent.batches(account, "CLOSED")
        names = [PREFIX + b.id for b in closed]
        done = ctx.reads(batches_matched, practice_id, names)
        for batch in closed:  # a close whose answer was lost, read back closed
            if PREFIX + batch.id not in done:
                end_close(ctx, practice_id, batch.id, "closed")
        if not settings.auto_close and close_open_batch(ctx, clearent, practice):
            closed = clearent.batches(account, "CLOSED")
    except PaymentsError as error:
        log.warning("Clearent's batches of %s not read: %s", practice_id, error.detail)
        return 0
    names = [PREFIX + b.id for b in closed]
    done = ctx.reads(batches_matched, practice_id, names)
    matched = 0
    for batch in closed:
        if PREFIX + batch.id in done:
            continue
        try:
            matched += match_batch(ctx, clearent, practice, batch)
        except PaymentsError as error:
            log.warning("Clearent batch %s not matched: %s", batch.id, error.detail)
    return matched


def close_open_batch(ctx: Needs, clearent: CardProcessor, practice: Practice) -> bool:
    """Close Clearent's open batch with the totals of its transactions the ledger holds in
    a deposit already (those captured or refunded before the last cut-off); a batch that
    holds anything else stays open (it is the next cut-off's). The close is an intent
    (`ProcessorBatchClose`): recorded first, one call, its outcome recorded; a close whose
    answer was lost is read back (the batch listed closed, or still open after the
    settling time) before it is asked again. True when a batch closed now."""
    account = str(practice.id)
    now = ctx.clock.now(practice.id)
    for batch in clearent.batches(account, "OPEN"):
        close = ctx.find(ProcessorBatchClose, processor_close_id(practice.id, batch.id))
        if close is not None and close.is_open:
            if now - close.asked_at < SETTLE_AFTER:
                return False  # its request may still be on its way to Clearent
            end_close(ctx, practice.id, batch.id, "not_closed")  # read back: still open
            close = ctx.find(ProcessorBatchClose, close.id)
        items = batch_items(clearent, account, batch.id)
        by_deposit, unknown = payouts.match(ctx, practice.id, items)
        if unknown or not by_deposit:
            return False
        count = sum(len(v) for v in by_deposit.values())
        net = sum(i.amount for v in by_deposit.values() for i, _, _ in v)
        refused = close is not None and close.state == "refused"
        if refused and close and (close.total_count, close.net_amount) == (count, net):
            return False  # refused with these very totals: asked again once they change
        if not ask_close(ctx, practice.id, batch.id, count, net):
            return False
        try:
            clearent.close_batch(account, batch_id=batch.id, total_count=count, net_amount=net)
        except OutcomeUnknown as error:
            end_close(ctx, practice.id, batch.id, "unknown", error.detail)
            return False
        except ProcessorUnavailable as error:  # not reached: nothing was sent
            log.warning("Clearent's batch %s not closed: %s", batch.id, error.detail)
            end_close(ctx, practice.id, batch.id, "not_closed")
            return False
        except PaymentsError as error:
            end_close(ctx, practice.id, batch.id, "refused", error.detail)
            return False
        except Exception as error:  # its fate is not known: read back before any resend
            end_close(ctx, practice.id, batch.id, "unknown", type(error).__name__)
            raise
        end_close(ctx, practice.id, batch.id, "closed")
        return True
    return False


def ask_close(ctx: Needs, practice_id: UUID, batch_id: str, count: int, net: int) -> bool:
    """Record the intent to close the batch with these totals (a retry that decides and
    saves only); False when another is under way or the batch's close is done."""

    def decide() -> bool:
        at = ctx.clock.now(practice_id)
        close = ctx.find(ProcessorBatchClose, processor_close_id(practice_id, batch_id))
        if close is None:
            close = ProcessorBatchClose.request(
                practice_id=practice_id,
                processor_batch_id=batch_id,
                total_count=count,
                net_amount=net,
                at=at,
                actor=CLOSER,
            )
        elif close.is_open or close.state == "closed":
            return False
        else:
            close.ask_again(total_count=count, net_amount=net, at=at, actor=CLOSER)
        ctx.save(close)
        return True

    return retry_on_conflict(decide)


def end_close(ctx: Needs, practice_id: UUID, batch_id: str, outcome: str, detail: str = "") -> None:
    """Record how a close went (closed, refused, unknown, not closed): nothing when no
    close of the batch is open."""

    def decide(close: ProcessorBatchClose) -> None:
        if not close.is_open:
            return
        at = ctx.clock.now(practice_id)
        if outcome == "closed":
            close.closed(at=at, actor=CLOSER)
        elif outcome == "refused":
            close.refuse(reason=detail, at=at, actor=CLOSER)
        elif outcome == "not_closed":
            close.not_closed(at=at, actor=CLOSER)
        else:
            log.warning("Clearent's batch %s: close outcome unknown (%s)", batch_id, detail)
            close.unknown(error=detail, at=at, actor=CLOSER)

    close_id = processor_close_id(practice_id, batch_id)
    if ctx.find(ProcessorBatchClose, close_id) is not None:
        ctx.change(ProcessorBatchClose, close_id, practice_id, decide, show=False)


def batch_items(clearent: CardProcessor, account: str, batch_id: str) -> list[PayoutItem]:
    """A batch's transactions as payout items: a CAPTURE (or SALE) by the AUTH it
    captured, a REFUND by its order id (the ledger's refund id)."""
    return clearent.batch_items(account, batch_id)


def match_batch(ctx: Needs, clearent: CardProcessor, practice: Practice, batch: Batch) -> int:
    account = str(practice.id)
    items = batch_items(clearent, account, batch.id)
    by_deposit, unknown = payouts.match(ctx, practice.id, items)
    extra: list[dict[str, Any]] = [
        {
            "kind": "batch_unknown_item",
            "transaction_id": item.balance_transaction,
            "amount": item.amount,
            "detail": f"in Clearent's batch {batch.id}, in no deposit of the ledger",
        }
        for item in unknown
    ]
    listed = sum(i.amount for i in items)
    if listed != batch.net_amount:
        extra.append(
            {
                "kind": "batch_total_mismatch",
                "amount": batch.net_amount,
                "items_amount": listed,
                "detail": f"Clearent's batch {batch.id} totals {batch.net_amount} cents net, "
                f"its transactions {listed}",
            }
        )
    if not by_deposit:
        log.warning("Clearent batch %s holds nothing of the ledger's: %s", batch.id, extra)
        return 0
    arrival = local_date(ctx.clock.now(practice.id), practice.timezone)
    for deposit_id, matched in by_deposit.items():
        payouts.record(
            ctx,
            practice,
            deposit_id,
            PREFIX + batch.id,
            arrival,
            matched,
            extra,
            processor="Clearent",
            fees=False,
            actor=ACTOR,
        )
        extra = []  # the batch's own differences are listed once
    return len(by_deposit)
