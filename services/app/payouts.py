"""Stripe's payouts matched with the ledger's deposits.

A deposit is the expected deposit of one batch. Stripe pays out on its own schedule,
and one payout may carry several batches. On `payout.paid` the payout's balance
transactions (`balance_transactions?payout=`) are matched, charge by charge and refund
by refund, to the deposit lines of the batches they settled in; each deposit it
carries records the payout (`PayoutReconciled`: its id, the arrival date, Stripe's fee
per item, and every difference) and is marked paid on the arrival date. Differences:
`payout_missing_item` (a line of the deposit the payout does not carry),
`payout_fee_mismatch`, `payout_amount_mismatch`, `payout_unknown_item` (an item of the
payout the ledger has in no deposit). A dispute's adjustments that the payout carries
(the withdrawal and Stripe's dispute fee; the reinstatement of a won dispute) become
lines of the newest deposit the payout carries. On `payout.failed` the deposits it
carried (or, unknown, none) show the failure.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from adapters.processor.port import Capability, PayoutItem
from domain.deposits import Deposit
from domain.errors import NotFound
from domain.practices import Practice
from domain.schedule import zone
from projections.deposits import latest_deposit_of, latest_deposit_of_practice
from projections.transactions import payment_of_processor, place_of_payment, place_of_refund
from services.app.practices import practices_holding
from services.app.settlement import DEPOSIT_TIME
from services.context import Aggregates, Charging, Reading, Timed


class Needs(Aggregates, Reading, Timed, Charging, Protocol):
    """The parts these use cases are given (services/context.py)."""


log = logging.getLogger("payledger.payouts")

ACTOR = "processor:stripe"


class AccountHeldTwice(Exception):
    """Two practices name the same Stripe account (possible only in data written before an
    account could belong to one practice only): an event of that account belongs to
    neither until the operator connects it to one, so it is not applied."""


def practice_of_account(ctx: Needs, account: str | None) -> Practice | None:
    """The practice that holds the account; None when none does; AccountHeldTwice when
    more than one does (never the oldest of them: the event could be the other's)."""
    if not account:
        return None
    holders = practices_holding(ctx, account)
    if len(holders) > 1:
        raise AccountHeldTwice(
            f"the Stripe account {account} is held by the practices "
            f"{', '.join(str(p.id) for p in holders)}: connect it to one of them only"
        )
    return holders[0] if holders else None


#: the balance transactions matched with deposit lines
MATCHED = ("charge", "payment", "refund")
#: the payout's own balance transaction (its withdrawal from the balance)
OWN = "payout"


def reconcile_payout(ctx: Needs, account: str | None, payout: dict[str, Any]) -> str:
    """Match a paid payout with the deposits it carries; the outcome, in words.

    Webhooks arrive in any order, so the payout is read as Stripe holds it now: a payout
    that failed since (a failed payout is final) shows its failure instead, one not paid
    yet records nothing. Every balance transaction it carries is accounted for: sales and
    refunds matched to deposit lines, a dispute's adjustments as lines of the newest
    deposit, anything else as a difference (`payout_other_item`)."""
    practice = practice_of_account(ctx, account)
    if practice is None or not ctx.processor.can(Capability.PAYOUTS):
        return "no practice with this account"
    payout_id = str(payout["id"])
    current = ctx.processor.payout(account, payout_id)
    if current.get("status") == "failed":
        return payout_failed(ctx, account, current)
    if current.get("status") != "paid":
        return f"the payout is {current.get('status')} at Stripe: nothing recorded yet"
    arrival = datetime.fromtimestamp(int(current["arrival_date"]), UTC).date()
    carried = ctx.processor.payout_items(account, payout_id)
    items = [i for i in carried if i.kind in MATCHED]
    disputed = [i for i in carried if i.kind == "adjustment" and i.dispute_id]
    others = [i for i in carried if i.kind not in (*MATCHED, OWN) and i not in disputed]
    by_deposit, unknown = match(ctx, practice.id, items)
    adjustments, unknown_disputes = dispute_lines(ctx, practice.id, disputed)
    extra = [unknown_item(i) for i in unknown + unknown_disputes]
    extra += [other_item(i) for i in others]
    if not by_deposit:
        return adjust(ctx, practice, payout_id, arrival, adjustments, extra)
    # A dispute's adjustment belongs to no batch: it shows in the newest deposit the
    # payout carries (the payout's own money), as negative (or, reinstated, positive) lines.
    newest = latest_deposit(ctx, list(by_deposit))
    first = True
    for deposit_id, matched in sorted(by_deposit.items()):
        listed = extra if first else []
        first = False
        lines = adjustments if deposit_id == newest else []
        record(ctx, practice, deposit_id, payout_id, arrival, matched, listed, lines)
    return f"matched to {len(by_deposit)} deposit(s)"


def adjust(
    ctx: Needs,
    practice: Practice,
    payout_id: str,
    arrival: date,
    adjustments: list[dict[str, Any]],
    differences: list[dict[str, Any]],
) -> str:
    """A payout that carries none of the ledger's sales or refunds (only a dispute's
    adjustments, or other items) is recorded on the practice's newest deposit: its
    withdrawal and fee become lines there, its other items differences."""
    if not adjustments and not differences:
        return "the payout carries nothing"
    deposit_id = ctx.reads(latest_deposit_of_practice, practice.id)
    if deposit_id is None:
        raise NotFound("no deposit yet to record this payout on; it is applied again later")

    def decide(deposit: Deposit) -> str:
        if not deposit.adjust_by_payout(
            payout_id=payout_id,
            arrival_date=arrival,
            adjustments=adjustments,
            differences=differences,
            at=ctx.clock.now(practice.id),
            actor=ACTOR,
        ):
            return "recorded already"
        return f"recorded on deposit {deposit_id}"

    return ctx.change(Deposit, deposit_id, practice.id, decide)


def latest_deposit(ctx: Needs, deposit_ids: list[UUID]) -> UUID:
    return ctx.reads(latest_deposit_of, deposit_ids) or max(deposit_ids)


def dispute_lines(
    ctx: Needs, practice_id: UUID, items: list[PayoutItem]
) -> tuple[list[dict[str, Any]], list[PayoutItem]]:
    """A dispute's adjustments as deposit lines: the withdrawal (`dispute`, negative) or
    the reinstatement of a won dispute (`dispute_reversal`, positive), and Stripe's
    dispute fee as a line of its own (`dispute_fee`). Adjustments of payments the
    ledger does not know are returned apart."""
    lines: list[dict[str, Any]] = []
    unknown: list[PayoutItem] = []
    for item in items:
        payment_id = ctx.reads(payment_of_processor, practice_id, item.transaction_id or "")
        if payment_id is None:
            unknown.append(item)
            continue
        where = {
            "payment_id": str(payment_id),
            "dispute_id": item.dispute_id,
            "balance_transaction": item.balance_transaction,
        }
        kind = "dispute" if item.amount < 0 else "dispute_reversal"
        lines.append({"kind": kind, **where, "amount": item.amount, "fee_amount": 0})
        if item.fee:
            lines.append({"kind": "dispute_fee", **where, "amount": 0, "fee_amount": item.fee})
    return lines, unknown


def match(
    ctx: Needs, practice_id: UUID, items: list[PayoutItem]
) -> tuple[dict[UUID, list[tuple[PayoutItem, str, str | None]]], list[PayoutItem]]:
    """The payout's items by the deposit that holds them: (item, payment id, refund id)."""
    by_deposit: dict[UUID, list[tuple[PayoutItem, str, str | None]]] = defaultdict(list)
    unknown: list[PayoutItem] = []
    for item in items:
        place = None
        if item.kind == "refund" and item.refund_reference:
            place = ctx.reads(place_of_refund, practice_id, item.refund_reference)
        elif item.kind != "refund" and item.transaction_id:
            place = ctx.reads(place_of_payment, practice_id, item.transaction_id)
        if place is None or place.deposit_id is None:
            unknown.append(item)
            continue
        by_deposit[UUID(place.deposit_id)].append((item, place.payment_id, place.refund_id))
    return by_deposit, unknown


def record(
    ctx: Needs,
    practice: Practice,
    deposit_id: UUID,
    payout_id: str,
    arrival: date,
    matched: list[tuple[PayoutItem, str, str | None]],
    extra: list[dict[str, Any]],
    adjustments: list[dict[str, Any]] | None = None,
    *,
    processor: str = "Stripe",
    fees: bool = True,
    actor: str = ACTOR,
) -> None:
    """Record the payout (or Clearent's batch) on the deposit, line by line. `fees`: the
    processor tells a fee per item (Stripe); Clearent's come on its statement."""
    for _ in range(5):
        deposit = ctx.get(Deposit, deposit_id, practice.id)
        if deposit.payout_id == payout_id:
            return  # recorded already (the event applied twice), or failed: final
        lines = {
            (
                str(line["payment_id"]),
                None if line["refund_id"] is None else str(line["refund_id"]),
            ): line
            for line in deposit.lines
        }
        found = {(payment_id, refund_id): item for item, payment_id, refund_id in matched}
        differences = list(extra)
        for key, line in lines.items():
            item = found.get(key)
            amount, fee = int(str(line["amount"])), int(str(line["fee_amount"]))
            where = {"payment_id": key[0], "refund_id": key[1]}
            if item is None:
                differences.append(
                    {
                        "kind": "payout_missing_item",
                        **where,
                        "amount": amount,
                        "detail": f"in the deposit, not in {processor}'s "
                        + ("payout" if fees else "batch"),
                    }
                )
                continue
            if item.amount != amount:
                differences.append(
                    {
                        "kind": "payout_amount_mismatch",
                        **where,
                        "amount": amount,
                        "stripe_amount": item.amount,
                        "detail": f"{processor}'s amount differs from the deposit line's",
                    }
                )
            if fees and item.fee != fee:
                differences.append(
                    {
                        "kind": "payout_fee_mismatch",
                        **where,
                        "amount": amount,
                        "fee_amount": fee,
                        "stripe_fee": item.fee,
                        "detail": "Stripe's fee differs from the deposit line's",
                    }
                )
        items = [
            {
                "payment_id": payment_id,
                "refund_id": refund_id,
                "balance_transaction": item.balance_transaction,
                "amount": item.amount,
                "stripe_fee": item.fee,
            }
            for item, payment_id, refund_id in matched
        ]
        now = ctx.clock.now(practice.id)
        deposit.reconcile_payout(
            payout_id=payout_id,
            arrival_date=arrival,
            items=items,
            differences=differences,
            adjustments=adjustments or [],
            at=now,
            actor=actor,
        )
        if deposit.paid_at is None:
            paid_at = datetime.combine(arrival, DEPOSIT_TIME, tzinfo=zone(practice.timezone))
            deposit.mark_paid(at=min(paid_at, now), actor=actor)
        try:
            ctx.save(deposit)
            return
        except IntegrityError:
            continue
    raise RuntimeError(f"deposit {deposit_id} kept changing; the payout is matched later")


def unknown_item(item: PayoutItem) -> dict[str, Any]:
    return {
        "kind": "payout_unknown_item",
        "balance_transaction": item.balance_transaction,
        "transaction_id": item.transaction_id,
        "amount": item.amount,
        "stripe_fee": item.fee,
        "detail": "in Stripe's payout, in no deposit of the ledger",
    }


def other_item(item: PayoutItem) -> dict[str, Any]:
    """A balance transaction of a kind the ledger does not match (a Climate contribution,
    a returned refund, a fee of Stripe's, ...): listed, never dropped."""
    return {
        "kind": "payout_other_item",
        "stripe_type": item.kind,
        "balance_transaction": item.balance_transaction,
        "amount": item.amount,
        "stripe_fee": item.fee,
        "detail": f"in Stripe's payout: a {item.kind.replace('_', ' ')} the ledger does not "
        "carry in any deposit",
    }


def payout_failed(ctx: Needs, account: str | None, payout: dict[str, Any]) -> str:
    """Show a failed payout on the deposits it carries (final: a later `payout.paid`
    changes nothing)."""
    practice = practice_of_account(ctx, account)
    if practice is None or not ctx.processor.can(Capability.PAYOUTS):
        return "no practice with this account"
    payout_id = str(payout["id"])
    items = ctx.processor.payout_items(account, payout_id)
    by_deposit, _ = match(ctx, practice.id, [i for i in items if i.kind in MATCHED])
    for deposit_id in sorted(by_deposit):
        deposit = ctx.get(Deposit, deposit_id, practice.id)
        if deposit.payout_failure is not None and deposit.payout_id == payout_id:
            continue
        deposit.fail_payout(
            payout_id=payout_id,
            failure_code=str(payout.get("failure_code") or "failed"),
            failure_message=str(payout.get("failure_message") or "the payout failed"),
            at=ctx.clock.now(practice.id),
            actor=ACTOR,
        )
        ctx.save(deposit)
    return f"failure shown on {len(by_deposit)} deposit(s)"
