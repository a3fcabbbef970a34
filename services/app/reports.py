"""The daily close: the processor's batch, our ledger and the PMS, side by side.

For one practice-local date it lists the batch totals (the batch of that
date and its deposit), the ledger's totals for payments taken and refunds
made that day, what of it is associated with the PMS, and every difference:
a payment not yet associated, a refund not yet written back, a payment of
the day that settled in another batch (or not yet), a deposit whose items
do not add up to it, a lost dispute not yet in the PMS. The dispute lines of the day's
deposits (a withdrawal, its fee, a reinstatement) are listed apart.

`daily_close` reads the day once (`TheDay`), then each total and each kind of
difference is a step of its own, a function of what was read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol
from uuid import UUID

from adapters.processor.port import Capability
from domain.practices import Practice
from domain.schedule import cutoff_instant, local_date
from projections.base import iso, parse_iso
from projections.deposits import (
    DepositItemRow,
    DepositRow,
    deposit_items,
    deposits_of_batch_date,
    payout_of,
)
from projections.intents import OpenIntentRow, open_intents
from projections.transactions import (
    LostDisputeRow,
    RefundRow,
    TransactionRow,
    disputes_lost,
    payments_of_day,
    refunds_of_day,
)
from services.context import Aggregates, Reading, Timed


class Needs(Aggregates, Reading, Timed, Protocol):
    """The parts these use cases are given (services/context.py)."""


MONEY_MOVED = ("approved", "settled")
#: the deposit lines a dispute's adjustments make (payouts.py)
DISPUTE_LINES = ("dispute", "dispute_fee", "dispute_reversal")


def yesterday(ctx: Needs, practice: Practice) -> date:
    return local_date(ctx.clock.now(practice.id), practice.timezone) - timedelta(days=1)


@dataclass(frozen=True)
class TheDay:
    """What the close of one practice-local day reads: the payments taken and refunds made
    that day, the deposits of its batch (each with its items), the disputes lost that day
    and the effects asked of the processor by its cut-off whose outcome is not recorded."""

    practice: Practice
    day: date
    payments: list[TransactionRow]
    refunds: list[RefundRow]
    deposits: list[DepositRow]
    items: dict[str, list[DepositItemRow]]
    lost_disputes: list[LostDisputeRow]
    intents: list[OpenIntentRow]

    @property
    def moved(self) -> list[TransactionRow]:
        """The payments that moved money (approved or settled)."""
        return [p for p in self.payments if p["status"] in MONEY_MOVED]

    @property
    def batch_ids(self) -> set[str]:
        return {d["batch_id"] for d in self.deposits}

    @property
    def unknown_intents(self) -> list[OpenIntentRow]:
        return [i for i in self.intents if i["unknown_since"] is not None]


def daily_close(ctx: Needs, practice_id: UUID, day: date) -> dict[str, Any]:
    """The close of `day`: what it read, its totals side by side, then every difference."""
    the_day = read_the_day(ctx, practice_id, day)
    differences = [
        *payments_not_posted_or_not_in_the_batch(the_day),
        *captures_failed(the_day),
        *refunds_not_written_back(the_day),
        *lost_disputes_not_written_back(the_day),
        *deposits_that_differ(the_day),
    ]
    unknown = [intent_difference(i) for i in the_day.unknown_intents]
    return {
        "practice_id": str(practice_id),
        "practice_name": the_day.practice.name,
        "date": day.isoformat(),
        "batch": batch_totals(the_day),
        "ledger": ledger_totals(the_day),
        "pms": pms_totals(the_day),
        "disputes": dispute_lines(the_day),
        "differences": differences + unknown,
        "open_intents": [intent_out(i) for i in the_day.intents],
        "balanced": not differences and not unknown,
        "batch_close": clearent_batch_close(ctx, the_day.practice),
    }


def read_the_day(ctx: Needs, practice_id: UUID, day: date) -> TheDay:
    """The views caught up, what the close compares."""
    ctx.catch_up()
    practice = ctx.get(Practice, practice_id, practice_id)
    deposits = ctx.reads(deposits_of_batch_date, practice_id, day.isoformat())
    end_of_day = cutoff_instant(day, practice.timezone, practice.batch_cutoff)
    return TheDay(
        practice=practice,
        day=day,
        payments=ctx.reads(payments_of_day, practice_id, day.isoformat()),
        refunds=ctx.reads(refunds_of_day, practice_id, day.isoformat()),
        deposits=deposits,
        items={d["id"]: ctx.reads(deposit_items, UUID(d["id"])) for d in deposits},
        lost_disputes=disputes_lost_on(ctx, practice, day),
        intents=ctx.reads(open_intents, practice_id, iso(end_of_day)),
    )


def batch_totals(the_day: TheDay) -> dict[str, Any]:
    """The processor's side: the batch of the day and its deposits."""
    deposits = the_day.deposits
    return {
        "batch_ids": sorted(the_day.batch_ids),
        "sales_count": sum(int(d["sales_count"]) for d in deposits),
        "gross_amount": sum(int(d["gross_amount"]) for d in deposits),
        "refunds_count": sum(int(d["refunds_count"]) for d in deposits),
        "refunds_amount": sum(int(d["refunds_amount"]) for d in deposits),
        "fees_amount": sum(int(d["fees_amount"]) for d in deposits),
        "disputes_amount": sum(int(d["disputes_amount"]) for d in deposits),
        "net_amount": sum(int(d["net_amount"]) for d in deposits),
        "deposits": [
            {
                "id": d["id"],
                "deposit_date": d["deposit_date"],
                "status": d["status"],
                "net_amount": int(d["net_amount"]),
            }
            for d in deposits
        ],
    }


