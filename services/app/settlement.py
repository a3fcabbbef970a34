"""The daily batch close and the deposits that follow, driven by each practice's clock.

At the cut-off of practice-local date D the batch of D closes. It holds the
approved, unvoided payments captured since the previous cut-off and the
refunds made in that time; a day with no activity makes no batch. Settling
is what makes a payment "processed". In the same transaction the batch
becomes a deposit, scheduled for the next business day, which is paid on
that date. A payment or refund that reached the log only after its batch
closed (a capture racing the cut-off) goes into a supplementary batch of
the same date.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime, time
from typing import Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.persistence import IntegrityError

from adapters.processor.port import CaptureFailed, Effect, SettledBy
from domain.batches import Batch, BatchItem
from domain.deposits import Deposit, DepositLine, next_business_day
from domain.payments import Payment, Status
from domain.practices import Practice
from domain.schedule import batch_date_for, cutoff_instant, zone
from projections.base import iso, parse_iso
from projections.deposits import due_deposits
from projections.transactions import due_for_settlement, unsettled_refunds
from services.app.intents import requests_reopened
from services.app.practices import processor_account
from services.context import Aggregates, Calendared, Charging, Reading, Timed


class Needs(Aggregates, Reading, Timed, Charging, Calendared, Protocol):
    """The parts these use cases are given (services/context.py)."""


log = logging.getLogger("payledger.settlement")

ACTOR = "system:batch-close"
DEPOSIT_ACTOR = "processor"
#: when, practice-local, a deposit shows as paid on its deposit date
DEPOSIT_TIME = time(6, 0)


def batch_id_for(practice_id: UUID, batch_date: date, supplement: int = 0) -> UUID:
    suffix = f":{supplement}" if supplement else ""
    return uuid5(NAMESPACE_URL, f"payledger:{practice_id}:batch:{batch_date.isoformat()}{suffix}")


def close_due_batches(ctx: Needs, practice_id: UUID) -> list[Batch]:
    """Close every batch of the practice whose cut-off has passed; returns the new batches."""
    ctx.catch_up()
    practice = ctx.get(Practice, practice_id, practice_id)
    now = ctx.clock.now(practice_id)
    due: dict[date, list[BatchItem]] = defaultdict(list)
    for row in ctx.reads(due_for_settlement, practice_id, iso(now)):
        due[date.fromisoformat(row["batch_date"])].append(
            BatchItem("payment", UUID(row["id"]), None, int(row["amount"]))
        )
    for refund in ctx.reads(unsettled_refunds, practice_id):
        day = batch_date_for(
            parse_iso(refund["occurred_at"]), practice.timezone, practice.batch_cutoff
        )
        if cutoff_instant(day, practice.timezone, practice.batch_cutoff) <= now:
            due[day].append(
                BatchItem(
                    "refund", UUID(refund["payment_id"]), UUID(refund["id"]), int(refund["amount"])
                )
            )
    closed = []
    for day in sorted(due):
        batch = _close(ctx, practice, day, due[day])
        if batch is not None:
            closed.append(batch)
    return closed


def _close(ctx: Needs, practice: Practice, day: date, items: list[BatchItem]) -> Batch | None:
    closes_at = cutoff_instant(day, practice.timezone, practice.batch_cutoff)
    for supplement in range(10):
        batch_id = batch_id_for(practice.id, day, supplement)
        if ctx.find(Batch, batch_id) is not None:
            continue
        payments = {i.payment_id: ctx.get(Payment, i.payment_id, practice.id) for i in items}
        asked = _request_captures(ctx, practice, payments, items)
        if asked is None:
            return None  # a void was decided meanwhile: the next run sees it
        fees: dict[UUID, int | None] = {}
        failed = [
            payments[i.payment_id]
            for i in items
            if i.kind == "payment"
            and _capture(ctx, practice, payments[i.payment_id], fees, i.payment_id not in asked)
            is False
        ]
        items = [i for i in items if i.kind != "payment" or i.payment_id in fees]
        settled = [i for i in items if _settle(payments[i.payment_id], i, batch_id, closes_at)]
        if not settled:
            if failed:
                _save_failed(ctx, failed)
            return None
        lines = [_line(ctx, practice, item, fees.get(item.payment_id)) for item in settled]
        batch = Batch.close(
            id=batch_id,
            practice_id=practice.id,
            batch_date=day,
            items=settled,
            fees_amount=sum(line.fee_amount for line in lines),
            at=closes_at,
            actor=ACTOR,
        )
        deposit = Deposit.schedule(
            practice_id=practice.id,
            batch_id=batch_id,
            batch_date=day,
            deposit_date=next_business_day(day, ctx.bank_holidays),
            account=practice.deposit_account.masked,
            lines=lines,
            at=closes_at,
            actor=DEPOSIT_ACTOR,
        )
        reopened = [r for p in failed for r in requests_reopened(ctx, p)]
        try:
            ctx.save(batch, deposit, *payments.values(), *reopened)
        except IntegrityError:
            # Another process closed it, or a payment changed (a void) meanwhile:
            # the caller's next run sees the new state.
            log.info("batch %s of %s not closed: concurrent change", day, practice.id)
            return None
        log.info("closed batch %s of %s: %s items", day, practice.id, len(settled))
        return batch
    return None


def _request_captures(
    ctx: Needs, practice: Practice, payments: dict[UUID, Payment], items: list[BatchItem]
) -> set[UUID] | None:
    """Record the intent to capture on each approved payment of the batch, in one save,
    before any is captured: a void decided at the same moment conflicts with it, so either
    the void wins (nothing is captured) or the capture does (it becomes a refund later).
    Returns the payments asked now (the others were asked by an earlier close, whose
    answer may have been lost); None when that save met a concurrent change."""
    now = ctx.clock.now(practice.id)
    sales = {i.payment_id for i in items if i.kind == "payment"}
    asking = [
        p
        for p in payments.values()
        if p.id in sales
        and p.status == Status.APPROVED
        and p.pending_void is None
        and not p.capture_requested
    ]
    for payment in asking:
        payment.request_capture(reference=capture_reference(payment.id), at=now, actor=ACTOR)
    if asking:
        try:
            ctx.save(*asking, show=False)
        except IntegrityError:
            log.info("captures of %s not asked: concurrent change; next close retries", practice.id)
            return None
    return {payment.id for payment in asking}


def _capture(
    ctx: Needs,
    practice: Practice,
    payment: Payment,
    fees: dict[UUID, int | None],
    read_first: bool,
) -> bool | None:
    """Capture an approved payment at the processor as its batch closes (its intent is
    recorded): True when captured (its fee, when the processor tells it, goes into
    `fees`), False (and the failure recorded on the payment) when the processor refuses,
    None when it is not captured now (a void under way, or the processor's answer lost:
    the next close reads it back first and it joins a supplementary batch). The capture's
    reference is derived from the payment, so nothing is captured twice."""
    if payment.status != Status.APPROVED:
        fees[payment.id] = None
        return True
    if payment.pending_void is not None or not payment.capture_requested:
        return None
    reference = capture_reference(payment.id)
    try:
        if read_first:
            looked = ctx.processor.look_up(
                effect=Effect.CAPTURE,
                reference=reference,
                transaction_id=payment.transaction_id or "",
                account=processor_account(ctx.processor, practice),
            )
            if looked.state == "succeeded":
                fees[payment.id] = looked.fee
                return True
            if looked.state == "refused":
                raise CaptureFailed(looked.reason or "the processor did not capture it")
        done = ctx.processor.capture(
            transaction_id=payment.transaction_id or "",
            amount=payment.amount.cents,
            reference=reference,
            account=processor_account(ctx.processor, practice),
        )
    except CaptureFailed as failure:
        log.warning("capture of payment %s refused: %s", payment.id, failure.reason)
        payment.fail_capture(reason=failure.reason, at=ctx.clock.now(practice.id), actor=ACTOR)
        return False
    except Exception as error:
        log.warning("capture of payment %s: outcome unknown (%s)", payment.id, error)
        return None
    fees[payment.id] = done.fee
    return True


def capture_reference(payment_id: UUID) -> UUID:
    return uuid5(NAMESPACE_URL, f"payledger:{payment_id}:capture")


def _save_failed(ctx: Needs, payments: list[Payment]) -> None:
    try:
        ctx.save(*payments, *(r for p in payments for r in requests_reopened(ctx, p)))
    except IntegrityError:
        log.info("capture failures not recorded: concurrent change; the next close retries")


def _settle(payment: Payment, item: BatchItem, batch_id: UUID, at: datetime) -> bool:
    """Settle one item; False when it no longer settles (voided since it was listed)."""
    if item.kind == "payment":
        if payment.status != Status.APPROVED:
            return False
        payment.settle(batch_id=batch_id, at=at, actor=ACTOR)
        return True
    assert item.refund_id is not None
    if payment.find_refund(item.refund_id).batch_id is not None:
        return False
    payment.settle_refund(refund_id=item.refund_id, batch_id=batch_id, at=at, actor=ACTOR)
    return True


def _line(ctx: Needs, practice: Practice, item: BatchItem, fee: int | None = None) -> DepositLine:
    if item.kind == "refund":
        return DepositLine("refund", item.payment_id, item.refund_id, -item.amount, 0)
    if fee is None:
        fee = ctx.processor.sale_fee(amount=item.amount, fee_rate_bps=practice.fee_rate_bps)
    return DepositLine("payment", item.payment_id, None, item.amount, fee)


def pay_due_deposits(ctx: Needs, practice_id: UUID) -> int:
    """Mark paid the scheduled deposits whose date has come, where the ledger's cut-off
    capture settles them (the sandbox). Where the processor's payouts pay them (Stripe), a
    deposit is paid when the payout that carries it arrives (payouts.py); where the
    processor's batch close does (Clearent), as its closed batches are matched
    (clearent_batches.py)."""
    settles_by = ctx.processor.settles_by
    if settles_by == SettledBy.PAYOUTS:
        return 0
    if settles_by == SettledBy.BATCH_CLOSE:
        from services.app.clearent_batches import settle_batches

        return settle_batches(ctx, practice_id)
    practice = ctx.get(Practice, practice_id, practice_id)
    now = ctx.clock.now(practice_id)
    paid = 0
    for row in ctx.reads(due_deposits, practice_id, now.astimezone(zone(practice.timezone)).date()):
        deposit_date = date.fromisoformat(row["deposit_date"])
        paid_at = datetime.combine(deposit_date, DEPOSIT_TIME, tzinfo=zone(practice.timezone))
        if paid_at > now:
            continue
        deposit = ctx.get(Deposit, UUID(row["id"]), practice_id)
        if deposit.paid_at is not None:
            continue
        deposit.mark_paid(at=paid_at, actor=DEPOSIT_ACTOR)
        try:
            ctx.save(deposit)
        except IntegrityError:
            continue  # paid by another process just now
        paid += 1
    return paid