def ledger_totals(the_day: TheDay) -> dict[str, Any]:
    """Our ledger's side: the payments taken and the refunds made that day."""
    moved, payments, refunds = the_day.moved, the_day.payments, the_day.refunds
    voided = [p for p in payments if p["status"] == "voided"]
    return {
        "payments_count": len(moved),
        "payments_amount": sum(int(p["amount"]) for p in moved),
        "voided_count": len(voided),
        "voided_amount": sum(int(p["amount"]) for p in voided),
        "declined_count": sum(1 for p in payments if p["status"] == "declined"),
        "refunds_count": len(refunds),
        "refunds_amount": sum(int(r["amount"]) for r in refunds),
    }


def pms_totals(the_day: TheDay) -> dict[str, Any]:
    """The PMS's side: what of the day's payments and refunds is in its ledger."""
    associated = [p for p in the_day.moved if p["association_source"] is not None]
    written = [r for r in the_day.refunds if r["association"] == "associated"]
    return {
        "associated_count": len(associated),
        "associated_amount": sum(int(p["amount"]) for p in associated),
        "refunds_written_count": len(written),
        "refunds_written_amount": sum(int(r["amount"]) for r in written),
    }


def dispute_lines(the_day: TheDay) -> list[dict[str, Any]]:
    """The deposits' dispute lines: a withdrawal, its fee, a reinstatement."""
    return [
        {
            "kind": line["kind"],
            "deposit_id": d["id"],
            "payout_id": d["payout_id"],
            "payment_id": line["payment_id"],
            "dispute_id": line["dispute_id"],
            "amount": int(line["amount"]),
            "fee_amount": int(line["fee_amount"]),
            "net_amount": int(line["net_amount"]),
        }
        for d in the_day.deposits
        for line in the_day.items[d["id"]]
        if line["kind"] in DISPUTE_LINES
    ]


def payments_not_posted_or_not_in_the_batch(the_day: TheDay) -> list[dict[str, Any]]:
    """Each payment that moved money: not yet in the PMS, or not in the day's batch."""
    differences = []
    for p in the_day.moved:
        if p["association_source"] is None:  # the payment's own entry is not in the PMS
            differences.append(item("payment_not_associated", p, "payment not yet in the PMS"))
        if p["batch_id"] not in the_day.batch_ids:
            reason = (
                "not settled yet"
                if p["batch_id"] is None
                else "settled in another batch (taken after the cut-off)"
            )
            differences.append(item("payment_not_in_batch", p, reason, batch_id=p["batch_id"]))
    return differences


def captures_failed(the_day: TheDay) -> list[dict[str, Any]]:
    """The payments the processor did not capture at the cut-off (voided, no money moved)."""
    return [
        item("payment_capture_failed", p, p["decline_reason"] or "")
        for p in the_day.payments
        if p["status"] == "voided" and (p["decline_reason"] or "").startswith("capture failed")
    ]


def refunds_not_written_back(the_day: TheDay) -> list[dict[str, Any]]:
    return [
        item(
            "refund_not_written_back",
            r,
            "refund not yet in the PMS ledger",
            payment_id=r["payment_id"],
        )
        for r in the_day.refunds
        if r["association"] != "associated"
    ]


def lost_disputes_not_written_back(the_day: TheDay) -> list[dict[str, Any]]:
    return [
        {
            "kind": "dispute_not_written_back",
            "payment_id": lost["id"],
            "dispute_id": lost["dispute_id"],
            "amount": -int(lost["dispute_amount"]),
            "detail": "lost dispute not yet in the PMS ledger",
        }
        for lost in the_day.lost_disputes
        if not lost["dispute_posted"]
    ]


def deposits_that_differ(the_day: TheDay) -> list[dict[str, Any]]:
    """Each deposit: its payouts' differences, a failed payout, items that do not add up."""
    differences: list[dict[str, Any]] = []
    for d in the_day.deposits:
        payout = payout_of(d)
        # a payout's differences, and those of other payouts recorded on the deposit (a
        # payout of only dispute adjustments or other items: they carry their payout_id)
        for difference in json.loads(d["payout_differences"] or "[]"):
            known = {"payout_id": payout["id"]} if payout is not None else {}
            differences.append({**known, **difference, "deposit_id": d["id"]})
        if payout is not None and payout["status"] == "failed":
            differences.append(
                {
                    "kind": "payout_failed",
                    "deposit_id": d["id"],
                    "payout_id": payout["id"],
                    "amount": int(d["net_amount"]),
                    "detail": f"the payout failed ({payout['failure']})",
                }
            )
        items_net = sum(int(i["net_amount"]) for i in the_day.items[d["id"]])
        if items_net != int(d["net_amount"]):
            differences.append(
                {
                    "kind": "deposit_mismatch",
                    "deposit_id": d["id"],
                    "amount": int(d["net_amount"]),
                    "items_amount": items_net,
                    "detail": "the deposit's items do not add up to it",
                }
            )
    return differences


def clearent_batch_close(ctx: Needs, practice: Practice) -> dict[str, Any] | None:
    """Where the processor's batch close pays the deposits (Clearent), who closes its batch
    (read from the merchant's gateway settings)."""
    processor = getattr(ctx, "processor", None)
    if processor is None or not processor.can(Capability.BATCHES):
        return None
    from services.app.clearent_batches import batch_close_rule

    return batch_close_rule(ctx, practice)  # type: ignore[arg-type]


def intent_out(row: OpenIntentRow) -> dict[str, Any]:
    return {
        "id": row["id"],
        "effect": row["effect"],
        "payment_id": row["payment_id"],
        "amount": row["amount"],
        "requested_at": row["requested_at"],
        "state": "unknown" if row["unknown_since"] is not None else "pending",
        "attempts": row["attempts"],
        "last_error": row["last_error"],
    }


def intent_difference(row: OpenIntentRow) -> dict[str, Any]:
    return {
        "kind": "intent_unknown",
        "payment_id": row["payment_id"],
        "intent_id": row["id"],
        "amount": row["amount"],
        "detail": f"the processor's answer to this {row['effect']} was lost; the reconciler "
        f"reads it back ({row['attempts']} attempts so far: {row['last_error']})",
    }


def disputes_lost_on(ctx: Needs, practice: Practice, day: date) -> list[LostDisputeRow]:
    """The payments whose dispute was lost on the day (practice-local), from the feed."""
    rows = ctx.reads(disputes_lost, practice.id)
    return [r for r in rows if local_date(parse_iso(r["occurred_at"]), practice.timezone) == day]


def item(kind: str, row: TransactionRow | RefundRow, detail: str, **extra: Any) -> dict[str, Any]:
    key = "payment_id" if kind.startswith("payment") else "refund_id"
    return {
        "kind": kind,
        key: row["id"],
        "amount": int(row["amount"]),
        "occurred_at": row["occurred_at"],
        "detail": detail,
        **extra,
    }
